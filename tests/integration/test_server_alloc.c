/* HTTP server under injected allocation failures: the Nth allocation on the
 * loop fails; the connection must be answered or closed (never hang), nothing
 * leaks (LeakSanitizer), and the server serves normally afterwards. */
#include "server_test_util.h"
#include "core/alloc.h"

static uv_loop_t loop;

static void write_done(colony_request *req, int status, void *ud)
{
    (void)ud;
    (void)status;
    colony_response_end(req);
}

static void handler(colony_request *req, void *ud)
{
    (void)ud;
    size_t n;
    const char *body = colony_request_body(req, &n);
    colony_request_set_data(req, "key", (void *)"value");
    colony_response_header(req, "X-Test", "1");
    if (strcmp(colony_request_path(req), "/stream") == 0) {
        if (colony_response_start(req, 200) == 0 &&
            colony_response_write(req, body, n, write_done, NULL) != 0)
            colony_response_end(req);
        return;
    }
    if (colony_respond(req, 200, "text/plain", body, n) != 0)
        colony_respond_error(req, 500, "internal_error", "no memory");
}

/* Returns 1 if the response arrived, 0 if the connection closed; a timeout
 * (the server neither answered nor closed) is a failure. */
static int answered_or_closed(tclient *t, tconn *c, tresp *r)
{
    errno = 0;
    if (tc_read_response(c, r, 0) == 0) return 1;
    TCHECK(t, errno != EAGAIN && errno != EWOULDBLOCK);
    return 0;
}

static void client_torture(tclient *t)
{
    tresp r;
    tconn *c = tc_connect(t->port);
    if (!c) return; /* refused is fine too */
    if (tc_send(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello") != 0)
        goto out;
    if (!answered_or_closed(t, c, &r)) goto out;
    if (r.status == 200) TCHECK(t, strcmp(r.body, "hello") == 0);
    if (tc_send(c, "POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "3\r\nabc\r\n0\r\n\r\n"
                   "GET /x HTTP/1.1\r\nHost: x\r\n\r\n") != 0)
        goto out;
    if (!answered_or_closed(t, c, &r)) goto out;
    if (r.status == 200) TCHECK(t, strcmp(r.body, "abc") == 0);
    answered_or_closed(t, c, &r);
out:
    tc_close(c);
}

static void client_normal(tclient *t)
{
    tresp r;
    tconn *c = tc_connect(t->port);
    TCHECK(t, c != NULL);
    if (!c) return;
    TCHECK(t, tc_send(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 200 && strcmp(r.body, "ok") == 0);
    tc_close(c);
}

static void every_allocation_failure_is_handled(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    colony_server_options opts = {0};
    opts.header_timeout_ms = opts.body_timeout_ms = opts.write_timeout_ms = 1000;
    int port;
    colony_server *srv = start_server(&loop, &opts, handler, NULL, &port);
    long injected = 0;
    for (long n = 0; n < 40; n++) {
        tclient t = {.port = port, .fn = client_torture};
        colony__alloc_fail_after(n);
        run_client(&loop, &t, 20000);
        injected += colony__alloc_failures();
        colony__alloc_fail_reset();
        tclient ok = {.port = port, .fn = client_normal};
        run_client(&loop, &ok, 20000);
    }
    assert_true(injected > 0);
    stop_server(&loop, srv, 1000);
    colony_test_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_allocation_failure_is_handled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
