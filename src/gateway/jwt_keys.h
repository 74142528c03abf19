/* The inside of a route's JWT settings (jwt.h), shared by the parsing of
 * the keys (jwt_keys.c) and the verification (jwt.c). */
#ifndef COLONY_GATEWAY_JWT_KEYS_H
#define COLONY_GATEWAY_JWT_KEYS_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>
#include "gateway/jwt.h"
#include "gateway/jwt_cache.h"
#include "gateway/worker.h"

#define GW_JWT_MAX_TOKEN 8192
#define GW_JWT_MAX_KEYS  100

typedef struct gw_jwt_key {
    char *kid;     /* NULL: none */
    unsigned algs; /* GW_JWT_*: what this key may verify */
    unsigned char *secret;
    size_t secret_len;
    EVP_PKEY *pkey; /* RSA or EC P-256 public key */
} gw_jwt_key;

struct gw_jwt {
    gw_jwt_key *keys;
    size_t nkeys;
    char *issuer, *audience; /* required when set */
    uint64_t leeway_ms;
    char **claims, **headers; /* claims_to_headers */
    size_t nclaims;
    char **roles; /* the "role" claim must be one of these; none: any */
    size_t nroles;
    /* Tokens verified under these settings, one cache per worker thread
     * (indexed by colony__gw_worker, made on its first use there): a miss
     * on another worker costs one verification, and no lock is taken. */
    gw_jwt_cache *caches[GW_MAX_WORKERS];
};

/* The GW_JWT_* bit of an algorithm name ("RS256"), 0 for any other. */
unsigned colony__gw_jwt_alg_bit(const char *name);

/* Decodes len chars of unpadded base64url into out (room for len * 3 / 4 + 1
 * bytes). Returns the decoded length or -1. */
long colony__gw_b64url_decode(const char *in, size_t len, unsigned char *out);
/* Decodes a base64url string into a new buffer (colony__free it); NULL when
 * it is not base64url or out of memory. */
unsigned char *colony__gw_b64url_dup(const char *in, size_t len, size_t *out_len);

#endif
