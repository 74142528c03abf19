/* HTTP server: header, body, idle and write timeouts; the connection limit;
 * max_requests_per_conn. Timeouts are small (200-300 ms); no test asserts an
 * upper bound on timing beyond the client's 5 s receive timeout. */
#include "server_test_util.h"

static uv_loop_t loop;
static colony_server *srv;
static int port;
static int stream_write_error, stream_end_rc = 1, finish_status = 1;

static void on_finish(colony_request *req, int status, void *ud)
{
    (void)req;
    (void)ud;
    finish_status = status;
}

static void write_more(colony_request *req, int status, void *ud);

static void write_piece(colony_request *req)
{
    static char piece[64 * 1024];
    memset(piece, 'x', sizeof(piece));
    int rc = colony_response_write(req, piece, sizeof(piece), write_more, NULL);
    if (rc) {
        stream_write_error = rc;
        stream_end_rc = colony_response_end(req);
    }
}

static void write_more(colony_request *req, int status, void *ud)
{
    (void)ud;
    if (status < 0) {
        stream_write_error = status;
        stream_end_rc = colony_response_end(req);
        return;
    }
    write_piece(req);
}

static void handler(colony_request *req, void *ud)
{
    (void)ud;
    if (strcmp(colony_request_path(req), "/big") == 0) {
        colony_request_on_finish(req, on_finish, NULL);
        colony_response_start(req, 200);
        write_piece(req);
        return;
    }
    colony_respond(req, 200, "text/plain", "ok", 2);
}

static void setup(colony_server_options *opts)
{
    assert_int_equal(uv_loop_init(&loop), 0);
    srv = start_server(&loop, opts, handler, NULL, &port);
}

static void teardown(void)
{
    stop_server(&loop, srv, 1000);
    colony_test_loop_close(&loop);
}

static void client_timeouts(tclient *t)
{
    tresp r;
    /* header timeout: part of a head, then silence */
    tconn *c = tc_connect(t->port);
    TCHECK(t, tc_send(c, "GET / HTTP/1.1\r\nHost:") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 408);
    TCHECK(t, strstr(r.body, "\"error\":\"request_timeout\"") != NULL);
    TCHECK(t, tc_wait_closed(c));
    tc_close(c);

    /* body timeout */
    c = tc_connect(t->port);
    TCHECK(t, tc_send(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 408);
    TCHECK(t, strstr(r.head, "Connection: close") != NULL);
    TCHECK(t, tc_wait_closed(c));
    tc_close(c);

    /* idle: a new connection that sends nothing, and one after a request */
    c = tc_connect(t->port);
    TCHECK(t, tc_wait_closed(c));
    TCHECK(t, c->len == 0);
    tc_close(c);
    c = tc_connect(t->port);
    TCHECK(t, tc_send(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 200);
    char tmp[16];
    TCHECK(t, recv(c->fd, tmp, sizeof(tmp), 0) == 0); /* closed silently */
    tc_close(c);
}

static void header_body_and_idle_timeouts(void **state)
{
    (void)state;
    colony_server_options opts = {0};
    opts.header_timeout_ms = 200;
    opts.body_timeout_ms = 200;
    opts.idle_timeout_ms = 300;
    setup(&opts);
    tclient t = {.port = port, .fn = client_timeouts};
    run_client(&loop, &t, 20000);
    teardown();
}

static void client_not_reading(tclient *t)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)t->port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    TCHECK(t, connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    tconn *c = tc_wrap(fd);
    TCHECK(t, tc_send(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    /* do not read; wait until the server gives up on us (it resets or closes) */
    volatile int *flag = t->arg;
    for (int i = 0; i < 500 && !*flag; i++)
        usleep(10 * 1000);
    tc_close(c);
}

static void write_timeout_closes_a_stalled_client(void **state)
{
    (void)state;
    colony_server_options opts = {0};
    opts.write_timeout_ms = 300;
    setup(&opts);
    stream_write_error = 0;
    stream_end_rc = 1;
    finish_status = 1;
    tclient t = {.port = port, .fn = client_not_reading, .arg = &stream_write_error};
    run_client(&loop, &t, 20000);
    assert_int_equal(stream_write_error, COLONY_ETIMEDOUT);
    assert_int_equal(stream_end_rc, COLONY_ECONNRESET);
    assert_int_equal(finish_status, COLONY_ETIMEDOUT);
    teardown();
}

/* Both connections are busy (a head in progress), so none can be evicted:
 * the third is refused with a 503 JSON. */
static void client_limit(tclient *t)
{
    tresp r;
    tconn *a = tc_connect(t->port), *b = tc_connect(t->port);
    TCHECK(t, tc_send(a, "GET / HTTP/1.1\r\n") == 0);
    TCHECK(t, tc_send(b, "GET / HTTP/1.1\r\n") == 0);
    usleep(50 * 1000);
    tconn *third = tc_connect(t->port);
    TCHECK(t, third != NULL);
    if (third) {
        tc_send(third, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        TCHECK(t, tc_read_response(third, &r, 0) == 0 && r.status == 503);
        TCHECK(t, tc_wait_closed(third));
        tc_close(third);
    }
    TCHECK(t, tc_send(a, "Host: x\r\n\r\n") == 0);
    TCHECK(t, tc_read_response(a, &r, 0) == 0 && r.status == 200);
    /* once one closes, a new connection gets in */
    tc_close(a);
    int served = 0;
    for (int i = 0; i < 100 && !served; i++) {
        usleep(10 * 1000);
        tconn *n = tc_connect(t->port);
        if (n && tc_send(n, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") == 0 &&
            tc_read_response(n, &r, 0) == 0)
            served = r.status == 200;
        tc_close(n);
    }
    TCHECK(t, served);
    tc_close(b);
}

static void connection_limit_rejects_extra_connections(void **state)
{
    (void)state;
    colony_server_options opts = {0};
    opts.max_connections = 2;
    setup(&opts);
    tclient t = {.port = port, .fn = client_limit};
    run_client(&loop, &t, 20000);
    colony_server_stats st;
    colony_server_get_stats(srv, &st);
    assert_true(st.connections_rejected >= 1);
    assert_true(st.active_connections <= 2);
    teardown();
}

static void client_max_requests(tclient *t)
{
    tresp r;
    tconn *c = tc_connect(t->port);
    for (int i = 0; i < 3; i++) {
        TCHECK(t, tc_send(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
        TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 200);
        int closes = strstr(r.head, "Connection: close") != NULL;
        TCHECK(t, closes == (i == 2));
    }
    TCHECK(t, tc_wait_closed(c));
    tc_close(c);
}

static void max_requests_per_connection(void **state)
{
    (void)state;
    colony_server_options opts = {0};
    opts.max_requests_per_conn = 3;
    setup(&opts);
    tclient t = {.port = port, .fn = client_max_requests};
    run_client(&loop, &t, 20000);
    teardown();
}

/* The idle timeout counts from the last response, not from when the idle
 * timer was first armed (the timer is re-armed lazily, when it fires). With
 * a 1.5 s timeout: requests at 0, 0.8 and 1.8 s all succeed on one connection
 * (the last is past 1.5 s from the first arm, 1 s after the previous
 * response), then it closes when idle. */
static void client_idle_counts_from_last_response(tclient *t)
{
    tresp r;
    tconn *c = tc_connect(t->port);
    for (int i = 0; i < 3; i++) {
        if (i) usleep(i == 1 ? 800 * 1000 : 1000 * 1000);
        TCHECK(t, tc_send(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
        TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 200);
    }
    TCHECK(t, tc_wait_closed(c));
    tc_close(c);
}

static void idle_timeout_restarts_with_each_request(void **state)
{
    (void)state;
    colony_server_options opts = {0};
    opts.idle_timeout_ms = 1500;
    setup(&opts);
    tclient t = {.port = port, .fn = client_idle_counts_from_last_response};
    run_client(&loop, &t, 20000);
    teardown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(header_body_and_idle_timeouts),
        cmocka_unit_test(write_timeout_closes_a_stalled_client),
        cmocka_unit_test(connection_limit_rejects_extra_connections),
        cmocka_unit_test(max_requests_per_connection),
        cmocka_unit_test(idle_timeout_restarts_with_each_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
