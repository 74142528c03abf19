/* The proxy: a colony_server handler that routes each request, picks an
 * instance of the route's upstream, forwards the request with the forwarding
 * headers, streams the response back and retries where the route allows.
 * Errors are JSON: 400 (bad path), 404 (no route), 502 (upstream failed),
 * 503 (no healthy instance), 504 (timeout). One loop thread (see
 * docs/gateway.md, "Threads"). */
#ifndef COLONY_GATEWAY_PROXY_H
#define COLONY_GATEWAY_PROXY_H

#include <stdint.h>
#include "colony/http_client.h"
#include "colony/metrics.h"
#include "colony/trace.h"
#include "colony/http_server.h"
#include "gateway/cache.h"
#include "gateway/ratelimit.h"
#include "gateway/runtime.h"
#include "gateway/websocket.h"

typedef struct gw_proxy_stats {
    uint64_t requests;  /* answered, by the gateway or an upstream */
    uint64_t in_flight; /* forwarded and not finished */
    uint64_t not_found, bad_request, no_instance, upstream_failed, timed_out;
    uint64_t retries;
    uint64_t circuit_open;        /* answered 503 circuit_open */
    uint64_t retries_over_budget; /* retries refused by the route's retry budget */
} gw_proxy_stats;

typedef struct gw_proxy {
    uv_loop_t *loop;
    colony_client *client; /* keep-alive pools to the upstreams; owned */
    colony_tracer *tracer; /* a span per request; NULL: tracing off (not owned) */
    gw_runtime *current;   /* new requests take this one */
    int access_log;
    uint64_t random_state;
    gw_proxy_stats stats;
    colony_metric *m_requests; /* gateway_requests_total{route,code,upstream} */
    colony_metric *m_duration; /* gateway_request_duration_seconds{route} */
    colony_metric *m_retries;  /* gateway_retries_total{route} */
    gw_ratelimit rl;           /* rate limit state, kept across reloads */
    uint64_t max_body;         /* proxy.max_body: request bodies, streamed or not; 0 = none */
    gw_ws ws;                  /* WebSocket tunnels (websocket.c) */
    gw_cache cache;            /* response cache, kept across reloads (by route name) */
    int cache_closed;          /* freed at close: nothing more is stored */
    void (*close_cb)(void *ud);
    void *close_ud;
} gw_proxy;

/* Sets up p on loop (client, metrics in m, which may be NULL). 0 or ENOMEM. */
int colony__gw_proxy_init(gw_proxy *p, uv_loop_t *loop, colony_metrics *m, int access_log);
/* Makes rt the runtime of new requests (takes over the caller's reference). */
void colony__gw_proxy_install(gw_proxy *p, gw_runtime *rt);
/* Drops the runtime and closes the client; cb runs once its handles are closed. */
void colony__gw_proxy_close(gw_proxy *p, void (*cb)(void *ud), void *ud);

/* The colony_handler_cb of the proxy server (ud = the gw_proxy). */
void colony__gw_proxy_handle(colony_request *req, void *proxy);

#endif
