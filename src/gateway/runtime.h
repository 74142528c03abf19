/* A routes config put to work: one balancer per upstream, fed by its static
 * targets or by a registry watch. Reference-counted like the config: each
 * request holds the runtime it started with, so a reload never pulls a
 * balancer out from under a request in flight. One loop thread. */
#ifndef COLONY_GATEWAY_RUNTIME_H
#define COLONY_GATEWAY_RUNTIME_H

#include <stdint.h>
#include "colony/balance.h"
#include "colony/discovery.h"
#include "colony/probe.h"
#include "colony/resilience.h"
#include "gateway/active_health.h"
#include "gateway/breaker.h"
#include "gateway/config.h"

typedef struct gw_upstream_rt {
    const gw_upstream *conf;
    colony_balancer *balancer;
    colony_discovery *watch;         /* service upstreams; NULL for static targets */
    gw_active *active;               /* active health checks; NULL when off */
    colony_breaker *breaker;         /* NULL when off; breaker_share's */
    gw_breaker_share *breaker_share; /* kept across reloads (breaker.h) */
} gw_upstream_rt;

typedef struct gw_runtime {
    unsigned refs;
    gw_config *cfg;                /* holds a reference */
    gw_upstream_rt *ups;           /* parallel to cfg->upstreams */
    colony_retry_budget **budgets; /* parallel to cfg->routes; NULL where no retries */
    colony_prober *prober;         /* active health checks of this runtime; NULL if none */
    uint64_t generation;           /* 1 for the first config, +1 per reload */
} gw_runtime;

/* Builds the balancers of cfg (taking a reference to it), with their active
 * health probes on loop, breakers and retry budgets. registry may be NULL when
 * no upstream names a service. prev (the running runtime, or NULL) hands
 * over what survives a reload: the breakers of upstreams that kept their name
 * and breaker settings. 0, COLONY_EINVAL (a service upstream without a
 * registry) or COLONY_ENOMEM. */
int colony__gw_runtime_new(uv_loop_t *loop, gw_config *cfg, colony_registry_client *registry,
                           uint64_t generation, const gw_runtime *prev, gw_runtime **out);
/* The retry budget of route r of rt's config, or NULL. */
colony_retry_budget *colony__gw_runtime_budget(gw_runtime *rt, const gw_route_conf *r);
gw_runtime *colony__gw_runtime_ref(gw_runtime *rt);
/* The last reference stops the watches and probes and frees the balancers. */
void colony__gw_runtime_unref(gw_runtime *rt);

#endif
