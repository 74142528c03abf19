/* colony_server_listen reports failure: an allocation that fails while
 * setting up a listener, or a port another socket holds, is returned as an
 * error (nothing half-open is left behind); a listen that returns 0 serves. */
#include "server_test_util.h"
#include "core/alloc.h"

static uv_loop_t loop;

static void handler(colony_request *req, void *ud)
{
    (void)ud;
    colony_respond(req, 200, "text/plain", "ok", 2);
}

static void client_get(tclient *t)
{
    tresp r;
    tconn *c = tc_connect(t->port);
    TCHECK(t, c != NULL);
    if (!c) return;
    TCHECK(t, tc_send(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 200);
    tc_close(c);
}

/* Fails the Nth allocation of colony_server_listen for every N until one
 * succeeds: each call returns an error or a listener that answers. */
static void allocation_failure_is_returned(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    int failures = 0, succeeded = 0;
    for (long n = 0; n < 20 && !succeeded; n++) {
        colony_server *srv = colony_server_new(&loop, NULL, handler, NULL);
        assert_non_null(srv);
        colony__alloc_fail_after(n);
        int rc = colony_server_listen(srv, "127.0.0.1:0");
        long injected = colony__alloc_failures();
        colony__alloc_fail_reset();
        if (rc == 0) {
            assert_int_equal(injected, 0);
            assert_true(colony_server_port(srv) > 0);
            tclient t = {.port = colony_server_port(srv), .fn = client_get};
            run_client(&loop, &t, 10000);
            succeeded = 1;
        } else {
            assert_int_equal(rc, COLONY_ENOMEM);
            assert_true(injected > 0);
            assert_int_equal(colony_server_port(srv), 0);
            failures++;
        }
        stop_server(&loop, srv, 1000);
    }
    assert_true(succeeded);
    assert_true(failures >= 2); /* the fd array and the listener itself */
    colony_test_loop_close(&loop);
}

static void port_taken_is_returned(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(fd, 4), 0);
    socklen_t len = sizeof(sin);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sin.sin_port));

    for (unsigned workers = 1; workers <= 2; workers++) {
        colony_server_options opts = {0};
        opts.workers = workers;
        colony_server *srv = colony_server_new(&loop, &opts, handler, NULL);
        assert_non_null(srv);
        assert_int_equal(colony_server_listen(srv, addr), COLONY_EADDRINUSE);
        assert_int_equal(colony_server_port(srv), 0);
        /* The server is still usable on another address. */
        assert_int_equal(colony_server_listen(srv, "127.0.0.1:0"), 0);
        tclient t = {.port = colony_server_port(srv), .fn = client_get};
        run_client(&loop, &t, 10000);
        stop_server(&loop, srv, 1000);
    }
    close(fd);
    colony_test_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(allocation_failure_is_returned),
        cmocka_unit_test(port_taken_is_returned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
