/* The supervisor as a whole (runtime.h): dependency order on the way up and
 * reverse order on the way down, user commands, the `ps` view. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "supervisor/runtime.h"

#define SAMPLE_INTERVAL_MS 1000
#define LINGER_MS          500

static uint64_t now_ms(const sup *s)
{
    return colony_clock_now(&s->clock);
}

void colony__sup_handle_released(sup *s)
{
    if (--s->open_handles == 0 && s->done) {
        sup_done_cb done = s->done;
        s->done = NULL;
        done(s, s->done_ud);
    }
}

static void own_timer_closed(uv_handle_t *h)
{
    colony__sup_handle_released(h->data);
}

static int app_index(const sup *s, const char *name)
{
    for (size_t i = 0; i < s->napps; i++)
        if (strcmp(s->apps[i].conf->name, name) == 0) return (int)i;
    return -1;
}

static void restart_one(sup_instance *inst);

/* Every second: CPU use of each instance, and max_memory_restart. */
static void sample_cpu(uv_timer_t *t)
{
    sup *s = t->data;
    long hz = sysconf(_SC_CLK_TCK);
    uint64_t now = now_ms(s);
    for (size_t a = 0; a < s->napps; a++) {
        for (int i = 0; i < s->apps[a].ninstances; i++) {
            sup_instance *inst = s->apps[a].instances[i];
            uint64_t ticks, rss;
            if (!inst->pid || colony__sup_proc_usage(inst->pid, &ticks, &rss) != 0) continue;
            if (inst->cpu_sampled_ms && now > inst->cpu_sampled_ms && hz > 0)
                inst->cpu_percent = (double)(ticks - inst->cpu_ticks) * 1000.0 / (double)hz *
                                    100.0 / (double)(now - inst->cpu_sampled_ms);
            inst->cpu_ticks = ticks;
            inst->cpu_sampled_ms = now;
            int64_t max = s->apps[a].conf->max_memory_bytes;
            if (max > 0 && rss > (uint64_t)max && inst->status == SUP_ONLINE &&
                !inst->restart_after_stop) {
                colony__sup_log_event(inst,
                                      "memory %llu bytes over max_memory_restart %lld: restart",
                                      (unsigned long long)rss, (long long)max);
                restart_one(inst);
            }
        }
    }
}

int colony__sup_new(uv_loop_t *loop, sup_ecosystem *eco, const sup_options *o, sup **out)
{
    *out = NULL;
    sup *s = colony__calloc(1, sizeof(*s));
    if (!s) return COLONY_ENOMEM;
    s->loop = loop;
    colony__list_init(&s->runs);
    s->echo = o->echo;
    s->clock = o->clock;
    s->eco = *eco;
    memset(eco, 0, sizeof(*eco));
    int rc = 0;
    if (!(s->state_dir = colony__strdup(o->state_dir)) ||
        !(s->apps = colony__calloc(s->eco.napps, sizeof(sup_app_rt))))
        rc = COLONY_ENOMEM;
    if (!rc) rc = colony__sup_logs_init(s);
    uv_timer_init(loop, &s->sampler);
    s->sampler.data = s;
    uv_timer_init(loop, &s->linger);
    s->linger.data = s;
    s->open_handles = 2;
    /* napps counts the apps whose instances exist, so that a failure half way
     * still closes exactly what was opened. */
    for (size_t a = 0; !rc && a < s->eco.napps; a++) {
        sup_app_rt *app = &s->apps[a];
        sup_app *conf = &s->eco.apps[a];
        app->sup = s;
        app->conf = conf;
        app->policy.autorestart = conf->autorestart;
        app->policy.max_restarts = conf->max_restarts;
        app->policy.min_uptime_ms = (uint64_t)conf->min_uptime_ms;
        app->policy.restart_delay_ms = (uint64_t)conf->restart_delay_ms;
        app->policy.exp_backoff_ms = (uint64_t)conf->exp_backoff_ms;
        app->policy.stop_exit_codes = conf->stop_exit_codes;
        app->policy.nstop_exit_codes = conf->nstop_exit_codes;
        if (!(app->dependents = colony__calloc(s->eco.napps, sizeof(size_t))) ||
            !(app->instances = colony__calloc((size_t)conf->instances, sizeof(sup_instance *)))) {
            rc = COLONY_ENOMEM;
            break;
        }
        s->napps = a + 1;
        for (int i = 0; i < conf->instances; i++) {
            if (!(app->instances[i] = colony__calloc(1, sizeof(sup_instance)))) {
                rc = COLONY_ENOMEM;
                break;
            }
            app->ninstances = i + 1;
            int irc = colony__sup_instance_init(s, app, i);
            if (irc && !rc) rc = irc;
        }
    }
    for (size_t a = 0; !rc && a < s->napps; a++) {
        for (size_t d = 0; d < s->apps[a].conf->ndepends_on; d++) {
            sup_app_rt *dep = &s->apps[app_index(s, s->apps[a].conf->depends_on[d])];
            dep->dependents[dep->ndependents++] = a;
        }
    }
    *out = s;
    return rc;
}

int colony__sup_app_count(const sup_app_rt *app)
{
    int n = 0;
    for (int i = 0; i < app->ninstances; i++)
        n += !app->instances[i]->retired_slot;
    return n;
}

static int app_running(const sup_app_rt *app)
{
    for (int i = 0; i < app->ninstances; i++) {
        const sup_instance *inst = app->instances[i];
        if (inst->run || inst->successor || inst->retiring || inst->status == SUP_STOPPING)
            return 1;
    }
    return 0;
}

static int app_all_ready(const sup_app_rt *app)
{
    for (int i = 0; i < app->ninstances; i++)
        if (!app->instances[i]->retired_slot && app->instances[i]->status != SUP_ONLINE) return 0;
    return 1;
}

static void start_app(sup_app_rt *app)
{
    app->started = 1;
    COLONY_LOG_INFO("starting app", COLONY_LF_STR("app", app->conf->name),
                    COLONY_LF_INT("instances", app->ninstances));
    for (int i = 0; i < app->ninstances; i++)
        if (app->instances[i]->want_running && app->instances[i]->status == SUP_WAITING)
            colony__sup_instance_spawn(app->instances[i]);
}

static void close_all(sup *s)
{
    s->closing = 1;
    if (s->client) {
        colony_client_close(s->client, NULL, NULL);
        s->client = NULL;
    }
    for (size_t a = 0; a < s->napps; a++) {
        for (int i = 0; i < s->apps[a].ninstances; i++) {
            colony__sup_logs_close(s->apps[a].instances[i]);
            if (s->apps[a].instances[i]->timer.loop)
                colony__sup_instance_close(s->apps[a].instances[i]);
        }
    }
    colony__sup_logs_shutdown(s);
    uv_close((uv_handle_t *)&s->sampler, own_timer_closed);
    uv_close((uv_handle_t *)&s->linger, own_timer_closed);
}

static void linger_expired(uv_timer_t *t)
{
    colony__sup_close_lingering_runs(t->data);
}

/* Down: an app stops once nothing that depends on it still runs; when
 * nothing runs and no probe is out, every handle closes. */
static void pump_down(sup *s)
{
    int busy = 0;
    for (size_t k = s->napps; k-- > 0;) {
        sup_app_rt *app = &s->apps[k];
        int dependents_running = 0;
        for (size_t d = 0; d < app->ndependents; d++)
            dependents_running |= app_running(&s->apps[app->dependents[d]]);
        if (dependents_running) {
            busy = 1;
            continue;
        }
        for (int i = 0; i < app->ninstances; i++)
            colony__sup_instance_stop(app->instances[i]);
        busy |= app_running(app);
    }
    /* Pipes still open with nothing running: give them a moment to deliver
     * the last lines, then close what a background leftover still holds. */
    if (!busy && s->open_runs && !uv_is_active((uv_handle_t *)&s->linger))
        uv_timer_start(&s->linger, linger_expired, LINGER_MS, 0);
    if (!busy && !s->open_runs && !s->open_probes && !s->closing) close_all(s);
}

void colony__sup_pump(sup *s)
{
    if (s->closing) return;
    if (s->shutting_down) {
        pump_down(s);
        return;
    }
    for (size_t a = 0; a < s->napps; a++) {
        sup_app_rt *app = &s->apps[a];
        if (!app->ever_ready && app->started && app_all_ready(app)) {
            app->ever_ready = 1;
            COLONY_LOG_INFO("app ready", COLONY_LF_STR("app", app->conf->name));
        }
    }
    for (size_t a = 0; a < s->napps; a++) {
        sup_app_rt *app = &s->apps[a];
        if (app->started) continue;
        int deps_ready = 1;
        for (size_t d = 0; d < app->conf->ndepends_on; d++)
            deps_ready &= s->apps[app_index(s, app->conf->depends_on[d])].ever_ready;
        if (deps_ready) start_app(app);
    }
}

void colony__sup_start(sup *s)
{
    uv_timer_start(&s->sampler, sample_cpu, SAMPLE_INTERVAL_MS, SAMPLE_INTERVAL_MS);
    colony__sup_pump(s);
}

void colony__sup_shutdown(sup *s, sup_done_cb done, void *ud)
{
    if (s->shutting_down) return;
    s->shutting_down = 1;
    s->done = done;
    s->done_ud = ud;
    COLONY_LOG_INFO("stopping every app, dependents first");
    colony__sup_pump(s);
}

void colony__sup_free(sup *s)
{
    if (!s) return;
    for (size_t a = 0; s->apps && a < s->eco.napps; a++) {
        for (int i = 0; i < s->apps[a].ninstances; i++) {
            if (s->apps[a].instances[i] && s->apps[a].instances[i]->app)
                colony__sup_logs_close(s->apps[a].instances[i]);
            colony__free(s->apps[a].instances[i]);
        }
        colony__free(s->apps[a].instances);
        colony__free(s->apps[a].dependents);
    }
    colony__sup_logs_shutdown(s);
    colony__free(s->apps);
    colony__free(s->state_dir);
    colony__sup_ecosystem_free(&s->eco);
    colony__free(s);
}

/* ---- user commands ---- */

typedef void (*inst_action)(sup_instance *inst);

static int for_target(sup *s, const char *target, inst_action act)
{
    if (s->shutting_down) return COLONY_ESHUTDOWN;
    int all = strcmp(target, "all") == 0, count = 0;
    if (!all && app_index(s, target) < 0) return COLONY_ENOENT;
    for (size_t a = 0; a < s->napps; a++) {
        if (!all && strcmp(s->apps[a].conf->name, target) != 0) continue;
        for (int i = 0; i < s->apps[a].ninstances; i++) {
            if (s->apps[a].instances[i]->retired_slot) continue;
            act(s->apps[a].instances[i]);
            count++;
        }
    }
    colony__sup_pump(s);
    return count;
}

static void start_one(sup_instance *inst)
{
    inst->want_running = 1;
    if (inst->status == SUP_STOPPED || inst->status == SUP_ERRORED ||
        (inst->status == SUP_WAITING && inst->app->started)) {
        colony__sup_restart_reset(&inst->restart);
        colony__sup_instance_spawn(inst);
    } else if (inst->status == SUP_STOPPING) {
        inst->restart_after_stop = 1;
    }
}

static void restart_one(sup_instance *inst)
{
    colony__sup_restart_reset(&inst->restart);
    if (inst->status == SUP_LAUNCHING || inst->status == SUP_ONLINE) {
        colony__sup_instance_stop(inst);
        inst->restart_after_stop = 1;
        return;
    }
    start_one(inst);
}

int colony__sup_stop(sup *s, const char *target)
{
    return for_target(s, target, colony__sup_instance_stop);
}

int colony__sup_start_app(sup *s, const char *target)
{
    return for_target(s, target, start_one);
}

int colony__sup_restart(sup *s, const char *target)
{
    return for_target(s, target, restart_one);
}

int colony__sup_scale(sup *s, const char *target, int n)
{
    if (s->shutting_down) return COLONY_ESHUTDOWN;
    int idx = app_index(s, target);
    if (idx < 0) return COLONY_ENOENT;
    if (n < 0 || n > SUP_SCALE_MAX) return COLONY_EINVAL;
    sup_app_rt *app = &s->apps[idx];
    if (app->reloading) return COLONY_EBUSY;
    int before = colony__sup_app_count(app);
    if (n > app->ninstances) {
        sup_instance **grown = colony__realloc(app->instances, (size_t)n * sizeof(sup_instance *));
        if (!grown) return COLONY_ENOMEM;
        app->instances = grown;
        while (app->ninstances < n) {
            sup_instance *inst = colony__calloc(1, sizeof(*inst));
            if (!inst) return COLONY_ENOMEM;
            app->instances[app->ninstances++] = inst;
            int rc = colony__sup_instance_init(s, app, app->ninstances - 1);
            if (rc) return rc;
            inst->retired_slot = 1; /* brought in below */
            inst->status = SUP_STOPPED;
        }
    }
    for (int i = 0; i < n; i++) {
        sup_instance *inst = app->instances[i];
        if (!inst->retired_slot) continue;
        inst->retired_slot = 0;
        colony__sup_log_event(inst, "scale: instance %d of %d", i, n);
        if (app->started)
            start_one(inst);
        else {
            inst->want_running = 1;
            inst->status = SUP_WAITING;
        }
    }
    for (int i = app->ninstances; i-- > n;) { /* highest index first */
        sup_instance *inst = app->instances[i];
        if (inst->retired_slot) continue;
        inst->retired_slot = 1;
        colony__sup_log_event(inst, "scale: stopping (down to %d)", n);
        colony__sup_instance_stop(inst);
    }
    COLONY_LOG_INFO("scaled", COLONY_LF_STR("app", app->conf->name), COLONY_LF_INT("from", before),
                    COLONY_LF_INT("to", n));
    colony__sup_pump(s);
    return before;
}

json_t *colony__sup_ps(sup *s)
{
    json_t *list = json_array();
    uint64_t now = now_ms(s);
    for (size_t a = 0; list && a < s->napps; a++) {
        for (int i = 0; i < s->apps[a].ninstances; i++) {
            sup_instance *inst = s->apps[a].instances[i];
            if (inst->retired_slot && inst->status == SUP_STOPPED) continue;
            uint64_t ticks = 0, rss = 0;
            if (inst->pid) colony__sup_proc_usage(inst->pid, &ticks, &rss);
            int live = inst->status == SUP_ONLINE || inst->status == SUP_LAUNCHING ||
                       inst->status == SUP_STOPPING;
            json_t *row = json_pack(
                "{s:s, s:i, s:i, s:s, s:I, s:i, s:i, s:f, s:I}", "name", s->apps[a].conf->name,
                "instance", i, "pid", inst->pid, "status", colony__sup_status_name(inst->status),
                "uptime_ms", (json_int_t)(live ? now - inst->restart.started_at_ms : 0), "restarts",
                (int)inst->restart.restarts, "unstable_restarts", (int)inst->restart.unstable,
                "cpu", inst->cpu_percent, "memory", (json_int_t)rss);
            if (!row || json_array_append_new(list, row) != 0) {
                json_decref(list);
                return NULL;
            }
            if (inst->last_signal)
                json_object_set_new(row, "exit_signal", json_integer(inst->last_signal));
            else if (inst->restart.restarts || inst->status == SUP_STOPPED ||
                     inst->status == SUP_ERRORED)
                json_object_set_new(row, "exit_code", json_integer(inst->last_exit_code));
        }
    }
    json_t *reloads = list ? json_object() : NULL;
    for (size_t a = 0; reloads && a < s->napps; a++) {
        const sup_app_rt *app = &s->apps[a];
        if (!app->reload_message[0]) continue;
        const char *state = app->reloading ? "running" : app->reload_failed ? "failed" : "done";
        json_object_set_new(reloads, app->conf->name,
                            json_pack("{s:s, s:s, s:i}", "state", state, "message",
                                      app->reload_message, "reloaded", app->reload_done));
    }
    if (!list || !reloads) { /* json_pack's "o" takes both, even when it fails */
        json_decref(list);
        json_decref(reloads);
        return NULL;
    }
    return json_pack("{s:o, s:o, s:i}", "apps", list, "reloads", reloads, "supervisor_pid",
                     (int)getpid());
}
