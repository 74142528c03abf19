/* Balancer internals shared by balance.c (set, accounting, ejection),
 * balance_strategies.c (per-pick strategies) and balance_hash.c (hashing and
 * the consistent-hash ring). */
#ifndef COLONY_KIT_BALANCE_INTERNAL_H
#define COLONY_KIT_BALANCE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "colony/balance.h"

struct colony_endpoint {
    colony_balancer *owner; /* NULL once out of the set or the balancer is freed */
    uint32_t refs;          /* the set's reference + one per pick in flight */
    uint32_t weight;
    void *user;
    const char *id; /* id and address live in the same allocation */
    const char *address;
    uint64_t active;
    int64_t current_weight; /* smooth WRR */
    uint32_t consecutive_failures;
    uint32_t times_ejected;
    int ejected;               /* cleared lazily once ejected_until_ms passes */
    uint64_t ejected_until_ms; /* also when it came back, for decay */
    int down;                  /* set by an active health check: out until set up again */
    uint64_t latency_ms;       /* EWMA */
};

/* One virtual node on the hash ring. */
typedef struct colony__ring_point {
    uint64_t hash;
    colony_endpoint *ep;
} colony__ring_point;

typedef struct colony__ring {
    colony__ring_point *points; /* sorted by hash */
    size_t len;
} colony__ring;

struct colony_balancer {
    colony_balance_strategy strategy;
    colony_endpoint **endpoints; /* set order */
    size_t count;
    size_t ejected_count;
    size_t down_count;       /* endpoints marked down (active health), ejected or not */
    uint64_t next_return_ms; /* earliest ejected_until_ms among ejected endpoints */
    size_t rr_cursor;        /* round robin and least-conn tie rotation */

    uint32_t eject_after;
    uint64_t base_ejection_ms;
    uint64_t max_ejection_ms;
    uint32_t max_ejection_percent;
    uint64_t decay_interval_ms;

    uint64_t rng_state;
    colony_balance_random_cb random_cb;
    void *random_ctx;

    uint32_t ring_points_per_weight;
    colony__ring ring;
};

/* 1 if ep may not be picked now: ejected (passive health) or down (active). */
static inline int colony__endpoint_out(const colony_endpoint *ep)
{
    return ep->ejected || ep->down;
}

/* Strategies (balance_strategies.c). Each is called with at least one
 * endpoint available (not ejected nor down) and returns one that is. */
colony_endpoint *colony__balance_round_robin(colony_balancer *b);
colony_endpoint *colony__balance_smooth_wrr(colony_balancer *b);
colony_endpoint *colony__balance_least_conn(colony_balancer *b);
colony_endpoint *colony__balance_p2c(colony_balancer *b);
colony_endpoint *colony__balance_random(colony_balancer *b);
colony_endpoint *colony__balance_ip_hash(colony_balancer *b, uint64_t key_hash);
/* Uniform value in [0, n), n > 0, from the balancer's random source. */
uint64_t colony__balance_random_below(colony_balancer *b, uint64_t n);

/* Hashing and the ring (balance_hash.c). */
uint64_t colony__hash64(const void *data, size_t len);
uint64_t colony__hash_mix64(uint64_t x);
/* Builds a ring for endpoints[0..n): per_weight x weight points each, scaled
 * down uniformly if the total would pass the ring cap. 0 or COLONY_ENOMEM
 * (out untouched on failure). */
int colony__ring_build(colony__ring *out, colony_endpoint *const *endpoints, size_t n,
                       uint32_t per_weight);
void colony__ring_free(colony__ring *ring);
/* The first available endpoint clockwise from key_hash; NULL if none. */
colony_endpoint *colony__ring_lookup(const colony__ring *ring, uint64_t key_hash);

#endif
