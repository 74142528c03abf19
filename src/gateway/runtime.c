/* Gateway runtime (runtime.h). */
#include "gateway/runtime.h"
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "gateway/forward.h"

const char colony__gw_endpoint_tls = 1;

/* A registry instance that says it speaks TLS: Meta "scheme": "https" (the
 * key Traefik reads from a Consul service's tags, as a Meta key here) or the
 * tag "https" (Fabio's proto=https is a route option, not an instance's). */
static int instance_is_https(const colony_instance *in)
{
    for (size_t i = 0; i < in->nmeta; i++)
        if (strcmp(in->meta[2 * i], "scheme") == 0 && strcasecmp(in->meta[2 * i + 1], "https") == 0)
            return 1;
    for (size_t i = 0; i < in->ntags; i++)
        if (strcmp(in->tags[i], "https") == 0) return 1;
    return 0;
}

/* The passing instances of the watch become u's set, under u's lock (the
 * workers pick from it meanwhile). On failure the old set stays. */
static void feed_balancer(gw_upstream_rt *u, colony_discovery *d)
{
    size_t count = colony_discovery_count(d);
    colony_endpoint_spec *specs = colony__calloc(count + 1, sizeof(*specs));
    char **addresses = colony__calloc(count + 1, sizeof(char *));
    size_t n = 0;
    int rc = specs && addresses ? 0 : COLONY_ENOMEM;
    for (size_t i = 0; i < count && !rc; i++) {
        const colony_instance *in = colony_discovery_at(d, i);
        if (in->status != COLONY_CHECK_PASSING || !*in->id || !*in->address) continue;
        size_t len = strlen(in->address) + 16;
        if (!(addresses[n] = colony__malloc(len))) {
            rc = COLONY_ENOMEM;
            break;
        }
        int v6 = strchr(in->address, ':') != NULL;
        snprintf(addresses[n], len, v6 ? "[%s]:%d" : "%s:%d", in->address, in->port);
        specs[n] = (colony_endpoint_spec){.id = in->id,
                                          .address = addresses[n],
                                          .weight = in->weight,
                                          .user = instance_is_https(in) ? GW_ENDPOINT_TLS : NULL};
        n++;
    }
    if (!rc) {
        uv_mutex_lock(&u->lock);
        rc = colony_balancer_set_endpoints(u->balancer, specs, n);
        uv_mutex_unlock(&u->lock);
    }
    if (rc)
        COLONY_LOG_WARN("gateway: cannot update an upstream's instances",
                        COLONY_LF_STR("upstream", u->conf->name),
                        COLONY_LF_STR("error", colony_strerror(rc)));
    for (size_t i = 0; addresses && i < n; i++)
        colony__free(addresses[i]);
    colony__free(addresses);
    colony__free(specs);
}

/* The set of a service upstream changed: a new set, and probes for the new
 * instances. */
static void instances_changed(colony_discovery *d, void *ud)
{
    gw_upstream_rt *u = ud;
    feed_balancer(u, d);
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
    if (uv_mutex_init(&u->lock) != 0) return COLONY_ENOMEM;
    u->lock_ready = 1;
    if (c->active.path)
        rc = colony__gw_active_start(rt->prober, u->balancer, &u->lock, c, &u->active);
    if (!rc) rc = colony__gw_breaker_get(c, previous_breaker(prev, c->name), &u->breaker_share);
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

void colony__gw_runtime_free(gw_runtime *rt)
{
    for (size_t i = 0; rt->ups && i < rt->cfg->nupstreams; i++) {
        if (rt->ups[i].watch) colony_discovery_stop(rt->ups[i].watch);
        colony__gw_active_stop(rt->ups[i].active);
        colony__gw_breaker_put(rt->ups[i].breaker_share);
        colony_balancer_free(rt->ups[i].balancer);
        if (rt->ups[i].lock_ready) uv_mutex_destroy(&rt->ups[i].lock);
    }
    colony__free(rt->ups);
    for (size_t i = 0; rt->budgets && i < rt->cfg->nroutes; i++)
        colony_retry_budget_free(rt->budgets[i]);
    colony__free(rt->budgets);
    uv_mutex_destroy(&rt->budget_lock);
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
    if (uv_mutex_init(&rt->budget_lock) != 0) {
        colony__free(rt);
        return COLONY_ENOMEM;
    }
    atomic_init(&rt->refs, 1);
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
        colony__gw_runtime_free(rt);
        return rc;
    }
    *out = rt;
    return 0;
}

gw_runtime *colony__gw_runtime_ref(gw_runtime *rt)
{
    atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed);
    return rt;
}

void colony__gw_runtime_unref(gw_runtime *rt)
{
    if (!rt || atomic_fetch_sub_explicit(&rt->refs, 1, memory_order_acq_rel) != 1) return;
    if (rt->reap)
        rt->reap(rt, rt->reap_ud);
    else
        colony__gw_runtime_free(rt);
}

static colony_retry_budget *budget_of(gw_runtime *rt, const gw_route_conf *r)
{
    return rt->budgets[r - rt->cfg->routes];
}

void colony__gw_runtime_budget_request(gw_runtime *rt, const gw_route_conf *r)
{
    colony_retry_budget *b = budget_of(rt, r);
    if (!b) return;
    uv_mutex_lock(&rt->budget_lock);
    colony_retry_budget_record_request(b);
    uv_mutex_unlock(&rt->budget_lock);
}

int colony__gw_runtime_budget_retry(gw_runtime *rt, const gw_route_conf *r)
{
    colony_retry_budget *b = budget_of(rt, r);
    if (!b) return 1;
    uv_mutex_lock(&rt->budget_lock);
    int ok = colony_retry_budget_allow(b) == 0;
    uv_mutex_unlock(&rt->budget_lock);
    return ok;
}

int colony__gw_upstream_pick(gw_upstream_rt *u, const char *key, size_t len, uint64_t now_ms,
                             colony_endpoint **out, int *https)
{
    uv_mutex_lock(&u->lock);
    int rc = colony_balancer_pick(u->balancer, key, len, now_ms, out);
    /* The marking is read here, under the lock feed_balancer rewrites it
     * under (a registry change on the main loop), not later on the worker:
     * a plain read racing that write is a data race. */
    if (rc == 0 && https) *https = colony__gw_endpoint_https(u->conf, *out);
    uv_mutex_unlock(&u->lock);
    return rc;
}

void colony__gw_upstream_release(gw_upstream_rt *u, colony_endpoint *ep, int health, int ok,
                                 uint64_t latency_ms, uint64_t now_ms)
{
    uv_mutex_lock(&u->lock);
    colony_balancer_release(health ? u->balancer : NULL, ep, ok, latency_ms, now_ms);
    uv_mutex_unlock(&u->lock);
}

void colony__gw_upstream_counts(gw_upstream_rt *u, uint64_t now_ms, size_t *count,
                                size_t *available)
{
    uv_mutex_lock(&u->lock);
    *count = colony_balancer_count(u->balancer);
    *available = colony_balancer_available(u->balancer, now_ms);
    uv_mutex_unlock(&u->lock);
}
