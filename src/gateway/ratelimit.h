/* The gateway's rate limits (docs/gateway.md, "Rate limiting"): a global
 * limit before routing and one per route, each "limit per window" for a key
 * (client address or a request header). Locally a token bucket per key (the
 * kit's colony_token_bucket) refilling at limit/window, in one map capped at
 * max_keys with the least recently used key dropped; shared between gateways
 * a fixed-window counter per key in Redis (ratelimit_redis.h), with the local
 * buckets as the fallback while Redis is down.
 *
 * Threads: each worker has its own gw_ratelimit (its Redis connection lives
 * on its loop), and all of them take from one set of local buckets, the
 * main loop's (`store`). The buckets are striped: a hash of the key picks
 * one of GW_RL_STRIPES stripes, each with its own lock, map and LRU, so
 * workers limiting different keys rarely wait on each other, and one key is
 * always behind the same lock: a limit of N per window holds across
 * workers. */
#ifndef COLONY_GATEWAY_RATELIMIT_H
#define COLONY_GATEWAY_RATELIMIT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "colony/clock.h"
#include "colony/config.h"
#include "colony/http_server.h"
#include "colony/metrics.h"
#include "core/list.h"
#include "core/map.h"

#define GW_RL_MAX_KEYS 100000 /* buckets kept at once, all limits together */
#define GW_RL_STRIPES  16     /* locks (and maps) the buckets are spread over */

/* What a limit counts by: the client's address, a request header, or the
 * subject of the route's verified JWT (GW_REQ_JWT_SUB, set by jwt.c). */
typedef enum gw_rl_key { GW_RL_KEY_IP, GW_RL_KEY_HEADER, GW_RL_KEY_JWT_SUB } gw_rl_key;

/* One "rate_limit" object of the routes file. */
typedef struct gw_ratelimit_conf {
    uint32_t limit;     /* requests per window */
    uint64_t window_ms; /* the window; the bucket refills at limit/window */
    uint32_t burst;     /* bucket size; default: limit */
    gw_rl_key key;
    char *key_header; /* GW_RL_KEY_HEADER: the header whose value is the key */
    char *redis;      /* "redis://host:port": shared through Redis; NULL: local only */
    char *redis_host;
    int redis_port;
    int fail_closed; /* "redis_failure": "closed": 503 while Redis is down */
} gw_ratelimit_conf;

/* Parses obj, the value of "rate_limit" at `path` (the dotted path of its
 * parent object, restored on return; size is the buffer's), into *out.
 * redis_seen is the Redis URL of limits parsed before (NULL if none): a file
 * uses one Redis. 0, or COLONY_EINVAL / COLONY_ENOMEM with err naming file,
 * line, key and reason. */
int colony__gw_ratelimit_parse(const colony_json_doc *doc, colony_config_error *err, char *path,
                               size_t size, const void *obj, const char *redis_seen,
                               gw_ratelimit_conf **out);
void colony__gw_ratelimit_conf_free(gw_ratelimit_conf *c);

/* The outcome of one check, and what the RateLimit-* headers say. */
typedef struct gw_rl_result {
    int outcome;        /* GW_RL_ALLOW, GW_RL_LIMITED or GW_RL_UNAVAILABLE */
    uint32_t limit;     /* RateLimit-Limit */
    uint32_t remaining; /* RateLimit-Remaining */
    uint64_t reset_s;   /* RateLimit-Reset: seconds until the quota is whole again */
    uint64_t retry_s;   /* Retry-After, when limited */
} gw_rl_result;

enum { GW_RL_NONE = 0, GW_RL_ALLOW, GW_RL_LIMITED, GW_RL_UNAVAILABLE };

typedef struct gw_redis gw_redis;
typedef struct gw_ratelimit gw_ratelimit;

/* One stripe of the local buckets: the keys whose hash picks it. */
typedef struct gw_rl_stripe {
    uv_mutex_t lock;     /* the map, LRU and count below */
    colony__map buckets; /* "scope\nkey" -> rl_bucket */
    colony__list lru;    /* least recently used first */
    size_t nkeys;
} gw_rl_stripe;

struct gw_ratelimit {
    colony_clock clock;
    gw_ratelimit *store; /* whose buckets are taken from: itself, or the main loop's */
    /* Buckets kept at most, all stripes together: each stripe keeps
     * max_keys / nstripes (rounded up) and drops its least recently used. */
    size_t max_keys;
    unsigned nstripes;        /* stripes in use: GW_RL_STRIPES (a test may lower it) */
    gw_rl_stripe *stripes;    /* GW_RL_STRIPES of them */
    unsigned stripes_ready;   /* whose lock is initialised */
    gw_redis *redis;          /* connected while a loaded limit names Redis */
    atomic_int redis_outages; /* of the store: the workers' connections down */
    uv_loop_t *loop;
    colony_metric *m_rejected;  /* gateway_ratelimit_rejected_total{route} */
    colony_metric *m_fallbacks; /* gateway_ratelimit_redis_fallbacks_total */
    colony_metric *m_redis_up;  /* gateway_ratelimit_redis_up */
};

/* Sets up rl on loop with metrics in m (may be NULL) and clock (zeroed:
 * system). 0 or COLONY_ENOMEM. */
int colony__gw_ratelimit_init(gw_ratelimit *rl, uv_loop_t *loop, colony_metrics *m,
                              colony_clock clock);
/* Sets up a worker's rl on its loop: its own Redis connection, the buckets
 * (and metrics) of store, which must outlive it. 0 or COLONY_ENOMEM. */
int colony__gw_ratelimit_init_worker(gw_ratelimit *rl, uv_loop_t *loop, gw_ratelimit *store);
/* Connects to url ("redis://host:port", or NULL for none), replacing a
 * connection to another one. Called with each loaded config. */
int colony__gw_ratelimit_use_redis(gw_ratelimit *rl, const char *url);
/* Frees the buckets and drops the Redis connection (pending checks complete
 * at once, as if Redis were down). cb(ud) runs once its handles are closed. */
void colony__gw_ratelimit_close(gw_ratelimit *rl, void (*cb)(void *ud), void *ud);

/* The key of req under c written into buf (size bytes): the client address
 * or the header's value ("" when absent: all such requests share a bucket).
 * Long values are replaced by their keyed hash, so the key is bounded. */
const char *colony__gw_ratelimit_key(const gw_ratelimit_conf *c, colony_request *req, char *buf,
                                     size_t size);

/* Local buckets held now, all stripes together (takes each stripe's lock). */
size_t colony__gw_ratelimit_keys(gw_ratelimit *rl);
/* The stripe the local bucket of (scope, key) lives in. */
gw_rl_stripe *colony__gw_ratelimit_stripe(gw_ratelimit *rl, const char *scope, const char *key);

/* Takes one request from the local bucket of (scope, key): fills *out. 0 or
 * COLONY_ENOMEM (then *out allows: a full map never refuses traffic). */
int colony__gw_ratelimit_take_local(gw_ratelimit *rl, const char *scope, const gw_ratelimit_conf *c,
                                    const char *key, gw_rl_result *out);

typedef void (*gw_rl_done_cb)(void *ud, const gw_rl_result *res);
/* Checks one request of (scope, key) under c. Local limits and a Redis that
 * is down decide at once: *out is filled and 0 returned. Otherwise the check
 * waits for Redis: 1 is returned and done(ud, res) runs later (always once,
 * also when Redis fails or the limiter closes). Rejections are counted in
 * gateway_ratelimit_rejected_total{route=scope}. */
int colony__gw_ratelimit_check(gw_ratelimit *rl, const char *scope, const gw_ratelimit_conf *c,
                               const char *key, gw_rl_result *out, gw_rl_done_cb done, void *ud);

/* Adds RateLimit-Limit/-Remaining/-Reset (and Retry-After when limited) to
 * req's response. */
void colony__gw_ratelimit_headers(colony_request *req, const gw_rl_result *res);
/* Answers 429 (limited) or 503 (Redis down, failing closed) with the headers. */
void colony__gw_ratelimit_refuse(colony_request *req, const gw_rl_result *res);

#endif
