/* The gateway's response cache (docs/gateway.md, "Response cache"): GET
 * answers of routes with a "cache" key, kept in memory under one byte bound
 * for the whole gateway, least recently used out first, each until its
 * freshness runs out. The workers share it through shards (up to
 * GW_CACHE_SHARDS, by a hash of the key without its Vary values), each with
 * its own lock, LRU and an equal share of the bound; the number of shards
 * follows the bound so that a share holds at least twice the largest
 * max_entry of any route (one shard for small caches). The key is the route's name, the Host, the
 * normalized path with its query, the values of the route's "vary" request headers and of the
 * headers the upstream's Vary names. Shared-cache rules (RFC 9111): no-store, private and no-cache
 * answers are not stored, s-maxage wins over max-age, Vary: * is not stored; requests with
 * Authorization and answers with Set-Cookie only where the route says so. cache.c holds the store,
 * cache_fill.c the storing rules and Cache-Control. */
#ifndef COLONY_GATEWAY_CACHE_H
#define COLONY_GATEWAY_CACHE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "colony/buf.h"
#include "colony/http_client.h"
#include "colony/metrics.h"
#include "colony/request.h"
#include <uv.h>
#include "core/list.h"
#include "core/map.h"
#include "gateway/parse.h"

#define GW_CACHE_DEFAULT_MAX_BYTES (64ull << 20)
#define GW_CACHE_DEFAULT_TTL_MS    60000ull
#define GW_CACHE_DEFAULT_MAX_TTL   86400000ull
#define GW_CACHE_DEFAULT_MAX_ENTRY (1ull << 20)
#define GW_CACHE_MAX_VARY          8
#define GW_CACHE_SHARDS            8

enum { GW_CACHE_STATUS_200 = 1, GW_CACHE_STATUS_301 = 2, GW_CACHE_STATUS_404 = 4 };

/* A route's "cache" object. */
typedef struct gw_cache_conf {
    uint64_t ttl_ms;     /* when the upstream gives no s-maxage/max-age; 0: not stored */
    uint64_t max_ttl_ms; /* no entry lives longer, whatever the upstream says */
    uint64_t max_entry;  /* largest body stored; a larger one is streamed and not kept */
    char **vary;         /* request headers always in the key */
    size_t nvary;
    unsigned statuses; /* GW_CACHE_STATUS_* */
    int authorized;    /* store and serve requests that carry Authorization */
    int set_cookie;    /* store answers with Set-Cookie (kept without it) */
} gw_cache_conf;

/* Parses a route's "cache" object (obj) into a new conf; global_max is the
 * gateway's bound, which max_entry may not pass. 0 or COLONY_EINVAL/ENOMEM
 * with the error at p's path. */
int colony__gw_cache_parse_route(gw_parse *p, const json_t *obj, uint64_t global_max,
                                 gw_cache_conf **out);
/* Parses the top-level "cache" object: {"max_bytes": "64mb"}. */
int colony__gw_cache_parse_global(gw_parse *p, const json_t *obj, uint64_t *max_bytes);
void colony__gw_cache_conf_free(gw_cache_conf *c);

/* Cache-Control directives, from one or more header values. */
typedef struct gw_cache_control {
    int no_store, no_cache, is_private, is_public;
    int64_t max_age, s_maxage; /* seconds; -1: absent */
} gw_cache_control;

void colony__gw_cache_control_init(gw_cache_control *cc);
/* Adds the directives of one Cache-Control value (len bytes) to cc.
 * Unknown directives are skipped; a malformed number leaves that age absent. */
void colony__gw_cache_control_parse(gw_cache_control *cc, const char *value, size_t len);

typedef enum gw_cache_status {
    GW_CACHE_NONE = 0, /* the route has no cache */
    GW_CACHE_HIT,
    GW_CACHE_MISS,
    GW_CACHE_BYPASS,
    GW_CACHE_EXPIRED,
} gw_cache_status;

/* "HIT", "MISS", "BYPASS", "EXPIRED" (X-Cache-Status), "" for NONE. */
const char *colony__gw_cache_status_name(gw_cache_status s);

typedef const char *(*gw_cache_header_fn)(void *ud, const char *name);

/* What the cache needs of a request. */
typedef struct gw_cache_request {
    const char *method;
    const char *route;  /* the route's name */
    const char *host;   /* the Host header, or NULL */
    const char *target; /* normalized path, "?" and query */
    gw_cache_header_fn header;
    void *ud;
    int credentials; /* the route checked a credential (api_keys, jwt): like Authorization */
} gw_cache_request;

typedef struct gw_cache_vary gw_cache_vary;

typedef struct gw_cache_entry {
    colony__list lru;             /* in gw_cache.lru, most recently used first */
    char *key;                    /* its key in gw_cache.entries */
    size_t route_len;             /* the key starts with the route's name */
    gw_cache_vary *vary;          /* the Vary it was stored under (a reference); NULL: none */
    struct gw_cache_shard *shard; /* where it lives */
    int status;
    colony_http_header *headers; /* end-to-end headers, without Content-Length, Date, Age */
    size_t nheaders;
    char *body;
    size_t body_len;
    uint64_t stored_ms, expires_ms;
    uint64_t age0_s; /* the upstream's Age when stored */
    size_t bytes;    /* what it counts against the bound */
} gw_cache_entry;

/* Counted by every worker without a lock. */
typedef struct gw_cache_stats {
    _Atomic uint64_t hits, misses, bypasses, expired;
    _Atomic uint64_t stored, not_stored, evicted;
    _Atomic uint64_t coalesced; /* misses that waited for another request of the same key */
} gw_cache_stats;

/* One shard: everything in it is under its lock. */
typedef struct gw_cache_shard {
    uv_mutex_t lock;
    colony__map entries; /* full key -> gw_cache_entry */
    colony__map varies;  /* key without the Vary values -> gw_cache_vary */
    colony__map pending; /* key -> gw_cache_pending: a miss on its way upstream */
    colony__list lru;
    uint64_t bytes, max_bytes; /* max_bytes: its share of the bound (0: unused) */
    size_t count;
    struct gw_cache *cache;
} gw_cache_shard;

typedef struct gw_cache {
    gw_cache_shard shards[GW_CACHE_SHARDS];
    _Atomic unsigned nshards; /* in use, by colony__gw_cache_set_max */
    uint64_t max_bytes;
    int ready; /* the locks were made */
    gw_cache_stats stats;
    colony_metric *m_requests; /* gateway_cache_requests_total{route,status}; NULL: none */
} gw_cache;

/* max_bytes: the bound, with one shard until colony__gw_cache_set_max says
 * more. 0 or COLONY_ENOMEM (its locks); colony__gw_cache_free is safe after
 * either. */
int colony__gw_cache_init(gw_cache *c, uint64_t max_bytes);
/* The shard of a key (without its Vary values): the current shard count. */
gw_cache_shard *colony__gw_cache_shard_of(gw_cache *c, const char *key);
void colony__gw_cache_unlock(gw_cache_shard *s);
/* Entries and bytes held, summed over the shards (takes their locks). */
size_t colony__gw_cache_entries(gw_cache *c);
uint64_t colony__gw_cache_bytes(gw_cache *c);
/* Registers gateway_cache_requests_total{route,status}, gateway_cache_bytes
 * and gateway_cache_entries in m. 0 or an error. */
int colony__gw_cache_metrics(gw_cache *c, colony_metrics *m);
/* A new bound, and the largest max_entry of the routes: the shard count
 * becomes the largest of 1, 2, 4, 8 whose share (max_bytes / count) is at
 * least 2 * largest_entry, and entries are evicted until each shard fits its
 * share. A changed count starts the cache empty (an entry's shard follows
 * the count); misses pending in the old shards are still released there. */
void colony__gw_cache_set_max(gw_cache *c, uint64_t max_bytes, uint64_t largest_entry);
/* Drops the entries of every route for which keep(ud, name, len) is 0 (a
 * reload removed the route or its cache). */
void colony__gw_cache_retain(gw_cache *c, int (*keep)(void *ud, const char *route, size_t len),
                             void *ud);
void colony__gw_cache_free(gw_cache *c);

/* Looks r up. *locked is the key's shard, locked, when a key or a hit is
 * returned (NULL otherwise): the caller may join the key and answer the hit
 * under it, then calls colony__gw_cache_unlock. HIT: *hit is the entry
 * (valid while the shard is locked). MISS or EXPIRED: *key (colony__free it) is the key to store
 * the answer under, and *store says whether to try. BYPASS: not served from the cache (a method
 * other than GET/HEAD, Cache-Control: no-cache/no-store or Pragma: no-cache on the request,
 * Authorization or r->credentials without "authorized"); *store is 1 only for no-cache (the fresh
 * answer replaces the stored one). HEAD is served from a stored GET but never stored itself. Counts
 * nothing: colony__gw_cache_count does, once the request's status is final. */
gw_cache_status colony__gw_cache_lookup(gw_cache *c, const gw_cache_conf *conf,
                                        const gw_cache_request *r, uint64_t now_ms, char **key,
                                        const gw_cache_entry **hit, int *store,
                                        gw_cache_shard **locked);

/* Counts a request of route in the stats and gateway_cache_requests_total. */
void colony__gw_cache_count(gw_cache *c, const char *route, gw_cache_status s);

/* Coalescing: concurrent misses of one key make one upstream call. The
 * first (the leader) goes upstream and calls colony__gw_cache_release once
 * its answer is stored or known not to be; the others wait, and each is
 * woken once (w->wake) to look up again. */
typedef struct gw_cache_waiter {
    colony__list link;
    void (*wake)(struct gw_cache_waiter *w);
} gw_cache_waiter;

/* Under s's lock (s: the key's shard from lookup). 1: key has a leader and
 * w waits for it; 0: the caller leads key; or COLONY_ENOMEM (go upstream
 * alone). */
int colony__gw_cache_join(gw_cache_shard *s, const char *key, gw_cache_waiter *w);
/* The leader of key is done (s: the shard it joined; takes its lock): wakes
 * its waiters (none is left waiting). */
void colony__gw_cache_release(gw_cache_shard *s, const char *key);

/* The Age of e at now (seconds). */
uint64_t colony__gw_cache_age(const gw_cache_entry *e, uint64_t now_ms);

/* A response being stored, while its body arrives. */
typedef struct gw_cache_fill gw_cache_fill;

/* Starts storing res under key (from lookup) if it may be stored: NULL if
 * not (status, Cache-Control, Vary: *, Set-Cookie, a Content-Length over
 * max_entry, no freshness) or out of memory. */
/* No lock: it reads only r and res (and counts not_stored). */
gw_cache_fill *colony__gw_cache_fill_begin(gw_cache *c, const gw_cache_conf *conf, const char *key,
                                           const gw_cache_request *r,
                                           const colony_client_response *res, uint64_t now_ms);
/* Adds a piece of the body; nonzero when the body outgrew max_entry (or no
 * memory): abort the fill then. */
int colony__gw_cache_fill_add(gw_cache_fill *f, const char *data, size_t len);
/* The whole body arrived and the call succeeded: the entry goes in its
 * key's shard (takes its lock; evicting that shard's least recently used to
 * make room). Frees f. */
void colony__gw_cache_fill_commit(gw_cache *c, gw_cache_fill *f, uint64_t now_ms);
void colony__gw_cache_fill_abort(gw_cache_fill *f);

struct gw_route_conf;
/* Answers req from e: its status, headers (through the route's response
 * transforms), Age, X-Cache-Status: HIT and body (none for HEAD). */
int colony__gw_cache_respond(colony_request *req, const gw_cache_entry *e,
                             const struct gw_route_conf *route, uint64_t now_ms);

#endif
