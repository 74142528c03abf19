/* What keeps an upstream in trouble from being buried (docs/gateway.md,
 * "Circuit breaker, retry budget and deadlines"): a circuit breaker per
 * upstream (open: 503 circuit_open without calling it), a retry budget per
 * route (retries at most a share of requests) and the deadline forwarded in
 * X-Colony-Deadline-Ms. Breakers are shared by every worker thread: each
 * has its own lock (colony__gw_breaker_allow/record take it). */
#ifndef COLONY_GATEWAY_BREAKER_H
#define COLONY_GATEWAY_BREAKER_H

#include <stdint.h>
#include <uv.h>
#include "colony/http_server.h"
#include "colony/resilience.h"
#include "gateway/config.h"

/* An upstream's breaker with a count of the runtimes that hold it. A reload
 * passes the running runtime's share: while the upstream keeps its name and
 * breaker settings the new runtime takes the same breaker, so a reload
 * neither closes an open breaker nor forgets the failures it has counted. */
typedef struct gw_breaker_share {
    colony_breaker *breaker;
    uv_mutex_t lock; /* every call on breaker: workers share it */
    gw_breaker_conf conf;
    unsigned refs;
    char name[]; /* the upstream's, for the log (configs come and go) */
} gw_breaker_share;

/* The breaker share for upstream u: prev (may be NULL) with a new reference
 * when it fits u, else a new one; NULL *out when u's breaker is off. 0 or
 * COLONY_ENOMEM. */
int colony__gw_breaker_get(const gw_upstream *u, gw_breaker_share *prev, gw_breaker_share **out);
/* Drops a reference (NULL is fine); the last frees the breaker. */
void colony__gw_breaker_put(gw_breaker_share *s);
/* colony_breaker_allow under the share's lock: 0 lets the call go. */
int colony__gw_breaker_allow(gw_breaker_share *s);
/* colony_breaker_record under the share's lock. */
void colony__gw_breaker_record(gw_breaker_share *s, int ok, uint64_t duration_ms);
/* The breaker's state under the lock (for /gateway/stats). */
colony_breaker_state colony__gw_breaker_state(gw_breaker_share *s);
/* A retry budget for route r (NULL *out when it never retries). 0 or ENOMEM. */
int colony__gw_retry_budget_new(const gw_route_conf *r, colony_retry_budget **out);

/* The total time the request may take: the route's total timeout, or less
 * when the caller sent a smaller X-Colony-Deadline-Ms. At least 1. */
uint64_t colony__gw_deadline_total(colony_request *req, const gw_route_conf *r);

#endif
