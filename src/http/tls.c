/* Server-side TLS (tls.h): certificate sets chosen by SNI, and the per
 * connection record layer on memory BIOs. The socket never sees OpenSSL: the
 * ciphertext on_read() got is fed into a memory BIO and decrypted back into the
 * read buffer; the output is encrypted in batches into cout and written with
 * the connection's own write request, so the handshake, the timers and the
 * output backlog work as for plain connections. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "http/server_internal.h"
#include "http/tls.h"
#include "http/tls_bio.h"

#define TLS_BATCH     (64 * 1024) /* plaintext encrypted per write */
#define TLS_COUT_MAX  ((size_t)1 << 40)
#define TLS_COUT_KEEP (256 * 1024) /* cout capacity kept between writes */

/* An immutable set of certificates: one SSL_CTX each, ctxs[0] the default.
 * Connections hold a reference, so a set replaced by colony_tls_ctx_update()
 * lives until its last connection closes. */
typedef struct tls_certs {
    atomic_int refs;
    SSL_CTX **ctxs;
    size_t count;
} tls_certs;

struct colony_tls_ctx {
    atomic_int refs;
    uv_mutex_t lock; /* guards certs against colony_tls_ctx_update */
    tls_certs *certs;
};

struct colony__tls_conn {
    SSL *ssl;  /* owns its memory BIOs (tls_bio.h) */
    BIO *wbio; /* records out */
    tls_certs *certs;
    colony_buf cout;     /* records being written */
    size_t cout_off;     /* bytes of cout the kernel took */
    uint64_t cout_plain; /* plaintext bytes of c->out that cout carries */
    size_t out_off;      /* bytes of c->out already encrypted */
    unsigned handshake_done : 1;
};

/* ---- certificate sets ---- */

static void certs_unref(tls_certs *set)
{
    if (!set || atomic_fetch_sub(&set->refs, 1) != 1) return;
    for (size_t i = 0; i < set->count; i++)
        SSL_CTX_free(set->ctxs[i]);
    colony__free(set->ctxs);
    colony__free(set);
}

static tls_certs *certs_new(void)
{
    tls_certs *set = colony__calloc(1, sizeof(*set));
    if (set) atomic_init(&set->refs, 1);
    return set;
}

/* SNI: the first certificate whose names (SAN, else CN; wildcards) match the
 * name the client asked for; the default (first) one otherwise. */
static int on_servername(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    tls_certs *set = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name || set->count < 2) return SSL_TLSEXT_ERR_OK;
    for (size_t i = 0; i < set->count; i++) {
        X509 *cert = SSL_CTX_get0_certificate(set->ctxs[i]);
        if (cert && X509_check_host(cert, name, 0, 0, NULL) == 1) {
            if (i > 0) SSL_set_SSL_CTX(ssl, set->ctxs[i]);
            break;
        }
    }
    return SSL_TLSEXT_ERR_OK;
}

/* ALPN: HTTP/1.1 only; a client that offers only other protocols (h2) goes
 * on without ALPN rather than failing the handshake. */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char http11[] = "\x08http/1.1";
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, http11, sizeof(http11) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* Fills err with "what 'file': reason", the reason from errno or OpenSSL. */
static void set_error(char *err, size_t err_len, const char *what, const char *file,
                      const char *reason)
{
    if (!err || !err_len) return;
    if (!reason) { /* OpenSSL's first error is the cause ("no start line"), the last a summary */
        unsigned long e = ERR_peek_error();
        const char *cause = e ? ERR_reason_error_string(e) : NULL;
        snprintf(err, err_len, "%s '%s': not a PEM %s (%s)", what, file,
                 strncmp(what, "key", 3) == 0 ? "private key" : "certificate",
                 cause ? cause : "unreadable");
        return;
    }
    snprintf(err, err_len, "%s '%s': %s", what, file, reason);
}

/* 0 if path can be opened for reading, else a COLONY_E* code with err set. */
static int check_readable(const char *path, const char *what, char *err, size_t err_len)
{
    FILE *f = fopen(path, "r");
    if (f) {
        fclose(f);
        return 0;
    }
    int e = errno;
    set_error(err, err_len, what, path, strerror(e));
    return e == ENOENT ? COLONY_ENOENT : e == ENOMEM ? COLONY_ENOMEM : COLONY_EINVAL;
}

static SSL_CTX *new_ssl_ctx(tls_certs *set)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_security_level(ctx, 2);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS); /* idle connections hold no buffers */
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
    SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(ctx, set);
    return ctx;
}

colony_tls_ctx *colony_tls_ctx_new(void)
{
    colony_tls_ctx *ctx = colony__calloc(1, sizeof(*ctx));
    if (!ctx) return NULL;
    ctx->certs = certs_new();
    if (!ctx->certs) {
        colony__free(ctx);
        return NULL;
    }
    atomic_init(&ctx->refs, 1);
    uv_mutex_init(&ctx->lock);
    return ctx;
}

int colony_tls_ctx_add_certificate(colony_tls_ctx *ctx, const char *cert_file, const char *key_file,
                                   char *err, size_t err_len)
{
    if (!ctx || !cert_file || !key_file) return COLONY_EINVAL;
    if (atomic_load(&ctx->refs) > 1) {
        set_error(err, err_len, "certificate", cert_file,
                  "the TLS context is in use (build a new one and colony_tls_ctx_update)");
        return COLONY_EBUSY;
    }
    int rc = check_readable(cert_file, "certificate file", err, err_len);
    if (!rc) rc = check_readable(key_file, "key file", err, err_len);
    if (rc) return rc;
    tls_certs *set = ctx->certs;
    SSL_CTX **ctxs = colony__realloc(set->ctxs, (set->count + 1) * sizeof(*ctxs));
    if (!ctxs) return COLONY_ENOMEM;
    set->ctxs = ctxs;
    ERR_clear_error();
    SSL_CTX *sc = new_ssl_ctx(set);
    if (!sc) {
        set_error(err, err_len, "certificate", cert_file, "out of memory");
        return COLONY_ENOMEM;
    }
    if (SSL_CTX_use_certificate_chain_file(sc, cert_file) != 1) {
        set_error(err, err_len, "certificate file", cert_file, NULL);
        rc = COLONY_EINVAL;
    } else if (SSL_CTX_use_PrivateKey_file(sc, key_file, SSL_FILETYPE_PEM) != 1) {
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
            set_error(err, err_len, "key file", key_file, "does not match the certificate");
        else
            set_error(err, err_len, "key file", key_file, NULL);
        rc = COLONY_EINVAL;
    } else if (SSL_CTX_check_private_key(sc) != 1) {
        set_error(err, err_len, "key file", key_file, "does not match the certificate");
        rc = COLONY_EINVAL;
    }
    ERR_clear_error();
    if (rc) {
        SSL_CTX_free(sc);
        return rc;
    }
    set->ctxs[set->count++] = sc;
    return 0;
}

size_t colony_tls_ctx_count(const colony_tls_ctx *ctx)
{
    return ctx && ctx->certs ? ctx->certs->count : 0;
}

int colony_tls_ctx_update(colony_tls_ctx *live, colony_tls_ctx *fresh)
{
    if (!live || !fresh || live == fresh) return COLONY_EINVAL;
    if (!fresh->certs->count) return COLONY_EINVAL;
    tls_certs *set = fresh->certs;
    atomic_fetch_add(&set->refs, 1);
    uv_mutex_lock(&live->lock);
    tls_certs *old = live->certs;
    live->certs = set;
    uv_mutex_unlock(&live->lock);
    certs_unref(old);
    return 0;
}

void colony__tls_ctx_ref(colony_tls_ctx *ctx)
{
    atomic_fetch_add(&ctx->refs, 1);
}

void colony__tls_ctx_unref(colony_tls_ctx *ctx)
{
    if (!ctx || atomic_fetch_sub(&ctx->refs, 1) != 1) return;
    certs_unref(ctx->certs);
    uv_mutex_destroy(&ctx->lock);
    colony__free(ctx);
}

void colony_tls_ctx_free(colony_tls_ctx *ctx)
{
    colony__tls_ctx_unref(ctx);
}

/* ---- connections ---- */

int colony__tls_conn_new(colony__conn *c, colony_tls_ctx *ctx)
{
    colony__tls_conn *t = colony__calloc(1, sizeof(*t));
    if (!t) return COLONY_ENOMEM;
    colony_buf_init(&t->cout, TLS_COUT_MAX);
    uv_mutex_lock(&ctx->lock);
    t->certs = ctx->certs;
    atomic_fetch_add(&t->certs->refs, 1);
    uv_mutex_unlock(&ctx->lock);
    c->tls = t;
    if (!t->certs->count) goto fail;
    t->ssl = colony__tls_bio_new(t->certs->ctxs[0], 1);
    if (!t->ssl) goto fail;
    t->wbio = SSL_get_wbio(t->ssl);
    return 0;
fail:
    ERR_clear_error();
    colony__tls_conn_free(c);
    return COLONY_ENOMEM;
}

void colony__tls_conn_free(colony__conn *c)
{
    colony__tls_conn *t = c->tls;
    if (!t) return;
    SSL_free(t->ssl);
    certs_unref(t->certs);
    colony_buf_free(&t->cout);
    colony__free(t);
    c->tls = NULL;
}

/* Moves the records OpenSSL produced into cout (only while no write uses it). */
static int take_records(colony__tls_conn *t)
{
    return colony__tls_bio_take(t->ssl, &t->cout);
}

/* Best effort, outside the write path: the records for an alert or a
 * close_notify, or a plain answer, go out with one non-blocking write. */
static void write_raw(colony__conn *c, const char *data, size_t len)
{
    if (!len) return;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    uv_try_write(&c->h.stream, &b, 1);
}

static void write_pending_records_raw(colony__conn *c)
{
    colony__tls_conn *t = c->tls;
    char *p;
    long n = BIO_get_mem_data(t->wbio, &p);
    if (n > 0) write_raw(c, p, (size_t)n);
    (void)BIO_reset(t->wbio);
}

#define PLAIN_HTTP_BODY                                                                            \
    "{\"error\":\"bad_request\",\"message\":\"plain HTTP request sent to a TLS port\"}"

/* A handshake or record error: the alert (or, for a plain HTTP request, a
 * plain 400 the client can read) goes out, then the connection closes. */
static int fail_tls(colony__conn *c)
{
    unsigned long e = ERR_peek_error();
    colony__stat_inc(&c->worker->stats.protocol_errors);
    if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST) {
        char msg[256];
        int len = snprintf(msg, sizeof(msg),
                           "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                           "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                           sizeof(PLAIN_HTTP_BODY) - 1, PLAIN_HTTP_BODY);
        write_raw(c, msg, (size_t)len);
    } else if (!c->writing) {
        write_pending_records_raw(c);
    }
    if (COLONY_LOG_ENABLED(COLONY_LOG_DEBUG)) {
        const char *why = e ? ERR_reason_error_string(e) : NULL;
        COLONY_LOG_DEBUG("tls: connection failed", COLONY_LF_STR("peer", c->addr),
                         COLONY_LF_STR("error", why ? why : "unknown"));
    }
    ERR_clear_error();
    return COLONY_EPROTO;
}

static void on_tls_write(uv_write_t *wr, int status);

/* Writes cout: uv_try_write first (unless streaming write callbacks must fire
 * from the loop), uv_write for the rest. 1 when all of it is written (its
 * plaintext then counts as written), 0 while a uv_write is in flight, or a
 * negative error after which the connection is closing. */
static int send_records(colony__conn *c, int try_first)
{
    colony__tls_conn *t = c->tls;
    if (t->cout_off < t->cout.len && try_first) {
        uv_buf_t b = uv_buf_init(t->cout.data + t->cout_off, (unsigned)(t->cout.len - t->cout_off));
        int n = uv_try_write(&c->h.stream, &b, 1);
        if (n == UV_EAGAIN || n == UV_ENOSYS) n = 0;
        if (n < 0) {
            colony__conn_close(c, n);
            return n;
        }
        t->cout_off += (size_t)n;
    }
    if (t->cout_off < t->cout.len) {
        uv_buf_t b = uv_buf_init(t->cout.data + t->cout_off, (unsigned)(t->cout.len - t->cout_off));
        c->write_req.data = c;
        int rc = uv_write(&c->write_req, &c->h.stream, &b, 1, on_tls_write);
        if (rc < 0) {
            colony__conn_close(c, rc);
            return rc;
        }
        c->writing = 1;
        colony__conn_update_timer(c);
        return 0;
    }
    c->out_written += t->cout_plain;
    t->cout_plain = 0;
    t->cout_off = 0;
    if (t->cout.cap > TLS_COUT_KEEP)
        colony_buf_free(&t->cout);
    else
        colony_buf_reset(&t->cout);
    return 1;
}

static void on_tls_write(uv_write_t *wr, int status)
{
    colony__conn *c = wr->data;
    c->writing = 0;
    if (c->closing) return;
    if (status < 0) {
        colony__conn_close(c, status);
        return;
    }
    colony__tls_conn *t = c->tls;
    t->cout_off = t->cout.len;
    send_records(c, 0); /* all written: credits the plaintext */
    colony__conn_account_output(c);
    c->timer_mode = COLONY__TIMER_NONE; /* progress: restart the write timeout */
    colony__conn_after_write(c);
    /* Records OpenSSL made while the write was in flight (a session ticket). */
    if (!c->closing && !c->writing && BIO_ctrl_pending(t->wbio)) colony__conn_flush(c);
}

void colony__tls_flush(colony__conn *c)
{
    colony__tls_conn *t = c->tls;
    if (c->closing || c->writing) return;
    uint64_t before = c->out_written;
    for (;;) {
        if (t->cout_off == t->cout.len && BIO_ctrl_pending(t->wbio) && take_records(t)) {
            colony__conn_close(c, COLONY_ENOMEM);
            return;
        }
        if (t->cout_off < t->cout.len) {
            if (send_records(c, c->wcbs_len == 0) <= 0) return;
            continue;
        }
        if (t->out_off == c->out.len) break;
        if (!t->handshake_done) { /* an error answer (timeout) to a handshake: just close */
            colony__conn_close(c, COLONY_ETIMEDOUT);
            return;
        }
        size_t batch = c->out.len - t->out_off;
        if (batch > TLS_BATCH) batch = TLS_BATCH;
        ERR_clear_error();
        int n = SSL_write(t->ssl, c->out.data + t->out_off, (int)batch);
        if (n <= 0) {
            ERR_clear_error();
            colony__conn_close(c, COLONY_EIO);
            return;
        }
        t->out_off += (size_t)n;
        t->cout_plain += (uint64_t)n;
        if (t->out_off == c->out.len) {
            colony_buf_reset(&c->out);
            t->out_off = 0;
        }
    }
    if (c->out_written != before) {
        colony__conn_after_write(c);
        return;
    }
    colony__list *first = colony__list_first(&c->awaiting);
    if (first && COLONY__CONTAINER_OF(first, colony_request, link)->end_offset <= c->out_written)
        colony__conn_after_write(c);
}

/* The handshake just finished: the header timeout that covered it ends; the
 * connection waits for its first request like a fresh plain one. */
static void handshake_finished(colony__conn *c)
{
    c->tls->handshake_done = 1;
    if (c->phase == COLONY__PHASE_HEAD && c->rpos == c->rlen) c->phase = COLONY__PHASE_IDLE;
}

ssize_t colony__tls_on_read(colony__conn *c, size_t n)
{
    colony__tls_conn *t = c->tls;
    if (!t->handshake_done && c->phase == COLONY__PHASE_IDLE) {
        /* The header timeout covers the handshake. */
        c->phase = COLONY__PHASE_HEAD;
        c->head_deadline = uv_now(c->worker->loop) + c->worker->srv->opts.header_timeout_ms;
    }
    int eof;
    ssize_t got = colony__tls_bio_decrypt(t->ssl, &c->rbuf, &c->rcap, 0, c->rlen, n, &eof);
    if (got == COLONY_ENOMEM) return COLONY_ENOMEM;
    if (got < 0) return fail_tls(c);
    if (!t->handshake_done && SSL_is_init_finished(t->ssl)) handshake_finished(c);
    /* Handshake messages, session tickets: sent now unless a write is in flight
     * (then after it, from on_tls_write). */
    if (!c->writing && BIO_ctrl_pending(t->wbio)) {
        if (take_records(t)) return COLONY_ENOMEM;
        if (send_records(c, 1) < 0) return COLONY_EIO;
    }
    if (eof && !got) return UV_EOF;
    return got;
}

void colony__tls_close_notify(colony__conn *c)
{
    colony__tls_conn *t = c->tls;
    if (!t->handshake_done || c->writing) return;
    ERR_clear_error();
    SSL_shutdown(t->ssl);
    ERR_clear_error();
    write_pending_records_raw(c);
}

int colony_request_is_tls(const colony_request *req)
{
    return req && req->conn && req->conn->tls;
}
