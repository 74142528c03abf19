/* Server-side TLS for the HTTP server's connections (tls.c): OpenSSL with
 * memory BIOs, so the handshake and every record run on the connection's own
 * loop without blocking. The read hook turns the ciphertext on_read() got into
 * plaintext for the parser; the write hook encrypts the connection's output
 * and sends it. Everything here runs on the connection's worker thread; only
 * the certificate set (an SSL_CTX per certificate, thread safe) is shared. */
#ifndef COLONY_HTTP_TLS_H
#define COLONY_HTTP_TLS_H

#include <sys/types.h>
#include "colony/http_server.h"

typedef struct colony__conn colony__conn;
typedef struct colony__tls_conn colony__tls_conn;

/* Takes / drops a reference to a certificate set (listeners and connections
 * hold one each). */
void colony__tls_ctx_ref(colony_tls_ctx *ctx);
void colony__tls_ctx_unref(colony_tls_ctx *ctx);

/* Gives c (just accepted on a TLS listener) its TLS state. 0 or COLONY_ENOMEM. */
int colony__tls_conn_new(colony__conn *c, colony_tls_ctx *ctx);
/* Frees c's TLS state (the connection's handles are closed). */
void colony__tls_conn_free(colony__conn *c);

/* on_read() read n ciphertext bytes at c->rbuf + c->rlen: decrypts them in
 * place (growing rbuf by at most a record when the plaintext of records that
 * were incomplete before does not fit). Returns the plaintext bytes now at
 * c->rbuf + c->rlen (0 while the handshake runs), UV_EOF after the peer's
 * close_notify, or a negative error: the connection must close. */
ssize_t colony__tls_on_read(colony__conn *c, size_t n);

/* The write path for a TLS connection (colony__conn_flush): encrypts c->out
 * in batches and writes the records; out_written advances when the kernel took
 * a batch's records. */
void colony__tls_flush(colony__conn *c);

/* Before the FIN of a lingering close: queues close_notify (best effort). */
void colony__tls_close_notify(colony__conn *c);

#endif
