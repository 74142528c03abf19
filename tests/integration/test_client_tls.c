/* HTTP client over https:// against the library's own TLS listener
 * (colony_server_listen_tls), with a throwaway CA made by the openssl CLI at
 * test time: GET and POST, keep-alive (one handshake for many requests) and
 * session resumption, a wrong host name, an
 * unknown CA, insecure, and a plain HTTP server refused as a connect failure (was_sent 0). The
 * client and the server share one loop. LeakSanitizer fails the test on any leak. */
#include "server_test_util.h"
#include "colony/http_client.h"
#include "core/alloc.h"

static uv_loop_t loop;
static char dir[64];

static void run(const char *cmd)
{
    char full[2048];
    snprintf(full, sizeof(full), "cd %s && %s >/dev/null 2>&1", dir, cmd);
    assert_int_equal(system(full), 0);
}

/* ca.pem signs srv.pem (good.test and 127.0.0.1); other.pem is a CA that
 * signed nothing here. */
static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/colony_ctls_XXXXXX");
    if (!mkdtemp(dir)) return -1;
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 %s -keyout ca.key -out ca.pem -days 2 -subj /CN=TestCA "
             "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign",
             ec);
    run(cmd);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 %s -keyout other.key -out other.pem -days 2 -subj /CN=OtherCA "
             "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign",
             ec);
    run(cmd);
    snprintf(cmd, sizeof(cmd),
             "openssl req -new %s -keyout srv.key -out srv.csr -subj /CN=good.test", ec);
    run(cmd);
    run("printf 'subjectAltName=DNS:good.test,IP:127.0.0.1\\n' > ext.cnf && "
        "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out srv.pem -days 2 -extfile ext.cnf");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

#define BIG_LEN (1u << 20)

static void handler(colony_request *req, void *ud)
{
    (void)ud;
    if (strcmp(colony_request_path(req), "/big") == 0) { /* 1 MiB of a pattern */
        char *big = malloc(BIG_LEN);
        for (size_t i = 0; i < BIG_LEN; i++)
            big[i] = (char)('a' + i % 26);
        colony_respond(req, 200, "text/plain", big, BIG_LEN);
        free(big);
        return;
    }
    size_t n = 0;
    const char *body = colony_request_body(req, &n);
    char out[256];
    int len =
        snprintf(out, sizeof(out), "tls=%d %s %s %.*s", colony_request_is_tls(req),
                 colony_request_method(req), colony_request_path(req), (int)n, body ? body : "");
    colony_respond(req, 200, "text/plain", out, (size_t)len);
}

typedef struct server {
    colony_server *srv;
    colony_tls_ctx *ctx;
    int port;
} server;

static void server_start(server *s, int tls)
{
    memset(s, 0, sizeof(*s));
    s->srv = colony_server_new(&loop, NULL, handler, NULL);
    assert_non_null(s->srv);
    if (tls) {
        s->ctx = colony_tls_ctx_new();
        char cert[128], key[128], err[256];
        snprintf(cert, sizeof(cert), "%s/srv.pem", dir);
        snprintf(key, sizeof(key), "%s/srv.key", dir);
        assert_int_equal(colony_tls_ctx_add_certificate(s->ctx, cert, key, err, sizeof(err)), 0);
        assert_int_equal(colony_server_listen_tls(s->srv, "127.0.0.1:0", s->ctx), 0);
    } else {
        assert_int_equal(colony_server_listen(s->srv, "127.0.0.1:0"), 0);
    }
    s->port = colony_server_port(s->srv);
    assert_true(s->port > 0);
}

static uint64_t accepted(server *s)
{
    colony_server_stats st;
    colony_server_get_stats(s->srv, &st);
    return st.connections_accepted;
}

static void on_srv_closed(colony_server *srv, void *ud)
{
    (void)srv;
    *(int *)ud = 1;
}

static void server_stop(server *s)
{
    int closed = 0;
    colony_server_shutdown(s->srv, 1000, on_srv_closed, &closed);
    while (!closed)
        colony_test_run_once(&loop);
    colony_server_free(s->srv);
    colony_tls_ctx_free(s->ctx);
}

typedef struct result {
    int done, err, status, was_sent;
    char body[256];
} result;

static void on_done(colony_client_call *call, int err, const colony_client_response *res, void *ud)
{
    result *r = ud;
    r->done = 1;
    r->err = err;
    r->was_sent = colony_client_call_was_sent(call);
    if (res) {
        r->status = res->status;
        snprintf(r->body, sizeof(r->body), "%.*s", (int)res->body_len, res->body);
    }
}

/* Sends one request and runs the loop until it is done. */
static result call(colony_client *c, const char *method, const char *url, const char *body,
                   const char *const *headers)
{
    result r = {0};
    colony_client_request req = {.method = method,
                                 .url = url,
                                 .headers = headers,
                                 .body = body,
                                 .body_len = body ? strlen(body) : 0};
    assert_int_equal(colony_client_request_send(c, &req, on_done, &r, NULL), 0);
    while (!r.done)
        colony_test_run_once(&loop);
    return r;
}

/* One request with its own tls_ca_file / tls_server_name. */
static result call_tls(colony_client *c, const char *url, const char *ca, const char *server_name)
{
    char ca_file[128];
    snprintf(ca_file, sizeof(ca_file), "%s/%s", dir, ca ? ca : "");
    result r = {0};
    colony_client_request req = {
        .url = url, .tls_ca_file = ca ? ca_file : NULL, .tls_server_name = server_name};
    assert_int_equal(colony_client_request_send(c, &req, on_done, &r, NULL), 0);
    while (!r.done)
        colony_test_run_once(&loop);
    return r;
}

static colony_client *client_with(const char *ca, int insecure)
{
    colony_client_options o;
    colony_client_options_init(&o);
    char ca_file[128];
    if (ca) {
        snprintf(ca_file, sizeof(ca_file), "%s/%s", dir, ca);
        o.ca_file = ca_file; /* copied */
    }
    o.insecure = insecure;
    colony_client *c = colony_client_new(&loop, &o);
    assert_non_null(c);
    return c;
}

static void on_client_closed(void *ud)
{
    *(int *)ud = 1;
}

static void client_close(colony_client *c)
{
    int closed = 0;
    colony_client_close(c, on_client_closed, &closed);
    while (!closed)
        colony_test_run_once(&loop);
}

/* GET and POST over https; ten requests on one connection (one handshake);
 * after "Connection: close" the next request opens a new one that resumes
 * the session. */
static void get_post_keepalive_resumption(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    server s;
    server_start(&s, 1);
    colony_client *c = client_with("ca.pem", 0);
    char url[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/hello", s.port);
    uint64_t before = accepted(&s);

    result r = call(c, "GET", url, NULL, NULL);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "tls=1 GET /hello ");
    r = call(c, "POST", url, "name=colony", NULL);
    assert_int_equal(r.err, 0);
    assert_string_equal(r.body, "tls=1 POST /hello name=colony");
    for (int i = 0; i < 8; i++) {
        r = call(c, "GET", url, NULL, NULL);
        assert_int_equal(r.err, 0);
        assert_int_equal(r.status, 200);
    }
    assert_int_equal(accepted(&s) - before, 1); /* ten requests, one connection */
    colony_client_pool_stats ps;
    char origin[64];
    snprintf(origin, sizeof(origin), "https://127.0.0.1:%d", s.port);
    assert_int_equal(colony_client_get_pool_stats(c, origin, &ps), 0);
    assert_int_equal(ps.connects, 1);
    assert_int_equal(ps.reused, 9);
    assert_int_equal(ps.tls_resumed, 0);

    /* "Connection: close" ends that connection (the client sends its
     * close_notify); the next one resumes the TLS session. */
    const char *close_hdr[] = {"Connection", "close", NULL};
    r = call(c, "GET", url, NULL, close_hdr);
    assert_int_equal(r.err, 0);
    r = call(c, "GET", url, NULL, NULL);
    assert_int_equal(r.err, 0);
    assert_int_equal(accepted(&s) - before, 2);
    assert_int_equal(colony_client_get_pool_stats(c, origin, &ps), 0);
    assert_int_equal(ps.connects, 2);
    assert_int_equal(ps.tls_resumed, 1);

    /* http:// and https:// to the same host and port are two origins. */
    char plain[64];
    snprintf(plain, sizeof(plain), "http://127.0.0.1:%d", s.port);
    assert_int_equal(colony_client_get_pool_stats(c, plain, &ps), COLONY_ENOENT);

    client_close(c);
    server_stop(&s);
    colony_test_loop_close(&loop);
}

typedef struct big_result {
    int done, err, status;
    size_t len, bad;
} big_result;

static void on_big(colony_client_call *call, int err, const colony_client_response *res, void *ud)
{
    (void)call;
    big_result *r = ud;
    r->done = 1;
    r->err = err;
    if (!res) return;
    r->status = res->status;
    r->len = res->body_len;
    for (size_t i = 0; i < res->body_len; i++)
        r->bad += res->body[i] != (char)('a' + i % 26);
}

typedef struct upload {
    result r; /* first: done_cb gets the same ud */
    int pieces;
} upload;

/* Writes "one," "two," "three" as three chunks, one per call, then ends. */
static void on_body_ready(colony_client_call *call, void *ud)
{
    upload *u = ud;
    static const char *const pieces[] = {"one,", "two,", "three"};
    if (u->pieces >= 3) return;
    const char *piece = pieces[u->pieces++];
    assert_int_equal(colony_client_call_write(call, piece, strlen(piece)), 0);
    if (u->pieces == 3) assert_int_equal(colony_client_call_end(call), 0);
}

/* A 1 MiB response (many records, the buffer grows while the head stays
 * readable) and a streamed chunked request body, both over TLS. */
static void big_response_and_streamed_body(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    server s;
    server_start(&s, 1);
    colony_client_options o;
    colony_client_options_init(&o);
    char ca_file[128];
    snprintf(ca_file, sizeof(ca_file), "%s/ca.pem", dir);
    o.ca_file = ca_file;
    o.max_response_body = 2u << 20;
    colony_client *c = colony_client_new(&loop, &o);
    char url[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/big", s.port);
    for (int i = 0; i < 2; i++) { /* the second on the pooled connection */
        big_result r = {0};
        colony_client_request req = {.url = url};
        assert_int_equal(colony_client_request_send(c, &req, on_big, &r, NULL), 0);
        while (!r.done)
            colony_test_run_once(&loop);
        assert_int_equal(r.err, 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.len, BIG_LEN);
        assert_int_equal(r.bad, 0);
    }

    snprintf(url, sizeof(url), "https://127.0.0.1:%d/up", s.port);
    upload u = {0};
    colony_client_request req = {.method = "POST", .url = url, .body_cb = on_body_ready};
    assert_int_equal(colony_client_request_send(c, &req, on_done, &u, NULL), 0);
    while (!u.r.done)
        colony_test_run_once(&loop);
    assert_int_equal(u.r.err, 0);
    assert_int_equal(u.pieces, 3);
    assert_string_equal(u.r.body, "tls=1 POST /up one,two,three");
    client_close(c);
    server_stop(&s);
    colony_test_loop_close(&loop);
}

/* Verification: a name the certificate does not hold, a CA that did not sign
 * it are refused as connect failures (EPROTO, nothing sent); insecure takes
 * it; the system store does not know the throwaway CA. */
static void verification(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    server s;
    server_start(&s, 1);
    char url[128];

    colony_client *c = client_with("ca.pem", 0);
    snprintf(url, sizeof(url), "https://localhost:%d/", s.port); /* SAN: good.test, 127.0.0.1 */
    result r = call(c, "GET", url, NULL, NULL);
    assert_int_equal(r.err, COLONY_EPROTO);
    assert_int_equal(r.was_sent, 0);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/", s.port);
    r = call(c, "GET", url, NULL, NULL);
    assert_int_equal(r.err, 0);
    client_close(c);

    c = client_with("other.pem", 0);
    r = call(c, "GET", url, NULL, NULL);
    assert_int_equal(r.err, COLONY_EPROTO);
    assert_int_equal(r.was_sent, 0);
    client_close(c);

    c = client_with(NULL, 0); /* system store */
    r = call(c, "GET", url, NULL, NULL);
    assert_int_equal(r.err, COLONY_EPROTO);
    client_close(c);

    c = client_with("other.pem", 1);
    snprintf(url, sizeof(url), "https://localhost:%d/x", s.port);
    r = call(c, "GET", url, NULL, NULL);
    assert_int_equal(r.err, 0);
    assert_string_equal(r.body, "tls=1 GET /x ");
    client_close(c);

    /* Per call: the system store does not know the CA, the call's CA file
     * does; a server name the certificate holds or does not; each setting
     * its own pool. */
    c = client_with(NULL, 0);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/", s.port);
    r = call_tls(c, url, NULL, NULL);
    assert_int_equal(r.err, COLONY_EPROTO);
    r = call_tls(c, url, "ca.pem", NULL);
    assert_int_equal(r.err, 0);
    r = call_tls(c, url, "ca.pem", "good.test");
    assert_int_equal(r.err, 0);
    r = call_tls(c, url, "ca.pem", "bad.test");
    assert_int_equal(r.err, COLONY_EPROTO);
    assert_int_equal(r.was_sent, 0);
    r = call_tls(c, url, "ca.pem", NULL); /* its pool's connection is reused */
    assert_int_equal(r.err, 0);
    colony_client_stats cs;
    colony_client_get_stats(c, &cs);
    assert_int_equal(cs.origins, 4);
    client_close(c);

    c = client_with("missing.pem", 0); /* a CA file that is not there */
    r = call(c, "GET", url, NULL, NULL);
    assert_int_equal(r.err, COLONY_EPROTO);
    assert_int_equal(r.was_sent, 0);
    client_close(c);

    server_stop(&s);
    colony_test_loop_close(&loop);
}

/* https:// to a plain HTTP server: its 400 to the ClientHello is no TLS, the
 * call fails EPROTO unsent, and nothing is left open. */
static void plain_server_refused(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    server s;
    server_start(&s, 0);
    colony_client *c = client_with("ca.pem", 0);
    char url[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/", s.port);
    result r = call(c, "GET", url, NULL, NULL);
    assert_int_equal(r.err, COLONY_EPROTO);
    assert_int_equal(r.was_sent, 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
    r = call(c, "GET", url, NULL, NULL);
    assert_int_equal(r.err, 0);
    assert_string_equal(r.body, "tls=0 GET / ");
    client_close(c);
    server_stop(&s);
    colony_test_loop_close(&loop);
}

/* Every allocation of an https call failed in turn (the server, on the same
 * allocator, may fail too): the call still ends exactly once, with a body
 * that is whole when it succeeds, and nothing leaks. */
static void allocation_failures(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    server s;
    server_start(&s, 1);
    char url[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/a", s.port);
    char ca_file[128];
    snprintf(ca_file, sizeof(ca_file), "%s/ca.pem", dir);
    int ok = 0;
    for (long n = 0; n < 60; n++) {
        colony__alloc_fail_after(n);
        colony_client *c = colony_client_new(&loop, NULL);
        if (!c) {
            colony__alloc_fail_reset();
            continue;
        }
        result r = {0};
        colony_client_request req = {.url = url, .tls_ca_file = ca_file};
        int rc = colony_client_request_send(c, &req, on_done, &r, NULL);
        if (rc == 0) {
            while (!r.done)
                colony_test_run_once(&loop);
            assert_true(r.err <= 0);
            if (r.err == 0) {
                assert_string_equal(r.body, "tls=1 GET /a ");
                ok++;
            }
        } else {
            assert_int_equal(rc, COLONY_ENOMEM);
        }
        colony__alloc_fail_reset();
        client_close(c);
    }
    assert_true(ok > 0);
    server_stop(&s);
    colony_test_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_post_keepalive_resumption),
        cmocka_unit_test(big_response_and_streamed_body),
        cmocka_unit_test(verification),
        cmocka_unit_test(plain_server_refused),
        cmocka_unit_test(allocation_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
