/* https:// for the HTTP client: after connect, a TLS handshake on memory BIOs
 * (tls_bio.h, shared with the server), then every byte read is decrypted in
 * place into the connection's buffer and every write is encrypted into one
 * uv_write of records. The peer is verified against the system CA store or
 * the client's ca_file (and its host name or IP address) unless the client
 * is insecure; SNI names the host unless it is an IP literal; ALPN offers
 * http/1.1. Each origin keeps the last session it got, so its next
 * connection resumes instead of a full handshake. */
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "core/hash.h"
#include "http/client_internal.h"
#include "http/tls_bio.h"

static int on_new_session(SSL *ssl, SSL_SESSION *sess);
static int on_cert_request(SSL *ssl, void *arg);

/* A client SSL_CTX verifying against ca_file (NULL: the system store), TLS
 * 1.2 minimum, keeping sessions for resumption. NULL with *err set. */
static SSL_CTX *new_ctx(const char *ca_file, int insecure, int *err)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        *err = COLONY_ENOMEM;
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    SSL_CTX_set_cert_cb(ctx, on_cert_request, NULL);
    int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        unsigned long e = ERR_peek_error();
        const char *why = e ? ERR_reason_error_string(e) : NULL;
        COLONY_LOG_ERROR("https: cannot load the CA certificates",
                         COLONY_LF_STR("ca_file", ca_file ? ca_file : "(system)"),
                         COLONY_LF_STR("error", why ? why : "unreadable"));
        ERR_clear_error();
        SSL_CTX_free(ctx);
        *err = COLONY_EPROTO;
        return NULL;
    }
    SSL_CTX_set_verify(ctx, insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    return ctx;
}

/* Loads a client certificate chain and its key into ctx (mTLS). 0, or
 * COLONY_EPROTO logged with OpenSSL's reason. */
static int use_client_cert(SSL_CTX *ctx, const char *cert_file, const char *key_file)
{
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) == 1 &&
        SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) == 1 &&
        SSL_CTX_check_private_key(ctx) == 1)
        return 0;
    unsigned long e = ERR_peek_error();
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    COLONY_LOG_ERROR("https: cannot load the client certificate", COLONY_LF_STR("cert", cert_file),
                     COLONY_LF_STR("key", key_file),
                     COLONY_LF_STR("error", why ? why : "unreadable"));
    ERR_clear_error();
    return COLONY_EPROTO;
}

/* The SSL_CTX of o's connections: its own for a tls_ca_file or a client
 * certificate, else the client's; each is made at its first connection. */
static SSL_CTX *origin_ctx(colony__client_origin *o, int *err)
{
    colony_client *c = o->client;
    if (o->tls_ca_file || o->tls_cert_file) {
        if (o->tls_ctx) return o->tls_ctx;
        o->tls_ctx =
            new_ctx(o->tls_ca_file ? o->tls_ca_file : c->tls_ca_file, c->opts.insecure, err);
        if (o->tls_ctx && o->tls_cert_file &&
            (*err = use_client_cert(o->tls_ctx, o->tls_cert_file, o->tls_key_file))) {
            SSL_CTX_free(o->tls_ctx);
            o->tls_ctx = NULL;
        }
        return o->tls_ctx;
    }
    if (!c->tls_ctx) c->tls_ctx = new_ctx(c->tls_ca_file, c->opts.insecure, err);
    return c->tls_ctx;
}

int colony__client_tls_own(const colony_client_request *r)
{
    return r->tls_ca_file || r->tls_server_name || (r->tls_cert_file && r->tls_key_file);
}

int colony__client_tls_key(char *key, size_t cap, const colony_client_request *r)
{
    const char *parts[] = {r->tls_ca_file, r->tls_server_name,
                           r->tls_key_file ? r->tls_cert_file : NULL,
                           r->tls_cert_file ? r->tls_key_file : NULL};
    uint64_t h = COLONY_FNV1A_OFFSET;
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        if (i) h = colony__fnv1a(h, "|", 1);
        if (parts[i]) h = colony__fnv1a(h, parts[i], strlen(parts[i]) + 1);
    }
    size_t len = strlen(key);
    int n = snprintf(key + len, cap - len, "#%016llx", (unsigned long long)h);
    return n < 0 || (size_t)n >= cap - len ? COLONY_E2BIG : (int)len + n;
}

static char *copy(const char *s, int *failed)
{
    if (!s) return NULL;
    char *d = colony__strdup(s);
    if (!d) *failed = 1;
    return d;
}

int colony__client_tls_origin_init(colony__client_origin *o, const colony_client_request *r)
{
    int failed = 0;
    int cert = r->tls_cert_file && r->tls_key_file;
    o->tls_ca_file = copy(r->tls_ca_file, &failed);
    o->tls_server_name = copy(r->tls_server_name, &failed);
    o->tls_cert_file = copy(cert ? r->tls_cert_file : NULL, &failed);
    o->tls_key_file = copy(cert ? r->tls_key_file : NULL, &failed);
    if (failed) colony__client_tls_origin_free(o);
    return failed ? COLONY_ENOMEM : 0;
}

int colony__client_tls_origin_ready(const colony__client_origin *o)
{
    return o->tls_ca_file || o->tls_server_name || o->tls_cert_file;
}

const char *colony_client_call_tls_error(const colony_client_call *call)
{
    return call ? call->tls_error : NULL;
}

/* OpenSSL made a session (TLS 1.3: from a ticket after the handshake): the
 * origin keeps it for its next connection. Returns 1: the reference is ours. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    colony__client_conn *conn = SSL_get_app_data(ssl);
    if (!conn || conn->state == COLONY__CONN_CLOSING || conn->state == COLONY__CONN_TUNNEL ||
        !conn->origin)
        return 0;
    SSL_SESSION_free(conn->origin->tls_session);
    conn->origin->tls_session = sess;
    return 1;
}

/* Keeps why TLS failed on the call of conn, for colony_client_call_tls_error
 * (the first reason wins; out of memory keeps none). */
static void keep_reason(colony__client_conn *conn, const char *why, const char *verify)
{
    colony_client_call *call = conn->call;
    if (!call || call->tls_error) return;
    size_t len = strlen(why) + (verify ? strlen(verify) + 3 : 0) + 1;
    call->tls_error = colony__malloc(len);
    if (call->tls_error) snprintf(call->tls_error, len, verify ? "%s (%s)" : "%s", why, verify);
}

/* The server sent a CertificateRequest: noted, so a hang-up that follows
 * can be told apart (colony__client_tls_exchange_failed). 1: go on, with
 * the certificate of the context if it has one. */
static int on_cert_request(SSL *ssl, void *arg)
{
    (void)arg;
    colony__client_conn *conn = SSL_get_app_data(ssl);
    if (conn) conn->tls_cert_requested = 1;
    return 1;
}

/* Logs why the handshake or a record failed (OpenSSL's reason and, for a
 * certificate, the verification result), keeps it for the call and clears
 * OpenSSL's queue. */
static void log_failure(colony__client_conn *conn, const char *what)
{
    unsigned long e = ERR_peek_error();
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    long vr = SSL_get_verify_result(conn->ssl);
    const char *origin = conn->origin ? conn->origin->key : "?";
    keep_reason(conn, why ? why : "unknown",
                vr != X509_V_OK ? X509_verify_cert_error_string(vr) : NULL);
    if (vr != X509_V_OK)
        COLONY_LOG_WARN(what, COLONY_LF_STR("origin", origin),
                        COLONY_LF_STR("error", why ? why : "unknown"),
                        COLONY_LF_STR("verify", X509_verify_cert_error_string(vr)));
    else
        COLONY_LOG_WARN(what, COLONY_LF_STR("origin", origin),
                        COLONY_LF_STR("error", why ? why : "unknown"));
    ERR_clear_error();
}

struct tls_write {
    uv_write_t req;
    uv_write_t *user_req; /* NULL for records of the handshake */
    uv_write_cb cb;
    colony_buf records;
};

static void on_records_written(uv_write_t *req, int status)
{
    struct tls_write *w = COLONY__CONTAINER_OF(req, struct tls_write, req);
    uv_write_t *user_req = w->user_req;
    uv_write_cb cb = w->cb;
    colony_buf_free(&w->records);
    colony__free(w);
    if (cb) cb(user_req, status);
}

/* Writes what waits in the write BIO as one uv_write; cb(user_req) runs
 * when it is done. 0 (also when nothing waits and cb is NULL) or an error. */
static int flush_records(colony__client_conn *conn, uv_write_t *user_req, uv_write_cb cb)
{
    if (!BIO_ctrl_pending(SSL_get_wbio(conn->ssl)) && !cb) return 0;
    struct tls_write *w = colony__calloc(1, sizeof(*w));
    if (!w) return COLONY_ENOMEM;
    colony_buf_init(&w->records, SIZE_MAX);
    int rc = colony__tls_bio_take(conn->ssl, &w->records);
    if (!rc) {
        w->user_req = user_req;
        w->cb = cb;
        uv_buf_t b = uv_buf_init(w->records.data, (unsigned)w->records.len);
        rc = uv_write(&w->req, &conn->io.stream, &b, 1, on_records_written);
    }
    if (rc) {
        colony_buf_free(&w->records);
        colony__free(w);
    }
    return rc;
}

int colony__client_tls_start(colony__client_conn *conn)
{
    colony__client_origin *o = conn->origin;
    int err = 0;
    SSL_CTX *ctx = origin_ctx(o, &err);
    if (!ctx) return err;
    conn->ssl = colony__tls_bio_new(ctx, 0);
    if (!conn->ssl) return COLONY_ENOMEM;
    SSL *ssl = conn->ssl;
    SSL_set_app_data(ssl, conn);
    static const unsigned char alpn[] = "\x08http/1.1";
    int ok = SSL_set_alpn_protos(ssl, alpn, sizeof(alpn) - 1) == 0;
    const char *name = o->tls_server_name ? o->tls_server_name : o->url.host;
    int is_ip = !o->tls_server_name && (o->url.is_ipv6_literal || o->has_numeric_addr);
    if (ok && !is_ip) ok = SSL_set_tlsext_host_name(ssl, name) == 1;
    if (ok && !conn->client->opts.insecure) {
        if (is_ip)
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1;
        else
            ok = SSL_set1_host(ssl, name) == 1;
    }
    if (ok && o->tls_session) SSL_set_session(ssl, o->tls_session);
    if (!ok) {
        ERR_clear_error();
        return COLONY_ENOMEM;
    }
    ERR_clear_error();
    int r = SSL_do_handshake(ssl);
    if (r != 1 && SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ) {
        log_failure(conn, "https: TLS handshake failed");
        return COLONY_EPROTO;
    }
    return flush_records(conn, NULL, NULL);
}

int colony__client_tls_handshake(colony__client_conn *conn, ssize_t n)
{
    if (n < 0) {
        keep_reason(conn,
                    n == UV_EOF ? "the server closed the connection during the handshake"
                                : uv_strerror((int)n),
                    NULL);
        COLONY_LOG_WARN("https: TLS handshake failed", COLONY_LF_STR("origin", conn->origin->key),
                        COLONY_LF_STR("error", n == UV_EOF ? "the server closed the connection"
                                                           : uv_strerror((int)n)));
        return COLONY_EPROTO;
    }
    int eof;
    ssize_t got = colony__tls_bio_decrypt(conn->ssl, &conn->in.data, &conn->in.cap, 1, conn->in.len,
                                          (size_t)n, &eof);
    if (got == COLONY_ENOMEM) return COLONY_ENOMEM;
    if (got < 0 || eof) {
        log_failure(conn, "https: TLS handshake failed");
        return COLONY_EPROTO;
    }
    int rc = flush_records(conn, NULL, NULL);
    if (rc) return rc;
    if (!SSL_is_init_finished(conn->ssl)) return 0;
    if (got > 0) { /* data before the request: no HTTP server does that */
        COLONY_LOG_WARN("https: bytes before the request",
                        COLONY_LF_STR("origin", conn->origin->key));
        return COLONY_EPROTO;
    }
    if (SSL_session_reused(conn->ssl)) conn->origin->tls_resumed++;
    return 1;
}

ssize_t colony__client_tls_read(colony__client_conn *conn, size_t n, int *eof)
{
    ssize_t got =
        colony__tls_bio_decrypt(conn->ssl, &conn->in.data, &conn->in.cap, 1, conn->in.len, n, eof);
    if (got == COLONY_ENOMEM) return got;
    if (got < 0) {
        log_failure(conn, "https: TLS record error");
        return COLONY_EPROTO;
    }
    /* Records OpenSSL answers with (a key update) go out now. */
    int rc = flush_records(conn, NULL, NULL);
    return rc ? rc : got;
}

int colony__client_tls_write(colony__client_conn *conn, uv_write_t *req, const char *data,
                             size_t len, uv_write_cb cb)
{
    if (len > INT32_MAX) return COLONY_E2BIG;
    ERR_clear_error();
    if (len && SSL_write(conn->ssl, data, (int)len) != (int)len) {
        ERR_clear_error();
        return COLONY_EIO;
    }
    return flush_records(conn, req, cb);
}

void colony__client_tls_exchange_failed(colony__client_conn *conn, int err)
{
    if (!conn->tls_cert_requested || conn->requests_done || conn->got_bytes || !conn->call ||
        conn->call->tls_error)
        return;
    char why[200];
    snprintf(why, sizeof(why),
             "the server asked for a client certificate and %s before answering (it refused "
             "the certificate, or got none)",
             err == UV_EOF ? "closed the connection" : "reset the connection");
    keep_reason(conn, why, NULL);
}

void colony__client_tls_close_notify(colony__client_conn *conn)
{
    if (!conn->ssl || !SSL_is_init_finished(conn->ssl) || !conn->io_open) return;
    ERR_clear_error();
    SSL_shutdown(conn->ssl); /* also keeps the session resumable (SSL_free would not) */
    ERR_clear_error();
    char *p;
    long n = BIO_get_mem_data(SSL_get_wbio(conn->ssl), &p);
    if (n > 0) {
        uv_buf_t b = uv_buf_init(p, (unsigned)n);
        uv_try_write(&conn->io.stream, &b, 1);
    }
    (void)BIO_reset(SSL_get_wbio(conn->ssl));
}

void colony__client_tls_free(colony__client_conn *conn)
{
    SSL_free(conn->ssl);
    conn->ssl = NULL;
}

void colony__client_tls_ctx_free(colony_client *c)
{
    SSL_CTX_free(c->tls_ctx);
    c->tls_ctx = NULL;
    colony__free(c->tls_ca_file);
    c->tls_ca_file = NULL;
}

void colony__client_tls_origin_free(colony__client_origin *o)
{
    SSL_SESSION_free(o->tls_session);
    o->tls_session = NULL;
    SSL_CTX_free(o->tls_ctx);
    o->tls_ctx = NULL;
    colony__free(o->tls_ca_file);
    colony__free(o->tls_server_name);
    colony__free(o->tls_cert_file);
    colony__free(o->tls_key_file);
    o->tls_ca_file = o->tls_server_name = o->tls_cert_file = o->tls_key_file = NULL;
}

int colony__client_conn_write(colony__client_conn *conn, uv_write_t *req, const char *data,
                              size_t len, uv_write_cb cb)
{
    if (conn->ssl) return colony__client_tls_write(conn, req, data, len, cb);
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    return uv_write(req, &conn->io.stream, &b, 1, cb);
}
