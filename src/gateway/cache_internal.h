/* What cache.c (the store) and cache_fill.c (the storing rules) share. */
#ifndef COLONY_GATEWAY_CACHE_INTERNAL_H
#define COLONY_GATEWAY_CACHE_INTERNAL_H

#include "colony/buf.h"
#include "gateway/cache.h"

#define KEY_VARY_MARK '\x01' /* between the key and the Vary values */

/* The header names of a response's Vary, shared by the entries stored under
 * one key: lowercased, joined by ','. Freed with its last entry. */
struct gw_cache_vary {
    char *primary; /* its key in its shard's varies */
    char *names;
    unsigned refs; /* entries */
    int in_map;
};

struct gw_cache_fill {
    char *key;     /* full key */
    char *primary; /* key without the Vary values */
    char *vary;    /* names, or NULL */
    size_t route_len;
    int status;
    colony_http_header *headers;
    size_t nheaders;
    colony_buf body;
    uint64_t lifetime_ms, age0_s;
};

/* primary, the mark, and the request's values of the ','-joined Vary names
 * (NULL: none). colony__free it; NULL when out of memory. */
char *colony__gw_cache_full_key(const char *primary, const char *vary, const gw_cache_request *r);

#endif
