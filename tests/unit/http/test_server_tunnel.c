/* Connection takeover after 101 (colony_request_upgrade, server_tunnel.c),
 * driven by a raw blocking socket: the 101 head, bytes the client sent right
 * after the request head reach on_data, echo both ways (also more than the
 * socket buffers hold), close from the client and from the server, writes
 * after the end fail cleanly, the idle timeout, a server shutdown, and the
 * refusals (HTTP/1.0, a started response, out of memory). */
#include "test_support.h"
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#include "colony/colony.h"
#include "core/alloc.h"
#include "server_test_util.h"

typedef struct tstate {
    colony_tunnel *t;
    int closes, close_err, finishes, finish_status;
    int write_after_close; /* colony_tunnel_write's result inside on_close */
    int upgrade_rc;
    size_t received;
    int close_after; /* close the tunnel after echoing "bye" */
    int paused_once;
    int respond_after, write_after, end_after; /* response calls after the upgrade */
} tstate;

static tstate st;

static void on_data(colony_tunnel *t, const char *data, size_t len, void *ud)
{
    (void)ud;
    st.received += len;
    if (len == 3 && memcmp(data, "bye", 3) == 0) {
        colony_tunnel_write(t, "ciao", 4, NULL, NULL);
        colony_tunnel_close(t);
        return;
    }
    int rc = colony_tunnel_write(t, data, len, NULL, NULL);
    if (rc == COLONY_EBUSY) { /* the client reads while it writes: never here */
        colony_tunnel_close(t);
    }
}

static void on_close(colony_tunnel *t, int err, void *ud)
{
    (void)ud;
    st.closes++;
    st.close_err = err;
    st.write_after_close = colony_tunnel_write(t, "x", 1, NULL, NULL);
}

static void on_finish(colony_request *req, int status, void *ud)
{
    (void)req;
    (void)ud;
    st.finishes++;
    st.finish_status = status;
}

static void handler(colony_request *req, void *ud)
{
    (void)ud;
    colony_request_on_finish(req, on_finish, NULL);
    const char *up = colony_request_header(req, "Upgrade");
    if (!up) {
        colony_respond(req, 200, "text/plain", "plain", 5);
        return;
    }
    colony_response_header(req, "X-Tunnel", "yes");
    st.upgrade_rc = colony_request_upgrade(req, up, on_data, on_close, NULL, &st.t);
    if (st.upgrade_rc) {
        colony_respond(req, 400, "text/plain", "refused", 7);
        return;
    }
    /* The request is the tunnel's now: answering it again is refused. */
    st.respond_after = colony_respond(req, 200, NULL, "x", 1);
    st.write_after = colony_response_write(req, "x", 1, NULL, NULL);
    st.end_after = colony_response_end(req);
    colony_response_abort(req);
}

static int read_exact(tconn *c, char *out, size_t want)
{
    while (c->len < want)
        if (tc_fill(c) <= 0) return -1;
    memcpy(out, c->buf, want);
    tc_consume(c, want);
    return 0;
}

static void reset_state(void)
{
    memset(&st, 0, sizeof(st));
}

/* ---- echo, early bytes, big transfer, client close ---- */

static void echo_client(tclient *t)
{
    tconn *c = tc_connect(t->port);
    TCHECK(t, c != NULL);
    if (!c) return;
    /* Bytes right after the head, in the same segment: they must not be lost. */
    TCHECK(t, tc_send(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\n"
                         "Connection: Upgrade\r\n\r\nEARLY") == 0);
    tresp r;
    TCHECK(t, tc_read_response(c, &r, 1) == 0);
    TCHECK(t, r.status == 101);
    TCHECK(t, strstr(r.head, "Connection: Upgrade\r\n") != NULL);
    TCHECK(t, strstr(r.head, "Upgrade: echo\r\n") != NULL);
    TCHECK(t, strstr(r.head, "X-Tunnel: yes\r\n") != NULL);
    TCHECK(t, tc_find_header(r.head, "Content-Length") == NULL);
    char got[1 << 14];
    TCHECK(t, read_exact(c, got, 5) == 0 && memcmp(got, "EARLY", 5) == 0);
    /* HTTP-looking bytes are not parsed any more. */
    const char *fake = "GET / HTTP/1.1\r\n\r\n";
    TCHECK(t, tc_send(c, fake) == 0);
    TCHECK(t, read_exact(c, got, strlen(fake)) == 0 && memcmp(got, fake, strlen(fake)) == 0);
    /* 4 MiB in 16 KiB pieces, read back as it goes. */
    char piece[1 << 14];
    size_t total = 4u << 20;
    for (size_t off = 0; off < total; off += sizeof(piece)) {
        for (size_t i = 0; i < sizeof(piece); i++)
            piece[i] = (char)((off + i) * 7);
        ssize_t n = send(c->fd, piece, sizeof(piece), MSG_NOSIGNAL);
        TCHECK(t, n == (ssize_t)sizeof(piece));
        if (n != (ssize_t)sizeof(piece)) break;
        if (read_exact(c, got, sizeof(piece)) != 0 || memcmp(got, piece, sizeof(piece)) != 0) {
            TCHECK(t, !"echo mismatch");
            break;
        }
    }
    tc_close(c);
    usleep(100 * 1000);
}

static void echo_and_client_close(void **state)
{
    (void)state;
    reset_state();
    uv_loop_t loop;
    uv_loop_init(&loop);
    int port;
    colony_server *srv = start_server(&loop, NULL, handler, NULL, &port);
    tclient t = {.port = port, .fn = echo_client};
    run_client(&loop, &t, 20000);
    for (int i = 0; i < 100 && !st.closes; i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(st.upgrade_rc, 0);
    assert_int_equal(st.respond_after, COLONY_EINVAL);
    assert_int_equal(st.write_after, COLONY_EINVAL);
    assert_int_equal(st.end_after, COLONY_EINVAL);
    assert_int_equal(st.closes, 1);
    assert_int_equal(st.close_err, 0);
    assert_int_equal(st.write_after_close, COLONY_ESHUTDOWN);
    assert_int_equal(st.finishes, 1);
    assert_int_equal(st.finish_status, 0);
    assert_true(st.received >= (4u << 20) + 5);
    colony_server_stats stats;
    colony_server_get_stats(srv, &stats);
    assert_int_equal(stats.active_connections, 0);
    stop_server(&loop, srv, 1000);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- the server closes: what it wrote first arrives, then EOF ---- */

static void bye_client(tclient *t)
{
    tconn *c = tc_connect(t->port);
    TCHECK(t, c != NULL);
    if (!c) return;
    TCHECK(t, tc_send(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\n"
                         "Connection: Upgrade\r\n\r\n") == 0);
    tresp r;
    TCHECK(t, tc_read_response(c, &r, 1) == 0);
    TCHECK(t, r.status == 101);
    TCHECK(t, tc_send(c, "bye") == 0);
    char got[8];
    TCHECK(t, read_exact(c, got, 4) == 0 && memcmp(got, "ciao", 4) == 0);
    TCHECK(t, tc_wait_closed(c));
    tc_close(c);
}

static void server_closes(void **state)
{
    (void)state;
    reset_state();
    uv_loop_t loop;
    uv_loop_init(&loop);
    int port;
    colony_server *srv = start_server(&loop, NULL, handler, NULL, &port);
    tclient t = {.port = port, .fn = bye_client};
    run_client(&loop, &t, 10000);
    for (int i = 0; i < 100 && !st.closes; i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(st.closes, 1);
    assert_int_equal(st.close_err, 0);
    assert_int_equal(st.finishes, 1);
    stop_server(&loop, srv, 1000);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- idle timeout and shutdown close a silent tunnel ---- */

static void silent_client(tclient *t)
{
    tconn *c = tc_connect(t->port);
    TCHECK(t, c != NULL);
    if (!c) return;
    TCHECK(t, tc_send(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\n"
                         "Connection: Upgrade\r\n\r\n") == 0);
    tresp r;
    TCHECK(t, tc_read_response(c, &r, 1) == 0);
    TCHECK(t, r.status == 101);
    uint64_t start = colony_test_now_ms();
    TCHECK(t, tc_wait_closed(c));
    TCHECK(t, colony_test_now_ms() - start < 3000);
    tc_close(c);
}

static void idle_timeout_closes(void **state)
{
    (void)state;
    reset_state();
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_server_options o = {0};
    o.tunnel_idle_timeout_ms = 200;
    int port;
    colony_server *srv = start_server(&loop, &o, handler, NULL, &port);
    tclient t = {.port = port, .fn = silent_client};
    run_client(&loop, &t, 10000);
    for (int i = 0; i < 100 && !st.closes; i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(st.closes, 1);
    assert_int_equal(st.close_err, COLONY_ETIMEDOUT);
    assert_int_equal(st.finish_status, COLONY_ETIMEDOUT);
    stop_server(&loop, srv, 1000);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void shutdown_thread(void *arg)
{
    tclient *t = arg;
    silent_client(t);
}

static int server_closed;

static void closed_cb(colony_server *srv, void *ud)
{
    (void)srv;
    (void)ud;
    server_closed = 1;
}

static void shutdown_closes_after_drain(void **state)
{
    (void)state;
    reset_state();
    uv_loop_t loop;
    uv_loop_init(&loop);
    int port;
    colony_server *srv = start_server(&loop, NULL, handler, NULL, &port);
    tclient t = {.port = port};
    atomic_init(&t.failures, 0);
    uv_thread_t th;
    assert_int_equal(uv_thread_create(&th, shutdown_thread, &t), 0);
    uint64_t end = colony_test_now_ms() + 5000;
    while (!st.t && colony_test_now_ms() < end)
        uv_run(&loop, UV_RUN_ONCE);
    assert_non_null(st.t);
    server_closed = 0;
    uint64_t start = colony_test_now_ms();
    colony_server_shutdown(srv, 150, closed_cb, NULL);
    assert_true(colony_test_run_until(&loop, &server_closed, 5000));
    assert_true(colony_test_now_ms() - start >= 100); /* the drain time was given */
    uv_thread_join(&th);
    if (atomic_load(&t.failures)) fail_msg("client check failed: %s", t.failure);
    assert_int_equal(st.closes, 1);
    assert_int_equal(st.close_err, COLONY_ESHUTDOWN);
    colony_server_free(srv);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- refusals leave the request answerable ---- */

static void http10_client(tclient *t)
{
    tconn *c = tc_connect(t->port);
    TCHECK(t, c != NULL);
    if (!c) return;
    TCHECK(t, tc_send(c, "GET /ws HTTP/1.0\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n") == 0);
    tresp r;
    TCHECK(t, tc_read_response(c, &r, 0) == 0);
    TCHECK(t, r.status == 400);
    TCHECK(t, strcmp(r.body, "refused") == 0);
    tc_close(c);
}

static void http10_refused(void **state)
{
    (void)state;
    reset_state();
    uv_loop_t loop;
    uv_loop_init(&loop);
    int port;
    colony_server *srv = start_server(&loop, NULL, handler, NULL, &port);
    tclient t = {.port = port, .fn = http10_client};
    run_client(&loop, &t, 5000);
    assert_int_equal(st.upgrade_rc, COLONY_EINVAL);
    assert_null(st.t);
    stop_server(&loop, srv, 1000);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void started_handler(colony_request *req, void *ud)
{
    (void)ud;
    colony_tunnel *t = NULL;
    colony_response_header(req, "Content-Length", "2");
    colony_response_start(req, 200);
    st.upgrade_rc = colony_request_upgrade(req, "echo", on_data, on_close, NULL, &t);
    colony_response_write(req, "ok", 2, NULL, NULL);
    colony_response_end(req);
}

static void plain_client(tclient *t)
{
    tconn *c = tc_connect(t->port);
    TCHECK(t, c != NULL);
    if (!c) return;
    TCHECK(t, tc_send(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\n"
                         "Connection: Upgrade\r\n\r\n") == 0);
    tresp r;
    TCHECK(t, tc_read_response(c, &r, 0) == 0);
    TCHECK(t, r.status == 200 && strcmp(r.body, "ok") == 0);
    tc_close(c);
}

static void started_response_refused(void **state)
{
    (void)state;
    reset_state();
    uv_loop_t loop;
    uv_loop_init(&loop);
    int port;
    colony_server *srv = start_server(&loop, NULL, started_handler, NULL, &port);
    tclient t = {.port = port, .fn = plain_client};
    run_client(&loop, &t, 5000);
    assert_int_equal(st.upgrade_rc, COLONY_EINVAL);
    stop_server(&loop, srv, 1000);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- pause: nothing is delivered (not even the early bytes) until resume ---- */

static uint64_t upgraded_at, first_data_at;
static uv_timer_t resume_timer;

static void pause_data(colony_tunnel *t, const char *data, size_t len, void *ud)
{
    (void)ud;
    if (!first_data_at) first_data_at = uv_now(colony_request_loop(colony_tunnel_request(t)));
    st.received += len;
    colony_tunnel_write(t, data, len, NULL, NULL);
}

static void do_resume(uv_timer_t *timer)
{
    (void)timer;
    assert_int_equal(st.received, 0);
    assert_int_equal(colony_tunnel_resume(st.t), 0);
}

static void pause_handler(colony_request *req, void *ud)
{
    (void)ud;
    st.upgrade_rc = colony_request_upgrade(req, "echo", pause_data, on_close, NULL, &st.t);
    if (st.upgrade_rc) {
        colony_respond(req, 500, NULL, NULL, 0);
        return;
    }
    assert_int_equal(colony_tunnel_pause(st.t), 0);
    upgraded_at = uv_now(colony_request_loop(req));
    uv_timer_start(&resume_timer, do_resume, 300, 0);
}

static void pause_client(tclient *t)
{
    tconn *c = tc_connect(t->port);
    TCHECK(t, c != NULL);
    if (!c) return;
    TCHECK(t, tc_send(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\n"
                         "Connection: Upgrade\r\n\r\nEARLY") == 0);
    tresp r;
    TCHECK(t, tc_read_response(c, &r, 1) == 0);
    TCHECK(t, r.status == 101);
    TCHECK(t, tc_send(c, "late") == 0);
    char got[16];
    TCHECK(t, read_exact(c, got, 9) == 0 && memcmp(got, "EARLYlate", 9) == 0);
    tc_close(c);
    usleep(50 * 1000);
}

static void pause_holds_every_byte(void **state)
{
    (void)state;
    reset_state();
    upgraded_at = first_data_at = 0;
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_timer_init(&loop, &resume_timer);
    int port;
    colony_server *srv = start_server(&loop, NULL, pause_handler, NULL, &port);
    tclient t = {.port = port, .fn = pause_client};
    run_client(&loop, &t, 5000);
    for (int i = 0; i < 100 && !st.closes; i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(st.upgrade_rc, 0);
    assert_true(first_data_at >= upgraded_at + 250);
    assert_int_equal(st.received, 9);
    assert_int_equal(st.closes, 1);
    uv_close((uv_handle_t *)&resume_timer, NULL);
    stop_server(&loop, srv, 1000);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Every allocation of the upgrade failing in turn: each refusal leaves the
 * request answerable (the client gets the 503) and nothing leaks. */
static void nomem_handler(colony_request *req, void *ud)
{
    long n = *(long *)ud;
    colony__alloc_fail_after(n);
    st.upgrade_rc = colony_request_upgrade(req, "echo", on_data, on_close, NULL, &st.t);
    colony__alloc_fail_reset();
    if (st.upgrade_rc) {
        colony_respond(req, 503, "text/plain", "nomem", 5);
        return;
    }
    colony_tunnel_close(st.t);
}

static void nomem_client(tclient *t)
{
    tconn *c = tc_connect(t->port);
    TCHECK(t, c != NULL);
    if (!c) return;
    TCHECK(t, tc_send(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\n"
                         "Connection: Upgrade\r\n\r\n") == 0);
    tresp r;
    TCHECK(t, tc_read_response(c, &r, 1) == 0);
    TCHECK(t, r.status == 503 || r.status == 101);
    if (r.status == 503) TCHECK(t, strstr(r.head, "Content-Length: 5") != NULL);
    tc_close(c);
}

static void upgrade_out_of_memory(void **state)
{
    (void)state;
    int refused = 0;
    for (long n = 0; n < 8; n++) {
        reset_state();
        uv_loop_t loop;
        uv_loop_init(&loop);
        int port;
        colony_server *srv = start_server(&loop, NULL, nomem_handler, &n, &port);
        tclient t = {.port = port, .fn = nomem_client};
        run_client(&loop, &t, 5000);
        if (st.upgrade_rc) {
            assert_int_equal(st.upgrade_rc, COLONY_ENOMEM);
            refused++;
        }
        stop_server(&loop, srv, 1000);
        assert_int_equal(uv_loop_close(&loop), 0);
        if (!st.upgrade_rc) break; /* no allocation left to fail */
    }
    assert_true(refused >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(echo_and_client_close), cmocka_unit_test(server_closes),
        cmocka_unit_test(idle_timeout_closes),   cmocka_unit_test(shutdown_closes_after_drain),
        cmocka_unit_test(http10_refused),        cmocka_unit_test(started_response_refused),
        cmocka_unit_test(upgrade_out_of_memory), cmocka_unit_test(pause_holds_every_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
