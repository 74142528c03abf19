/* HTTP server: protocol errors answered with a status, a JSON body and a
 * close; Expect: 100-continue; early rejection from the head hook; streamed
 * request bodies. */
#include "server_test_util.h"

static uv_loop_t loop;
static colony_server *srv;
static int port;
static size_t streamed_bytes, streamed_pieces;

static void handler(colony_request *req, void *ud)
{
    (void)ud;
    size_t n;
    const char *body = colony_request_body(req, &n);
    if (strcmp(colony_request_path(req), "/upload-stream") == 0) {
        char out[64];
        snprintf(out, sizeof(out), "%zu bytes, buffered %zu", streamed_bytes, n);
        colony_respond(req, 200, "text/plain", out, strlen(out));
        return;
    }
    colony_respond(req, 200, "application/octet-stream", body, n);
}

static void on_body_piece(colony_request *req, const char *data, size_t len, void *ud)
{
    (void)req;
    (void)ud;
    for (size_t i = 0; i < len; i++)
        assert_int_equal(data[i], 'z');
    streamed_bytes += len;
    streamed_pieces++;
}

/* Answers from the body callback, on the first piece. */
static void on_body_answer(colony_request *req, const char *data, size_t len, void *ud)
{
    (void)data;
    (void)len;
    (void)ud;
    if (colony_response_status(req) == 0) colony_respond(req, 200, "text/plain", "early", 5);
}

static void head_hook(colony_request *req, void *ud)
{
    (void)ud;
    const char *path = colony_request_path(req);
    const char *cl = colony_request_header(req, "Content-Length");
    if (strcmp(path, "/limited") == 0 && cl && atol(cl) > 10) {
        colony_respond_error(req, 413, "payload_too_large", "limit is 10 bytes");
    } else if (strcmp(path, "/private") == 0 && !colony_request_header(req, "Authorization")) {
        colony_respond_error(req, 401, "unauthorized", "credentials required");
    } else if (strcmp(path, "/upload-stream") == 0) {
        streamed_bytes = streamed_pieces = 0;
        assert_int_equal(colony_request_stream_body(req, on_body_piece, NULL), 0);
    } else if (strcmp(path, "/stream-answer") == 0) {
        assert_int_equal(colony_request_stream_body(req, on_body_answer, NULL), 0);
    }
}

static void setup(void)
{
    assert_int_equal(uv_loop_init(&loop), 0);
    colony_server_options opts = {0};
    opts.limits.max_body = 1000;
    opts.limits.max_header_bytes = 4096;
    opts.limits.max_request_line = 2048;
    opts.limits.max_headers = 20;
    srv = start_server(&loop, &opts, handler, NULL, &port);
    colony_server_set_head_hook(srv, head_hook, NULL);
}

static void teardown(void)
{
    stop_server(&loop, srv, 1000);
    colony_test_loop_close(&loop);
}

/* Sends raw bytes on a fresh connection and checks the error response. */
static void expect_error(tclient *t, const char *request, int status, const char *code)
{
    tconn *c = tc_connect(t->port);
    TCHECK(t, c != NULL);
    if (!c) return;
    tresp r;
    tc_send(c, request);
    int rc = tc_read_response(c, &r, 0);
    TCHECK(t, rc == 0);
    if (rc == 0) {
        if (r.status != status)
            fprintf(stderr, "expected %d, got:\n%s%s\n", status, r.head, r.body);
        TCHECK(t, r.status == status);
        TCHECK(t, strstr(r.head, "Connection: close\r\n") != NULL);
        TCHECK(t, strstr(r.head, "Content-Type: application/json\r\n") != NULL);
        char want[64];
        snprintf(want, sizeof(want), "{\"error\":\"%s\",\"message\":\"", code);
        TCHECK(t, strncmp(r.body, want, strlen(want)) == 0);
        TCHECK(t, r.body_len > strlen(want) + 2);
    }
    TCHECK(t, tc_wait_closed(c));
    tc_close(c);
}

static char *repeat(const char *prefix, char ch, size_t n, const char *suffix)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    char *s = malloc(pl + n + sl + 1);
    memcpy(s, prefix, pl);
    memset(s + pl, ch, n);
    memcpy(s + pl + n, suffix, sl + 1);
    return s;
}

static void client_errors(tclient *t)
{
    expect_error(t, "GARBAGE\r\n\r\n", 400, "bad_request");
    expect_error(
        t, "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        400, "bad_request");
    expect_error(t, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n", 413,
                 "payload_too_large");
    char *chunks = repeat("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "4b0\r\n",
                          'a', 1200, "\r\n0\r\n\r\n");
    expect_error(t, chunks, 413, "payload_too_large");
    free(chunks);
    char *long_target = repeat("GET /", 'a', 3000, " HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_error(t, long_target, 414, "uri_too_long");
    free(long_target);
    char many[2048] = "GET / HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < 30; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "X-%d: v\r\n", i);
    strcat(many, "\r\n");
    expect_error(t, many, 431, "header_fields_too_large");
    char *big = repeat("GET / HTTP/1.1\r\nHost: x\r\nX-Big: ", 'b', 5000, "\r\n\r\n");
    expect_error(t, big, 431, "header_fields_too_large");
    free(big);
    expect_error(t, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
                 "not_implemented");
    expect_error(t, "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "http_version_not_supported");
    expect_error(t,
                 "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
                 "hello\r\n0\r\n\r\n",
                 400, "bad_request");
}

static void protocol_errors_answer_json_and_close(void **state)
{
    (void)state;
    setup();
    tclient t = {.port = port, .fn = client_errors};
    run_client(&loop, &t, 20000);
    colony_server_stats st;
    colony_server_get_stats(srv, &st);
    assert_int_equal(st.protocol_errors, 10);
    teardown();
}

static void client_continue(tclient *t)
{
    tconn *c = tc_connect(t->port);
    tresp r;
    TCHECK(t, tc_send(c, "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                         "Content-Length: 5\r\n\r\n") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0);
    TCHECK(t, r.status == 100);
    TCHECK(t, strcmp(r.head, "HTTP/1.1 100 Continue\r\n\r\n") == 0);
    TCHECK(t, tc_send(c, "hello") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 200);
    TCHECK(t, strcmp(r.body, "hello") == 0);

    /* early rejection by the head hook: no 100, the unread body closes the connection */
    TCHECK(t, tc_send(c, "POST /limited HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                         "Content-Length: 100000\r\n\r\n") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0);
    TCHECK(t, r.status == 413);
    TCHECK(t, strstr(r.body, "limit is 10 bytes") != NULL);
    TCHECK(t, strstr(r.head, "Connection: close") != NULL);
    TCHECK(t, tc_wait_closed(c));
    tc_close(c);

    c = tc_connect(t->port);
    TCHECK(t, tc_send(c, "POST /private HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                         "Content-Length: 5\r\n\r\n") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 401);
    TCHECK(t, strstr(r.head, "Connection: close") != NULL);
    TCHECK(t, tc_wait_closed(c));
    tc_close(c);

    /* a small body that already arrived is discarded and the connection lives */
    c = tc_connect(t->port);
    TCHECK(t,
           tc_send(c, "POST /private HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 401);
    TCHECK(t, strstr(r.head, "Connection: close") == NULL);
    TCHECK(t, tc_send(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && strcmp(r.body, "ok") == 0);
    tc_close(c);
}

static void expect_continue_and_early_rejection(void **state)
{
    (void)state;
    setup();
    tclient t = {.port = port, .fn = client_continue};
    run_client(&loop, &t, 20000);
    teardown();
}

static void client_stream_body(tclient *t)
{
    tconn *c = tc_connect(t->port);
    tresp r;
    /* 3000 bytes: over max_body, fine when streamed */
    char piece[1000];
    memset(piece, 'z', sizeof(piece));
    char head[128];
    snprintf(head, sizeof(head),
             "POST /upload-stream HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n");
    TCHECK(t, tc_send(c, head) == 0);
    for (int i = 0; i < 3; i++) {
        TCHECK(t, send(c->fd, piece, sizeof(piece), 0) == (ssize_t)sizeof(piece));
        usleep(20 * 1000);
    }
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 200);
    TCHECK(t, strcmp(r.body, "3000 bytes, buffered 0") == 0);
    /* chunked, streamed */
    TCHECK(t, tc_send(
                  c, "POST /upload-stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3;x=y\r\nzzz\r\n") == 0);
    usleep(20 * 1000);
    TCHECK(t, tc_send(c, "2\r\nzz\r\n0\r\nT: v\r\n\r\n") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 200);
    TCHECK(t, strcmp(r.body, "5 bytes, buffered 0") == 0);
    /* Answered from the body callback with the whole body already read: the
     * connection stays usable (nothing of the body is left unread). */
    TCHECK(t, tc_send(c, "POST /stream-answer HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
                         "zzzzz") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 200);
    TCHECK(t, strcmp(r.body, "early") == 0);
    TCHECK(t, tc_find_header(r.head, "Connection") == NULL);
    TCHECK(t, tc_send(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 200);
    TCHECK(t, strcmp(r.body, "ok") == 0);
    tc_close(c);
}

static void streamed_request_body(void **state)
{
    (void)state;
    setup();
    tclient t = {.port = port, .fn = client_stream_body};
    run_client(&loop, &t, 20000);
    assert_true(streamed_pieces >= 2);
    teardown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(protocol_errors_answer_json_and_close),
        cmocka_unit_test(expect_continue_and_early_rejection),
        cmocka_unit_test(streamed_request_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
