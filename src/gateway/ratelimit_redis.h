/* The rate limits' Redis connection (hiredis on the gateway's libuv loop):
 * one fixed-window counter per key, incremented and given its expiry in one
 * round trip. A Redis that refuses, drops the connection or takes longer than
 * GW_REDIS_TIMEOUT_MS to answer is "down": checks are answered at once as
 * failed (the caller falls back), the outage is logged once, and the
 * connection is retried with backoff (100 ms doubling to 5 s). One loop. */
#ifndef COLONY_GATEWAY_RATELIMIT_REDIS_H
#define COLONY_GATEWAY_RATELIMIT_REDIS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "colony/metrics.h"

#define GW_REDIS_TIMEOUT_MS 250

typedef struct gw_redis gw_redis;

/* ok: Redis answered; count is the request's number in the window and
 * pttl_ms the time left in the window. */
typedef void (*gw_redis_cb)(void *ud, int ok, long long count, long long pttl_ms);

/* Starts connecting to host:port (url is kept for colony__gw_redis_url). up
 * (may be NULL) is set to 1 while connected, 0 otherwise. outages counts the
 * connections down (shared by the workers' connections: the outage is logged
 * when the first goes down, its end when the last is back). 0 or ENOMEM. */
int colony__gw_redis_new(uv_loop_t *loop, const char *url, const char *host, int port,
                         colony_metric_series *up, atomic_int *outages, gw_redis **out);
const char *colony__gw_redis_url(const gw_redis *r);
/* 1 while connected. */
int colony__gw_redis_is_up(const gw_redis *r);
/* Counts one hit of key in a window of window_ms. 0: cb runs later (once);
 * COLONY_ESHUTDOWN while down (cb never runs: decide now). */
int colony__gw_redis_hit(gw_redis *r, const char *key, size_t len, uint64_t window_ms,
                         gw_redis_cb cb, void *ud);
/* Drops the connection: pending hits complete at once as failed. cb(ud)
 * (may be NULL) runs once the handles are closed and r is freed. */
void colony__gw_redis_close(gw_redis *r, void (*cb)(void *ud), void *ud);

#endif
