/* Gateway runtime (runtime.h). */
#include "gateway/runtime.h"
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"

/* The set of a service upstream changed: probe the new instances. */
static void instances_changed(colony_discovery *d, void *ud)
{
    (void)d;
    gw_upstream_rt *u = ud;
    if (u->active) colony__gw_active_sync(u->active);
}

/* The breaker share of the upstream named name in prev, or NULL. */
static gw_breaker_share *previous_breaker(const gw_runtime *prev, const char *name)
{
    for (size_t i = 0; prev && i < prev->cfg->nupstreams; i++)
        if (strcmp(prev->ups[i].conf->name, name) == 0) return prev->ups[i].breaker_share;
    return NULL;
}

static int start_upstream(gw_runtime *rt, gw_upstream_rt *u, colony_registry_client *registry,
                          const gw_runtime *prev)
{
    const gw_upstream *c = u->conf;
    int rc = colony_balancer_new(c->strategy, &u->balancer);
    if (rc) return rc;
    if (c->active.path)
        rc = colony__gw_active_start(rt->prober, u->balancer, &c->active, c->name, &u->active);
    if (!rc) rc = colony__gw_breaker_get(c, previous_breaker(prev, c->name), &u->breaker_share);
    if (rc) return rc;
    u->breaker = u->breaker_share ? u->breaker_share->breaker : NULL;
    rc = colony_balancer_set_outlier(u->balancer, c->consecutive_failures, c->base_ejection_ms,
                                     c->base_ejection_ms * 10, c->max_ejection_percent);
    if (rc) return rc;
    if (c->service) {
        if (!registry) return COLONY_EINVAL;
        colony_discovery_options o;
        colony_discovery_options_init(&o);
        o.service = c->service;
        o.tag = c->tag;
        o.balancer = u->balancer;
        o.on_change = instances_changed;
        o.ud = u;
        return colony_discovery_watch(registry, &o, &u->watch);
    }
    colony_endpoint_spec *specs = colony__calloc(c->ntargets, sizeof(*specs));
    if (!specs) return COLONY_ENOMEM;
    for (size_t i = 0; i < c->ntargets; i++)
        specs[i] = (colony_endpoint_spec){c->targets[i].url, c->targets[i].address,
                                          c->targets[i].weight, NULL};
    rc = colony_balancer_set_endpoints(u->balancer, specs, c->ntargets);
    colony__free(specs);
    if (!rc && u->active) rc = colony__gw_active_sync(u->active);
    return rc;
}

static void runtime_free(gw_runtime *rt)
{
    for (size_t i = 0; rt->ups && i < rt->cfg->nupstreams; i++) {
        if (rt->ups[i].watch) colony_discovery_stop(rt->ups[i].watch);
        colony__gw_active_stop(rt->ups[i].active);
        colony__gw_breaker_put(rt->ups[i].breaker_share);
        colony_balancer_free(rt->ups[i].balancer);
    }
    colony__free(rt->ups);
    for (size_t i = 0; rt->budgets && i < rt->cfg->nroutes; i++)
        colony_retry_budget_free(rt->budgets[i]);
    colony__free(rt->budgets);
    if (rt->prober) colony_prober_close(rt->prober, NULL, NULL);
    colony__gw_config_unref(rt->cfg);
    colony__free(rt);
}

static int needs_prober(const gw_config *cfg)
{
    for (size_t i = 0; i < cfg->nupstreams; i++)
        if (cfg->upstreams[i].active.path) return 1;
    return 0;
}

int colony__gw_runtime_new(uv_loop_t *loop, gw_config *cfg, colony_registry_client *registry,
                           uint64_t generation, const gw_runtime *prev, gw_runtime **out)
{
    *out = NULL;
    gw_runtime *rt = colony__calloc(1, sizeof(*rt));
    if (!rt) return COLONY_ENOMEM;
    rt->refs = 1;
    rt->generation = generation;
    rt->cfg = colony__gw_config_ref(cfg);
    int rc = 0;
    if (cfg->nupstreams && !(rt->ups = colony__calloc(cfg->nupstreams, sizeof(*rt->ups))))
        rc = COLONY_ENOMEM;
    if (!rc &&
        !(rt->budgets = colony__calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(*rt->budgets))))
        rc = COLONY_ENOMEM;
    for (size_t i = 0; !rc && i < cfg->nroutes; i++)
        rc = colony__gw_retry_budget_new(&cfg->routes[i], &rt->budgets[i]);
    if (!rc && needs_prober(cfg)) rc = colony_prober_new(loop, NULL, &rt->prober);
    for (size_t i = 0; !rc && i < cfg->nupstreams; i++) {
        rt->ups[i].conf = &cfg->upstreams[i];
        rc = start_upstream(rt, &rt->ups[i], registry, prev);
    }
    if (rc) {
        runtime_free(rt);
        return rc;
    }
    *out = rt;
    return 0;
}

gw_runtime *colony__gw_runtime_ref(gw_runtime *rt)
{
    rt->refs++;
    return rt;
}

void colony__gw_runtime_unref(gw_runtime *rt)
{
    if (rt && --rt->refs == 0) runtime_free(rt);
}

colony_retry_budget *colony__gw_runtime_budget(gw_runtime *rt, const gw_route_conf *r)
{
    return rt->budgets[r - rt->cfg->routes];
}
