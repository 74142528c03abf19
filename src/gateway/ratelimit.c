/* Gateway rate limits (ratelimit.h): parsing a "rate_limit" object, the
 * bounded map of local token buckets, and the decision for one request. */
#include "gateway/ratelimit.h"
#include "gateway/jwt.h"
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "colony/ratelimit.h"
#include "core/alloc.h"
#include "core/hash.h"
#include "gateway/parse.h"
#include "gateway/ratelimit_redis.h"

#define GW_RL_MAX_LIMIT 1000000u
#define GW_RL_MAX_KEY   200 /* longer keys are hashed */
#define GW_RL_MAX_SCALE 1000000u

/* ---- the "rate_limit" object ------------------------------------------ */

/* "redis://host[:port]" (6379 by default); no password or database yet. */
static int parse_redis_url(const char *url, char *host, size_t host_size, int *port)
{
    if (strncmp(url, "redis://", 8) != 0) return COLONY_EINVAL;
    const char *h = url + 8;
    if (strpbrk(h, "@/?#")) return COLONY_EINVAL;
    const char *colon = strrchr(h, ':');
    size_t hlen = colon ? (size_t)(colon - h) : strlen(h);
    if (hlen == 0 || hlen >= host_size) return COLONY_EINVAL;
    long p = 6379;
    if (colon) {
        p = 0;
        if (!colon[1]) return COLONY_EINVAL;
        for (const char *c = colon + 1; *c; c++)
            if (*c < '0' || *c > '9' || (p = p * 10 + (*c - '0')) > 65535) return COLONY_EINVAL;
        if (p == 0) return COLONY_EINVAL;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}

static int parse_key(gw_parse *p, const json_t *v, gw_ratelimit_conf *c)
{
    const char *s = json_string_value(v);
    if (s && strcmp(s, "ip") == 0) {
        c->key = GW_RL_KEY_IP;
        return 0;
    }
    if (s && strncmp(s, "header:", 7) == 0 && s[7]) {
        for (const char *h = s + 7; *h; h++)
            if (!(*h == '-' || *h == '_' || (*h >= '0' && *h <= '9') ||
                  ((*h | 0x20) >= 'a' && (*h | 0x20) <= 'z')))
                return colony__gw_parse_fail(p, "key", "%s",
                                             "\"key\": the header name has a bad character");
        c->key = GW_RL_KEY_HEADER;
        if (!(c->key_header = colony__strdup(s + 7))) return COLONY_ENOMEM;
        return 0;
    }
    if (s && strcmp(s, "jwt:sub") == 0) {
        c->key = GW_RL_KEY_JWT_SUB; /* config.c checks the route verifies a JWT */
        return 0;
    }
    return colony__gw_parse_fail(p, "key", "%s",
                                 "\"key\" must be \"ip\", \"header:NAME\" or \"jwt:sub\"");
}

static int parse_uint(gw_parse *p, const json_t *obj, const char *key, uint32_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1 ||
        json_integer_value(v) > (json_int_t)GW_RL_MAX_LIMIT) {
        char reason[96];
        snprintf(reason, sizeof(reason), "\"%s\" must be an integer from 1 to %u", key,
                 GW_RL_MAX_LIMIT);
        return colony__gw_parse_fail(p, key, "%s", reason);
    }
    *out = (uint32_t)json_integer_value(v);
    return 0;
}

static int parse_conf(gw_parse *p, const json_t *obj, const char *redis_seen, gw_ratelimit_conf *c)
{
    static const char *const keys[] = {"limit", "window",        "key", "burst",
                                       "redis", "redis_failure", NULL};
    if (!json_is_object(obj))
        return colony__gw_parse_fail(p, NULL, "%s",
                                     "\"rate_limit\" must be an object: {\"limit\": n, \"window\": "
                                     "\"15m\", ...}");
    int rc = colony__gw_parse_only(p, obj, keys);
    if (rc) return rc;
    json_t *v;
    if (!json_object_get(obj, "limit"))
        return colony__gw_parse_fail(p, NULL, "%s", "\"limit\" is required");
    rc = parse_uint(p, obj, "limit", &c->limit);
    if (rc) return rc;
    c->burst = c->limit;
    if ((rc = parse_uint(p, obj, "burst", &c->burst))) return rc;
    v = json_object_get(obj, "window");
    int64_t ms = -1;
    if (!v)
        return colony__gw_parse_fail(p, NULL, "%s",
                                     "\"window\" is required (\"1s\", \"15m\", or ms)");
    if (json_is_integer(v))
        ms = json_integer_value(v);
    else if (!json_is_string(v) || colony_config_parse_duration(json_string_value(v), &ms) != 0)
        ms = -1;
    if (ms <= 0 || ms > 86400000)
        return colony__gw_parse_fail(p, "window", "%s",
                                     "\"window\" must be a duration from 1ms to 24h (\"1s\", "
                                     "\"15m\", or ms)");
    c->window_ms = (uint64_t)ms;
    v = json_object_get(obj, "key");
    if (v && (rc = parse_key(p, v, c))) return rc;
    v = json_object_get(obj, "redis");
    if (v) {
        char host[256];
        if (!json_is_string(v) ||
            parse_redis_url(json_string_value(v), host, sizeof(host), &c->redis_port) != 0)
            return colony__gw_parse_fail(p, "redis", "%s",
                                         "\"redis\" must be redis://host:port (no password or "
                                         "database yet)");
        if (redis_seen && strcmp(redis_seen, json_string_value(v)) != 0)
            return colony__gw_parse_fail(p, "redis", "%s",
                                         "the gateway uses one Redis: every \"redis\" of the "
                                         "file must be the same URL");
        if (!(c->redis = colony__strdup(json_string_value(v))) ||
            !(c->redis_host = colony__strdup(host)))
            return COLONY_ENOMEM;
    }
    v = json_object_get(obj, "redis_failure");
    if (v) {
        const char *s = json_string_value(v);
        if (!s || (strcmp(s, "open") != 0 && strcmp(s, "closed") != 0))
            return colony__gw_parse_fail(p, "redis_failure", "%s",
                                         "\"redis_failure\" must be \"open\" (local "
                                         "limits) or \"closed\" (503)");
        if (!c->redis)
            return colony__gw_parse_fail(p, "redis_failure", "%s",
                                         "\"redis_failure\" needs \"redis\"");
        c->fail_closed = strcmp(s, "closed") == 0;
    }
    return 0;
}

int colony__gw_ratelimit_parse(const colony_json_doc *doc, colony_config_error *err, char *path,
                               size_t size, const void *obj, const char *redis_seen,
                               gw_ratelimit_conf **out)
{
    gw_parse p = {doc, err, path, size};
    size_t at = colony__gw_parse_push(&p, "rate_limit");
    gw_ratelimit_conf *c = colony__calloc(1, sizeof(*c));
    int rc = c ? parse_conf(&p, obj, redis_seen, c) : COLONY_ENOMEM;
    if (rc == COLONY_ENOMEM) colony_json_doc_error(doc, err, path, "out of memory");
    path[at] = '\0';
    if (rc) {
        colony__gw_ratelimit_conf_free(c);
        c = NULL;
    }
    *out = c;
    return rc;
}

void colony__gw_ratelimit_conf_free(gw_ratelimit_conf *c)
{
    if (!c) return;
    colony__free(c->key_header);
    colony__free(c->redis);
    colony__free(c->redis_host);
    colony__free(c);
}

/* ---- local buckets ---------------------------------------------------- */

/* prefix scope sep key into buf; a scope (route name) too long for it is
 * replaced by its hash, so two routes never share a bucket. Returns the length. */
static size_t scoped_key(char *buf, size_t size, const char *prefix, const char *sep,
                         const char *scope, const char *key)
{
    int n = snprintf(buf, size, "%s%s%s%s", prefix, scope, sep, key);
    if (n >= 0 && (size_t)n < size) return (size_t)n;
    n = snprintf(buf, size, "%s#%016llx%s%s", prefix,
                 (unsigned long long)colony__hash_keyed(scope, strlen(scope)), sep, key);
    return n >= 0 && (size_t)n < size ? (size_t)n : size - 1;
}

typedef struct rl_bucket {
    colony__list lru;
    colony_token_bucket *tb;
    uint32_t limit, burst;
    uint64_t window_ms;
    unsigned scale; /* tokens of tb per request */
    char key[];     /* the map's key, to remove it when dropped */
} rl_bucket;

/* A request costs `scale` tokens of the kit's bucket, whose rate steps are
 * 0.001 token/s: with whole tokens 2 a minute would refill at 0.033/s, 1%
 * off, and 1 a day 100%. As large as the bucket's unsigned size and its
 * largest rate allow (both far from what real limits need). */
static unsigned scale_of(const gw_ratelimit_conf *c)
{
    double s = GW_RL_MAX_SCALE;
    double by_burst = (double)UINT32_MAX / c->burst;
    double by_rate = 1e9 * (double)c->window_ms / ((double)c->limit * 1000.0);
    if (by_burst < s) s = by_burst;
    if (by_rate < s) s = by_rate;
    return s < 1 ? 1 : (unsigned)s;
}

static double rate_of(const gw_ratelimit_conf *c, unsigned scale)
{
    return (double)c->limit * scale * 1000.0 / (double)c->window_ms;
}

static colony_token_bucket *bucket_new(gw_ratelimit *rl, const gw_ratelimit_conf *c, unsigned scale)
{
    colony_token_bucket_options o = {
        .rate_per_sec = rate_of(c, scale), .burst = c->burst * scale, .clock = rl->clock};
    return colony_token_bucket_new(&o);
}

/* A reload changed the limit: keep the requests used, take the new rate. */
static int bucket_reconfigure(gw_ratelimit *rl, rl_bucket *b, const gw_ratelimit_conf *c)
{
    unsigned scale = scale_of(c);
    if (scale == b->scale) {
        if (colony_token_bucket_set_rate(b->tb, rate_of(c, scale), c->burst * scale) != 0)
            return COLONY_EINVAL;
    } else {
        uint64_t left = colony_token_bucket_available(b->tb) / b->scale;
        colony_token_bucket *tb = bucket_new(rl, c, scale);
        if (!tb) return COLONY_ENOMEM;
        if (left < c->burst)
            colony_token_bucket_take(tb, (unsigned)(c->burst - left) * scale, NULL);
        colony_token_bucket_free(b->tb);
        b->tb = tb;
        b->scale = scale;
    }
    b->limit = c->limit;
    b->burst = c->burst;
    b->window_ms = c->window_ms;
    return 0;
}

int colony__gw_ratelimit_init(gw_ratelimit *rl, uv_loop_t *loop, colony_metrics *m,
                              colony_clock clock)
{
    memset(rl, 0, sizeof(*rl));
    rl->loop = loop;
    rl->clock = clock;
    rl->store = rl;
    rl->max_keys = GW_RL_MAX_KEYS;
    rl->stripes = colony__calloc(GW_RL_STRIPES, sizeof(*rl->stripes));
    if (!rl->stripes) return COLONY_ENOMEM;
    for (; rl->stripes_ready < GW_RL_STRIPES; rl->stripes_ready++) {
        gw_rl_stripe *st = &rl->stripes[rl->stripes_ready];
        colony__list_init(&st->lru);
        if (uv_mutex_init(&st->lock) != 0) return COLONY_ENOMEM;
    }
    rl->nstripes = GW_RL_STRIPES;
    if (!m) return 0;
    static const char *const by_route[] = {"route", NULL};
    rl->m_rejected = colony_metrics_counter(m, "gateway_ratelimit_rejected_total",
                                            "Requests refused by a rate limit (429, or 503 "
                                            "while Redis is down and the limit fails closed), "
                                            "by route (_global: the global limit).",
                                            by_route);
    rl->m_fallbacks = colony_metrics_counter(m, "gateway_ratelimit_redis_fallbacks_total",
                                             "Checks decided without Redis (down, slow or "
                                             "failing): local limits or 503.",
                                             NULL);
    rl->m_redis_up = colony_metrics_gauge(m, "gateway_ratelimit_redis_up",
                                          "1 while the rate limits' Redis answers; 0 while it "
                                          "is down or none is configured.",
                                          NULL);
    if (!rl->m_rejected || !rl->m_fallbacks || !rl->m_redis_up) return COLONY_ENOMEM;
    return 0;
}

int colony__gw_ratelimit_init_worker(gw_ratelimit *rl, uv_loop_t *loop, gw_ratelimit *store)
{
    int rc = colony__gw_ratelimit_init(rl, loop, NULL, store->clock);
    if (rc) return rc;
    rl->store = store;
    rl->m_rejected = store->m_rejected;
    rl->m_fallbacks = store->m_fallbacks;
    rl->m_redis_up = store->m_redis_up;
    return 0;
}

static void bucket_drop(gw_rl_stripe *st, rl_bucket *b)
{
    colony__map_remove(&st->buckets, b->key);
    colony__list_remove(&b->lru);
    colony_token_bucket_free(b->tb);
    colony__free(b);
    st->nkeys--;
}

/* The bucket of mapkey in stripe st of rl (under st's lock), made if new. */
static rl_bucket *bucket_get(gw_ratelimit *rl, gw_rl_stripe *st, const char *mapkey,
                             const gw_ratelimit_conf *c)
{
    rl_bucket *b = colony__map_get(&st->buckets, mapkey);
    if (b) {
        colony__list_remove(&b->lru);
        colony__list_push_back(&st->lru, &b->lru);
        if ((b->limit != c->limit || b->burst != c->burst || b->window_ms != c->window_ms) &&
            bucket_reconfigure(rl, b, c) != 0)
            return NULL;
        return b;
    }
    size_t cap = (rl->max_keys + rl->nstripes - 1) / rl->nstripes;
    while (st->nkeys >= cap && !colony__list_empty(&st->lru))
        bucket_drop(st, COLONY__CONTAINER_OF(colony__list_first(&st->lru), rl_bucket, lru));
    size_t len = strlen(mapkey);
    b = colony__calloc(1, sizeof(*b) + len + 1);
    if (!b) return NULL;
    memcpy(b->key, mapkey, len + 1);
    b->scale = scale_of(c);
    b->tb = bucket_new(rl, c, b->scale);
    if (!b->tb || colony__map_put(&st->buckets, mapkey, b) != 0) {
        colony_token_bucket_free(b->tb);
        colony__free(b);
        return NULL;
    }
    b->limit = c->limit;
    b->burst = c->burst;
    b->window_ms = c->window_ms;
    colony__list_push_back(&st->lru, &b->lru);
    st->nkeys++;
    return b;
}

static gw_rl_stripe *stripe_of(gw_ratelimit *rl, const char *mapkey)
{
    uint64_t h = colony__fnv1a(COLONY_FNV1A_OFFSET, mapkey, strlen(mapkey));
    return &rl->stripes[(h ^ (h >> 32)) % rl->nstripes];
}

gw_rl_stripe *colony__gw_ratelimit_stripe(gw_ratelimit *rl, const char *scope, const char *key)
{
    char mapkey[GW_RL_MAX_KEY + 128];
    scoped_key(mapkey, sizeof(mapkey), "", "\n", scope, key);
    return stripe_of(rl->store, mapkey);
}

size_t colony__gw_ratelimit_keys(gw_ratelimit *rl)
{
    size_t n = 0;
    for (unsigned i = 0; i < rl->nstripes; i++) {
        uv_mutex_lock(&rl->stripes[i].lock);
        n += rl->stripes[i].nkeys;
        uv_mutex_unlock(&rl->stripes[i].lock);
    }
    return n;
}

/* Seconds, rounded up; a millisecond over a whole second (the bucket's
 * integer rate) does not make another second. */
static uint64_t ceil_s(uint64_t ms)
{
    return (ms + 998) / 1000;
}

int colony__gw_ratelimit_take_local(gw_ratelimit *rl, const char *scope, const gw_ratelimit_conf *c,
                                    const char *key, gw_rl_result *out)
{
    char mapkey[GW_RL_MAX_KEY + 128];
    scoped_key(mapkey, sizeof(mapkey), "", "\n", scope, key);
    *out = (gw_rl_result){.outcome = GW_RL_ALLOW, .limit = c->burst, .remaining = c->burst};
    gw_ratelimit *store = rl->store;
    gw_rl_stripe *st = stripe_of(store, mapkey);
    uv_mutex_lock(&st->lock);
    rl_bucket *b = bucket_get(store, st, mapkey, c);
    if (!b) {
        uv_mutex_unlock(&st->lock);
        return COLONY_ENOMEM;
    }
    uint64_t retry_ms = 0;
    if (colony_token_bucket_take(b->tb, b->scale, &retry_ms) != 0) {
        out->outcome = GW_RL_LIMITED;
        out->retry_s = retry_ms == UINT64_MAX ? ceil_s(c->window_ms) : ceil_s(retry_ms);
        if (out->retry_s == 0) out->retry_s = 1;
    }
    uint64_t tokens = colony_token_bucket_available(b->tb);
    out->remaining = (uint32_t)(tokens / b->scale);
    /* until the bucket is full again: each missing request takes window/limit */
    uint64_t missing = (uint64_t)c->burst * b->scale - tokens;
    out->reset_s =
        ceil_s((uint64_t)((double)missing * (double)c->window_ms / ((double)c->limit * b->scale)));
    uv_mutex_unlock(&st->lock);
    return 0;
}

/* ---- keys ------------------------------------------------------------- */

const char *colony__gw_ratelimit_key(const gw_ratelimit_conf *c, colony_request *req, char *buf,
                                     size_t size)
{
    const char *v;
    size_t len;
    if (c->key == GW_RL_KEY_HEADER || c->key == GW_RL_KEY_JWT_SUB) {
        v = c->key == GW_RL_KEY_HEADER ? colony_request_header(req, c->key_header)
                                       : colony_request_get_data(req, GW_REQ_JWT_SUB);
        if (!v) v = ""; /* a token without "sub": all such requests share one bucket */
        len = strlen(v);
    } else {
        v = colony_request_peer_ip(req);
        len = strlen(v);
    }
    if (len < size && len <= GW_RL_MAX_KEY) {
        memcpy(buf, v, len);
        buf[len] = '\0';
    } else {
        snprintf(buf, size, "#%016llx", (unsigned long long)colony__hash_keyed(v, len));
    }
    return buf;
}

/* ---- one check -------------------------------------------------------- */

static void count_rejected(gw_ratelimit *rl, const char *scope, const gw_rl_result *res)
{
    if (res->outcome != GW_RL_ALLOW && rl->m_rejected)
        colony_metric_inc(colony_metric_with(rl->m_rejected, scope), 1);
}

/* Redis did not decide: local limits (fail open) or 503 (fail closed). */
static void fall_back(gw_ratelimit *rl, const char *scope, const gw_ratelimit_conf *c,
                      const char *key, gw_rl_result *out)
{
    if (rl->m_fallbacks) colony_metric_inc(colony_metric_with(rl->m_fallbacks), 1);
    if (c->fail_closed) {
        *out = (gw_rl_result){.outcome = GW_RL_UNAVAILABLE, .limit = c->limit, .retry_s = 1};
        return;
    }
    colony__gw_ratelimit_take_local(rl, scope, c, key, out);
}

typedef struct rl_pending {
    gw_ratelimit *rl;
    gw_ratelimit_conf conf; /* copied: a reload may free the config meanwhile */
    gw_rl_done_cb done;
    void *ud;
    char *scope, *key;
} rl_pending;

static void pending_free(rl_pending *p)
{
    colony__free(p->scope);
    colony__free(p->key);
    colony__free(p);
}

/* Fixed window in Redis: count is this request's number in the window and
 * pttl_ms the time left in it. */
static void redis_answered(void *ud, int ok, long long count, long long pttl_ms)
{
    rl_pending *p = ud;
    const gw_ratelimit_conf *c = &p->conf;
    gw_rl_result res;
    if (!ok) {
        fall_back(p->rl, p->scope, c, p->key, &res);
    } else {
        uint64_t left = pttl_ms > 0 ? (uint64_t)pttl_ms : c->window_ms;
        res = (gw_rl_result){.outcome = count > (long long)c->limit ? GW_RL_LIMITED : GW_RL_ALLOW,
                             .limit = c->limit,
                             .remaining = count >= (long long)c->limit
                                              ? 0
                                              : c->limit - (uint32_t)(count < 0 ? 0 : count),
                             .reset_s = ceil_s(left)};
        if (res.outcome == GW_RL_LIMITED) res.retry_s = res.reset_s ? res.reset_s : 1;
    }
    count_rejected(p->rl, p->scope, &res);
    gw_rl_done_cb done = p->done;
    void *done_ud = p->ud;
    pending_free(p);
    done(done_ud, &res);
}

int colony__gw_ratelimit_check(gw_ratelimit *rl, const char *scope, const gw_ratelimit_conf *c,
                               const char *key, gw_rl_result *out, gw_rl_done_cb done, void *ud)
{
    if (!c->redis) {
        colony__gw_ratelimit_take_local(rl, scope, c, key, out);
        count_rejected(rl, scope, out);
        return 0;
    }
    rl_pending *p = colony__calloc(1, sizeof(*p));
    char rkey[GW_RL_MAX_KEY + 160], sep[32];
    snprintf(sep, sizeof(sep), ":%llu:", (unsigned long long)c->window_ms);
    size_t n = scoped_key(rkey, sizeof(rkey), "colony:rl:", sep, scope, key);
    if (p) {
        *p = (rl_pending){.rl = rl, .conf = *c, .done = done, .ud = ud};
        p->scope = colony__strdup(scope);
        p->key = colony__strdup(key);
    }
    if (!p || !p->scope || !p->key || !rl->redis ||
        colony__gw_redis_hit(rl->redis, rkey, n, c->window_ms, redis_answered, p) != 0) {
        if (p) pending_free(p);
        fall_back(rl, scope, c, key, out);
        count_rejected(rl, scope, out);
        return 0;
    }
    return 1;
}

/* ---- answers ---------------------------------------------------------- */

void colony__gw_ratelimit_headers(colony_request *req, const gw_rl_result *res)
{
    char v[24];
    snprintf(v, sizeof(v), "%u", res->limit);
    colony_response_header(req, "RateLimit-Limit", v);
    snprintf(v, sizeof(v), "%u", res->remaining);
    colony_response_header(req, "RateLimit-Remaining", v);
    snprintf(v, sizeof(v), "%llu", (unsigned long long)res->reset_s);
    colony_response_header(req, "RateLimit-Reset", v);
    if (res->outcome != GW_RL_ALLOW) {
        snprintf(v, sizeof(v), "%llu", (unsigned long long)res->retry_s);
        colony_response_header(req, "Retry-After", v);
    }
}

void colony__gw_ratelimit_refuse(colony_request *req, const gw_rl_result *res)
{
    colony__gw_ratelimit_headers(req, res);
    if (res->outcome == GW_RL_UNAVAILABLE)
        colony_respond_error(req, 503, "rate_limit_unavailable",
                             "the shared rate limit cannot be checked now (Redis is down)");
    else
        colony_respond_error(req, 429, "too_many_requests",
                             "rate limit exceeded; retry after the Retry-After seconds");
}

/* ---- lifecycle -------------------------------------------------------- */

int colony__gw_ratelimit_use_redis(gw_ratelimit *rl, const char *url)
{
    if (rl->redis && url && strcmp(colony__gw_redis_url(rl->redis), url) == 0) return 0;
    if (rl->redis) {
        colony__gw_redis_close(rl->redis, NULL, NULL);
        rl->redis = NULL;
    }
    if (!url) {
        if (rl->m_redis_up) colony_metric_set(colony_metric_with(rl->m_redis_up), 0);
        return 0;
    }
    char host[256];
    int port;
    if (parse_redis_url(url, host, sizeof(host), &port) != 0) return COLONY_EINVAL;
    return colony__gw_redis_new(rl->loop, url, host, port,
                                rl->m_redis_up ? colony_metric_with(rl->m_redis_up) : NULL,
                                &rl->store->redis_outages, &rl->redis);
}

void colony__gw_ratelimit_close(gw_ratelimit *rl, void (*cb)(void *ud), void *ud)
{
    /* Redis first: its pending checks complete now, on the local buckets. */
    gw_redis *r = rl->redis;
    rl->redis = NULL;
    if (r) colony__gw_redis_close(r, cb, ud);
    for (unsigned i = 0; rl->stripes && i < GW_RL_STRIPES; i++) {
        gw_rl_stripe *st = &rl->stripes[i];
        size_t pos = 0;
        colony__map_slot *s;
        while ((s = colony__map_next(&st->buckets, &pos)) != NULL) {
            rl_bucket *b = s->value;
            colony_token_bucket_free(b->tb);
            colony__free(b);
        }
        colony__map_free(&st->buckets);
        if (i < rl->stripes_ready) uv_mutex_destroy(&st->lock);
    }
    colony__free(rl->stripes);
    rl->stripes = NULL;
    if (!r && cb) cb(ud);
}
