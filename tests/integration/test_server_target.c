/* HTTP server: the request target and the fields that change how a request
 * is read. Absolute-form is routed by its path and query with its authority
 * as Host (RFC 9112 §3.2.2); a '#' is refused; an Expect other than
 * 100-continue gets 417; a transfer coding the server does not implement gets
 * 501, while chunked anywhere but last stays 400. */
#include "server_test_util.h"

static uv_loop_t loop;
static colony_server *srv;
static int port;

/* Answers "path|query|Host|target". */
static void handler(colony_request *req, void *ud)
{
    (void)ud;
    char out[512];
    const char *host = colony_request_header(req, "Host");
    snprintf(out, sizeof(out), "%s|%s|%s|%s", colony_request_path(req), colony_request_query(req),
             host ? host : "-", colony_request_target(req));
    colony_respond(req, 200, "text/plain", out, strlen(out));
}

/* Sends one request on a fresh connection; returns the response in r. */
static int exchange(tclient *t, const char *request, tresp *r)
{
    tconn *c = tc_connect(t->port);
    TCHECK(t, c != NULL);
    if (!c) return -1;
    TCHECK(t, tc_send(c, request) == 0);
    int rc = tc_read_response(c, r, 0);
    TCHECK(t, rc == 0);
    tc_close(c);
    return rc;
}

static void expect_body(tclient *t, const char *request, const char *body)
{
    tresp r;
    if (exchange(t, request, &r) != 0) return;
    if (r.status != 200 || strcmp(r.body, body) != 0)
        fprintf(stderr, "for %s\ngot %d %s, want %s\n", request, r.status, r.body, body);
    TCHECK(t, r.status == 200);
    TCHECK(t, strcmp(r.body, body) == 0);
}

static void expect_error(tclient *t, const char *request, int status, const char *code)
{
    tresp r;
    if (exchange(t, request, &r) != 0) return;
    if (r.status != status) fprintf(stderr, "for %s\ngot %d %s\n", request, r.status, r.body);
    TCHECK(t, r.status == status);
    TCHECK(t, strstr(r.head, "Content-Type: application/json\r\n") != NULL);
    TCHECK(t, strstr(r.head, "Connection: close\r\n") != NULL);
    char want[64];
    snprintf(want, sizeof(want), "{\"error\":\"%s\",\"message\":\"", code);
    TCHECK(t, strncmp(r.body, want, strlen(want)) == 0);
}

static void client_targets(tclient *t)
{
    char req[256], want[256];
    snprintf(req, sizeof(req),
             "GET http://127.0.0.1:%d/items/7?q=1 HTTP/1.1\r\nHost: other\r\n\r\n", t->port);
    snprintf(want, sizeof(want), "/items/7|q=1|127.0.0.1:%d|/items/7?q=1", t->port);
    expect_body(t, req, want);
    expect_body(t, "GET HTTPS://api.example:8443?x=y HTTP/1.1\r\nHost: h\r\n\r\n",
                "/|x=y|api.example:8443|/?x=y");
    expect_body(t, "GET http://a.example HTTP/1.0\r\n\r\n", "/||a.example|/");
    expect_body(t, "GET /plain?k=v HTTP/1.1\r\nHost: h\r\n\r\n", "/plain|k=v|h|/plain?k=v");
    expect_body(t, "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", "*||h|*");
    expect_body(t, "GET / HTTP/1.1\r\nHost: h\r\nTE: gzip\r\n\r\n", "/||h|/");
    expect_body(t, "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-CONTINUE\r\n\r\n", "/||h|/");

    expect_error(t, "GET /page#top HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request");
    expect_error(t, "GET http://h/p#f HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request");
    expect_error(t, "GET http:/nope HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request");
    expect_error(t, "GET http://user@h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request");
    expect_error(t, "GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request");
    expect_error(t, "GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request");
    expect_error(t, "GET / HTTP/1.1\r\nHost: h\r\nExpect: something-else\r\n\r\n", 417,
                 "expectation_failed");
    expect_error(t,
                 "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue, x\r\n"
                 "Content-Length: 3\r\n\r\nabc",
                 417, "expectation_failed");
    expect_error(t, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501,
                 "not_implemented");
    expect_error(t, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
                 "not_implemented");
    expect_error(t, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400,
                 "bad_request");
    expect_error(t, "POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "bad_request");
}

static void targets_and_expectations(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    srv = start_server(&loop, NULL, handler, NULL, &port);
    tclient t = {.port = port, .fn = client_targets};
    run_client(&loop, &t, 30000);
    colony_server_stats st;
    colony_server_get_stats(srv, &st);
    assert_int_equal(st.protocol_errors, 12);
    stop_server(&loop, srv, 1000);
    colony_test_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(targets_and_expectations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
