/* The rate limits' Redis connection (ratelimit_redis.h). hiredis 0.14 has no
 * command timeout, so one timer does three jobs by state: while connecting it
 * bounds the connect, while up it ticks and drops a connection whose oldest
 * pending hit is older than GW_REDIS_TIMEOUT_MS (replies come in order, so
 * the oldest is the first), and while down it is the reconnect backoff. */
#include <stdatomic.h>
#include "gateway/ratelimit_redis.h"
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "core/list.h"

#define TICK_MS            50
#define CONNECT_TIMEOUT_MS 1000
#define BACKOFF_MIN_MS     100
#define BACKOFF_MAX_MS     5000

/* INCR, and the window's expiry on its first hit: rate-limit-redis's fixed
 * window. A key left without expiry (an expiry lost to a crash) gets one. */
static const char script[] =
    "local n = redis.call('INCR', KEYS[1]) "
    "if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end "
    "local t = redis.call('PTTL', KEYS[1]) "
    "if t < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) t = tonumber(ARGV[1]) end "
    "return {n, t}";

enum { DOWN, CONNECTING, UP };

struct gw_redis {
    uv_loop_t *loop;
    char *url, *host;
    int port;
    redisAsyncContext *ac; /* NULL while down */
    int state;
    int in_outage;       /* this connection counts in *outages until it is back */
    atomic_int *outages; /* connections down, shared by the workers: one log per outage */
    uint64_t backoff_ms;
    uv_timer_t timer;
    colony__list pending; /* hits sent, oldest first */
    colony_metric_series *up;
    void (*close_cb)(void *ud);
    void *close_ud;
};

typedef struct redis_hit {
    colony__list node;
    gw_redis *r;
    uint64_t sent_ms;
    gw_redis_cb cb;
    void *ud;
} redis_hit;

static void connect_now(gw_redis *r);
static void on_timer(uv_timer_t *t);

static void went_down(gw_redis *r, const char *why)
{
    r->state = DOWN;
    r->ac = NULL;
    if (r->up) colony_metric_set(r->up, 0);
    if (!r->in_outage) {
        r->in_outage = 1;
        if (atomic_fetch_add(r->outages, 1) == 0)
            COLONY_LOG_WARN("rate limit Redis is down: limits fall back (local buckets, or 503 "
                            "where redis_failure is closed) until it is back",
                            COLONY_LF_STR("redis", r->url), COLONY_LF_STR("reason", why));
    }
    uv_timer_start(&r->timer, on_timer, r->backoff_ms, 0);
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

/* Drops a connection we give up on; its pending hits fail now. */
static void drop(gw_redis *r, const char *why)
{
    redisAsyncContext *ac = r->ac;
    went_down(r, why);
    if (ac) redisAsyncFree(ac);
}

static void on_timer(uv_timer_t *t)
{
    gw_redis *r = t->data;
    if (r->state == DOWN) {
        connect_now(r);
    } else if (r->state == CONNECTING) {
        drop(r, "connect timed out");
    } else if (!colony__list_empty(&r->pending)) {
        redis_hit *h = COLONY__CONTAINER_OF(colony__list_first(&r->pending), redis_hit, node);
        if (uv_now(r->loop) - h->sent_ms >= GW_REDIS_TIMEOUT_MS) drop(r, "answer timed out");
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    gw_redis *r = ac->data;
    if (r->ac != ac) return;
    if (status != REDIS_OK) {
        went_down(r, ac->errstr[0] ? ac->errstr : "connect failed"); /* hiredis frees ac */
        return;
    }
    r->state = UP;
    r->backoff_ms = BACKOFF_MIN_MS;
    if (r->up) colony_metric_set(r->up, 1);
    if (r->in_outage) {
        r->in_outage = 0;
        if (atomic_fetch_sub(r->outages, 1) == 1)
            COLONY_LOG_INFO("rate limit Redis is back: limits are shared again",
                            COLONY_LF_STR("redis", r->url));
    } else {
        COLONY_LOG_INFO("rate limit Redis connected", COLONY_LF_STR("redis", r->url));
    }
    uv_timer_start(&r->timer, on_timer, TICK_MS, TICK_MS);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    gw_redis *r = ac->data;
    if (r->ac == ac) went_down(r, ac->errstr[0] ? ac->errstr : "connection closed");
}

static void connect_now(gw_redis *r)
{
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    if (!ac || ac->err) {
        const char *why = ac ? ac->errstr : "out of memory";
        went_down(r, why);
        if (ac) redisAsyncFree(ac);
        return;
    }
    ac->data = r;
    if (redisLibuvAttach(ac, r->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        went_down(r, "cannot attach to the loop");
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    r->state = CONNECTING;
    uv_timer_start(&r->timer, on_timer, CONNECT_TIMEOUT_MS, 0);
}

int colony__gw_redis_new(uv_loop_t *loop, const char *url, const char *host, int port,
                         colony_metric_series *up, atomic_int *outages, gw_redis **out)
{
    *out = NULL;
    gw_redis *r = colony__calloc(1, sizeof(*r));
    if (!r) return COLONY_ENOMEM;
    r->loop = loop;
    r->port = port;
    r->up = up;
    r->outages = outages;
    r->backoff_ms = BACKOFF_MIN_MS;
    colony__list_init(&r->pending);
    r->url = colony__strdup(url);
    r->host = colony__strdup(host);
    if (!r->url || !r->host || uv_timer_init(loop, &r->timer) != 0) {
        colony__free(r->url);
        colony__free(r->host);
        colony__free(r);
        return COLONY_ENOMEM;
    }
    r->timer.data = r;
    if (up) colony_metric_set(up, 0);
    connect_now(r);
    *out = r;
    return 0;
}

const char *colony__gw_redis_url(const gw_redis *r)
{
    return r->url;
}

int colony__gw_redis_is_up(const gw_redis *r)
{
    return r->state == UP;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    redis_hit *h = privdata;
    redisReply *rep = reply;
    colony__list_remove(&h->node);
    int ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
             rep->element[0]->type == REDIS_REPLY_INTEGER &&
             rep->element[1]->type == REDIS_REPLY_INTEGER;
    if (ok)
        h->cb(h->ud, 1, rep->element[0]->integer, rep->element[1]->integer);
    else
        h->cb(h->ud, 0, 0, 0);
    colony__free(h);
}

int colony__gw_redis_hit(gw_redis *r, const char *key, size_t len, uint64_t window_ms,
                         gw_redis_cb cb, void *ud)
{
    /* While the first connection is being made (a worker's, at its first
     * request) hits wait for it: hiredis sends them once connected, or fails
     * them if it never does (refused, or CONNECT_TIMEOUT_MS). Later
     * reconnects fall back at once. */
    int first_connect = r->state == CONNECTING && !r->in_outage;
    if ((r->state != UP && !first_connect) || !r->ac) return COLONY_ESHUTDOWN;
    redis_hit *h = colony__calloc(1, sizeof(*h));
    if (!h) return COLONY_ENOMEM;
    *h = (redis_hit){.r = r, .sent_ms = uv_now(r->loop), .cb = cb, .ud = ud};
    colony__list_push_back(&r->pending, &h->node);
    if (redisAsyncCommand(r->ac, on_reply, h, "EVAL %s 1 %b %llu", script, key, len,
                          (unsigned long long)window_ms) != REDIS_OK) {
        colony__list_remove(&h->node);
        colony__free(h);
        return COLONY_ESHUTDOWN;
    }
    return 0;
}

static void timer_closed(uv_handle_t *h)
{
    gw_redis *r = h->data;
    if (r->close_cb) r->close_cb(r->close_ud);
    colony__free(r->url);
    colony__free(r->host);
    colony__free(r);
}

void colony__gw_redis_close(gw_redis *r, void (*cb)(void *ud), void *ud)
{
    r->close_cb = cb;
    r->close_ud = ud;
    if (r->in_outage) atomic_fetch_sub(r->outages, 1);
    r->in_outage = 0;
    uv_timer_stop(&r->timer);
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    r->state = DOWN;
    if (ac) redisAsyncFree(ac);
    uv_close((uv_handle_t *)&r->timer, timer_closed);
}
