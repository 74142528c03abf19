/* HTTP server: graceful shutdown with requests in flight (and a connection
 * whose first request comes after the shutdown began), the deadline
 * force-close (with a handler that answers after its connection died), and
 * two workers serving many concurrent connections. */
#include "server_test_util.h"

#define IN_FLIGHT 5

static uv_loop_t loop;
static colony_server *srv;
static int port;
static int closed;
static int slow_seen;
static atomic_int late_respond_rc, late_finish_status;
static int slow_delay_ms = 200;
static uint64_t deadline_ms = 5000;

typedef struct later {
    uv_timer_t timer;
    colony_request *req;
} later;

static void later_closed(uv_handle_t *h)
{
    free(h->data);
}

static void later_fire(uv_timer_t *t)
{
    later *l = t->data;
    atomic_store(&late_respond_rc, colony_respond(l->req, 200, "text/plain", "done", 4));
    uv_close((uv_handle_t *)t, later_closed);
}

static void record_finish(colony_request *req, int status, void *ud)
{
    (void)req;
    (void)ud;
    atomic_store(&late_finish_status, status);
}

static void on_closed(colony_server *s, void *ud)
{
    (void)s;
    (void)ud;
    closed = 1;
}

static void handler(colony_request *req, void *ud)
{
    (void)ud;
    if (strcmp(colony_request_path(req), "/slow") == 0) {
        later *l = calloc(1, sizeof(*l));
        l->req = req;
        colony_request_on_finish(req, record_finish, NULL);
        uv_timer_init(colony_request_loop(req), &l->timer);
        l->timer.data = l;
        uv_timer_start(&l->timer, later_fire, (uint64_t)slow_delay_ms, 0);
        if (++slow_seen == IN_FLIGHT) {
            colony_server_shutdown(srv, deadline_ms, on_closed, NULL);
            assert_true(colony_server_is_shutting_down(srv));
        }
        return;
    }
    colony_respond(req, 200, "text/plain", "hi", 2);
}

static void client_graceful(tclient *t)
{
    tresp r;
    tconn *idle = tc_connect(t->port);
    TCHECK(t, tc_send(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    TCHECK(t, tc_read_response(idle, &r, 0) == 0 && r.status == 200);
    /* connected before the shutdown, its request sent only after it began */
    tconn *fresh = tc_connect(t->port);
    tconn *c[IN_FLIGHT];
    for (int i = 0; i < IN_FLIGHT; i++) {
        c[i] = tc_connect(t->port);
        TCHECK(t, tc_send(c[i], "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    }
    /* the idle keep-alive connection is closed once shutdown begins */
    TCHECK(t, tc_wait_closed(idle));
    tc_close(idle);
    /* a connection that had not sent its first request is answered, not reset
     * (a supervisor's reload hands the port over while clients connect) */
    TCHECK(t, tc_send(fresh, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    TCHECK(t, tc_read_response(fresh, &r, 0) == 0 && r.status == 200);
    TCHECK(t, strstr(r.head, "Connection: close") != NULL);
    TCHECK(t, tc_wait_closed(fresh));
    tc_close(fresh);
    /* new connections are refused */
    int fd = tc_open_fd(t->port);
    TCHECK(t, fd < 0);
    if (fd >= 0) close(fd);
    for (int i = 0; i < IN_FLIGHT; i++) {
        TCHECK(t, tc_read_response(c[i], &r, 0) == 0);
        TCHECK(t, r.status == 200 && strcmp(r.body, "done") == 0);
        TCHECK(t, strstr(r.head, "Connection: close") != NULL);
        TCHECK(t, tc_wait_closed(c[i]));
        tc_close(c[i]);
    }
}

static void graceful_shutdown_finishes_in_flight_requests(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    closed = slow_seen = 0;
    slow_delay_ms = 200;
    deadline_ms = 5000;
    srv = start_server(&loop, NULL, handler, NULL, &port);
    tclient t = {.port = port, .fn = client_graceful};
    run_client(&loop, &t, 20000);
    assert_true(colony_test_run_until(&loop, &closed, 10000));
    assert_int_equal(atomic_load(&late_respond_rc), 0);
    assert_int_equal(atomic_load(&late_finish_status), 0);
    colony_server_free(srv);
    colony_test_loop_close(&loop);
}

static void client_forced(tclient *t)
{
    tconn *c[IN_FLIGHT];
    for (int i = 0; i < IN_FLIGHT; i++) {
        c[i] = tc_connect(t->port);
        TCHECK(t, tc_send(c[i], "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    }
    for (int i = 0; i < IN_FLIGHT; i++) {
        TCHECK(t, tc_wait_closed(c[i]));
        TCHECK(t, c[i]->len == 0); /* no response: force-closed */
        tc_close(c[i]);
    }
}

static void shutdown_deadline_force_closes(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    closed = slow_seen = 0;
    slow_delay_ms = 800;
    deadline_ms = 100;
    atomic_store(&late_respond_rc, 1);
    atomic_store(&late_finish_status, 1);
    srv = start_server(&loop, NULL, handler, NULL, &port);
    tclient t = {.port = port, .fn = client_forced};
    run_client(&loop, &t, 20000);
    /* the handlers still hold their requests; the server waits for them */
    assert_true(colony_test_run_until(&loop, &closed, 10000));
    assert_int_equal(atomic_load(&late_respond_rc), COLONY_ECONNRESET);
    assert_int_equal(atomic_load(&late_finish_status), COLONY_ESHUTDOWN);
    colony_server_free(srv);
    colony_test_loop_close(&loop);
}

/* ---- workers ---- */

#define CLIENT_THREADS   4
#define CONNS_PER_THREAD 50
#define ROUNDS           5

static atomic_int served_by_main, served_by_other;
static uv_loop_t *main_loop;

static void worker_handler(colony_request *req, void *ud)
{
    (void)ud;
    if (colony_request_loop(req) == main_loop)
        atomic_fetch_add(&served_by_main, 1);
    else
        atomic_fetch_add(&served_by_other, 1);
    const char *q = colony_request_query(req);
    char out[64];
    int n = snprintf(out, sizeof(out), "echo:%s", q);
    colony_respond(req, 200, "text/plain", out, (size_t)n);
}

typedef struct load_job {
    tclient *t;
    int id;
} load_job;

static void load_thread(void *arg)
{
    load_job *job = arg;
    tclient *t = job->t;
    tconn **c = calloc(CONNS_PER_THREAD, sizeof(*c));
    tresp *r = malloc(sizeof(*r));
    for (int i = 0; i < CONNS_PER_THREAD; i++) {
        c[i] = tc_connect(t->port);
        TCHECK(t, c[i] != NULL);
        if (!c[i]) goto out;
    }
    for (int round = 0; round < ROUNDS; round++) {
        char req[128];
        for (int i = 0; i < CONNS_PER_THREAD; i++) {
            snprintf(req, sizeof(req), "GET /?%d-%d-%d HTTP/1.1\r\nHost: x\r\n\r\n", job->id, i,
                     round);
            TCHECK(t, tc_send(c[i], req) == 0);
        }
        for (int i = 0; i < CONNS_PER_THREAD; i++) {
            char want[64];
            snprintf(want, sizeof(want), "echo:%d-%d-%d", job->id, i, round);
            TCHECK(t, tc_read_response(c[i], r, 0) == 0);
            TCHECK(t, r->status == 200 && strcmp(r->body, want) == 0);
        }
    }
out:
    for (int i = 0; i < CONNS_PER_THREAD; i++)
        tc_close(c[i]);
    free(c);
    free(r);
}

static void client_load(tclient *t)
{
    uv_thread_t th[CLIENT_THREADS];
    load_job jobs[CLIENT_THREADS];
    for (int i = 0; i < CLIENT_THREADS; i++) {
        jobs[i] = (load_job){t, i};
        uv_thread_create(&th[i], load_thread, &jobs[i]);
    }
    for (int i = 0; i < CLIENT_THREADS; i++)
        uv_thread_join(&th[i]);
}

static void two_workers_serve_many_connections(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    main_loop = &loop;
    atomic_store(&served_by_main, 0);
    atomic_store(&served_by_other, 0);
    colony_server_options opts = {0};
    opts.workers = 2;
    srv = start_server(&loop, &opts, worker_handler, NULL, &port);
    tclient t = {.port = port, .fn = client_load};
    run_client(&loop, &t, 60000);
    int total = atomic_load(&served_by_main) + atomic_load(&served_by_other);
    assert_int_equal(total, CLIENT_THREADS * CONNS_PER_THREAD * ROUNDS);
    assert_true(atomic_load(&served_by_main) > 0);
    assert_true(atomic_load(&served_by_other) > 0);
    colony_server_stats st;
    colony_server_get_stats(srv, &st);
    assert_int_equal(st.requests, (uint64_t)total);
    assert_int_equal(st.connections_accepted, CLIENT_THREADS * CONNS_PER_THREAD);
    stop_server(&loop, srv, 1000);
    colony_test_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(graceful_shutdown_finishes_in_flight_requests),
        cmocka_unit_test(shutdown_deadline_force_closes),
        cmocka_unit_test(two_workers_serve_many_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
