/* HTTP server connection limits: max_connections_per_address refuses the
 * connection over it with a 503 JSON; a full server closes its oldest idle
 * keep-alive connection to serve a new client; a full server with no idle
 * connection refuses with a 503 JSON. Each is counted in the stats. */
#include "server_test_util.h"

static uv_loop_t loop;
static colony_server *srv;

static void handler(colony_request *req, void *ud)
{
    (void)ud;
    colony_respond(req, 200, "text/plain", "ok", 2);
}

static int get_ok(tconn *c)
{
    tresp r;
    if (tc_send(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") != 0) return 0;
    return tc_read_response(c, &r, 0) == 0 && r.status == 200 && strcmp(r.body, "ok") == 0;
}

/* A refused connection reads a 503 JSON and then the close. */
static int refused(tconn *c)
{
    tresp r;
    if (tc_read_response(c, &r, 0) != 0) return 0;
    return r.status == 503 && strstr(r.head, "Connection: close\r\n") &&
           strstr(r.body, "{\"error\":\"service_unavailable\"") == r.body && tc_wait_closed(c);
}

static void start(colony_server_options *opts, int *port)
{
    assert_int_equal(uv_loop_init(&loop), 0);
    srv = start_server(&loop, opts, handler, NULL, port);
}

static void stop(void)
{
    stop_server(&loop, srv, 1000);
    colony_test_loop_close(&loop);
}

static void client_per_address(tclient *t)
{
    tconn *c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = tc_connect(t->port);
        TCHECK(t, c[i] && get_ok(c[i]));
    }
    tconn *over = tc_connect(t->port);
    TCHECK(t, over != NULL);
    if (over) TCHECK(t, refused(over));
    tc_close(over);
    tc_close(c[0]); /* a slot comes back once one closes */
    int served = 0;
    for (int attempt = 0; attempt < 50 && !served; attempt++) {
        tconn *again = tc_connect(t->port);
        served = again && get_ok(again);
        tc_close(again);
        if (!served) usleep(20000);
    }
    TCHECK(t, served);
    tc_close(c[1]);
    tc_close(c[2]);
}

static void per_address_limit_refuses(void **state)
{
    unsigned workers = state && *state ? *(unsigned *)*state : 1;
    colony_server_options opts = {0};
    opts.max_connections_per_address = 3;
    opts.workers = workers; /* the count is server-wide, whichever worker accepts */
    int port;
    start(&opts, &port);
    tclient t = {.port = port, .fn = client_per_address};
    run_client(&loop, &t, 20000);
    colony_server_stats st;
    colony_server_get_stats(srv, &st);
    assert_true(st.connections_rejected_per_address >= 1);
    assert_int_equal(st.connections_rejected, 0);
    stop();
}

static void client_evict(tclient *t)
{
    tconn *a = tc_connect(t->port), *b = tc_connect(t->port), *c = NULL;
    TCHECK(t, a && get_ok(a));
    TCHECK(t, b && get_ok(b));
    c = tc_connect(t->port);
    TCHECK(t, c && get_ok(c));
    TCHECK(t, get_ok(a)); /* a was used last: b is now the longest idle */
    tconn *d = tc_connect(t->port);
    TCHECK(t, d && get_ok(d)); /* served, not refused */
    TCHECK(t, tc_wait_closed(b));
    TCHECK(t, get_ok(a));
    TCHECK(t, get_ok(c));
    TCHECK(t, get_ok(d));
    tc_close(a);
    tc_close(b);
    tc_close(c);
    tc_close(d);
}

static void full_server_evicts_oldest_idle(void **state)
{
    (void)state;
    colony_server_options opts = {0};
    opts.max_connections = 3;
    int port;
    start(&opts, &port);
    tclient t = {.port = port, .fn = client_evict};
    run_client(&loop, &t, 20000);
    colony_server_stats st;
    colony_server_get_stats(srv, &st);
    assert_int_equal(st.connections_evicted, 1);
    assert_int_equal(st.connections_rejected, 0);
    stop();
}

static void client_full_busy(tclient *t)
{
    /* Two connections in the middle of a head: busy, not idle. */
    tconn *a = tc_connect(t->port), *b = tc_connect(t->port);
    TCHECK(t, a && tc_send(a, "GET / HTTP/1.1\r\n") == 0);
    TCHECK(t, b && tc_send(b, "GET / HTTP/1.1\r\n") == 0);
    usleep(100000);
    tconn *c = tc_connect(t->port);
    TCHECK(t, c && refused(c));
    TCHECK(t, tc_send(a, "Host: x\r\n\r\n") == 0);
    tresp r;
    TCHECK(t, tc_read_response(a, &r, 0) == 0 && r.status == 200);
    tc_close(a);
    tc_close(b);
    tc_close(c);
}

static void full_server_without_idle_refuses(void **state)
{
    (void)state;
    colony_server_options opts = {0};
    opts.max_connections = 2;
    int port;
    start(&opts, &port);
    tclient t = {.port = port, .fn = client_full_busy};
    run_client(&loop, &t, 20000);
    colony_server_stats st;
    colony_server_get_stats(srv, &st);
    assert_int_equal(st.connections_rejected, 1);
    assert_int_equal(st.connections_evicted, 0);
    stop();
}

static unsigned two_workers = 2;

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(per_address_limit_refuses),
        cmocka_unit_test_prestate(per_address_limit_refuses, &two_workers),
        cmocka_unit_test(full_server_evicts_oldest_idle),
        cmocka_unit_test(full_server_without_idle_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
