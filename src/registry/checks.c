/* Health checks on the registry's loop: TTL checks expire to critical; HTTP
 * and TCP checks are colony_probes (kit/probe) on one prober, which spreads
 * their first runs over an interval, applies SuccessBeforePassing and
 * FailuresBeforeCritical, caps the probes in flight (REG_MAX_INFLIGHT_CHECKS
 * in all, REG_MAX_CHECKS_PER_TARGET per host:port) and serves the targets in
 * turn. A reaper deregisters services whose check stayed critical past
 * DeregisterCriticalServiceAfter. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "colony/config.h"
#include "colony/error.h"
#include "colony/log.h"
#include "colony/metrics.h"
#include "colony/probe.h"
#include "core/alloc.h"
#include "registry/checks.h"

static void maybe_free(reg_check *chk)
{
    if (chk->removed && !chk->timer_open && !chk->probe_open) colony__reg_check_free(chk);
}

static void timer_closed(uv_handle_t *h)
{
    reg_check *chk = h->data;
    chk->timer_open = 0;
    maybe_free(chk);
}

static void probe_closed(void *ud)
{
    reg_check *chk = ud;
    chk->probe_open = 0;
    chk->probe = NULL;
    maybe_free(chk);
}

/* Every run that a threshold does not hold back sets the status and output
 * (Consul keeps both while it holds a change back). Setting it again each
 * run also repairs a status that could not be saved for lack of memory. */
static void on_probe_result(colony_probe *p, const colony_probe_result *r, void *ud)
{
    (void)p;
    reg_check *chk = ud;
    if (r->status != r->run_status) return;
    colony__reg_check_set_status(chk->reg, chk, (int)r->status, r->output);
}

static void on_ttl_expired(uv_timer_t *t)
{
    reg_check *chk = t->data;
    colony__reg_check_set_status(chk->reg, chk, REG_CRITICAL, "TTL expired");
}

static int arm_ttl(registry *reg, reg_check *chk)
{
    int rc = uv_timer_init(reg->loop, &chk->timer);
    if (rc) return rc;
    chk->timer.data = chk;
    chk->timer_open = 1;
    return uv_timer_start(&chk->timer, on_ttl_expired, chk->ttl_ms, 0);
}

/* The check's headers as a name, value list (pointers into chk->header),
 * with Consul's User-Agent unless the check sets one. */
static const char **probe_headers(const reg_check *chk)
{
    size_t n = 0, k = 0;
    const char *name;
    json_t *vals;
    json_object_foreach(chk->header, name, vals) n += json_array_size(vals);
    const char **headers = colony__calloc(2 * n + 3, sizeof(*headers));
    if (!headers) return NULL;
    int has_agent = 0;
    json_object_foreach(chk->header, name, vals)
    {
        size_t i;
        json_t *v;
        json_array_foreach(vals, i, v)
        {
            headers[k++] = name;
            headers[k++] = json_string_value(v);
        }
        if (strcasecmp(name, "User-Agent") == 0 && json_array_size(vals)) has_agent = 1;
    }
    if (!has_agent) {
        headers[k++] = "User-Agent";
        headers[k++] = "Consul Health Check";
    }
    return headers;
}

static int arm_probe(registry *reg, reg_check *chk)
{
    colony_probe_options o;
    colony_probe_options_init(&o);
    o.kind = chk->type == REG_CHECK_HTTP ? COLONY_PROBE_HTTP : COLONY_PROBE_TCP;
    o.target = chk->target;
    o.interval_ms =
        chk->interval_ms < reg->min_interval_ms ? reg->min_interval_ms : chk->interval_ms;
    o.timeout_ms = chk->timeout_ms;
    o.success_before_passing = (unsigned)chk->success_before_passing;
    o.failures_before_critical = (unsigned)chk->failures_before_critical;
    o.initial_status = (colony_probe_status)chk->status;
    o.on_result = on_probe_result;
    o.ud = chk;
    const char **headers = NULL;
    if (o.kind == COLONY_PROBE_HTTP) {
        o.method = chk->method && *chk->method ? chk->method : NULL;
        o.body = chk->body;
        headers = probe_headers(chk);
        if (!headers) return COLONY_ENOMEM;
        o.headers = headers;
    }
    colony_probe *p = NULL;
    int rc = colony_probe_start(reg->prober, &o, &p); /* copies what it keeps */
    colony__free(headers);
    if (rc) return rc;
    chk->probe = p;
    chk->probe_open = 1;
    return 0;
}

int colony__reg_check_arm(registry *reg, reg_check *chk)
{
    chk->reg = reg;
    int rc = chk->type == REG_CHECK_TTL ? arm_ttl(reg, chk) : arm_probe(reg, chk);
    if (rc) return rc;
    if (chk->status == REG_CRITICAL && !chk->critical_since_ms)
        chk->critical_since_ms = uv_now(reg->loop);
    return 0;
}

int colony__reg_check_ttl_update(registry *reg, reg_check *chk, int status, const char *note)
{
    if (!chk->timer_open) { /* its timer could not start before: a TTL must be able to expire */
        int rc = arm_ttl(reg, chk);
        if (rc) return rc;
    }
    int rc = colony__reg_check_set_status(reg, chk, status, note);
    if (rc < 0) return rc; /* nothing changed: the client is told, the TTL runs on */
    return uv_timer_start(&chk->timer, on_ttl_expired, chk->ttl_ms, 0);
}

void colony__reg_check_disarm(reg_check *chk)
{
    chk->removed = 1;
    if (chk->timer_open && !uv_is_closing((uv_handle_t *)&chk->timer))
        uv_close((uv_handle_t *)&chk->timer, timer_closed);
    if (chk->probe_open && chk->probe) {
        colony_probe *p = chk->probe;
        chk->probe = NULL; /* probe_open stays set until its close callback */
        colony_probe_close(p, probe_closed, chk);
    }
    maybe_free(chk);
}

/* Deregisters services whose check has been critical for longer than its
 * DeregisterCriticalServiceAfter; forgets old KV tombstones. */
static void reap(uv_timer_t *t)
{
    registry *reg = t->data;
    uint64_t now = uv_now(reg->loop);
    colony__reg_kv_reap_tombstones(reg, now);
    for (size_t i = 0; i < reg->checks.cap; i++) {
        reg_check *c = reg->checks.slots[i].key ? reg->checks.slots[i].value : NULL;
        if (!c || !c->deregister_after_ms || !c->service_id || c->status != REG_CRITICAL ||
            !c->critical_since_ms)
            continue;
        uint64_t after = c->deregister_after_ms < reg->min_deregister_ms ? reg->min_deregister_ms
                                                                         : c->deregister_after_ms;
        if (now - c->critical_since_ms < after) continue;
        char *sid = colony__strdup(c->service_id);
        if (!sid) continue;
        COLONY_LOG_INFO("registry: deregistering critical service", COLONY_LF_STR("service", sid),
                        COLONY_LF_STR("check", c->id));
        colony__reg_service_remove(reg, sid); /* changes the map: rescan from the start */
        colony__free(sid);
        i = (size_t)-1;
    }
}

/* A loaded check that cannot run is shown critical, with why, rather than
 * left with a status nothing will ever update. */
static void arm_loaded(registry *reg, reg_check *chk)
{
    int rc = colony__reg_check_arm(reg, chk);
    if (!rc) return;
    char why[200];
    snprintf(why, sizeof(why), "check not running: cannot start it: %s", colony_strerror(rc));
    COLONY_LOG_ERROR("registry: cannot arm check", COLONY_LF_STR("check", chk->id),
                     COLONY_LF_STR("error", colony_strerror(rc)));
    colony__reg_check_set_status(reg, chk, REG_CRITICAL, why);
}

static double checks_inflight(void *ud)
{
    const registry *reg = ud;
    colony_prober_stats st = {0};
    if (reg->prober) colony_prober_get_stats(reg->prober, &st);
    return (double)st.inflight;
}

static double checks_due(void *ud)
{
    const registry *reg = ud;
    colony_prober_stats st = {0};
    if (reg->prober) colony_prober_get_stats(reg->prober, &st);
    return (double)st.due;
}

int colony__reg_checks_start(registry *reg, colony_metrics *m, colony_config *cfg)
{
    if (m &&
        (colony_metrics_gauge_fn(m, "colony_registry_checks_inflight",
                                 "HTTP and TCP check runs in progress", checks_inflight, reg) ||
         colony_metrics_gauge_fn(m, "colony_registry_checks_due",
                                 "HTTP and TCP check runs due and waiting for a slot", checks_due,
                                 reg)))
        return COLONY_ENOMEM;
    colony_prober_options po;
    colony_prober_options_init(&po);
    po.max_inflight = REG_MAX_INFLIGHT_CHECKS;
    po.max_per_target = REG_MAX_CHECKS_PER_TARGET;
    if (cfg) { /* bounds checked by the settings table */
        po.max_inflight = (unsigned)colony_config_get_int(cfg, "checks.max-inflight");
        po.max_per_target = (unsigned)colony_config_get_int(cfg, "checks.max-per-target");
    }
    po.max_output = REG_MAX_OUTPUT;
    int rc = colony_prober_new(reg->loop, &po, &reg->prober);
    if (rc) return rc;
    rc = uv_timer_init(reg->loop, &reg->reaper);
    if (rc) return rc;
    reg->reaper.data = reg;
    reg->reaper_open = 1;
    rc = uv_timer_start(&reg->reaper, reap, REG_REAP_INTERVAL_MS, REG_REAP_INTERVAL_MS);
    if (rc) return rc;
    size_t pos = 0;
    for (colony__map_slot *s; (s = colony__map_next(&reg->checks, &pos));)
        arm_loaded(reg, s->value);
    return 0;
}

void colony__reg_checks_stop(registry *reg)
{
    if (reg->reaper_open) uv_close((uv_handle_t *)&reg->reaper, NULL);
    reg->reaper_open = 0;
    for (size_t i = 0; i < reg->checks.cap; i++) {
        reg_check *c = reg->checks.slots[i].key ? reg->checks.slots[i].value : NULL;
        if (c) colony__reg_check_disarm(c);
    }
    colony__map_free(&reg->checks);
    if (reg->prober) colony_prober_close(reg->prober, NULL, NULL);
    reg->prober = NULL;
}
