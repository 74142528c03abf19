/* HTTP server: requests and responses over real sockets — GET, keep-alive,
 * HTTP/1.0, pipelining with an async handler, bodies (Content-Length and
 * chunked), streaming responses, HEAD, hooks, log context, Unix and IPv6. */
#include "server_test_util.h"

static uv_loop_t loop;
static char hook_log[256];
static char seen_request_id[2][32];
static int finish_status = 99;

typedef struct slow_reply {
    uv_timer_t timer;
    colony_request *req;
} slow_reply;

static void slow_closed(uv_handle_t *h)
{
    free(h->data);
}

static void slow_fire(uv_timer_t *t)
{
    slow_reply *s = t->data;
    colony_respond(s->req, 200, "text/plain", "slow", 4);
    t->data = s;
    uv_close((uv_handle_t *)t, slow_closed);
}

static void log_hook(colony_request *req, int status, void *ud)
{
    (void)req;
    char item[32];
    snprintf(item, sizeof(item), "%s:%d,", (const char *)ud, status);
    strcat(hook_log, item);
}

static void finish_hook(colony_request *req, int status, void *ud)
{
    finish_status = status;
    log_hook(req, status, ud);
}

static void response_hook_adds_header(colony_request *req, int status, void *ud)
{
    log_hook(req, status, ud);
    assert_int_equal(colony_response_header(req, "X-Hook", "added"), 0);
}

static void handler(colony_request *req, void *ud)
{
    (void)ud;
    const char *path = colony_request_path(req);
    if (strcmp(path, "/hello") == 0) {
        colony_respond(req, 200, "text/plain", "hello", 5);
    } else if (strcmp(path, "/echo") == 0) {
        size_t n;
        const char *body = colony_request_body(req, &n);
        assert_int_equal(body[n], '\0');
        colony_respond(req, 200, "application/octet-stream", body, n);
    } else if (strcmp(path, "/slow") == 0) {
        slow_reply *s = calloc(1, sizeof(*s));
        s->req = req;
        uv_timer_init(colony_request_loop(req), &s->timer);
        s->timer.data = s;
        uv_timer_start(&s->timer, slow_fire, 150, 0);
    } else if (strcmp(path, "/stream") == 0) {
        assert_int_equal(colony_response_start(req, 200), 0);
        assert_int_equal(colony_response_write(req, "part1-", 6, NULL, NULL), 0);
        assert_int_equal(colony_response_write(req, "", 0, NULL, NULL), 0);
        assert_int_equal(colony_response_write(req, "part2", 5, NULL, NULL), 0);
        assert_int_equal(colony_response_end(req), 0);
        assert_int_equal(colony_response_end(req), COLONY_EINVAL);
    } else if (strcmp(path, "/info") == 0) {
        char out[512];
        const char *host = colony_request_header(req, "HOST");
        const char *name, *value;
        assert_int_equal(colony_request_header_at(req, 0, &name, &value), 0);
        assert_int_equal(colony_request_header_at(req, 99, &name, &value), COLONY_ENOENT);
        snprintf(out, sizeof(out), "%s|%s|%s|%s|%d|%s|%zu|%s|%s", colony_request_method(req),
                 colony_request_target(req), colony_request_path(req), colony_request_query(req),
                 colony_request_version_minor(req), host ? host : "-",
                 colony_request_header_count(req), colony_request_peer(req),
                 colony_request_peer_ip(req));
        colony_respond(req, 200, "text/plain", out, strlen(out));
    } else if (strcmp(path, "/hooks") == 0) {
        int idx = atoi(colony_request_query(req));
        const colony_log_context *ctx = colony_log_set_context(NULL);
        colony_log_set_context(ctx);
        assert_non_null(ctx);
        assert_non_null(ctx->request_id);
        snprintf(seen_request_id[idx & 1], sizeof(seen_request_id[0]), "%s", ctx->request_id);
        char strdup_key[] = "k";
        colony_request_set_data(req, "k", (void *)"v1");
        colony_request_set_data(req, "k", (void *)"v2");
        assert_string_equal(colony_request_get_data(req, "k"), "v2");
        assert_null(colony_request_get_data(req, "missing"));
        assert_int_equal(colony_request_on_response(req, log_hook, "respA"), 0);
        assert_int_equal(colony_request_on_response(req, response_hook_adds_header, "respB"), 0);
        assert_int_equal(colony_request_on_finish(req, finish_hook, "finA"), 0);
        assert_int_equal(colony_request_on_finish(req, log_hook, "finB"), 0);
        assert_int_equal(colony_response_header(req, "Bad Name", "x"), COLONY_EINVAL);
        assert_int_equal(colony_response_header(req, "X-Split", "a\r\nb"), COLONY_EINVAL);
        assert_int_equal(colony_response_header(req, "X-Nul", "a\nb"), COLONY_EINVAL);
        /* A Content-Length that does not fit int64 is refused, not wrapped. */
        assert_int_equal(colony_response_header(req, "Content-Length", "9223372036854775808"),
                         COLONY_EINVAL);
        assert_int_equal(colony_response_header(req, "Content-Length", "99999999999999999999"),
                         COLONY_EINVAL);
        /* Control bytes are refused at every position of a long value (the
         * check reads 8 bytes at a time); HTAB and obs-text are allowed. */
        char long_value[40];
        for (size_t bad = 0; bad < sizeof(long_value) - 1; bad++) {
            memset(long_value, 'v', sizeof(long_value) - 1);
            long_value[sizeof(long_value) - 1] = '\0';
            long_value[bad] = (bad & 1) ? '\x7f' : '\x01';
            assert_int_equal(colony_response_header(req, "X-Long", long_value), COLONY_EINVAL);
        }
        assert_int_equal(colony_response_header(req, "X-Tabs", "a\tb\tc\td\te\tf\tg\th\ti\xc3\xa9"),
                         0);
        colony_request_set_data(req, strdup_key, (void *)"v3"); /* same text, another pointer */
        assert_string_equal(colony_request_get_data(req, "k"), "v3");
        assert_int_equal(colony_response_header(req, "X-Ok", "fine"), 0);
        assert_int_equal(colony_response_status(req), 0);
        assert_int_equal(colony_respond(req, 201, NULL, "", 0), 0);
        assert_int_equal(colony_response_status(req), 201);
        assert_int_equal(colony_respond(req, 200, NULL, "", 0), COLONY_EINVAL);
        assert_true(colony_log_set_context(ctx) == ctx); /* still ours inside the handler */
    } else if (strcmp(path, "/nocontent") == 0) {
        colony_respond(req, 204, NULL, "ignored", 7);
    } else {
        colony_respond_error(req, 404, "not_found", "no \"route\"\n\x01");
    }
}

static colony_server *srv;
static int port;

static void setup_server(colony_server_options *opts)
{
    assert_int_equal(uv_loop_init(&loop), 0);
    srv = start_server(&loop, opts, handler, NULL, &port);
}

static void teardown_server(void)
{
    stop_server(&loop, srv, 1000);
    colony_test_loop_close(&loop);
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: test\r\n\r\n"

static void client_simple(tclient *t)
{
    tconn *c = tc_connect(t->port);
    TCHECK(t, c);
    if (!c) return;
    tresp r;
    TCHECK(t, tc_send(c, GET("/hello")) == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0);
    TCHECK(t, r.status == 200);
    TCHECK(t, strcmp(r.body, "hello") == 0);
    TCHECK(t, strstr(r.head, "\r\nDate: ") != NULL);
    TCHECK(t, strstr(r.head, " GMT\r\n") != NULL);
    TCHECK(t, strstr(r.head, "\r\nContent-Type: text/plain\r\n") != NULL);
    TCHECK(t, strstr(r.head, "\r\nServer: colony-test\r\n") != NULL);
    TCHECK(t, strstr(r.head, "Connection") == NULL);
    TCHECK(t, strncmp(r.head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    /* keep-alive: more requests on the same socket */
    for (int i = 0; i < 4; i++) {
        TCHECK(t, tc_send(c, GET("/info?a=1&b=2")) == 0);
        TCHECK(t, tc_read_response(c, &r, 0) == 0);
        TCHECK(t, r.status == 200);
        TCHECK(t, strncmp(r.body, "GET|/info?a=1&b=2|/info|a=1&b=2|1|test|1|127.0.0.1:", 51) == 0);
        TCHECK(t, r.body_len > 10 && strcmp(r.body + r.body_len - 10, "|127.0.0.1") == 0);
    }
    TCHECK(t, tc_send(c, GET("/missing")) == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0);
    TCHECK(t, r.status == 404);
    TCHECK(t, strcmp(r.body,
                     "{\"error\":\"not_found\",\"message\":\"no \\\"route\\\"\\n\\u0001\"}") == 0);
    TCHECK(t, strstr(r.head, "application/json") != NULL);
    TCHECK(t, tc_send(c, GET("/nocontent")) == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0);
    TCHECK(t, r.status == 204 && strstr(r.head, "Content-Length") == NULL);
    TCHECK(t, tc_send(c, GET("/hello")) == 0); /* the 204 carried no body bytes */
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 200);
    tc_close(c);
}

static void simple_get_and_keep_alive(void **state)
{
    (void)state;
    colony_server_options opts = {0};
    opts.server_header = "colony-test";
    setup_server(&opts);
    tclient t = {.port = port, .fn = client_simple};
    run_client(&loop, &t, 10000);
    colony_server_stats st;
    colony_server_get_stats(srv, &st);
    assert_int_equal(st.connections_accepted, 1);
    assert_int_equal(st.requests, 8);
    assert_int_equal(st.protocol_errors, 0);
    teardown_server();
}

static void client_http10(tclient *t)
{
    tconn *c = tc_connect(t->port);
    tresp r;
    TCHECK(t, tc_send(c, "GET /hello HTTP/1.0\r\n\r\n") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0);
    TCHECK(t, r.status == 200 && strcmp(r.body, "hello") == 0);
    TCHECK(t, strstr(r.head, "Connection: close") != NULL);
    TCHECK(t, tc_wait_closed(c));
    tc_close(c);

    c = tc_connect(t->port);
    TCHECK(t, tc_send(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0);
    TCHECK(t, strstr(r.head, "Connection: keep-alive") != NULL);
    /* A streamed response to HTTP/1.0 ends at close. */
    TCHECK(t, tc_send(c, "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0);
    TCHECK(t, !r.chunked && !r.has_length && strcmp(r.body, "part1-part2") == 0);
    tc_close(c);

    /* HTTP/1.1 with Connection: close */
    c = tc_connect(t->port);
    TCHECK(t, tc_send(c, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 200);
    TCHECK(t, strstr(r.head, "Connection: close") != NULL);
    TCHECK(t, tc_wait_closed(c));
    tc_close(c);
}

static void http10_closes_unless_keep_alive(void **state)
{
    (void)state;
    setup_server(NULL);
    tclient t = {.port = port, .fn = client_http10};
    run_client(&loop, &t, 10000);
    teardown_server();
}

static void client_pipeline(tclient *t)
{
    tconn *c = tc_connect(t->port);
    tresp r;
    TCHECK(t,
           tc_send(c, GET("/slow") GET("/hello") "POST /echo HTTP/1.1\r\nHost: x\r\n"
                                                 "Content-Length: 3\r\n\r\nabc" GET("/info")) == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && strcmp(r.body, "slow") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && strcmp(r.body, "hello") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && strcmp(r.body, "abc") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && strncmp(r.body, "GET|/info|", 10) == 0);
    /* and the connection is still usable */
    TCHECK(t, tc_send(c, GET("/hello")) == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 200);
    tc_close(c);
}

static void pipelined_requests_answer_in_order(void **state)
{
    (void)state;
    setup_server(NULL);
    tclient t = {.port = port, .fn = client_pipeline};
    run_client(&loop, &t, 10000);
    teardown_server();
}

static void client_bodies(tclient *t)
{
    tconn *c = tc_connect(t->port);
    tresp r;
    TCHECK(t, tc_send(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello") == 0);
    usleep(50 * 1000);
    TCHECK(t, tc_send(c, " world") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && strcmp(r.body, "hello world") == 0);
    TCHECK(t, tc_send(c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "5;ext=1\r\nhello\r\n6\r\n wor") == 0);
    usleep(50 * 1000);
    TCHECK(t, tc_send(c, "ld\r\n0\r\nX-Trailer: yes\r\n\r\n") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && strcmp(r.body, "hello world") == 0);
    /* streaming chunked response */
    TCHECK(t, tc_send(c, GET("/stream")) == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0);
    TCHECK(t, r.chunked && strcmp(r.body, "part1-part2") == 0);
    /* HEAD keeps Content-Length but sends no body */
    TCHECK(t, tc_send(c, "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    TCHECK(t, tc_read_response(c, &r, 1) == 0);
    TCHECK(t, r.status == 200 && strstr(r.head, "Content-Length: 5\r\n") != NULL);
    TCHECK(t, tc_send(c, "HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    TCHECK(t, tc_read_response(c, &r, 1) == 0 && r.status == 200);
    TCHECK(t, tc_send(c, GET("/hello")) == 0); /* no stray body bytes came before this */
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && strcmp(r.body, "hello") == 0);
    TCHECK(t, c->len == 0);
    tc_close(c);
}

static void request_bodies_streaming_and_head(void **state)
{
    (void)state;
    setup_server(NULL);
    tclient t = {.port = port, .fn = client_bodies};
    run_client(&loop, &t, 10000);
    teardown_server();
}

static void client_hooks(tclient *t)
{
    tconn *c = tc_connect(t->port);
    tresp r;
    TCHECK(t, tc_send(c, GET("/hooks?0")) == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 201);
    TCHECK(t, strstr(r.head, "\r\nX-Hook: added\r\n") != NULL);
    TCHECK(t, strstr(r.head, "\r\nX-Ok: fine\r\n") != NULL);
    TCHECK(t, strstr(r.head, "Content-Length: 0\r\n") != NULL);
    TCHECK(t, tc_send(c, GET("/hooks?1")) == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 201);
    tc_close(c);
}

static void hooks_run_in_reverse_order_with_log_context(void **state)
{
    (void)state;
    setup_server(NULL);
    hook_log[0] = '\0';
    tclient t = {.port = port, .fn = client_hooks};
    run_client(&loop, &t, 10000);
    assert_string_equal(hook_log, "respB:201,respA:201,finB:0,finA:0,"
                                  "respB:201,respA:201,finB:0,finA:0,");
    assert_int_equal(finish_status, 0);
    assert_true(seen_request_id[0][0] && seen_request_id[1][0]);
    assert_string_not_equal(seen_request_id[0], seen_request_id[1]);
    assert_null(colony_log_set_context(NULL)); /* restored after the handler */
    teardown_server();
}

static void client_unix(tclient *t)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {0};
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", t->unix_path);
    TCHECK(t, connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
    tconn *c = tc_wrap(fd);
    tresp r;
    TCHECK(t, tc_send(c, GET("/info")) == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 200);
    TCHECK(t, strstr(r.body, "|unix|unix") != NULL);
    tc_close(c);
}

static void unix_socket(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof(path), "/tmp/colony-test-%d.sock", (int)getpid());
    char addr[80];
    snprintf(addr, sizeof(addr), "unix:%s", path);
    assert_int_equal(uv_loop_init(&loop), 0);
    colony_server_options opts = {0};
    opts.workers = 2;
    srv = colony_server_new(&loop, &opts, handler, NULL);
    assert_int_equal(colony_server_listen(srv, addr), 0);
    assert_int_equal(colony_server_port(srv), 0);
    assert_int_equal(colony_server_listen(srv, "bogus"), COLONY_EINVAL);
    tclient t = {.unix_path = path, .fn = client_unix};
    for (int i = 0; i < 4; i++)
        run_client(&loop, &t, 10000);
    teardown_server();
    assert_int_not_equal(access(path, F_OK), 0); /* removed at shutdown */
}

static void client_ipv6(tclient *t)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 sin6 = {0};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons((uint16_t)t->port);
    sin6.sin6_addr = in6addr_loopback;
    TCHECK(t, connect(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0);
    tconn *c = tc_wrap(fd);
    tresp r;
    TCHECK(t, tc_send(c, GET("/info")) == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 200);
    TCHECK(t, strstr(r.body, "|[::1]:") != NULL);
    TCHECK(t, r.body_len > 4 && strcmp(r.body + r.body_len - 4, "|::1") == 0);
    tc_close(c);
}

static void ipv6_loopback(void **state)
{
    (void)state;
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 sin6 = {0};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_addr = in6addr_loopback;
    int ok = probe >= 0 && bind(probe, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
    if (probe >= 0) close(probe);
    if (!ok) skip();
    assert_int_equal(uv_loop_init(&loop), 0);
    srv = colony_server_new(&loop, NULL, handler, NULL);
    assert_int_equal(colony_server_listen(srv, "[::1]:0"), 0);
    tclient t = {.port = colony_server_port(srv), .fn = client_ipv6};
    run_client(&loop, &t, 10000);
    teardown_server();
}

static void never_started_server_frees(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    colony_server *s = colony_server_new(&loop, NULL, handler, NULL);
    assert_non_null(s);
    assert_int_equal(colony_server_is_shutting_down(s), 0);
    colony_server_free(s);
    s = colony_server_new(&loop, NULL, handler, NULL);
    int closed = 0;
    colony_server_shutdown(s, 100, on_server_closed, &closed);
    assert_int_equal(colony_server_is_shutting_down(s), 1);
    assert_int_equal(colony_server_listen(s, "127.0.0.1:0"), COLONY_ESHUTDOWN);
    assert_true(colony_test_run_until(&loop, &closed, 5000));
    colony_server_free(s);
    colony_test_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(simple_get_and_keep_alive),
        cmocka_unit_test(http10_closes_unless_keep_alive),
        cmocka_unit_test(pipelined_requests_answer_in_order),
        cmocka_unit_test(request_bodies_streaming_and_head),
        cmocka_unit_test(hooks_run_in_reverse_order_with_log_context),
        cmocka_unit_test(unix_socket),
        cmocka_unit_test(ipv6_loopback),
        cmocka_unit_test(never_started_server_frees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
