/* The proxy: a colony_server handler that routes each request, picks an
 * instance of the route's upstream, forwards the request with the forwarding
 * headers, streams the response back and retries where the route allows.
 * Errors are JSON: 400 (bad path), 404 (no route), 502 (upstream failed),
 * 503 (no healthy instance), 504 (timeout).
 *
 * Threads (docs/gateway.md, "Threads"): the proxy server runs N workers,
 * each a loop on its own thread. The main loop's gw_proxy (worker 0) owns
 * what they share: the running runtime (taken under its lock), the local
 * rate-limit buckets and the response cache (each behind a lock). Every
 * other worker gets its own gw_proxy, made on its thread at its first
 * request: its client and keep-alive pools, Redis connection, WebSocket
 * tunnels, coalesced cache misses and counters. */
#ifndef COLONY_GATEWAY_PROXY_H
#define COLONY_GATEWAY_PROXY_H

#include <stdatomic.h>
#include <stdint.h>
#include "colony/http_client.h"
#include "colony/metrics.h"
#include "colony/trace.h"
#include "colony/http_server.h"
#include "gateway/cache.h"
#include "gateway/ratelimit.h"
#include "gateway/runtime.h"
#include "gateway/websocket.h"
#include "gateway/worker.h"

/* One worker's counters: written by its thread, read (summed) by the admin
 * API on the main loop, hence atomic. */
typedef struct gw_proxy_stats {
    _Atomic uint64_t requests;  /* answered, by the gateway or an upstream */
    _Atomic uint64_t in_flight; /* forwarded and not finished */
    _Atomic uint64_t not_found, bad_request, no_instance, upstream_failed, timed_out;
    _Atomic uint64_t retries;
    _Atomic uint64_t circuit_open;        /* answered 503 circuit_open */
    _Atomic uint64_t retries_over_budget; /* retries refused by the route's retry budget */
} gw_proxy_stats;

/* The sum over workers (colony__gw_proxy_totals). */
typedef struct gw_proxy_totals {
    uint64_t requests, in_flight, not_found, bad_request, no_instance, upstream_failed, timed_out;
    uint64_t retries, circuit_open, retries_over_budget;
    uint64_t ws_open, ws_total;
    unsigned workers;                    /* workers that have served a request */
    uint64_t per_worker[GW_MAX_WORKERS]; /* requests answered by each */
    uint64_t generation[GW_MAX_WORKERS]; /* the runtime each worker holds, 0: none */
} gw_proxy_totals;

typedef struct gw_proxy gw_proxy;
struct gw_proxy {
    uv_loop_t *loop;
    gw_proxy *main;        /* worker 0's proxy, which owns what is shared (itself there) */
    unsigned index;        /* worker number, 0 on the main loop */
    colony_client *client; /* keep-alive pools to the upstreams; owned */
    colony_tracer *tracer; /* a span per request; NULL: tracing off (not owned) */
    /* Main: the runtime new requests take (written on the main loop, read by
     * workers under lock). A worker: the runtime it holds a reference to. */
    gw_runtime *current;
    _Atomic uint64_t generation;               /* of current */
    uv_mutex_t lock;                           /* main: current and workers[] */
    gw_proxy *_Atomic workers[GW_MAX_WORKERS]; /* main: made at their first request */
    unsigned nworkers;                         /* main: slots used (1 + workers made) */
    atomic_int stopping;                       /* main: shutdown began, no worker is made */
    uv_async_t wake; /* another thread asks this loop to look: reload, stop, woken */
    int wake_open, closing;
    uv_mutex_t mail_lock;
    int mail_ready;
    colony__list woken; /* cache waiters woken by a leader on another loop */
    uv_async_t reaper;  /* main: frees runtimes whose last reference a worker dropped */
    uv_mutex_t reap_lock;
    gw_runtime *reap_list; /* linked by reap_next */
    int reaper_open;
    int access_log;
    uint64_t random_state;
    gw_proxy_stats stats;
    colony_metric *m_requests; /* gateway_requests_total{route,code,upstream} */
    colony_metric *m_duration; /* gateway_request_duration_seconds{route} */
    colony_metric *m_retries;  /* gateway_retries_total{route} */
    colony_metric *m_cut;      /* gateway_responses_truncated_total{route,reason} */
    gw_ratelimit rl;           /* rate limit state, kept across reloads */
    uint64_t max_body;         /* proxy.max_body: request bodies, streamed or not; 0 = none */
    gw_ws ws;                  /* WebSocket tunnels (websocket.c) */
    /* Main: the response cache, kept across reloads (by route name), shared
     * with its coalesced misses through its shards' locks. A worker: unused. */
    gw_cache cache;
    int cache_closed; /* freed at close: nothing more is stored */
    void (*close_cb)(void *ud);
    void *close_ud;
};

/* Sets the process's malloc (glibc) to keep a few MiB of freed heap instead
 * of trimming and regrowing it per request (proxy_malloc.c). 1 if applied,
 * 0 where the allocator is not glibc's. */
int colony__gw_malloc_tune(void);
/* Sets up p on loop (client, metrics in m, which may be NULL). 0 or ENOMEM. */
int colony__gw_proxy_init(gw_proxy *p, uv_loop_t *loop, colony_metrics *m, int access_log);
/* Makes rt the runtime of new requests (takes over the caller's reference). */
void colony__gw_proxy_install(gw_proxy *p, gw_runtime *rt);
/* Shutdown began: no worker is made any more, and each worker closes its
 * client and connections once its last request is over (main loop). */
void colony__gw_proxy_stop_workers(gw_proxy *p);
/* Drops the runtime and closes the client; cb runs once its handles are
 * closed. Call once the server's workers have ended (frees their proxies). */
void colony__gw_proxy_close(gw_proxy *p, void (*cb)(void *ud), void *ud);
/* The counters of every worker summed, and per worker (main loop). */
void colony__gw_proxy_totals(gw_proxy *p, gw_proxy_totals *out);

/* The colony_handler_cb of the proxy server (ud = the main gw_proxy). */
void colony__gw_proxy_handle(colony_request *req, void *proxy);
/* Wakes the cache waiters posted to p's mailbox (p's loop). */
void colony__gw_proxy_wake_waiters(gw_proxy *p);

/* ---- workers (workers.c) ---- */
/* Sets up the main proxy's locks and reaper (on its loop). 0 or ENOMEM. */
int colony__gw_workers_init(gw_proxy *m);
/* The proxy of the worker running req (made on its first request), with
 * its runtime brought up to date; NULL while shutting down. Sets
 * colony__gw_worker. */
gw_proxy *colony__gw_worker_of(gw_proxy *m, colony_request *req);
/* Makes rt's last reference go to the main loop (whichever worker drops it). */
void colony__gw_workers_adopt(gw_proxy *m, gw_runtime *rt);
/* Makes rt (NULL at close) the main's current runtime, under its lock, and
 * tells the workers to take it. */
void colony__gw_workers_publish(gw_proxy *m, gw_runtime *rt);
/* A worker closes its client once it is stopping and its last call is over. */
void colony__gw_worker_maybe_close(gw_proxy *w);
/* At close, once the workers' threads have ended: frees their proxies and
 * remembers cb, which colony__gw_workers_closed (the client's close
 * callback) calls after closing the reaper. */
void colony__gw_workers_free(gw_proxy *m, void (*cb)(void *ud), void *ud);
void colony__gw_workers_closed(void *m);

#endif
