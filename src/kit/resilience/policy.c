/* A policy set: options per origin, the default policy, and each origin's
 * live state (retry budget, breaker, bulkhead, rate limiter, metric series),
 * created on first use and kept for the set's lifetime. One call's journey
 * through a policy is in policy_call.c. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "core/hash.h"
#include "kit/resilience/policy_internal.h"

#define DEFAULT_MAX_ORIGINS 1024
#define MAX_ORIGIN_LEN      256

void colony_policy_options_init(colony_policy_options *o)
{
    memset(o, 0, sizeof(*o));
    o->propagate_deadline = 1;
    colony_retry_policy_init(&o->retry);
    o->use_budget = 1;
    colony_retry_budget_options_init(&o->budget);
    o->use_breaker = 1;
    colony_breaker_options_init(&o->breaker);
    colony_bulkhead_options_init(&o->bulkhead);
    o->rate_limit.rate_per_sec = 100;
    o->rate_limit.burst = 100;
}

static uint64_t hash_origin(const char *s)
{
    return colony__fnv1a(COLONY_FNV1A_OFFSET, s, strlen(s));
}

int colony__policy_origin_of(const char *url, char *out, size_t size)
{
    if (!url) return COLONY_EINVAL;
    const char *sep = strstr(url, "://");
    if (!sep || sep == url) return COLONY_EINVAL;
    const char *host = sep + 3;
    size_t host_len = strcspn(host, "/?#");
    if (host_len == 0) return COLONY_EINVAL;
    size_t scheme_len = (size_t)(sep - url);
    if (scheme_len + 3 + host_len + 6 >= size) return COLONY_EINVAL;
    size_t n = 0;
    for (size_t i = 0; i < scheme_len + 3 + host_len; i++)
        out[n++] = (char)tolower((unsigned char)url[i]);
    out[n] = '\0';
    /* A port is present when a ':' follows the host (after any IPv6 ']'). */
    const char *bracket = memchr(host, ']', host_len);
    const char *from = bracket ? bracket : host;
    int has_port = memchr(from, ':', host_len - (size_t)(from - host)) != NULL;
    if (!has_port) {
        if (scheme_len == 4 && strncmp(out, "http", 4) == 0)
            snprintf(out + n, size - n, ":80");
        else if (scheme_len == 5 && strncmp(out, "https", 5) == 0)
            snprintf(out + n, size - n, ":443");
    }
    return 0;
}

/* The set's clock goes into every primitive so one fake clock drives them all. */
static void apply_clock(colony_policy_options *o, colony_clock clock)
{
    o->budget.clock = clock;
    o->breaker.clock = clock;
    o->bulkhead.clock = clock;
    o->rate_limit.clock = clock;
}

static void origin_free(policy_origin *po)
{
    if (!po) return;
    colony_retry_budget_free(po->budget);
    colony_breaker_free(po->breaker);
    colony_bulkhead_free(po->bulkhead);
    colony_token_bucket_free(po->limiter);
    colony__free(po->origin);
    colony__free(po);
}

/* Breaker changes reach the metrics gauge, the set's callback and the
 * breaker's own callback (the breaker itself logs them). */
static void on_breaker_change(colony_breaker *b, colony_breaker_state old_state,
                              colony_breaker_state new_state, void *ud)
{
    policy_origin *po = ud;
    colony_metric_set(po->state_gauge, (double)new_state);
    if (po->ps->on_breaker_change)
        po->ps->on_breaker_change(po->origin, old_state, new_state, po->ps->ud);
    if (po->opts.breaker.on_state_change)
        po->opts.breaker.on_state_change(b, old_state, new_state, po->opts.breaker.ud);
}

/* Builds the primitives an options set asks for. NULL on allocation failure
 * or invalid options. */
static policy_origin *origin_new(colony_policy_set *ps, const char *origin,
                                 const colony_policy_options *o)
{
    policy_origin *po = colony__calloc(1, sizeof(*po));
    if (!po) return NULL;
    po->ps = ps;
    po->opts = *o;
    apply_clock(&po->opts, ps->clock);
    po->opts.retry.budget = NULL;
    po->origin = colony__strdup(origin);
    if (!po->origin || po->opts.retry.max_attempts == 0) goto fail;
    if (o->use_budget) {
        po->budget = colony_retry_budget_new(&po->opts.budget);
        if (!po->budget) goto fail;
        po->opts.retry.budget = po->budget;
    }
    if (o->use_breaker) {
        colony_breaker_options bo = po->opts.breaker;
        bo.name = origin;
        bo.on_state_change = on_breaker_change;
        bo.ud = po;
        po->breaker = colony_breaker_new(&bo);
        if (!po->breaker) goto fail;
    }
    if (o->use_bulkhead) {
        colony_bulkhead_options bo = po->opts.bulkhead;
        bo.queue_timeout_ms = 0; /* each queued call's own timer enforces it */
        po->bulkhead = colony_bulkhead_new(&bo);
        if (!po->bulkhead) goto fail;
    }
    if (o->use_rate_limit) {
        po->limiter = colony_token_bucket_new(&po->opts.rate_limit);
        if (!po->limiter) goto fail;
    }
    return po;
fail:
    origin_free(po);
    return NULL;
}

void colony_policy_set_options_init(colony_policy_set_options *o)
{
    *o = (colony_policy_set_options){.max_origins = 1024};
}

colony_policy_set *colony_policy_set_new(const colony_policy_set_options *o)
{
    if (!o || !o->loop) return NULL;
    colony_policy_set *ps = colony__calloc(1, sizeof(*ps));
    if (!ps) return NULL;
    ps->loop = o->loop;
    ps->clock = o->clock;
    if (o->defaults)
        ps->defaults = *o->defaults;
    else
        colony_policy_options_init(&ps->defaults);
    ps->metrics = o->metrics;
    ps->on_breaker_change = o->on_breaker_change;
    ps->ud = o->ud;
    ps->max_origins = o->max_origins ? o->max_origins : DEFAULT_MAX_ORIGINS;
    /* Validate the defaults once by building (and dropping) their state. */
    policy_origin *probe = origin_new(ps, "probe", &ps->defaults);
    if (!probe) goto fail;
    origin_free(probe);
    if (ps->metrics) {
        static const char *const labels[] = {"origin", NULL};
        ps->state_family = colony_metrics_gauge(
            ps->metrics, "colony_breaker_state",
            "Circuit breaker state per origin (0 closed, 1 open, 2 half-open).", labels);
        ps->rejections_family =
            colony_metrics_counter(ps->metrics, "colony_breaker_rejections_total",
                                   "Calls rejected by an open circuit breaker.", labels);
        ps->retries_family = colony_metrics_counter(ps->metrics, "colony_retries_total",
                                                    "Retries made by a policy.", labels);
        if (!ps->state_family || !ps->rejections_family || !ps->retries_family) goto fail;
    }
    return ps;
fail:
    colony__free(ps);
    return NULL;
}

static policy_entry *entry_find(colony_policy_set *ps, const char *origin)
{
    for (policy_entry *e = ps->entries; e; e = e->next)
        if (strcmp(e->origin, origin) == 0) return e;
    return NULL;
}

static policy_origin *origin_find(colony_policy_set *ps, const char *origin)
{
    for (policy_origin *po = ps->buckets[hash_origin(origin) % POLICY_BUCKETS]; po; po = po->next)
        if (strcmp(po->origin, origin) == 0) return po;
    return NULL;
}

int colony_policy_set_add(colony_policy_set *ps, const char *origin, const colony_policy_options *o)
{
    char key[MAX_ORIGIN_LEN];
    if (!o || colony__policy_origin_of(origin, key, sizeof(key)) != 0) return COLONY_EINVAL;
    const char *authority = strstr(origin, "://") + 3;
    if (authority[strcspn(authority, "/?#")] != '\0') return COLONY_EINVAL; /* no path */
    if (origin_find(ps, key)) return COLONY_EEXIST;
    policy_origin *probe = origin_new(ps, key, o);
    if (!probe) return COLONY_EINVAL;
    origin_free(probe);
    policy_entry *e = entry_find(ps, key);
    if (!e) {
        e = colony__calloc(1, sizeof(*e));
        if (!e) return COLONY_ENOMEM;
        e->origin = colony__strdup(key);
        if (!e->origin) {
            colony__free(e);
            return COLONY_ENOMEM;
        }
        e->next = ps->entries;
        ps->entries = e;
    }
    e->opts = *o;
    return 0;
}

policy_origin *colony__policy_origin_get(colony_policy_set *ps, const char *origin, int *err)
{
    policy_origin *po = origin_find(ps, origin);
    if (po) return po;
    if (ps->norigins >= ps->max_origins) {
        *err = COLONY_E2BIG;
        return NULL;
    }
    policy_entry *e = entry_find(ps, origin);
    po = origin_new(ps, origin, e ? &e->opts : &ps->defaults);
    if (!po) {
        *err = COLONY_ENOMEM;
        return NULL;
    }
    if (ps->metrics) {
        po->state_gauge = colony_metric_with(ps->state_family, origin);
        po->rejections = colony_metric_with(ps->rejections_family, origin);
        po->retries = colony_metric_with(ps->retries_family, origin);
        colony_metric_set(po->state_gauge, COLONY_BREAKER_CLOSED);
    }
    size_t b = hash_origin(origin) % POLICY_BUCKETS;
    po->next = ps->buckets[b];
    ps->buckets[b] = po;
    ps->norigins++;
    return po;
}

int colony_policy_breaker_state(colony_policy_set *ps, const char *origin)
{
    char key[MAX_ORIGIN_LEN];
    if (colony__policy_origin_of(origin, key, sizeof(key)) != 0) return -1;
    policy_origin *po = origin_find(ps, key);
    return po && po->breaker ? (int)colony_breaker_get_state(po->breaker) : -1;
}

unsigned colony_policy_set_active(const colony_policy_set *ps)
{
    return ps->active;
}

static void set_free(colony_policy_set *ps)
{
    for (size_t i = 0; i < POLICY_BUCKETS; i++) {
        for (policy_origin *po = ps->buckets[i]; po;) {
            policy_origin *next = po->next;
            origin_free(po);
            po = next;
        }
    }
    for (policy_entry *e = ps->entries; e;) {
        policy_entry *next = e->next;
        colony__free(e->origin);
        colony__free(e);
        e = next;
    }
    colony_policy_closed_cb cb = ps->closed_cb;
    void *ud = ps->closed_ud;
    colony__free(ps);
    if (cb) cb(ud);
}

void colony__policy_maybe_free(colony_policy_set *ps)
{
    if (ps->closing && ps->active == 0 && ps->open_handles == 0) set_free(ps);
}

static void close_sentinel_closed(uv_handle_t *h)
{
    colony_policy_set *ps = h->data;
    ps->open_handles--;
    colony__policy_maybe_free(ps);
}

/* The sentinel counts as an open handle until the loop closes it, so the set
 * is freed and cb runs from the loop, never inside this call. */
void colony_policy_set_close(colony_policy_set *ps, colony_policy_closed_cb cb, void *ud)
{
    if (!ps || ps->closing) return;
    ps->closing = 1;
    ps->closed_cb = cb;
    ps->closed_ud = ud;
    uv_idle_init(ps->loop, &ps->close_sentinel); /* cannot fail: it only links the handle */
    ps->close_sentinel.data = ps;
    ps->open_handles++;
    uv_close((uv_handle_t *)&ps->close_sentinel, close_sentinel_closed);
    colony__policy_cancel_all(ps);
}
