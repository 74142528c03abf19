/* HTTP server over TLS (colony_server_listen_tls): certificates made at test
 * time with the openssl CLI (a.test, b.test, c.test); a blocking OpenSSL client
 * in a helper thread. Handshake and SNI, a request, pipelining, a large
 * streamed response, a large request body, TLS 1.1 refused, garbage and plain
 * HTTP on the TLS port, a stalled handshake closed by the header timeout,
 * certificate errors naming the file, and a certificate update for new
 * connections. LeakSanitizer fails the test on any leak. */
#include "server_test_util.h"
#include "core/alloc.h"
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static uv_loop_t loop;
static char dir[64];

#define BIG_CHUNK  (64 * 1024)
#define BIG_CHUNKS 64 /* 4 MiB */

/* ---- certificates ---- */

static void path_of(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
}

static void make_cert(const char *name)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s/%s.key -out %s/%s.pem -days 2 -subj /CN=%s "
             "-addext subjectAltName=DNS:%s >/dev/null 2>&1",
             dir, name, dir, name, name, name);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/colony_tls_XXXXXX");
    if (!mkdtemp(dir)) return -1;
    make_cert("a.test");
    make_cert("b.test");
    make_cert("c.test");
    char p[128];
    path_of(p, sizeof(p), "garbage.pem");
    FILE *f = fopen(p, "w");
    fputs("this is not PEM\n", f);
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int add_cert(colony_tls_ctx *ctx, const char *name, char *err, size_t err_len)
{
    char cert[128], key[128];
    snprintf(cert, sizeof(cert), "%s/%s.pem", dir, name);
    snprintf(key, sizeof(key), "%s/%s.key", dir, name);
    return colony_tls_ctx_add_certificate(ctx, cert, key, err, err_len);
}

/* ---- server ---- */

typedef struct big_state {
    int sent, done, failed;
} big_state;

static char big_chunk[BIG_CHUNK];

/* The response cannot go on (the connection failed, or an allocation did):
 * it ends (cut) once, the state goes with the last pending callback. */
static void big_fail(colony_request *req, big_state *b)
{
    if (!b->failed) colony_response_abort(req);
    b->failed = 1;
}

/* /big keeps four 64 KiB pieces in flight: each write callback sends the next
 * piece, the last one ends the response. */
static void big_next(colony_request *req, int status, void *ud)
{
    big_state *b = ud;
    b->done++;
    if (status < 0) {
        big_fail(req, b);
    } else if (!b->failed && b->sent < BIG_CHUNKS) {
        b->sent++;
        if (colony_response_write(req, big_chunk, sizeof(big_chunk), big_next, b) != 0) {
            b->sent--;
            big_fail(req, b);
        }
    } else if (!b->failed && b->done == BIG_CHUNKS) {
        colony_response_end(req);
    }
    if (b->done == b->sent && (b->failed || b->done == BIG_CHUNKS)) free(b);
}

static void handler(colony_request *req, void *ud)
{
    (void)ud;
    const char *path = colony_request_path(req);
    if (strcmp(path, "/big") == 0) {
        big_state *b = calloc(1, sizeof(*b));
        memset(big_chunk, 'x', sizeof(big_chunk));
        if (colony_response_start(req, 200) != 0) { /* allocation failure test */
            free(b);
            colony_response_abort(req);
            return;
        }
        for (int i = 0; i < 4 && !b->failed; i++) {
            b->sent++;
            if (colony_response_write(req, big_chunk, sizeof(big_chunk), big_next, b) != 0) {
                b->sent--;
                big_fail(req, b);
            }
        }
        if (b->failed && b->done == b->sent) free(b);
        return;
    }
    if (strcmp(path, "/upload") == 0) {
        size_t n;
        const char *body = colony_request_body(req, &n);
        size_t xs = 0;
        for (size_t i = 0; i < n; i++)
            xs += body[i] == 'u';
        char out[64];
        int len = snprintf(out, sizeof(out), "%zu/%zu", n, xs);
        colony_respond(req, 200, "text/plain", out, (size_t)len);
        return;
    }
    char out[256];
    int len = snprintf(out, sizeof(out), "tls=%d path=%s", colony_request_is_tls(req), path);
    if (colony_respond(req, 200, "text/plain", out, (size_t)len) != 0)
        colony_respond_error(req, 500, "internal_error", "no memory");
}

static colony_server *start_tls(colony_tls_ctx *ctx, colony_server_options *opts, int *port)
{
    colony_server *srv = colony_server_new(&loop, opts, handler, NULL);
    assert_non_null(srv);
    assert_int_equal(colony_server_listen_tls(srv, "127.0.0.1:0", ctx), 0);
    *port = colony_server_port(srv);
    assert_true(*port > 0);
    return srv;
}

static colony_tls_ctx *ctx_ab(void)
{
    colony_tls_ctx *ctx = colony_tls_ctx_new();
    assert_non_null(ctx);
    char err[256];
    assert_int_equal(add_cert(ctx, "a.test", err, sizeof(err)), 0);
    assert_int_equal(add_cert(ctx, "b.test", err, sizeof(err)), 0);
    assert_int_equal(colony_tls_ctx_count(ctx), 2);
    return ctx;
}

/* ---- blocking TLS client ---- */

typedef struct tls_client {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    char buf[1 << 17]; /* a 64 KiB chunk and its framing */
    size_t len;
} tls_client;

/* Connects and handshakes; sni may be NULL. max_version 0 = library default.
 * NULL if the handshake failed. */
static tls_client *tls_connect(int port, const char *sni, int max_version)
{
    tls_client *c = calloc(1, sizeof(*c));
    c->fd = tc_open_fd(port);
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (max_version) {
        SSL_CTX_set_security_level(c->ctx, 0); /* lets this client offer TLS 1.1 */
        SSL_CTX_set_min_proto_version(c->ctx, max_version);
        SSL_CTX_set_max_proto_version(c->ctx, max_version);
    }
    SSL_CTX_set_alpn_protos(c->ctx, (const unsigned char *)"\x02h2\x08http/1.1", 12);
    c->ssl = SSL_new(c->ctx);
    SSL_set_fd(c->ssl, c->fd);
    if (sni) SSL_set_tlsext_host_name(c->ssl, sni);
    if (c->fd < 0 || SSL_connect(c->ssl) != 1) {
        ERR_clear_error();
        SSL_free(c->ssl);
        SSL_CTX_free(c->ctx);
        if (c->fd >= 0) close(c->fd);
        free(c);
        return NULL;
    }
    return c;
}

static void tls_close(tls_client *c)
{
    if (!c) return;
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    close(c->fd);
    free(c);
    ERR_clear_error();
}

/* The common name of the certificate the server sent. */
static void peer_cn(tls_client *c, char *out, size_t len)
{
    out[0] = '\0';
    X509 *cert = SSL_get1_peer_certificate(c->ssl);
    if (!cert) return;
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, out, (int)len);
    X509_free(cert);
}

static int tls_send(tls_client *c, const char *data, size_t len)
{
    while (len) {
        int n = SSL_write(c->ssl, data, (int)len);
        if (n <= 0) return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static int tls_fill(tls_client *c)
{
    if (c->len == sizeof(c->buf)) return -1;
    int n = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len));
    if (n > 0) c->len += (size_t)n;
    return n;
}

static void tls_consume(tls_client *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Reads one response; a chunked body is counted, and its first bytes kept in
 * body. Returns the status, or -1. */
static int tls_read_response(tls_client *c, char *body, size_t body_cap, size_t *body_len)
{
    char *end;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (tls_fill(c) <= 0) return -1;
    size_t head_len = (size_t)(end - c->buf) + 4;
    char head[4096];
    if (head_len >= sizeof(head)) return -1;
    memcpy(head, c->buf, head_len);
    head[head_len] = '\0';
    tls_consume(c, head_len);
    int status;
    if (sscanf(head, "HTTP/1.1 %d", &status) != 1) return -1;
    *body_len = 0;
    const char *cl = tc_find_header(head, "Content-Length");
    if (cl) {
        size_t want = strtoul(cl, NULL, 10);
        while (c->len < want)
            if (tls_fill(c) <= 0) return -1;
        size_t keep = want < body_cap - 1 ? want : body_cap - 1;
        memcpy(body, c->buf, keep);
        body[keep] = '\0';
        *body_len = want;
        tls_consume(c, want);
        return status;
    }
    for (;;) { /* chunked */
        char *eol;
        while (!(eol = memmem(c->buf, c->len, "\r\n", 2)))
            if (tls_fill(c) <= 0) return -1;
        size_t size = strtoul(c->buf, NULL, 16);
        tls_consume(c, (size_t)(eol - c->buf) + 2);
        while (c->len < size + 2)
            if (tls_fill(c) <= 0) return -1;
        if (*body_len < body_cap - 1) {
            size_t keep = size < body_cap - 1 - *body_len ? size : body_cap - 1 - *body_len;
            memcpy(body + *body_len, c->buf, keep);
            body[*body_len + keep] = '\0';
        }
        *body_len += size;
        tls_consume(c, size + 2);
        if (size == 0) return status;
    }
}

/* ---- tests ---- */

static void client_sni(tclient *t)
{
    static const struct {
        const char *sni, *cn;
    } cases[] = {
        {"a.test", "a.test"}, {"b.test", "b.test"}, {NULL, "a.test"}, {"x.test", "a.test"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tls_client *c = tls_connect(t->port, cases[i].sni, 0);
        TCHECK(t, c != NULL);
        if (!c) return;
        char cn[64];
        peer_cn(c, cn, sizeof(cn));
        TCHECK(t, strcmp(cn, cases[i].cn) == 0);
        const unsigned char *alpn;
        unsigned alpn_len;
        SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
        TCHECK(t, alpn_len == 8 && memcmp(alpn, "http/1.1", 8) == 0);
        TCHECK(t, SSL_version(c->ssl) >= TLS1_2_VERSION);
        const char *req = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
        TCHECK(t, tls_send(c, req, strlen(req)) == 0);
        char body[256];
        size_t n;
        TCHECK(t, tls_read_response(c, body, sizeof(body), &n) == 200);
        TCHECK(t, strcmp(body, "tls=1 path=/hello") == 0);
        tls_close(c);
    }
}

/* SNI picks the certificate (no or an unknown name: the first), ALPN is
 * http/1.1, and the handler sees colony_request_is_tls. */
static void handshake_sni_and_request(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    colony_tls_ctx *ctx = ctx_ab();
    int port;
    colony_server *srv = start_tls(ctx, NULL, &port);
    colony_tls_ctx_free(ctx); /* the listener keeps its reference */
    tclient t = {.port = port, .fn = client_sni};
    run_client(&loop, &t, 20000);
    stop_server(&loop, srv, 1000);
    colony_test_loop_close(&loop);
}

static void client_pipeline_big(tclient *t)
{
    tls_client *c = tls_connect(t->port, "b.test", 0);
    TCHECK(t, c != NULL);
    if (!c) return;
    const char *reqs = "GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /two HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /three HTTP/1.1\r\nHost: x\r\n\r\n";
    TCHECK(t, tls_send(c, reqs, strlen(reqs)) == 0); /* one record, four requests */
    char body[256];
    size_t n;
    TCHECK(t, tls_read_response(c, body, sizeof(body), &n) == 200);
    TCHECK(t, strcmp(body, "tls=1 path=/one") == 0);
    TCHECK(t, tls_read_response(c, body, sizeof(body), &n) == 200);
    TCHECK(t, strcmp(body, "tls=1 path=/two") == 0);
    TCHECK(t, tls_read_response(c, body, sizeof(body), &n) == 200);
    TCHECK(t, n == (size_t)BIG_CHUNK * BIG_CHUNKS);
    TCHECK(t, body[0] == 'x' && body[254] == 'x');
    TCHECK(t, tls_read_response(c, body, sizeof(body), &n) == 200);
    TCHECK(t, strcmp(body, "tls=1 path=/three") == 0);

    /* A 1 MiB request body in many records, some split across reads. */
    size_t up = 1024 * 1024;
    char head[128];
    int hl = snprintf(head, sizeof(head),
                      "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", up);
    TCHECK(t, tls_send(c, head, (size_t)hl) == 0);
    char *data = malloc(up);
    memset(data, 'u', up);
    for (size_t off = 0; off < up; off += 10000)
        TCHECK(t, tls_send(c, data + off, up - off < 10000 ? up - off : 10000) == 0);
    free(data);
    TCHECK(t, tls_read_response(c, body, sizeof(body), &n) == 200);
    TCHECK(t, strcmp(body, "1048576/1048576") == 0);
    tls_close(c);
}

/* Pipelined requests in one record are answered in order; a 4 MiB streamed
 * response goes through the output backlog in TLS batches; a 1 MiB upload
 * arrives whole. Two workers: each connection stays on its own. */
static void pipelining_large_response_and_upload(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    colony_tls_ctx *ctx = ctx_ab();
    colony_server_options o = {0};
    o.workers = 2;
    o.limits.max_body = 2 * 1024 * 1024;
    int port;
    colony_server *srv = start_tls(ctx, &o, &port);
    colony_tls_ctx_free(ctx);
    for (int i = 0; i < 3; i++) {
        tclient t = {.port = port, .fn = client_pipeline_big};
        run_client(&loop, &t, 30000);
    }
    stop_server(&loop, srv, 1000);
    colony_test_loop_close(&loop);
}

static void client_bad_peers(tclient *t)
{
    /* TLS 1.1 is refused. */
    TCHECK(t, tls_connect(t->port, "a.test", TLS1_1_VERSION) == NULL);

    /* Garbage instead of a ClientHello: closed. */
    tconn *g = tc_connect(t->port);
    TCHECK(t, g != NULL);
    if (!g) return;
    TCHECK(t, tc_send(g, "\x16\x03\x01\x00\x05garbagegarbagegarbage\r\n\r\n") == 0);
    TCHECK(t, tc_wait_closed(g));
    tc_close(g);

    /* Plain HTTP on the TLS port: a plain 400 that says so, then closed. */
    tconn *p = tc_connect(t->port);
    TCHECK(t, tc_send(p, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    tresp r;
    TCHECK(t, tc_read_response(p, &r, 0) == 0);
    TCHECK(t, r.status == 400);
    TCHECK(t, strstr(r.body, "plain HTTP request sent to a TLS port") != NULL);
    TCHECK(t, tc_wait_closed(p));
    tc_close(p);

    /* A handshake that stalls after a few bytes: the header timeout closes it. */
    tconn *s = tc_connect(t->port);
    uint64_t start = colony_test_now_ms();
    TCHECK(t, tc_send(s, "\x16\x03\x01\x02") == 0);
    TCHECK(t, tc_wait_closed(s));
    uint64_t took = colony_test_now_ms() - start;
    TCHECK(t, took >= 250 && took < 3000);
    tc_close(s);

    /* Still serving. */
    tls_client *c = tls_connect(t->port, "a.test", 0);
    TCHECK(t, c != NULL);
    tls_close(c);
}

/* TLS 1.1, garbage, plain HTTP and a stalled handshake are closed without a
 * crash or a leak (LeakSanitizer), and count as protocol errors. */
static void bad_peers_are_closed(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    colony_tls_ctx *ctx = ctx_ab();
    colony_server_options o = {0};
    o.header_timeout_ms = 300;
    int port;
    colony_server *srv = start_tls(ctx, &o, &port);
    colony_tls_ctx_free(ctx);
    tclient t = {.port = port, .fn = client_bad_peers};
    run_client(&loop, &t, 20000);
    colony_server_stats st;
    colony_server_get_stats(srv, &st);
    assert_true(st.protocol_errors >= 3);
    stop_server(&loop, srv, 1000);
    colony_test_loop_close(&loop);
}

static void client_expect_c(tclient *t)
{
    tls_client *c = tls_connect(t->port, "b.test", 0);
    TCHECK(t, c != NULL);
    if (!c) return;
    char cn[64];
    peer_cn(c, cn, sizeof(cn));
    TCHECK(t, strcmp(cn, *(const char **)t->arg) == 0);
    tls_close(c);
}

/* colony_tls_ctx_update: new connections get the new certificates. */
static void certificate_update(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    colony_tls_ctx *ctx = ctx_ab();
    int port;
    colony_server *srv = start_tls(ctx, NULL, &port);
    const char *want = "b.test";
    tclient t = {.port = port, .fn = client_expect_c, .arg = &want};
    run_client(&loop, &t, 10000);

    char err[256];
    assert_int_equal(add_cert(ctx, "c.test", err, sizeof(err)), COLONY_EBUSY);
    colony_tls_ctx *fresh = colony_tls_ctx_new();
    assert_int_equal(colony_tls_ctx_update(ctx, fresh), COLONY_EINVAL); /* empty */
    assert_int_equal(add_cert(fresh, "c.test", err, sizeof(err)), 0);
    assert_int_equal(colony_tls_ctx_update(ctx, fresh), 0);
    colony_tls_ctx_free(fresh);
    want = "c.test"; /* b.test is gone: the default answers */
    tclient t2 = {.port = port, .fn = client_expect_c, .arg = &want};
    run_client(&loop, &t2, 10000);
    colony_tls_ctx_free(ctx);
    stop_server(&loop, srv, 1000);
    colony_test_loop_close(&loop);
}

static void client_over_limit(tclient *t)
{
    tls_client *first = tls_connect(t->port, "a.test", 0);
    TCHECK(t, first != NULL);
    /* Over the per-address limit: closed with no plain 503 a TLS client
     * would take for a broken record. */
    tconn *second = tc_connect(t->port);
    TCHECK(t, second != NULL);
    if (second) {
        char buf[64];
        ssize_t n = recv(second->fd, buf, sizeof(buf), 0);
        TCHECK(t, n == 0 || (n < 0 && errno == ECONNRESET));
        tc_close(second);
    }
    tls_close(first);
}

/* A TLS connection refused by a connection limit is closed without a word. */
static void over_the_limit_closes_silently(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    colony_tls_ctx *ctx = ctx_ab();
    colony_server_options o = {0};
    o.max_connections_per_address = 1;
    int port;
    colony_server *srv = start_tls(ctx, &o, &port);
    colony_tls_ctx_free(ctx);
    tclient t = {.port = port, .fn = client_over_limit};
    run_client(&loop, &t, 10000);
    colony_server_stats st;
    colony_server_get_stats(srv, &st);
    assert_int_equal(st.connections_rejected_per_address, 1);
    stop_server(&loop, srv, 1000);
    colony_test_loop_close(&loop);
}

static void client_torture(tclient *t)
{
    uint64_t start = colony_test_now_ms();
    tls_client *c = tls_connect(t->port, "b.test", 0);
    if (c) {
        const char *reqs = "GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
                           "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
        char body[64];
        size_t n;
        if (tls_send(c, reqs, strlen(reqs)) == 0 &&
            tls_read_response(c, body, sizeof(body), &n) == 200) {
            TCHECK(t, strcmp(body, "tls=1 path=/one") == 0);
            if (tls_read_response(c, body, sizeof(body), &n) == 200)
                TCHECK(t, n == (size_t)BIG_CHUNK * BIG_CHUNKS);
        }
        tls_close(c);
    }
    /* Answered or closed, never left hanging until the client's timeout. */
    TCHECK(t, colony_test_now_ms() - start < TC_TIMEOUT_MS - 500);
}

static void client_one(tclient *t)
{
    tls_client *c = tls_connect(t->port, "a.test", 0);
    TCHECK(t, c != NULL);
    if (!c) return;
    const char *req = "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n";
    char body[64];
    size_t n;
    TCHECK(t, tls_send(c, req, strlen(req)) == 0);
    TCHECK(t, tls_read_response(c, body, sizeof(body), &n) == 200);
    tls_close(c);
}

/* The Nth allocation on the loop fails during a TLS exchange: the connection
 * is answered or closed, nothing leaks, and the next one is served. */
static void every_allocation_failure_is_handled(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    colony_tls_ctx *ctx = ctx_ab();
    colony_server_options o = {0};
    o.header_timeout_ms = o.body_timeout_ms = o.write_timeout_ms = 1000;
    int port;
    colony_server *srv = start_tls(ctx, &o, &port);
    colony_tls_ctx_free(ctx);
    long injected = 0;
    for (long n = 0; n < 30; n++) {
        tclient t = {.port = port, .fn = client_torture};
        colony__alloc_fail_after(n);
        run_client(&loop, &t, 20000);
        injected += colony__alloc_failures();
        colony__alloc_fail_reset();
        tclient ok = {.port = port, .fn = client_one};
        run_client(&loop, &ok, 20000);
    }
    assert_true(injected > 0);
    stop_server(&loop, srv, 1000);
    colony_test_loop_close(&loop);
}

/* Files that do not load are refused with the file's name and why. */
static void certificate_errors_name_the_file(void **state)
{
    (void)state;
    colony_tls_ctx *ctx = colony_tls_ctx_new();
    char err[512], cert[128], key[128], garbage[128], missing[128];
    path_of(cert, sizeof(cert), "a.test.pem");
    path_of(key, sizeof(key), "b.test.key");
    path_of(garbage, sizeof(garbage), "garbage.pem");
    path_of(missing, sizeof(missing), "missing.pem");

    assert_int_equal(colony_tls_ctx_add_certificate(ctx, missing, key, err, sizeof(err)),
                     COLONY_ENOENT);
    assert_non_null(strstr(err, missing));
    assert_non_null(strstr(err, "No such file"));

    assert_int_equal(colony_tls_ctx_add_certificate(ctx, garbage, key, err, sizeof(err)),
                     COLONY_EINVAL);
    assert_non_null(strstr(err, "certificate file"));
    assert_non_null(strstr(err, garbage));

    assert_int_equal(colony_tls_ctx_add_certificate(ctx, cert, garbage, err, sizeof(err)),
                     COLONY_EINVAL);
    assert_non_null(strstr(err, "key file"));
    assert_non_null(strstr(err, garbage));

    assert_int_equal(colony_tls_ctx_add_certificate(ctx, cert, key, err, sizeof(err)),
                     COLONY_EINVAL);
    assert_non_null(strstr(err, key));
    assert_non_null(strstr(err, "does not match"));
    assert_int_equal(colony_tls_ctx_count(ctx), 0);

    assert_int_equal(uv_loop_init(&loop), 0);
    colony_server *srv = colony_server_new(&loop, NULL, handler, NULL);
    assert_int_equal(colony_server_listen_tls(srv, "127.0.0.1:0", ctx), COLONY_EINVAL);
    assert_int_equal(colony_server_listen_tls(srv, "127.0.0.1:0", NULL), COLONY_EINVAL);
    colony_server_free(srv);
    colony_tls_ctx_free(ctx);
    colony_test_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(certificate_errors_name_the_file),
        cmocka_unit_test(handshake_sni_and_request),
        cmocka_unit_test(pipelining_large_response_and_upload),
        cmocka_unit_test(bad_peers_are_closed),
        cmocka_unit_test(certificate_update),
        cmocka_unit_test(over_the_limit_closes_silently),
        cmocka_unit_test(every_allocation_failure_is_handled),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
