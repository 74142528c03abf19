/* The proxy handler (proxy.h): route → pick → forward → stream back, with
 * retries on another instance while nothing has been sent downstream. */
#include "gateway/proxy.h"
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "colony/error.h"
#include "colony/http_parser.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "gateway/access.h"
#include "gateway/breaker.h"
#include "gateway/forward.h"
#include "gateway/transform.h"
#include "gateway/upload.h"

#define GW_MAX_PIECES 64           /* downstream writes waiting at once */
#define GW_QUEUE_HIGH (256u << 10) /* pause the upstream above this many bytes */
#define GW_QUEUE_LOW  (64u << 10)  /* and resume below this many */

_Thread_local unsigned colony__gw_worker;

typedef struct proxy_call {
    gw_proxy *proxy;
    colony_request *req; /* until the response is ended (even when the client left:
                            the server frees the request only once it is ended) */
    int client_gone;     /* the request finished first: the client left */
    gw_runtime *rt;      /* a reference: balancers stay while the call runs */
    const gw_route_conf *route;
    gw_upstream_rt *up;
    colony_endpoint *ep;      /* the current attempt's pick */
    colony_client_call *call; /* the current attempt, while in flight */
    gw_forward fwd;           /* headers and path to send, in the request arena */
    colony_span *span;        /* the gateway's span of this request, or NULL */
    const char *hash_key;
    size_t hash_key_len;
    uint64_t start_ms, try_start_ms;
    uint64_t total_ms;    /* the route's total timeout, or the caller's deadline if sooner */
    size_t deadline_slot; /* X-Colony-Deadline-Ms in fwd.headers */
    int breaker_call;     /* the current attempt was let through the breaker */
    unsigned attempts;
    int started;      /* the response has started downstream */
    int retry_status; /* a retryable status seen in the head, 0 if none */
    int status;       /* the status sent downstream */
    const char *cut;  /* why a started response was cut ("read_timeout"...), or NULL */
    uint64_t bytes_out;
    /* Flow control: pieces written downstream and not yet handed to the
     * kernel, oldest first; the upstream is paused while too much waits. */
    uint32_t piece_len[GW_MAX_PIECES];
    unsigned piece_first, pieces;
    size_t queued;
    int upstream_paused;
    int refs;            /* the downstream request and the upstream call */
    int rl_pending;      /* waiting for the route's rate limit (Redis) */
    int ws;              /* a WebSocket upgrade on a "websocket" route: never retried */
    gw_rl_result limits; /* for the RateLimit-* headers; outcome NONE: no limit */
    gw_upload *upload;   /* a request body routed from the head hook (upload.c), or NULL */

    /* The response cache (cache.h), on routes that have one. */
    const char *path;             /* normalized request path (request arena) */
    gw_cache_status cache_status; /* NONE: the route has no cache */
    char *cache_key;              /* where to store the answer; NULL: not stored */
    gw_cache_fill *fill;          /* the answer being stored while its body arrives */
    gw_cache_waiter waiter;       /* waiting for another miss of the same key */
    int cache_waiting, cache_woken;
    int cache_lead; /* other misses of cache_key wait for this one */
} proxy_call;

/* This miss is done leading its key: the misses waiting for it look again. */
static void cache_release(proxy_call *pc)
{
    if (!pc->cache_lead) return;
    pc->cache_lead = 0;
    gw_proxy *m = pc->proxy->main;
    uv_mutex_lock(&m->cache_lock);
    colony__gw_cache_release(&m->cache, pc->cache_key); /* wakes by cache_wake_post */
    uv_mutex_unlock(&m->cache_lock);
}

static void call_unref(proxy_call *pc)
{
    if (--pc->refs > 0) return;
    gw_proxy *p = pc->proxy;
    cache_release(pc);
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
static gw_upstream_rt *choose_upstream(proxy_call *pc)
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

static int respond_error(proxy_call *pc, int status, const char *error, const char *message)
{
    pc->status = status;
    pc->started = 1;
    if (pc->limits.outcome) colony__gw_ratelimit_headers(pc->req, &pc->limits);
    if (pc->cache_status)
        colony_response_header(pc->req, "X-Cache-Status",
                               colony__gw_cache_status_name(pc->cache_status));
    return colony_respond_error(pc->req, status, error, message);
}

/* Forward declaration: attempts chain through the done callback. */
static void start_attempt(proxy_call *pc);

static gw_cache_request cache_request(proxy_call *pc);

/* A cached route's answer from the upstream: say so, and start storing it
 * when it may be (gw_cache_fill_begin decides). */
static int cache_head(proxy_call *pc, const colony_client_response *res)
{
    gw_proxy *m = pc->proxy->main;
    if (pc->cache_key && !pc->fill && !m->cache_closed) {
        gw_cache_request cr = cache_request(pc);
        uv_mutex_lock(&m->cache_lock);
        pc->fill = colony__gw_cache_fill_begin(&m->cache, pc->route->cache, pc->cache_key, &cr, res,
                                               uv_now(pc->proxy->loop));
        uv_mutex_unlock(&m->cache_lock);
    }
    if (!pc->fill) cache_release(pc); /* nothing to wait for: the waiters go upstream */
    return colony_response_header(pc->req, "X-Cache-Status",
                                  colony__gw_cache_status_name(pc->cache_status));
}

static int head_arrived(colony_client_call *call, const colony_client_response *res, void *ud)
{
    (void)call;
    proxy_call *pc = ud;
    if (pc->client_gone) return 1; /* stop reading: call_done ends the response */
    const gw_route_conf *r = pc->route;
    unsigned bit = res->status == 502   ? GW_RETRY_502
                   : res->status == 503 ? GW_RETRY_503
                   : res->status == 504 ? GW_RETRY_504
                                        : 0;
    if ((r->retry_on & bit) && !pc->ws &&
        colony__gw_forward_may_retry(&pc->fwd, r, pc->attempts, 0) &&
        (!pc->upload || colony__gw_upload_replayable(pc->upload))) {
        pc->retry_status = res->status;
        return 1; /* abort this attempt; done_cb retries */
    }
    int rc = colony__gw_transform_response(pc->req, res, pc->route);
    if (rc == 0 && pc->limits.outcome) colony__gw_ratelimit_headers(pc->req, &pc->limits);
    if (rc == 0 && pc->cache_status) rc = cache_head(pc, res);
    if (rc == 0) rc = colony_response_start(pc->req, res->status);
    if (rc) return 1;
    pc->started = 1;
    pc->status = res->status;
    return 0;
}

/* A piece reached the kernel (or the connection died): resume the upstream
 * once the backlog is low. */
static void piece_written(colony_request *req, int status, void *ud)
{
    (void)req;
    (void)status;
    proxy_call *pc = ud;
    pc->queued -= pc->piece_len[pc->piece_first];
    pc->piece_first = (pc->piece_first + 1) % GW_MAX_PIECES;
    pc->pieces--;
    if (pc->upstream_paused && pc->queued < GW_QUEUE_LOW && pc->call &&
        colony_client_call_resume(pc->call) == 0)
        pc->upstream_paused = 0;
}

/* Streams a piece of the upstream's body downstream. A client slower than
 * the upstream pauses the upstream, so the gateway holds at most about
 * GW_QUEUE_HIGH plus one read per request, whatever the body's size. */
static void data_arrived(colony_client_call *call, const char *data, size_t len, void *ud)
{
    proxy_call *pc = ud;
    if (pc->client_gone || len == 0) return;
    if (pc->fill && colony__gw_cache_fill_add(pc->fill, data, len) != 0) {
        colony__gw_cache_fill_abort(pc->fill); /* over max_entry: streamed, not kept */
        pc->fill = NULL;
    }
    int rc = pc->pieces < GW_MAX_PIECES
                 ? colony_response_write(pc->req, data, len, piece_written, pc)
                 : COLONY_EBUSY;
    if (rc) {
        /* Not taken: the body downstream would have a hole. Stop; the
         * connection closes as the framing is broken. */
        colony_client_call_cancel(call);
        return;
    }
    pc->piece_len[(pc->piece_first + pc->pieces) % GW_MAX_PIECES] = (uint32_t)len;
    pc->pieces++;
    pc->queued += len;
    pc->bytes_out += len;
    if (!pc->upstream_paused && (pc->queued > GW_QUEUE_HIGH || pc->pieces >= GW_MAX_PIECES - 8) &&
        colony_client_call_pause(call) == 0)
        pc->upstream_paused = 1;
}

/* unsent: the call failed before its request reached a connection (refused,
 * unreachable, connect timeout): a connect failure, which may be retried
 * whatever the method, as nginx does, since the upstream saw nothing. */
static int retryable_error(const gw_route_conf *r, int err, int unsent)
{
    if (unsent || err == COLONY_ECONNREFUSED || err == -EHOSTUNREACH || err == -ENETUNREACH)
        return (r->retry_on & GW_RETRY_CONNECT) != 0;
    if (err == COLONY_ECONNRESET || err == -EPIPE || err == COLONY_EPROTO)
        return (r->retry_on & GW_RETRY_RESET) != 0;
    return 0;
}

/* Counts the retry against the route's budget: 1 if it may go. */
static int retry_in_budget(proxy_call *pc)
{
    if (colony__gw_runtime_budget_retry(pc->rt, pc->route)) return 1;
    pc->proxy->stats.retries_over_budget++;
    return 0;
}

static void call_done(colony_client_call *call, int err, const colony_client_response *res,
                      void *ud)
{
    proxy_call *pc = ud;
    gw_proxy *p = pc->proxy;
    pc->call = NULL;
    int unsent = err != 0 && !colony_client_call_was_sent(call);
    if (pc->upload) colony__gw_upload_detach(pc->upload);
    uint64_t now = uv_now(p->loop);
    if (pc->fill) { /* kept only when the whole body came and went downstream */
        gw_proxy *m = p->main;
        if (!err && pc->started && !pc->client_gone && !m->cache_closed) {
            uv_mutex_lock(&m->cache_lock);
            colony__gw_cache_fill_commit(&m->cache, pc->fill, now);
            uv_mutex_unlock(&m->cache_lock);
        } else {
            colony__gw_cache_fill_abort(pc->fill);
        }
        pc->fill = NULL;
    }
    cache_release(pc);
    int failed = err != 0 || pc->retry_status != 0 || (res && res->status >= 500) ||
                 (pc->started && pc->status >= 500);
    /* A call cancelled because the client left says nothing about the
     * instance: release it without feeding passive health (a NULL balancer). */
    int client_left = pc->client_gone;
    colony__gw_upstream_release(pc->up, pc->ep, !client_left, !failed, now - pc->try_start_ms, now);
    pc->ep = NULL;
    if (pc->breaker_call) /* a call the client cancelled proves nothing: not a failure */
        colony__gw_breaker_record(pc->up->breaker_share, client_left || !failed,
                                  now - pc->try_start_ms);
    pc->breaker_call = 0;
    if (pc->ws && !err && res && res->status == 101 && !pc->client_gone) {
        int rc = colony__gw_ws_start(&p->ws, pc->req, pc->route, call, res, &pc->bytes_out);
        if (rc == 0) {
            pc->started = 1;
            pc->status = 101;
        } else {
            p->stats.upstream_failed++;
            respond_error(pc, 502, "bad_gateway", "the upstream's 101 could not be relayed");
        }
    } else if (pc->client_gone) {
        /* Nobody to answer, but the request is freed only once ended. */
        if (pc->started)
            colony_response_abort(pc->req);
        else
            colony_respond_error(pc->req, 499, "client_closed", "the client left");
    } else if (pc->started) {
        if (err) { /* cut, never passed off as complete */
            pc->cut = err == COLONY_ETIMEDOUT ? "read_timeout" : "upstream_failed";
            if (p->m_cut)
                colony_metric_inc(colony_metric_with(p->m_cut, pc->route->match.name, pc->cut), 1);
            colony_response_abort(pc->req);
        } else {
            colony_response_end(pc->req);
        }
    } else if (pc->upload && colony__gw_upload_too_large(pc->upload)) {
        respond_error(pc, 413, "payload_too_large", "the body is larger than this route allows");
    } else if (!pc->ws && (pc->retry_status || retryable_error(pc->route, err, unsent)) &&
               colony__gw_forward_may_retry(&pc->fwd, pc->route, pc->attempts, unsent) &&
               (!pc->upload || colony__gw_upload_replayable(pc->upload)) &&
               now - pc->start_ms < pc->total_ms && retry_in_budget(pc)) {
        pc->retry_status = 0;
        p->stats.retries++;
        if (p->m_retries)
            colony_metric_inc(colony_metric_with(p->m_retries, pc->route->match.name), 1);
        start_attempt(pc);
    } else if (!pc->ws && pc->upload && !colony__gw_upload_replayable(pc->upload) &&
               retryable_error(pc->route, err, unsent) &&
               colony__gw_forward_may_retry(&pc->fwd, pc->route, pc->attempts, unsent)) {
        /* A retry would go, but the streamed body is gone (nginx with
         * proxy_request_buffering off does not retry then either). */
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "upstream failed: %s after the streamed request body had started; a body "
                 "over the %u KiB replay buffer is not retried",
                 colony_strerror(err), GW_REPLAY_MAX >> 10);
        p->stats.upstream_failed++;
        respond_error(pc, 502, "bad_gateway", msg);
    } else if (pc->retry_status) {
        char msg[64];
        snprintf(msg, sizeof(msg), "upstream answered %d on every attempt", pc->retry_status);
        p->stats.upstream_failed++;
        respond_error(pc, 502, "bad_gateway", msg);
    } else if (err == COLONY_ETIMEDOUT) {
        p->stats.timed_out++;
        respond_error(pc, 504, "gateway_timeout",
                      unsent ? "the upstream did not accept a connection in time"
                             : "the upstream did not answer in time");
    } else {
        char msg[256];
        const char *tls = colony_client_call_tls_error(call);
        if (tls)
            snprintf(msg, sizeof(msg), "upstream TLS failed: %s", tls);
        else
            snprintf(msg, sizeof(msg), "upstream failed: %s", colony_strerror(err));
        p->stats.upstream_failed++;
        respond_error(pc, 502, "bad_gateway", msg);
    }
    call_unref(pc);
}

/* The call can take more of the streamed request body (upload.c). */
static void body_wanted(colony_client_call *call, void *ud)
{
    proxy_call *pc = ud;
    colony__gw_upload_wanted(pc->upload, call);
}

/* A small request body has been read whole: the first attempt goes. */
static void body_ready(void *ud)
{
    start_attempt(ud);
}

static void start_attempt(proxy_call *pc)
{
    gw_proxy *p = pc->proxy;
    if (pc->upload) {
        const gw_access *a = pc->route->access;
        int wait = colony__gw_upload_prepare(pc->upload, a ? a->max_body : 0, body_ready, pc);
        if (wait == 413)
            respond_error(pc, 413, "payload_too_large", "the body is larger than allowed here");
        if (wait) return;
    }
    uint64_t now = uv_now(p->loop);
    pc->try_start_ms = now;
    pc->attempts++;
    int https = 0; /* read with the pick, under the upstream's lock */
    if (colony__gw_upstream_pick(pc->up, pc->hash_key, pc->hash_key_len, now, &pc->ep, &https)) {
        p->stats.no_instance++;
        respond_error(pc, 503, "no_healthy_upstream",
                      pc->attempts > 1 ? "no other healthy instance to retry on"
                                       : "no healthy instance of the upstream");
        return;
    }
    gw_breaker_share *breaker = pc->up->breaker_share;
    if (breaker && colony__gw_breaker_allow(breaker)) {
        colony__gw_upstream_release(pc->up, pc->ep, 0, 1, 0, now); /* no call made */
        pc->ep = NULL;
        p->stats.circuit_open++;
        respond_error(pc, 503, "circuit_open",
                      "the upstream is failing: its circuit breaker is open");
        return;
    }
    pc->breaker_call = breaker != NULL;
    uint64_t left = now - pc->start_ms < pc->total_ms ? pc->total_ms - (now - pc->start_ms) : 1;
    uint64_t timeout = pc->route->try_timeout_ms < left ? pc->route->try_timeout_ms : left;
    colony_client_request r = {0};
    int rc = colony__gw_transform_deadline(&pc->fwd, pc->deadline_slot, left);
    if (rc == 0)
        rc = colony__gw_forward_target(&pc->fwd, colony_endpoint_address(pc->ep), https,
                                       pc->up->conf, &r);
    if (rc == 0) {
        r.head_cb = head_arrived;
        r.data_cb = data_arrived;
        r.timeout_ms = timeout ? timeout : 1; /* until the head: "try" within "total" */
        r.timeout_to_head = 1;                /* the body: silences under "read" */
        r.read_timeout_ms = pc->route->read_timeout_ms;
        r.connect_timeout_ms = pc->route->connect_timeout_ms;
        if (pc->upload) colony__gw_upload_request(pc->upload, &r, body_wanted);
        rc = colony_client_request_send(p->client, &r, call_done, pc, &pc->call);
        if (rc == 0 && pc->upload) colony__gw_upload_attach(pc->upload, pc->call);
    }
    if (rc) {
        colony__gw_upstream_release(pc->up, pc->ep, 1, 1, 0, now);
        pc->ep = NULL;
        if (pc->breaker_call) colony__gw_breaker_record(breaker, 1, 0);
        pc->breaker_call = 0;
        p->stats.no_instance++;
        respond_error(pc, 503, "overloaded", "the gateway cannot reach the upstream now");
        return;
    }
    pc->refs++;
}

static void log_access(proxy_call *pc, colony_request *req)
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
    proxy_call *pc = ud;
    gw_proxy *p = pc->proxy;
    if (pc->call || pc->rl_pending || pc->cache_waiting)
        pc->client_gone = 1; /* what is pending ends the response */
    if (pc->call) colony_client_call_cancel(pc->call);
    if (pc->rl_pending) pc->client_gone = 1;
    if (pc->upload) colony__gw_upload_abandon(pc->upload); /* a small body being read */
    p->stats.requests++;
    if (p->m_requests) {
        char code[8];
        snprintf(code, sizeof(code), "%d", pc->status ? pc->status : 499);
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
    call_unref(pc);
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

static const char *request_header(void *req, const char *name)
{
    return colony_request_header(req, name);
}

/* A CORS preflight for a route whose methods leave out OPTIONS matches by the
 * method it asks about, when that route answers preflights (has "cors"). */
static int preflight_match(gw_runtime *rt, colony_request *req, const char *path, gw_match *m)
{
    if (!colony__gw_access_is_preflight(req)) return 0;
    const char *method = colony_request_header(req, "Access-Control-Request-Method");
    if (!colony__gw_match(rt->cfg->table, rt->cfg->nroutes, method,
                          colony_request_header(req, "Host"), path, request_header, req, m))
        return 0;
    const gw_route_conf *r = m->route->target;
    return r->access && r->access->cors;
}

static gw_cache_request cache_request(proxy_call *pc)
{
    colony_request *req = pc->req;
    const char *query = colony_request_query(req);
    const char *target =
        *query ? colony_arena_sprintf(colony_request_arena(req), "%s?%s", pc->path, query)
               : pc->path;
    return (gw_cache_request){.method = colony_request_method(req),
                              .route = pc->route->match.name,
                              .host = colony_request_header(req, "Host"),
                              .target = target ? target : pc->path,
                              .header = request_header,
                              .ud = req,
                              .credentials = pc->route->access && (pc->route->access->napi_keys ||
                                                                   pc->route->access->jwt)};
}

static void cache_wake_post(gw_cache_waiter *w);

/* Answers from the route's cache when it holds a fresh answer, else goes
 * upstream (and notes where to store what comes back). A miss while another
 * request of the same key is upstream waits for it (coalescing), once. */
static void forward_or_answer(proxy_call *pc)
{
    gw_proxy *p = pc->proxy, *m = p->main;
    if (!pc->route->cache || m->cache_closed) {
        start_attempt(pc);
        return;
    }
    if (pc->ws || pc->upload) { /* an upgrade or a request with a body: never a hit */
        pc->cache_status = GW_CACHE_BYPASS;
        uv_mutex_lock(&m->cache_lock);
        colony__gw_cache_count(&m->cache, pc->route->match.name, pc->cache_status);
        uv_mutex_unlock(&m->cache_lock);
        start_attempt(pc);
        return;
    }
    gw_cache_request cr = cache_request(pc);
    const gw_cache_entry *hit;
    int store;
    uint64_t now = uv_now(p->loop);
    colony__free(pc->cache_key); /* a waiter looks again */
    /* The entries are shared by the workers: a hit is answered under the lock
     * (its bytes are copied into the response), so no worker evicts it meanwhile. */
    uv_mutex_lock(&m->cache_lock);
    pc->cache_status = colony__gw_cache_lookup(&m->cache, pc->route->cache, &cr, now,
                                               &pc->cache_key, &hit, &store);
    if (!hit && pc->cache_key && pc->cache_status != GW_CACHE_BYPASS && !pc->cache_woken) {
        /* Misses coalesce across workers: the leader may run on another
         * loop, so the waiter is woken through its own worker's mailbox. */
        pc->waiter.wake = cache_wake_post;
        int joined = colony__gw_cache_join(&m->cache, pc->cache_key, &pc->waiter);
        if (joined == 1) {
            uv_mutex_unlock(&m->cache_lock);
            pc->cache_waiting = 1;
            pc->refs++;
            return;
        }
        pc->cache_lead = joined == 0;
    }
    colony__gw_cache_count(&m->cache, pc->route->match.name, pc->cache_status);
    if (!hit) {
        uv_mutex_unlock(&m->cache_lock);
        start_attempt(pc);
        return;
    }
    pc->status = hit->status;
    pc->started = 1;
    pc->bytes_out = strcmp(cr.method, "HEAD") == 0 ? 0 : hit->body_len;
    if (pc->limits.outcome) colony__gw_ratelimit_headers(pc->req, &pc->limits);
    int rc = colony__gw_cache_respond(pc->req, hit, pc->route, now);
    uv_mutex_unlock(&m->cache_lock);
    if (rc != 0) colony_response_abort(pc->req);
}

/* Called by the leader's thread (under the cache lock): the waiter goes to
 * its worker's mailbox, and that loop wakes it (colony__gw_proxy_wake_waiters). */
static void cache_wake_post(gw_cache_waiter *w)
{
    gw_proxy *p = COLONY__CONTAINER_OF(w, proxy_call, waiter)->proxy;
    uv_mutex_lock(&p->mail_lock);
    colony__list_push_back(&p->woken, &w->link);
    uv_mutex_unlock(&p->mail_lock);
    uv_async_send(&p->wake);
}

static void cache_woken(gw_cache_waiter *w)
{
    proxy_call *pc = COLONY__CONTAINER_OF(w, proxy_call, waiter);
    pc->cache_waiting = 0;
    pc->cache_woken = 1;
    if (pc->client_gone)
        colony_respond_error(pc->req, 499, "client_closed", "the client left");
    else
        forward_or_answer(pc);
    call_unref(pc);
}

void colony__gw_proxy_wake_waiters(gw_proxy *p)
{
    colony__list list;
    colony__list_init(&list);
    uv_mutex_lock(&p->mail_lock);
    for (colony__list *n; (n = colony__list_pop_front(&p->woken));)
        colony__list_push_back(&list, n);
    uv_mutex_unlock(&p->mail_lock);
    for (colony__list *n; (n = colony__list_pop_front(&list));)
        cache_woken(COLONY__CONTAINER_OF(n, gw_cache_waiter, link));
}

/* The tighter of two limits (global and route) is the one the headers tell. */
static void note_limit(proxy_call *pc, const gw_rl_result *res)
{
    if (res && res->outcome && (!pc->limits.outcome || res->remaining < pc->limits.remaining))
        pc->limits = *res;
}

/* The route's rate limit has decided (at once, or when Redis answered). */
static void route_checked(void *ud, const gw_rl_result *res)
{
    proxy_call *pc = ud;
    pc->rl_pending = 0;
    if (pc->client_gone) {
        colony_respond_error(pc->req, 499, "client_closed", "the client left");
    } else if (res->outcome != GW_RL_ALLOW) {
        pc->status = res->outcome == GW_RL_LIMITED ? 429 : 503;
        pc->started = 1;
        colony__gw_ratelimit_refuse(pc->req, res);
    } else {
        note_limit(pc, res);
        forward_or_answer(pc);
    }
    call_unref(pc);
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
                          colony_request_header(req, "Host"), path, request_header, req, &m) &&
        !preflight_match(rt, req, path, &m)) {
        p->stats.not_found++;
        if (global) colony__gw_ratelimit_headers(req, global);
        colony_respond_error(req, 404, "not_found", "no route matches this request");
        return;
    }
    proxy_call *pc = colony__calloc(1, sizeof(*pc));
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
        call_unref(pc);
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
        respond_error(pc, rc == COLONY_E2BIG ? 414 : 503,
                      rc == COLONY_E2BIG ? "uri_too_long" : "overloaded",
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
        forward_or_answer(pc);
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
    colony__gw_cache_init(&p->cache, GW_CACHE_DEFAULT_MAX_BYTES); /* before anything can fail */
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
    if (rt) { /* entries of routes that kept their name and cache stay */
        uv_mutex_lock(&p->cache_lock);
        colony__gw_cache_set_max(&p->cache, rt->cfg->cache_max_bytes);
        colony__gw_cache_retain(&p->cache, route_still_cached, rt->cfg);
        uv_mutex_unlock(&p->cache_lock);
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
