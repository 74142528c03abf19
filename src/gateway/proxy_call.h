/* One proxied request's state, shared by the proxy's files: proxy.c (route,
 * limits, lifetime), proxy_attempt.c (each attempt upstream, streaming the
 * answer back, retries, error answers) and proxy_cache.c (the response
 * cache's glue). Included by those three only. */
#ifndef COLONY_GATEWAY_PROXY_CALL_H
#define COLONY_GATEWAY_PROXY_CALL_H

#include "gateway/forward.h"
#include "gateway/proxy.h"
#include "gateway/upload.h"

#define GW_MAX_PIECES 64           /* downstream writes waiting at once */
#define GW_QUEUE_HIGH (256u << 10) /* pause the upstream above this many bytes */
#define GW_QUEUE_LOW  (64u << 10)  /* and resume below this many */

typedef struct gw_proxy_call {
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
    gw_cache_shard *cache_shard;  /* where cache_key was joined (its release goes there) */
    int cache_waiting, cache_woken;
    int cache_lead; /* other misses of cache_key wait for this one */
} gw_proxy_call;

/* proxy.c */
/* Drops a reference; the last one frees pc (and may close a stopping worker). */
void colony__gw_call_unref(gw_proxy_call *pc);

/* proxy_attempt.c */
/* Picks an instance and sends the request upstream (after a small body has
 * been read whole); answers 503 when there is no instance to call. */
void colony__gw_call_start_attempt(gw_proxy_call *pc);
/* Answers a JSON error downstream with the route's rate-limit and cache
 * headers; returns colony_respond_error's result. */
int colony__gw_call_respond_error(gw_proxy_call *pc, int status, const char *error,
                                  const char *message);

/* proxy_cache.c */
/* Answers from the route's cache when it holds a fresh answer, else goes
 * upstream (noting where to store what comes back). */
void colony__gw_call_forward_or_answer(gw_proxy_call *pc);
/* The upstream's head on a cached route: X-Cache-Status, and starts storing
 * the answer when it may be. 0 or a colony_response_header error. */
int colony__gw_call_cache_head(gw_proxy_call *pc, const colony_client_response *res);
/* This miss is done leading its key: the misses waiting for it look again. */
void colony__gw_call_cache_release(gw_proxy_call *pc);

/* A gw_header_fn over a colony_request. */
static inline const char *colony__gw_request_header(void *req, const char *name)
{
    return colony_request_header(req, name);
}

#endif
