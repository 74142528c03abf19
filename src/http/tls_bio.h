/* The memory-BIO record layer shared by the server's TLS (tls.c) and the
 * client's (client_tls.c): the socket never sees OpenSSL. Ciphertext a read
 * brought is fed into the SSL's read BIO and decrypted back into the same
 * buffer; the records OpenSSL produces wait in its write BIO until the owner
 * writes them with its own uv_write. */
#ifndef COLONY_HTTP_TLS_BIO_H
#define COLONY_HTTP_TLS_BIO_H

#include <stddef.h>
#include <sys/types.h>
#include <openssl/ssl.h>
#include "colony/buf.h"

#define COLONY__TLS_RECORD_MAX (16384 + 2048) /* a record's plaintext, with room to spare */

/* A new SSL on ctx with a fresh memory BIO each way (owned by the SSL), in
 * the accept (server) or connect state. NULL when out of memory. */
SSL *colony__tls_bio_new(SSL_CTX *ctx, int server);

/* The n ciphertext bytes at *buf + at (the buffer holds *cap bytes) go into
 * ssl's read BIO, then every record that is complete is decrypted in place at
 * *buf + at. When the plaintext of records begun by earlier reads does not
 * fit, *buf grows (colony__realloc) by COLONY__TLS_RECORD_MAX, plus extra
 * bytes the owner keeps past *cap (1 for a NUL, or 0). Returns the plaintext
 * bytes now at *buf + at (0 while the handshake runs or a record is
 * incomplete); *eof is set after the peer's close_notify. COLONY_ENOMEM, or
 * COLONY_EPROTO on a TLS error (OpenSSL's error queue is left for the caller
 * to report, then clear). */
ssize_t colony__tls_bio_decrypt(SSL *ssl, char **buf, size_t *cap, size_t extra, size_t at,
                                size_t n, int *eof);

/* Moves the records waiting in ssl's write BIO to the end of out. 0 (also
 * when none wait) or COLONY_ENOMEM (they stay). */
int colony__tls_bio_take(SSL *ssl, colony_buf *out);

#endif
