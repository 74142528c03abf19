/* The gateway's admin endpoints on the service's listener (daemon.h):
 * GET /gateway/routes, GET /gateway/stats, POST /gateway/reload. With
 * admin.token set they need "Authorization: Bearer <token>"; /health, /ready
 * and /metrics stay open for probes and Prometheus. */
#include <jansson.h>
#include <string.h>
#include "gateway/daemon.h"

static const char *const kind_names[] = {"prefix", "path", "pattern"};

/* Compares without an early exit, so the time does not tell how much matched. */
static int token_matches(const char *given, const char *token)
{
    size_t n = strlen(token), m = strlen(given);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(token[i] ^ (i < m ? given[i] : 0));
    return diff == 0;
}

static int authorized(gw_daemon *d, colony_request *req)
{
    if (!d->token) return 1;
    const char *auth = colony_request_header(req, "Authorization");
    if (auth && strncmp(auth, "Bearer ", 7) == 0 && token_matches(auth + 7, d->token)) return 1;
    colony_response_header(req, "WWW-Authenticate", "Bearer");
    colony_respond_error(req, 401, "unauthorized", "the admin API needs its bearer token");
    return 0;
}

static json_t *strings(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *route_json(const gw_config *cfg, const gw_route_conf *r)
{
    const gw_route *m = &r->match;
    json_t *split = json_array();
    for (size_t i = 0; split && i < r->nsplits; i++)
        json_array_append_new(split, json_pack("{s:s,s:i}", "upstream",
                                               cfg->upstreams[r->splits[i].upstream].name, "weight",
                                               (json_int_t)r->splits[i].weight));
    json_t *o = json_pack("{s:s,s:s,s:s,s:o,s:o,s:b,s:o}", "name", m->name, kind_names[m->kind],
                          m->path, "rewrite", m->rewrite ? m->rewrite : "", "hosts",
                          strings(m->hosts, m->nhosts), "methods", strings(m->methods, m->nmethods),
                          "strip_prefix", m->strip_prefix, "split", split);
    if (o && !m->rewrite) json_object_del(o, "rewrite");
    return o;
}

static void get_routes(colony_request *req, void *ud)
{
    gw_daemon *d = ud;
    if (!authorized(d, req)) return;
    const gw_config *cfg = d->proxy.current->cfg;
    json_t *routes = json_array();
    for (size_t i = 0; routes && i < cfg->nroutes; i++)
        json_array_append_new(routes, route_json(cfg, &cfg->routes[i]));
    json_t *body =
        json_pack("{s:I,s:o}", "generation", (json_int_t)d->generation, "routes", routes);
    if (body)
        colony_respond_json(req, 200, body);
    else
        colony_respond_error(req, 500, "internal", "out of memory");
    json_decref(body);
}

/* The balancer is shared with the workers: read under the upstream's lock. */
static json_t *upstream_json(gw_upstream_rt *u, uint64_t now)
{
    json_t *eps = json_array();
    uv_mutex_lock(&u->lock);
    size_t n = colony_balancer_count(u->balancer);
    for (size_t i = 0; eps && i < n; i++) {
        colony_endpoint *ep = colony_balancer_at(u->balancer, i);
        json_t *one = json_pack(
            "{s:s,s:s,s:i,s:I,s:b,s:i}", "id", colony_endpoint_id(ep), "address",
            colony_endpoint_address(ep), "weight", (json_int_t)colony_endpoint_weight(ep), "active",
            (json_int_t)colony_endpoint_active(ep), "ejected", colony_endpoint_ejected(ep, now),
            "times_ejected", (json_int_t)colony_endpoint_times_ejected(ep));
        if (one) json_object_set_new(one, "down", json_boolean(colony_endpoint_down(ep)));
        const char *why = colony__gw_active_reason(u->active, ep);
        if (one && why) json_object_set_new(one, "down_reason", json_string(why));
        json_array_append_new(eps, one);
    }
    size_t available = colony_balancer_available(u->balancer, now);
    uv_mutex_unlock(&u->lock);
    json_t *o = json_pack("{s:s,s:I,s:o}", "name", u->conf->name, "available",
                          (json_int_t)available, "instances", eps);
    if (o && u->breaker_share)
        json_object_set_new(
            o, "breaker",
            json_string(colony_breaker_state_name(colony__gw_breaker_state(u->breaker_share))));
    return o;
}

/* Per worker: requests answered and the generation of the runtime it holds. */
static json_t *workers_json(const gw_proxy_totals *t)
{
    json_t *a = json_array();
    for (unsigned i = 0; a && i < t->workers; i++)
        json_array_append_new(a, json_pack("{s:i,s:I,s:I}", "worker", (int)i, "requests",
                                           (json_int_t)t->per_worker[i], "generation",
                                           (json_int_t)t->generation[i]));
    return a;
}

static void get_stats(colony_request *req, void *ud)
{
    gw_daemon *d = ud;
    if (!authorized(d, req)) return;
    gw_proxy_totals totals;
    colony__gw_proxy_totals(&d->proxy, &totals);
    const gw_proxy_totals *s = &totals;
    gw_runtime *rt = d->proxy.current;
    uint64_t now = uv_now(d->loop);
    json_t *ups = json_array();
    for (size_t i = 0; ups && i < rt->cfg->nupstreams; i++)
        json_array_append_new(ups, upstream_json(&rt->ups[i], now));
    json_t *body = json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "requests", (json_int_t)s->requests,
        "in_flight", (json_int_t)s->in_flight, "not_found", (json_int_t)s->not_found, "bad_request",
        (json_int_t)s->bad_request, "no_instance", (json_int_t)s->no_instance, "upstream_failed",
        (json_int_t)s->upstream_failed, "timed_out", (json_int_t)s->timed_out, "retries",
        (json_int_t)s->retries, "generation", (json_int_t)d->generation, "reloads",
        (json_int_t)d->reloads, "reloads_failed", (json_int_t)d->reloads_failed, "upstreams", ups);
    if (body) {
        json_object_set_new(body, "circuit_open", json_integer((json_int_t)s->circuit_open));
        json_object_set_new(body, "retries_over_budget",
                            json_integer((json_int_t)s->retries_over_budget));
        json_object_set_new(body, "websocket_tunnels", json_integer((json_int_t)s->ws_open));
        json_object_set_new(body, "websocket_tunnels_total", json_integer((json_int_t)s->ws_total));
        json_object_set_new(body, "workers", json_integer((json_int_t)d->workers));
        json_object_set_new(body, "per_worker", workers_json(s));
        gw_cache *c = &d->proxy.cache; /* atomic counters; the shards' sums under their locks */
        json_object_set_new(
            body, "cache",
            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "hits",
                      (json_int_t)c->stats.hits, "misses", (json_int_t)c->stats.misses, "bypasses",
                      (json_int_t)c->stats.bypasses, "expired", (json_int_t)c->stats.expired,
                      "stored", (json_int_t)c->stats.stored, "not_stored",
                      (json_int_t)c->stats.not_stored, "evicted", (json_int_t)c->stats.evicted,
                      "entries", (json_int_t)colony__gw_cache_entries(c), "bytes",
                      (json_int_t)colony__gw_cache_bytes(c), "max_bytes",
                      (json_int_t)c->max_bytes));
        json_object_set_new(json_object_get(body, "cache"), "coalesced",
                            json_integer((json_int_t)c->stats.coalesced));
        json_object_set_new(json_object_get(body, "cache"), "shards",
                            json_integer((json_int_t)atomic_load(&c->nshards)));
    }
    if (body)
        colony_respond_json(req, 200, body);
    else
        colony_respond_error(req, 500, "internal", "out of memory");
    json_decref(body);
}

static void post_reload(colony_request *req, void *ud)
{
    gw_daemon *d = ud;
    if (!authorized(d, req)) return;
    if (colony__gw_daemon_reload(d) != 0) {
        char text[768];
        colony_respond_error(req, 400, "invalid_routes",
                             colony_config_error_format(&d->last_error, text, sizeof(text)));
        return;
    }
    json_t *body =
        json_pack("{s:b,s:I,s:I}", "reloaded", 1, "generation", (json_int_t)d->generation, "routes",
                  (json_int_t)d->proxy.current->cfg->nroutes);
    if (body)
        colony_respond_json(req, 200, body);
    else
        colony_respond_error(req, 500, "internal", "out of memory");
    json_decref(body);
}

int colony__gw_admin_routes(gw_daemon *d, colony_router *r)
{
    int rc = colony_router_add(r, "GET", "/gateway/routes", get_routes, d);
    if (!rc) rc = colony_router_add(r, "GET", "/gateway/stats", get_stats, d);
    if (!rc) rc = colony_router_add(r, "POST", "/gateway/reload", post_reload, d);
    return rc;
}
