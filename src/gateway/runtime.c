/* Gateway runtime (runtime.h). */
#include "gateway/runtime.h"
#include <stdio.h>
#include "colony/error.h"
#include "core/alloc.h"

static int start_upstream(gw_upstream_rt *u, colony_registry_client *registry)
{
    const gw_upstream *c = u->conf;
    int rc = colony_balancer_new(c->strategy, &u->balancer);
    if (rc) return rc;
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
        return colony_discovery_watch(registry, &o, &u->watch);
    }
    colony_endpoint_spec *specs = colony__calloc(c->ntargets, sizeof(*specs));
    if (!specs) return COLONY_ENOMEM;
    for (size_t i = 0; i < c->ntargets; i++)
        specs[i] = (colony_endpoint_spec){c->targets[i].url, c->targets[i].address,
                                          c->targets[i].weight, NULL};
    rc = colony_balancer_set_endpoints(u->balancer, specs, c->ntargets);
    colony__free(specs);
    return rc;
}

static void runtime_free(gw_runtime *rt)
{
    for (size_t i = 0; rt->ups && i < rt->cfg->nupstreams; i++) {
        if (rt->ups[i].watch) colony_discovery_stop(rt->ups[i].watch);
        colony_balancer_free(rt->ups[i].balancer);
    }
    colony__free(rt->ups);
    colony__gw_config_unref(rt->cfg);
    colony__free(rt);
}

int colony__gw_runtime_new(gw_config *cfg, colony_registry_client *registry, uint64_t generation,
                           gw_runtime **out)
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
    for (size_t i = 0; !rc && i < cfg->nupstreams; i++) {
        rt->ups[i].conf = &cfg->upstreams[i];
        rc = start_upstream(&rt->ups[i], registry);
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
