/* The proxy handler (proxy.h): route → pick → forward → stream back, with
 * retries on another instance while nothing has been sent downstream. This
 * file routes a request, applies the rate limits and owns the request's
 * lifetime; each attempt upstream is proxy_attempt.c's, the response cache's
 * glue proxy_cache.c's. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "colony/http_parser.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "gateway/access.h"
#include "gateway/proxy_call.h"
#include "gateway/transform.h"

_Thread_local unsigned colony__gw_worker;

void colony__gw_call_unref(gw_proxy_call *pc)
{
    if (--pc->refs > 0) return;
    gw_proxy *p = pc->proxy;
    colony__gw_call_cache_release(pc);
    colony__gw_cache_fill_abort(pc->fill);
    colony__free(pc->cache_key);
    colony__gw_runtime_unref(pc->rt);
    p->stats.in_flight--;
    colony__free(pc);
    if (p != p->main) colony__gw_worker_maybe_close(p); /* the last request of a stopping worker */
}

static uint64_t next_random(gw_proxy *p)
{
    uint64_t z = (p->random_state += 0x9e3779b97f4a7c15ULL); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A weighted choice among the route's splits (canary, blue-green). */
static gw_upstream_rt *choose_upstream(gw_proxy_call *pc)
{
    const gw_route_conf *r = pc->route;
    size_t chosen = r->splits[0].upstream;
    if (r->nsplits > 1) {
        uint64_t x = next_random(pc->proxy) % r->total_weight;
        for (size_t i = 0; i < r->nsplits; i++) {
            if (x < r->splits[i].weight) {
                chosen = r->splits[i].upstream;
                break;
            }
            x -= r->splits[i].weight;
        }
    }
    return &pc->rt->ups[chosen];
}

static void log_access(gw_proxy_call *pc, colony_request *req)
{
    uint64_t ms = uv_now(pc->proxy->loop) - pc->start_ms;
    COLONY_LOG_INFO(
        "access", COLONY_LF_STR("method", colony_request_method(req)),
        COLONY_LF_STR("path", colony_request_path(req)),
        COLONY_LF_STR("route", pc->route->match.name), COLONY_LF_INT("status", pc->status),
        COLONY_LF_INT("bytes_out", (long long)pc->bytes_out),
        COLONY_LF_INT("duration_ms", (long long)ms),
        COLONY_LF_STR("upstream", pc->up ? pc->up->conf->name : ""),
        COLONY_LF_INT("attempts", pc->attempts), COLONY_LF_STR("client", colony_request_peer(req)),
        COLONY_LF_INT("worker", pc->proxy->index),
        COLONY_LF_STR("trace_id", pc->span ? colony_span_trace_id_hex(pc->span) : ""),
        COLONY_LF_STR("truncated", pc->cut)); /* null: whole */
}

static void request_over(colony_request *req, int status, void *ud)
{
    gw_proxy_call *pc = ud;
    gw_proxy *p = pc->proxy;
    if (pc->call || pc->rl_pending || pc->cache_waiting)
        pc->client_gone = 1; /* what is pending ends the response */
    if (pc->call) colony_client_call_cancel(pc->call);
    if (pc->rl_pending) pc->client_gone = 1;
    if (pc->upload) colony__gw_upload_abandon(pc->upload); /* a small body being read */
    p->stats.requests++;
    if (p->m_requests) {
        char code[4]; /* by hand, not snprintf: once per request */
        int sc = pc->status >= 100 && pc->status < 1000 ? pc->status : 499;
        code[0] = (char)('0' + sc / 100);
        code[1] = (char)('0' + sc / 10 % 10);
        code[2] = (char)('0' + sc % 10);
        code[3] = '\0';
        colony_metric_inc(colony_metric_with(p->m_requests, pc->route->match.name, code,
                                             pc->up ? pc->up->conf->name : ""),
                          1);
    }
    if (p->m_duration)
        colony_metric_observe(colony_metric_with(p->m_duration, pc->route->match.name),
                              (double)(uv_now(p->loop) - pc->start_ms) / 1000.0);
    if (pc->span) {
        if (colony_span_is_recording(pc->span)) {
            colony_span_set_int(pc->span, "http.status_code", pc->status ? pc->status : 499);
            colony_span_set_int(pc->span, "colony.attempts", pc->attempts);
            if (pc->status >= 500 || status != 0)
                colony_span_set_status(pc->span, COLONY_SPAN_STATUS_ERROR, NULL);
        }
    }
    if (p->access_log) log_access(pc, req);
    if (pc->span) colony_span_end(pc->span);
    pc->span = NULL;
    colony__gw_call_unref(pc);
}

/* The gateway's span continues the client's trace (a valid traceparent) or
 * starts one; upstreams get it as their parent. */
static colony_span *start_span(colony_tracer *t, colony_request *req, const gw_route_conf *route,
                               const gw_upstream_rt *up)
{
    colony_trace_context parent;
    const char *tp = colony_request_header(req, "traceparent");
    if (!tp || colony_traceparent_parse(tp, strlen(tp), &parent) != 0)
        memset(&parent, 0, sizeof(parent));
    colony_span *s = colony_span_start(t, NULL, COLONY_SPAN_SERVER, &parent);
    if (s && colony_span_is_recording(s)) {
        char name[160];
        snprintf(name, sizeof(name), "%s %s", colony_request_method(req), route->match.name);
        colony_span_update_name(s, name);
        colony_span_set_str(s, "http.method", colony_request_method(req));
        colony_span_set_str(s, "http.target", colony_request_target(req));
        colony_span_set_str(s, "http.route", route->match.name);
        colony_span_set_str(s, "colony.upstream", up->conf->name);
    }
    return s;
}

/* A CORS preflight for a route whose methods leave out OPTIONS matches by the
 * method it asks about, when that route answers preflights (has "cors"). */
static int preflight_match(gw_runtime *rt, colony_request *req, const char *path, gw_match *m)
{
    if (!colony__gw_access_is_preflight(req)) return 0;
    const char *method = colony_request_header(req, "Access-Control-Request-Method");
    if (!colony__gw_match(rt->cfg->table, rt->cfg->nroutes, method,
                          colony_request_header(req, "Host"), path, colony__gw_request_header, req,
                          m))
        return 0;
    const gw_route_conf *r = m->route->target;
    return r->access && r->access->cors;
}

/* The tighter of two limits (global and route) is the one the headers tell. */
static void note_limit(gw_proxy_call *pc, const gw_rl_result *res)
{
    if (res && res->outcome && (!pc->limits.outcome || res->remaining < pc->limits.remaining))
        pc->limits = *res;
}

/* The route's rate limit has decided (at once, or when Redis answered). */
static void route_checked(void *ud, const gw_rl_result *res)
{
    gw_proxy_call *pc = ud;
    pc->rl_pending = 0;
    if (pc->client_gone) {
        colony_respond_error(pc->req, 499, "client_closed", "the client left");
    } else if (res->outcome != GW_RL_ALLOW) {
        pc->status = res->outcome == GW_RL_LIMITED ? 429 : 503;
        pc->started = 1;
        colony__gw_ratelimit_refuse(pc->req, res);
    } else {
        note_limit(pc, res);
        colony__gw_call_forward_or_answer(pc);
    }
    colony__gw_call_unref(pc);
}

static void route_request(gw_proxy *p, colony_request *req, const gw_rl_result *global)
{
    if (!p->current) { /* this worker's runtime, held while its requests start */
        colony_respond_error(req, 503, "not_ready", "the gateway has no routes loaded");
        return;
    }
    const char *raw = colony_request_path(req);
    size_t raw_len = strlen(raw);
    char *path = colony_arena_alloc(colony_request_arena(req), raw_len + 1);
    if (!path) {
        colony_respond_error(req, 503, "overloaded", "out of memory");
        return;
    }
    if (colony_http_path_normalize(raw, raw_len, path) < 0) {
        p->stats.bad_request++;
        colony_respond_error(req, 400, "bad_request", "the request path is not valid");
        return;
    }
    gw_runtime *rt = p->current;
    gw_match m;
    if (!colony__gw_match(rt->cfg->table, rt->cfg->nroutes, colony_request_method(req),
                          colony_request_header(req, "Host"), path, colony__gw_request_header, req,
                          &m) &&
        !preflight_match(rt, req, path, &m)) {
        p->stats.not_found++;
        if (global) colony__gw_ratelimit_headers(req, global);
        colony_respond_error(req, 404, "not_found", "no route matches this request");
        return;
    }
    gw_proxy_call *pc = colony__calloc(1, sizeof(*pc));
    if (!pc) {
        colony_respond_error(req, 503, "overloaded", "out of memory");
        return;
    }
    pc->proxy = p;
    pc->req = req;
    pc->rt = colony__gw_runtime_ref(rt);
    pc->route = m.route->target;
    pc->path = path;
    pc->start_ms = uv_now(p->loop);
    pc->refs = 1;
    pc->upload = colony__gw_upload_of(req);
    note_limit(pc, global);
    p->stats.in_flight++;
    if (colony_request_on_finish(req, request_over, pc)) {
        pc->refs = 1;
        colony__gw_call_unref(pc);
        colony_respond_error(req, 503, "overloaded", "out of memory");
        return;
    }
    pc->up = choose_upstream(pc);
    char traceparent[56], *tp = NULL;
    if (p->tracer && (pc->span = start_span(p->tracer, req, pc->route, pc->up))) {
        colony_span_traceparent(pc->span, traceparent);
        tp = traceparent;
    }
    int rc = colony__gw_forward_prepare(&pc->fwd, req, &m, path, pc->up->conf, tp);
    if (rc == 0) rc = colony__gw_transform_request(&pc->fwd, pc->route, &pc->deadline_slot);
    pc->ws = pc->route->websocket && colony__gw_ws_requested(req);
    if (rc == 0 && pc->ws) rc = colony__gw_ws_forward(&pc->fwd, req);
    if (rc) {
        colony__gw_call_respond_error(
            pc, rc == COLONY_E2BIG ? 414 : 503, rc == COLONY_E2BIG ? "uri_too_long" : "overloaded",
            rc == COLONY_E2BIG ? "the rewritten path is too long" : "out of memory");
        return;
    }
    if ((rc = colony__gw_access_check(pc->route->access, req, &pc->fwd)) != 0) {
        pc->status = rc;
        pc->started = 1;
        return;
    }
    pc->hash_key = colony__gw_forward_hash_key(&pc->fwd, req, pc->up->conf, &pc->hash_key_len);
    pc->total_ms = colony__gw_deadline_total(req, pc->route);
    colony__gw_runtime_budget_request(rt, pc->route);
    const gw_ratelimit_conf *limit = pc->route->rate_limit;
    if (!limit) {
        colony__gw_call_forward_or_answer(pc);
        return;
    }
    char key[256];
    gw_rl_result res;
    pc->refs++;
    pc->rl_pending = 1;
    if (colony__gw_ratelimit_check(&p->rl, pc->route->match.name, limit,
                                   colony__gw_ratelimit_key(limit, req, key, sizeof(key)), &res,
                                   route_checked, pc) == 0)
        route_checked(pc, &res);
}

typedef struct global_wait {
    gw_proxy *proxy;
    colony_request *req;
} global_wait;

static void global_checked(void *ud, const gw_rl_result *res)
{
    global_wait *w = ud;
    if (res->outcome != GW_RL_ALLOW)
        colony__gw_ratelimit_refuse(w->req, res);
    else
        route_request(w->proxy, w->req, res);
}

/* The global rate limit comes before routing: it protects the gateway too. */
void colony__gw_proxy_handle(colony_request *req, void *proxy)
{
    if (colony__gw_upload_body_done(req)) return; /* routed from the head hook (upload.c) */
    gw_proxy *p = colony__gw_worker_of(proxy, req);
    if (!p) {
        colony_respond_error(req, 503, "shutting_down", "the gateway is shutting down");
        return;
    }
    const gw_ratelimit_conf *limit = p->current ? p->current->cfg->rate_limit : NULL;
    if (!limit) {
        route_request(p, req, NULL);
        return;
    }
    global_wait *w = colony_arena_alloc(colony_request_arena(req), sizeof(*w));
    if (!w) {
        colony_respond_error(req, 503, "overloaded", "out of memory");
        return;
    }
    w->proxy = p;
    w->req = req;
    char key[256];
    gw_rl_result res;
    if (colony__gw_ratelimit_check(&p->rl, "_global", limit,
                                   colony__gw_ratelimit_key(limit, req, key, sizeof(key)), &res,
                                   global_checked, w) == 0)
        global_checked(w, &res);
}

int colony__gw_proxy_init(gw_proxy *p, uv_loop_t *loop, colony_metrics *m, int access_log)
{
    memset(p, 0, sizeof(*p));
    colony__gw_malloc_tune(); /* the gateway's process: once at start */
    /* before anything can fail: colony__gw_cache_free is safe after it */
    if (colony__gw_cache_init(&p->cache, GW_CACHE_DEFAULT_MAX_BYTES) != 0) return COLONY_ENOMEM;
    p->loop = loop;
    p->main = p;
    p->access_log = access_log;
    p->random_state = uv_hrtime();
    colony_client_options co;
    colony_client_options_init(&co);
    p->client = colony_client_new(loop, &co);
    if (!p->client) return COLONY_ENOMEM;
    if (m) {
        static const char *const by_route_code[] = {"route", "code", "upstream", NULL};
        static const char *const by_route[] = {"route", NULL};
        p->m_requests = colony_metrics_counter(m, "gateway_requests_total",
                                               "Requests answered, by route, status code and "
                                               "upstream.",
                                               by_route_code);
        p->m_duration = colony_metrics_histogram(m, "gateway_request_duration_seconds",
                                                 "Time from the request to the end of the "
                                                 "response, by route.",
                                                 by_route, NULL, 0);
        p->m_retries =
            colony_metrics_counter(m, "gateway_retries_total",
                                   "Attempts retried on another instance, by route.", by_route);
        static const char *const by_route_reason[] = {"route", "reason", NULL};
        p->m_cut = colony_metrics_counter(m, "gateway_responses_truncated_total",
                                          "Responses cut after their head was sent (the "
                                          "upstream went silent past \"read\" or failed), "
                                          "by route and reason.",
                                          by_route_reason);
        if (!p->m_requests || !p->m_duration || !p->m_retries || !p->m_cut) return COLONY_ENOMEM;
    }
    if (colony__gw_ws_init(&p->ws, m, access_log)) return COLONY_ENOMEM;
    if (m && colony__gw_cache_metrics(&p->cache, m) != 0) return COLONY_ENOMEM;
    int rc = colony__gw_ratelimit_init(&p->rl, loop, m, (colony_clock){0});
    return rc ? rc : colony__gw_workers_init(p); /* last: its handle must be closed */
}

static int route_still_cached(void *ud, const char *route, size_t len)
{
    const gw_config *cfg = ud;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const char *name = cfg->routes[i].match.name;
        if (strlen(name) == len && memcmp(name, route, len) == 0)
            return cfg->routes[i].cache != NULL;
    }
    return 0;
}

void colony__gw_proxy_install(gw_proxy *p, gw_runtime *rt)
{
    gw_runtime *old = p->current;
    if (rt) colony__gw_workers_adopt(p, rt);
    colony__gw_workers_publish(p, rt); /* the workers take it at their next request */
    if (rt) colony__gw_ratelimit_use_redis(&p->rl, rt->cfg->ratelimit_redis);
    if (rt) {                 /* entries of routes that kept their name and cache stay */
        uint64_t largest = 0; /* the shards must each hold the largest entry allowed */
        for (size_t i = 0; i < rt->cfg->nroutes; i++)
            if (rt->cfg->routes[i].cache && rt->cfg->routes[i].cache->max_entry > largest)
                largest = rt->cfg->routes[i].cache->max_entry;
        colony__gw_cache_set_max(&p->cache, rt->cfg->cache_max_bytes, largest);
        colony__gw_cache_retain(&p->cache, route_still_cached, rt->cfg); /* shard locks */
    }
    colony__gw_runtime_unref(old);
}

static void limits_closed(void *ud)
{
    gw_proxy *p = ud;
    p->cache_closed = 1; /* first: waiters woken by the free go upstream */
    colony__gw_cache_free(&p->cache);
    colony__gw_workers_free(p, p->close_cb, p->close_ud);
    colony_client_close(p->client, colony__gw_workers_closed, p);
    p->client = NULL;
}

void colony__gw_proxy_close(gw_proxy *p, void (*cb)(void *ud), void *ud)
{
    colony__gw_proxy_install(p, NULL);
    p->close_cb = cb;
    p->close_ud = ud;
    colony__gw_ratelimit_close(&p->rl, limits_closed, p);
}
