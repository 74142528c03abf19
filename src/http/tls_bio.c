/* The memory-BIO record layer (tls_bio.h), shared by the server and the
 * client: one place that pumps ciphertext in and records out. */
#include <stdint.h>
#include <openssl/err.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "http/tls_bio.h"

SSL *colony__tls_bio_new(SSL_CTX *ctx, int server)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl) return NULL;
    BIO *rbio = BIO_new(BIO_s_mem());
    BIO *wbio = BIO_new(BIO_s_mem());
    if (!rbio || !wbio) {
        BIO_free(rbio);
        BIO_free(wbio);
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_bio(ssl, rbio, wbio);
    if (server)
        SSL_set_accept_state(ssl);
    else
        SSL_set_connect_state(ssl);
    return ssl;
}

ssize_t colony__tls_bio_decrypt(SSL *ssl, char **buf, size_t *cap, size_t extra, size_t at,
                                size_t n, int *eof)
{
    *eof = 0;
    if (n && BIO_write(SSL_get_rbio(ssl), *buf + at, (int)n) != (int)n) return COLONY_ENOMEM;
    size_t got = 0;
    ERR_clear_error();
    for (;;) {
        if (at + got == *cap) { /* records completed by this read: room for one */
            char *p = colony__realloc(*buf, *cap + COLONY__TLS_RECORD_MAX + extra);
            if (!p) return COLONY_ENOMEM;
            *buf = p;
            *cap += COLONY__TLS_RECORD_MAX;
        }
        size_t room = *cap - at - got;
        int r = SSL_read(ssl, *buf + at + got, room > INT32_MAX ? INT32_MAX : (int)room);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_WANT_READ) break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            *eof = 1;
            break;
        }
        return COLONY_EPROTO;
    }
    ERR_clear_error();
    return (ssize_t)got;
}

int colony__tls_bio_take(SSL *ssl, colony_buf *out)
{
    BIO *wbio = SSL_get_wbio(ssl);
    char *p;
    long n = BIO_get_mem_data(wbio, &p);
    if (n <= 0) return 0;
    int rc = colony_buf_append(out, p, (size_t)n);
    if (rc == 0) (void)BIO_reset(wbio);
    return rc;
}
