/* A routes config put to work: one balancer per upstream, fed by its static
 * targets or by a registry watch. Reference-counted like the config: each
 * request holds the runtime it started with, so a reload never pulls a
 * balancer out from under a request in flight.
 *
 * Threads (docs/gateway.md, "Threads"): a runtime is built, watched (registry,
 * active health) and freed on the main loop, and used by every worker: the
 * reference count is atomic, each upstream's balancer is behind its own lock
 * (pick and release here, set changes and up/down from the main loop), the
 * retry budgets behind one, and the breakers behind theirs (breaker.h). */
#ifndef COLONY_GATEWAY_RUNTIME_H
#define COLONY_GATEWAY_RUNTIME_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>
#include "colony/balance.h"
#include "colony/discovery.h"
#include "colony/probe.h"
#include "colony/resilience.h"
#include "gateway/active_health.h"
#include "gateway/breaker.h"
#include "gateway/config.h"

typedef struct gw_upstream_rt {
    const gw_upstream *conf;
    colony_balancer *balancer; /* only under lock: workers share it */
    uv_mutex_t lock;
    int lock_ready;
    colony_discovery *watch;         /* service upstreams; NULL for static targets */
    gw_active *active;               /* active health checks; NULL when off */
    gw_breaker_share *breaker_share; /* NULL when off; kept across reloads (breaker.h) */
} gw_upstream_rt;

typedef struct gw_runtime gw_runtime;
/* Where the last reference of a runtime goes (the daemon hands it to the
 * main loop, which frees it: watches and probes belong to that loop). */
typedef void (*gw_runtime_reap_cb)(gw_runtime *rt, void *ud);

struct gw_runtime {
    atomic_uint refs;
    gw_config *cfg;                /* holds a reference */
    gw_upstream_rt *ups;           /* parallel to cfg->upstreams */
    colony_retry_budget **budgets; /* parallel to cfg->routes; NULL where no retries */
    uv_mutex_t budget_lock;        /* every budget of this runtime */
    colony_prober *prober;         /* active health checks of this runtime; NULL if none */
    uint64_t generation;           /* 1 for the first config, +1 per reload */
    gw_runtime_reap_cb reap;       /* NULL: the last unref frees at once */
    void *reap_ud;
    gw_runtime *reap_next; /* in the reaper's list, waiting for the main loop */
};

/* Builds the balancers of cfg (taking a reference to it), with their active
 * health probes on loop, breakers and retry budgets. registry may be NULL when
 * no upstream names a service. prev (the running runtime, or NULL) hands
 * over what survives a reload: the breakers of upstreams that kept their name
 * and breaker settings. 0, COLONY_EINVAL (a service upstream without a
 * registry) or COLONY_ENOMEM. */
int colony__gw_runtime_new(uv_loop_t *loop, gw_config *cfg, colony_registry_client *registry,
                           uint64_t generation, const gw_runtime *prev, gw_runtime **out);
/* Route r's retry budget (under the budget lock): counts a request, and asks
 * whether one more retry may go (1: yes; routes without a budget always may). */
void colony__gw_runtime_budget_request(gw_runtime *rt, const gw_route_conf *r);
int colony__gw_runtime_budget_retry(gw_runtime *rt, const gw_route_conf *r);
/* colony_balancer_pick and colony_balancer_release under u's lock; release
 * with health 0 feeds no passive health (a call the client cancelled). pick
 * also sets *https (if not NULL) to colony__gw_endpoint_https of the pick,
 * read under the lock: a registry change rewrites an endpoint's marking. */
int colony__gw_upstream_pick(gw_upstream_rt *u, const char *key, size_t len, uint64_t now_ms,
                             colony_endpoint **out, int *https);
void colony__gw_upstream_release(gw_upstream_rt *u, colony_endpoint *ep, int health, int ok,
                                 uint64_t latency_ms, uint64_t now_ms);
/* Endpoints in u's set and pickable now (under the lock, for stats). */
void colony__gw_upstream_counts(gw_upstream_rt *u, uint64_t now_ms, size_t *count,
                                size_t *available);
/* Any thread. */
gw_runtime *colony__gw_runtime_ref(gw_runtime *rt);
/* Any thread. The last reference goes to rt->reap when set (which must free
 * it with colony__gw_runtime_free on the main loop), else frees it now. */
void colony__gw_runtime_unref(gw_runtime *rt);
/* Stops the watches and probes and frees the balancers (the main loop). */
void colony__gw_runtime_free(gw_runtime *rt);

#endif
