/* Tokens a route has verified, so a client that sends the same bearer token
 * on every request pays for the signature and the JSON once (Envoy's
 * jwt_authn keeps such a cache too). What a hit gives is what the check
 * needs: the time bounds, which are checked again on every hit, the values
 * of claims_to_headers and the subject. Everything else the check looks at
 * (signature, issuer, audience, roles) cannot change for the same token
 * under the same settings; a reload starts a new cache with the new keys.
 * Bounded: GW_JWT_CACHE_MAX tokens of at most GW_JWT_CACHE_MAX_TOKEN bytes,
 * least recently used dropped first. One loop thread. */
#ifndef COLONY_GATEWAY_JWT_CACHE_H
#define COLONY_GATEWAY_JWT_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include "core/list.h"
#include "core/map.h"

#define GW_JWT_CACHE_MAX       1024
#define GW_JWT_CACHE_MAX_TOKEN 2048

typedef struct json_t json_t;

/* What a verified token left: its bounds and the texts the check sends on. */
typedef struct gw_jwt_verified {
    colony__list lru_link; /* in the cache, most recently used last */
    char *token;           /* the key, while cached (for removal); NULL otherwise */
    double exp, nbf;       /* seconds since the epoch */
    unsigned has_exp : 1, has_nbf : 1;
    char *sub;      /* the "sub" claim as text, or NULL */
    size_t nvalues; /* one per claims_to_headers entry */
    char *values[]; /* the claim's header value, NULL when not sent */
} gw_jwt_verified;

typedef struct gw_jwt_cache {
    colony__map tokens; /* token -> gw_jwt_verified */
    colony__list lru;
    size_t count;
    uint64_t hits, misses;
} gw_jwt_cache;

/* NULL on allocation failure. */
gw_jwt_cache *colony__gw_jwt_cache_new(void);
void colony__gw_jwt_cache_free(gw_jwt_cache *c);

/* The entry for token when it is cached and still inside its time bounds at
 * now (seconds) with leeway; an entry out of its bounds is dropped (the full
 * check then says why). NULL otherwise. */
const gw_jwt_verified *colony__gw_jwt_cache_get(gw_jwt_cache *c, const char *token, int64_t now,
                                                int64_t leeway);

/* A new entry from verified claims: claims[i] (nclaims names) give the header
 * values. NULL on allocation failure. Free with colony__gw_jwt_verified_free
 * unless colony__gw_jwt_cache_put took it. */
gw_jwt_verified *colony__gw_jwt_verified_new(const json_t *claims, char *const *claim_names,
                                             size_t nclaims);
void colony__gw_jwt_verified_free(gw_jwt_verified *v);

/* Caches v under token (dropping the least recently used entry when full):
 * 0 when the cache took v, COLONY_E2BIG for a token too long to keep or
 * COLONY_ENOMEM; then v is still the caller's. */
int colony__gw_jwt_cache_put(gw_jwt_cache *c, const char *token, gw_jwt_verified *v);

/* A claim as a header value into buf: strings without control characters (up
 * to 1 KiB), numbers and booleans. NULL for anything else. */
const char *colony__gw_jwt_claim_text(const json_t *v, char *buf, size_t size);

#endif
