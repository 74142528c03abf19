/* Client-side load balancing over an endpoint set that can change while in use
 * (the gateway and the registry watch feed it). A balancer picks an endpoint
 * per request with one strategy, counts requests in flight, and ejects
 * endpoints that fail repeatedly (passive health, like Envoy's outlier
 * detection). See docs/load-balancing.md.
 *
 * Threading: a balancer belongs to one loop thread and takes no locks; every
 * call on a balancer and on its endpoints must come from that thread.
 *
 * Time: calls that need the time take `now_ms`, a monotonic millisecond clock
 * chosen by the caller (uv_now() in a service, a counter in a test). */
#ifndef COLONY_BALANCE_H
#define COLONY_BALANCE_H

#include <stddef.h>
#include <stdint.h>
#include "export.h"

typedef struct colony_balancer colony_balancer;
/* One endpoint of a balancer's set. Reference-counted: the set holds one
 * reference and each pick holds one until its release, so a handle stays valid
 * while its request is in flight even if the endpoint left the set. */
typedef struct colony_endpoint colony_endpoint;

typedef enum colony_balance_strategy {
    COLONY_BALANCE_ROUND_ROBIN, /* in set order, weights ignored */
    COLONY_BALANCE_WEIGHTED_RR, /* nginx's smooth weighted round robin */
    COLONY_BALANCE_LEAST_CONN,  /* least (active + 1) / weight, ties in turn */
    COLONY_BALANCE_P2C,         /* power of two choices: 2 weighted draws, less loaded wins */
    COLONY_BALANCE_RANDOM,      /* weighted random */
    COLONY_BALANCE_IP_HASH,     /* hash(key) over weights; stable while the set is */
    COLONY_BALANCE_RING_HASH,   /* consistent hashing, ring with virtual nodes */
} colony_balance_strategy;

/* Largest endpoint weight accepted by colony_balancer_set_endpoints(). */
#define COLONY_BALANCE_MAX_WEIGHT 10000u

/* Describes one endpoint for colony_balancer_set_endpoints(). The strings are
 * copied; `user` is stored as is and never freed by the balancer. */
typedef struct colony_endpoint_spec {
    const char *id;      /* unique within the set, non-empty */
    const char *address; /* "host:port", non-empty */
    uint32_t weight;     /* 1..COLONY_BALANCE_MAX_WEIGHT; 0 means 1 */
    void *user;
} colony_endpoint_spec;

/* Source of random numbers (P2C, random, hash fallbacks): returns 64 random bits. */
typedef uint64_t (*colony_balance_random_cb)(void *ctx);

/* Creates an empty balancer using `strategy`. Returns 0, COLONY_EINVAL (unknown
 * strategy) or COLONY_ENOMEM. The caller frees *out with colony_balancer_free(). */
COLONY_API int colony_balancer_new(colony_balance_strategy strategy, colony_balancer **out);
/* Frees the balancer and drops its references to its endpoints. Endpoints still
 * picked stay valid until released with colony_balancer_release(NULL, ep, ...). */
COLONY_API void colony_balancer_free(colony_balancer *b);

/* Replaces the endpoint set, all or nothing: on error the old set is unchanged.
 * An endpoint whose id and address both persist keeps its state (requests in
 * flight, ejection, smooth-WRR weight) and takes the new weight and user; an id
 * whose address changed is a new endpoint. Removed endpoints are never picked
 * again. Returns 0, COLONY_EINVAL (NULL/empty id or address, duplicate id,
 * weight over the max) or COLONY_ENOMEM. n == 0 empties the set. */
COLONY_API int colony_balancer_set_endpoints(colony_balancer *b, const colony_endpoint_spec *specs,
                                             size_t n);

/* Picks an endpoint for one request. `key` (len bytes, need not be
 * NUL-terminated) feeds IP_HASH and RING_HASH; NULL with those strategies picks
 * at random (as Envoy does without a hash key); other strategies ignore it.
 * Returns 0 with *out set, or COLONY_ENOENT with *out NULL when the set is
 * empty or every endpoint is ejected. The caller owns one reference to *out
 * and must pass it to colony_balancer_release() exactly once. */
COLONY_API int colony_balancer_pick(colony_balancer *b, const char *key, size_t len,
                                    uint64_t now_ms, colony_endpoint **out);
/* Ends a request started by pick: decrements the endpoint's active count, feeds
 * passive health (ok = 0 for a 5xx or connect error; ok != 0 resets the failure
 * streak) and a latency average, and drops the pick's reference (ep may be
 * freed here). b may be NULL after the balancer was freed; health is fed only
 * while ep is still in b's set. Returns 0 or COLONY_EINVAL (NULL ep, or ep
 * has no request in flight). */
COLONY_API int colony_balancer_release(colony_balancer *b, colony_endpoint *ep, int ok,
                                       uint64_t latency_ms, uint64_t now_ms);

/* Outlier ejection (Envoy's defaults: 5, 30000, 300000, 10): after
 * `consecutive_failures` failed releases in a row (0 disables ejection) an
 * endpoint is skipped for base_ejection_ms x times ejected, capped at
 * max_ejection_ms. An ejection that would put more than max_ejection_percent
 * of the set out is refused, unless none is out. Returns 0 or COLONY_EINVAL. */
COLONY_API int colony_balancer_set_outlier(colony_balancer *b, uint32_t consecutive_failures,
                                           uint64_t base_ejection_ms, uint64_t max_ejection_ms,
                                           uint32_t max_ejection_percent);
/* Each full `interval_ms` an endpoint spends back in service forgives one past
 * ejection (Envoy's decay; default 10000). 0: times ejected never decays. */
COLONY_API void colony_balancer_set_outlier_decay(colony_balancer *b, uint64_t interval_ms);
/* Virtual nodes per weight unit on the RING_HASH ring (default 160, 1..1000).
 * Applies from the next colony_balancer_set_endpoints(). Returns 0 or COLONY_EINVAL. */
COLONY_API int colony_balancer_set_ring_points(colony_balancer *b, uint32_t per_weight_unit);
/* Reseeds the built-in generator (splitmix64) and drops any random callback:
 * the same seed gives the same picks. */
COLONY_API void colony_balancer_set_seed(colony_balancer *b, uint64_t seed);
/* Uses cb(ctx) as the random source instead (NULL restores the built-in one). */
COLONY_API void colony_balancer_set_random(colony_balancer *b, colony_balance_random_cb cb,
                                           void *ctx);

/* Number of endpoints in the set. */
COLONY_API size_t colony_balancer_count(const colony_balancer *b);
/* Endpoints pickable at now_ms (in the set, not ejected, not down). */
COLONY_API size_t colony_balancer_available(const colony_balancer *b, uint64_t now_ms);
/* The endpoint with this id, or NULL. Borrowed: valid until the next
 * colony_balancer_set_endpoints() or colony_balancer_free(); not a pick. */
COLONY_API colony_endpoint *colony_balancer_find(const colony_balancer *b, const char *id);
/* The i-th endpoint in set order (i < count), else NULL. Borrowed, as find. */
COLONY_API colony_endpoint *colony_balancer_at(const colony_balancer *b, size_t i);

/* Endpoint accessors. Strings are owned by the endpoint and live as long as it. */
COLONY_API const char *colony_endpoint_id(const colony_endpoint *ep);
COLONY_API const char *colony_endpoint_address(const colony_endpoint *ep);
COLONY_API void *colony_endpoint_user(const colony_endpoint *ep);
COLONY_API uint32_t colony_endpoint_weight(const colony_endpoint *ep);
/* Requests picked and not yet released. */
COLONY_API uint64_t colony_endpoint_active(const colony_endpoint *ep);
/* 1 if ep is ejected at now_ms, else 0. */
COLONY_API int colony_endpoint_ejected(const colony_endpoint *ep, uint64_t now_ms);
/* Active health: a down endpoint is never picked until set up again (no
 * timer, unlike ejection, and not bounded by max_ejection_percent). The flag
 * survives colony_balancer_set_endpoints() while the endpoint persists; a new
 * endpoint starts up. 0, or COLONY_EINVAL when ep is not in a set. */
COLONY_API int colony_endpoint_set_down(colony_endpoint *ep, int down);
/* 1 if ep is marked down, else 0. */
COLONY_API int colony_endpoint_down(const colony_endpoint *ep);
/* How many times ep was ejected (after decay as of its last ejection). */
COLONY_API uint32_t colony_endpoint_times_ejected(const colony_endpoint *ep);
/* Failed releases in a row since the last success or ejection. */
COLONY_API uint32_t colony_endpoint_consecutive_failures(const colony_endpoint *ep);
/* Smoothed latency of released requests (EWMA, 1/8 per sample), 0 before any. */
COLONY_API uint64_t colony_endpoint_latency_ms(const colony_endpoint *ep);
/* 1 while ep is in a balancer's set, 0 once removed (or its balancer freed). */
COLONY_API int colony_endpoint_in_set(const colony_endpoint *ep);

#endif
