/* Circuit breaker, retry budget and deadline of the proxy (breaker.h). */
#include "gateway/breaker.h"
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"

static void state_changed(colony_breaker *b, colony_breaker_state old_state,
                          colony_breaker_state new_state, void *ud)
{
    (void)b;
    const gw_breaker_share *s = ud;
    COLONY_LOG_WARN("circuit breaker", COLONY_LF_STR("upstream", s->name),
                    COLONY_LF_STR("from", colony_breaker_state_name(old_state)),
                    COLONY_LF_STR("to", colony_breaker_state_name(new_state)));
}

static int same_settings(const gw_breaker_conf *a, const gw_breaker_conf *b)
{
    return a->failure_percent == b->failure_percent && a->min_calls == b->min_calls &&
           a->window_calls == b->window_calls && a->half_open_calls == b->half_open_calls &&
           a->open_ms == b->open_ms && a->window_ms == b->window_ms;
}

int colony__gw_breaker_get(const gw_upstream *u, gw_breaker_share *prev, gw_breaker_share **out)
{
    *out = NULL;
    if (!u->breaker.enabled) return 0;
    if (prev && strcmp(prev->name, u->name) == 0 && same_settings(&prev->conf, &u->breaker)) {
        prev->refs++;
        *out = prev;
        return 0;
    }
    size_t name_len = strlen(u->name);
    gw_breaker_share *s = colony__calloc(1, sizeof(*s) + name_len + 1);
    if (!s) return COLONY_ENOMEM;
    memcpy(s->name, u->name, name_len + 1);
    s->conf = u->breaker;
    s->refs = 1;
    colony_breaker_options o;
    colony_breaker_options_init(&o);
    o.name = u->name;
    o.failure_rate_percent = u->breaker.failure_percent;
    o.slow_rate_percent = 0; /* slow calls are the route timeouts' business */
    o.minimum_calls = u->breaker.min_calls;
    o.window_calls = u->breaker.window_calls;
    o.window_ms = u->breaker.window_ms;
    o.open_ms = u->breaker.open_ms;
    o.half_open_calls = u->breaker.half_open_calls;
    o.on_state_change = state_changed;
    o.ud = s;
    if (!(s->breaker = colony_breaker_new(&o))) {
        colony__free(s);
        return COLONY_ENOMEM;
    }
    if (uv_mutex_init(&s->lock) != 0) {
        colony_breaker_free(s->breaker);
        colony__free(s);
        return COLONY_ENOMEM;
    }
    *out = s;
    return 0;
}

void colony__gw_breaker_put(gw_breaker_share *s)
{
    if (!s || --s->refs > 0) return;
    colony_breaker_free(s->breaker);
    uv_mutex_destroy(&s->lock);
    colony__free(s);
}

int colony__gw_breaker_allow(gw_breaker_share *s)
{
    uv_mutex_lock(&s->lock);
    int rc = colony_breaker_allow(s->breaker);
    uv_mutex_unlock(&s->lock);
    return rc;
}

void colony__gw_breaker_record(gw_breaker_share *s, int ok, uint64_t duration_ms)
{
    uv_mutex_lock(&s->lock);
    colony_breaker_record(s->breaker, ok, duration_ms);
    uv_mutex_unlock(&s->lock);
}

colony_breaker_state colony__gw_breaker_state(gw_breaker_share *s)
{
    uv_mutex_lock(&s->lock);
    colony_breaker_state st = colony_breaker_get_state(s->breaker);
    uv_mutex_unlock(&s->lock);
    return st;
}

int colony__gw_retry_budget_new(const gw_route_conf *r, colony_retry_budget **out)
{
    *out = NULL;
    if (r->retries == 0) return 0;
    colony_retry_budget_options o;
    colony_retry_budget_options_init(&o);
    o.percent = r->retry_budget.percent;
    o.min_retries_per_sec = r->retry_budget.min_per_sec;
    o.window_ms = r->retry_budget.window_ms;
    *out = colony_retry_budget_new(&o);
    return *out ? 0 : COLONY_ENOMEM;
}

uint64_t colony__gw_deadline_total(colony_request *req, const gw_route_conf *r)
{
    uint64_t total = r->total_timeout_ms;
    const char *given = colony_request_header(req, COLONY_DEADLINE_HEADER);
    colony_deadline d;
    if (given && colony_deadline_from_header(NULL, given, strlen(given), total, &d) == 0) {
        uint64_t left = colony_deadline_remaining(&d);
        if (left < total) total = left;
    }
    return total ? total : 1;
}
