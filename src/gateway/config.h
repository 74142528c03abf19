/* The gateway's routes file: routes and the upstreams they lead to, parsed
 * and validated all or nothing (docs/gateway.md, "Routes file"). A config is
 * immutable once built and reference-counted: a reload swaps in a new one for
 * new requests while requests in flight keep the one they started with. */
#ifndef COLONY_GATEWAY_CONFIG_H
#define COLONY_GATEWAY_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include "colony/balance.h"
#include "colony/config.h"
#include "gateway/access.h"
#include "gateway/ratelimit.h"
#include "gateway/config_health.h"
#include "gateway/listeners.h"
#include "gateway/route.h"

typedef struct gw_target {
    char *url;     /* origin: "http://127.0.0.1:3001" or "https://..." */
    char *address; /* "127.0.0.1:3001", the balancer's endpoint address */
    uint32_t weight;
} gw_target;

typedef struct gw_upstream {
    char *name;
    colony_balance_strategy strategy;
    char *hash_header;  /* ring/ip hash key from this request header; NULL: client address */
    char *hash_cookie;  /* or from this cookie */
    gw_target *targets; /* static targets; none when service is set */
    size_t ntargets;
    char *service;                 /* found in the registry (passing instances) */
    char *tag;                     /* only instances with this tag; NULL: all */
    uint32_t consecutive_failures; /* passive health: ejection after this many in a row */
    uint64_t base_ejection_ms;
    uint32_t max_ejection_percent;
    gw_active_health active; /* health.active: probes per instance (path NULL: off) */
    gw_breaker_conf breaker; /* breaker: per upstream (enabled 0: none) */
    int https;               /* https:// targets, or "tls" on a service upstream */
    int https_marked;        /* tls.instances "marked": https for instances the registry
                                marks (Meta scheme=https or tag https) only */
    char *tls_ca_file;       /* tls.ca_file: verify the upstream against it; NULL: system */
    char *tls_server_name;   /* tls.server_name: SNI and name verified; NULL: the host */
    char *tls_cert_file;     /* tls.cert, tls.key: client certificate (mTLS); NULL: none */
    char *tls_key_file;
} gw_upstream;

/* colony_endpoint_user() of a registry instance that speaks TLS (Meta
 * "scheme": "https" or the tag "https"; runtime.c): proxied and probed over
 * https even when its upstream has no "tls". Static targets have NULL. The
 * balancer rewrites it on every change of the instance set (main loop, under
 * the upstream's lock), so workers read it only under that lock, with the
 * pick (colony__gw_upstream_pick); active checks run on the main loop. */
#define GW_ENDPOINT_TLS ((void *)&colony__gw_endpoint_tls)
extern const char colony__gw_endpoint_tls;

typedef struct gw_split {
    size_t upstream; /* index into gw_config.upstreams */
    uint32_t weight;
} gw_split;

typedef struct gw_route_conf {
    gw_route match;
    gw_split *splits; /* one, or a weighted split (canary, blue-green) */
    size_t nsplits;
    uint32_t total_weight;
    uint64_t connect_timeout_ms; /* 0: the client's 5 s */
    /* try: one attempt, until the upstream's response head (a retry is
     * possible only then); total: all attempts, until the head; read: the
     * longest silence of the upstream, the body included (nginx's
     * proxy_read_timeout). A streamed body has no overall limit. */
    uint64_t try_timeout_ms, total_timeout_ms, read_timeout_ms;
    uint32_t retries;              /* extra attempts, on another instance where there is one */
    int retry_non_idempotent;      /* also retry POST and PATCH */
    unsigned retry_on;             /* GW_RETRY_* */
    gw_access *access;             /* JWT, API keys, CORS, IP lists, body limit; NULL: none */
    gw_ratelimit_conf *rate_limit; /* NULL: none */
    gw_retry_budget_conf retry_budget;
    gw_header_ops request_headers, response_headers; /* transforms */
    int websocket; /* "websocket": true: Upgrade: websocket is tunnelled (websocket.c) */
    struct gw_cache_conf *cache; /* response cache (cache.h); NULL: none */
} gw_route_conf;

enum {
    GW_RETRY_CONNECT = 1, /* connection refused or failed */
    GW_RETRY_RESET = 2,   /* reset or closed before a response */
    GW_RETRY_502 = 4,
    GW_RETRY_503 = 8,
    GW_RETRY_504 = 16,
};

typedef struct gw_config {
    unsigned refs;
    gw_route_conf *routes;
    size_t nroutes;
    gw_route **table; /* &routes[i].match, for colony__gw_match */
    gw_upstream *upstreams;
    size_t nupstreams;
    gw_ratelimit_conf *rate_limit; /* the global limit, before routing; NULL: none */
    const char *ratelimit_redis;   /* the Redis of the rate limits (in one of them); NULL: none */
    gw_listeners listeners;        /* "listeners": extra (TLS) proxy listeners */
    uint64_t cache_max_bytes;      /* the response cache's bound (top-level "cache") */
} gw_config;

/* Builds a config from a parsed routes file. On error returns COLONY_EINVAL
 * (or ENOMEM) with err naming file, line, key and reason; *out is NULL. */
int colony__gw_config_build(const colony_json_doc *doc, gw_config **out, colony_config_error *err);
/* Loads and builds path. */
int colony__gw_config_load(const char *path, gw_config **out, colony_config_error *err);
/* A config for `--route PATH=URL` quick starts: each prefix to one static URL. */
int colony__gw_config_quick(const char *const *routes, size_t n, gw_config **out,
                            colony_config_error *err);

gw_config *colony__gw_config_ref(gw_config *c);
void colony__gw_config_unref(gw_config *c);

/* The upstream with this name, or NULL. */
const gw_upstream *colony__gw_config_upstream(const gw_config *c, const char *name);

#endif
