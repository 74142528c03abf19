/* The prober: probes, their interval timers, and the scheduler that decides
 * which due probe runs next.
 *
 * Scheduling: a probe whose interval has passed joins its target's queue (a
 * target is one host:port). A target with queued probes and fewer than
 * max_per_target runs in flight sits on the prober's ready ring; while fewer
 * than max_inflight runs are in flight, the target at the front of the ring
 * runs its oldest due probe and goes to the back. So targets are served in
 * turn and a target whose probes all hang for their whole timeout holds at
 * most max_per_target slots: the probes of every other target keep running
 * on time. A probe's next interval starts when its run ends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "kit/probe/probe_internal.h"

void colony_prober_options_init(colony_prober_options *o)
{
    memset(o, 0, sizeof(*o));
    o->max_inflight = 64;
    o->max_per_target = 1;
    o->max_output = 4096;
}

void colony_probe_options_init(colony_probe_options *o)
{
    memset(o, 0, sizeof(*o));
    o->interval_ms = 10000;
    o->timeout_ms = 10000;
    o->first_run_ms = -1;
    o->success_before_passing = 1;
    o->failures_before_critical = 1;
    o->initial_status = COLONY_PROBE_CRITICAL;
}

const char *colony_probe_status_name(colony_probe_status s)
{
    switch (s) {
    case COLONY_PROBE_PASSING:
        return "passing";
    case COLONY_PROBE_WARNING:
        return "warning";
    default:
        return "critical";
    }
}

colony_probe_status colony_probe_get_status(const colony_probe *p)
{
    return p->status;
}

int colony_prober_new(uv_loop_t *loop, const colony_prober_options *opts, colony_prober **out)
{
    colony_prober_options o;
    if (opts)
        o = *opts;
    else
        colony_prober_options_init(&o);
    if (!loop || !out || !o.max_inflight || !o.max_per_target || o.max_output < 64)
        return COLONY_EINVAL;
    colony_prober *pr = colony__calloc(1, sizeof(*pr));
    if (!pr) return COLONY_ENOMEM;
    colony_client_options copts;
    colony_client_options_init(&copts);
    /* The scheduler never runs more than max_per_target calls to one origin,
     * so the client never queues one behind another (its clock would run). */
    copts.max_per_origin = o.max_per_target;
    pr->client = colony_client_new(loop, &copts);
    if (!pr->client) {
        colony__free(pr);
        return COLONY_ENOMEM;
    }
    pr->loop = loop;
    pr->opts = o;
    pr->rng = uv_hrtime() | 1;
    colony__list_init(&pr->ready);
    colony__list_init(&pr->probes);
    *out = pr;
    return 0;
}

void colony_prober_get_stats(const colony_prober *pr, colony_prober_stats *out)
{
    out->probes = pr->nprobes;
    out->inflight = pr->inflight;
    out->due = pr->due;
    out->runs = pr->runs;
}

static void client_closed(void *ud)
{
    colony_prober *pr = ud;
    colony_prober_closed_cb cb = pr->closed_cb;
    void *cb_ud = pr->closed_ud;
    colony__map_free(&pr->targets);
    colony__free(pr);
    if (cb) cb(cb_ud);
}

static void prober_maybe_finish(colony_prober *pr)
{
    if (pr->closing == 1 && pr->nprobes == 0) {
        pr->closing = 2;
        colony_client_close(pr->client, client_closed, pr);
    }
}

void colony_prober_close(colony_prober *pr, colony_prober_closed_cb cb, void *ud)
{
    if (!pr || pr->closing) return;
    pr->closing = 1;
    pr->closed_cb = cb;
    pr->closed_ud = ud;
    colony__list *n, *tmp;
    COLONY__LIST_FOREACH_SAFE(n, tmp, &pr->probes)
    {
        colony_probe *p = COLONY__CONTAINER_OF(n, colony_probe, all_link);
        if (!p->closing) colony_probe_close(p, NULL, NULL);
    }
    prober_maybe_finish(pr);
}

/* ---- targets ---- */

static probe_target *target_get(colony_prober *pr, const char *key)
{
    probe_target *t = colony__map_get(&pr->targets, key);
    if (t) return t;
    t = colony__calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->key = colony__strdup(key);
    if (!t->key || colony__map_put(&pr->targets, key, t)) {
        colony__free(t->key);
        colony__free(t);
        return NULL;
    }
    colony__list_init(&t->due);
    colony__list_init(&t->ready_link);
    return t;
}

static void target_release(colony_prober *pr, probe_target *t)
{
    if (--t->users > 0) return;
    colony__list_remove(&t->ready_link);
    colony__map_remove(&pr->targets, t->key);
    colony__free(t->key);
    colony__free(t);
}

/* A target belongs on the ready ring while it has a due probe and room. */
static void target_update(colony_prober *pr, probe_target *t)
{
    int ready = !colony__list_empty(&t->due) && t->inflight < pr->opts.max_per_target;
    if (ready && !colony__list_linked(&t->ready_link))
        colony__list_push_back(&pr->ready, &t->ready_link);
    else if (!ready)
        colony__list_remove(&t->ready_link);
}

/* ---- runs ---- */

static void on_interval(uv_timer_t *t);

/* Frees what a probe copied from its options. */
static void probe_strings_free(colony_probe *p)
{
    if (p->headers)
        for (size_t i = 0; p->headers[i]; i++)
            colony__free(p->headers[i]);
    colony__free(p->headers);
    colony__free(p->url);
    colony__free(p->method);
    colony__free(p->body);
    for (size_t i = 0; i < sizeof(p->tls) / sizeof(p->tls[0]); i++)
        colony__free(p->tls[i]);
}

static void probe_free(colony_probe *p)
{
    colony_prober *pr = p->pr;
    colony_probe_closed_cb cb = p->closed_cb;
    void *cb_ud = p->closed_ud;
    colony__list_remove(&p->all_link);
    target_release(pr, p->target);
    probe_strings_free(p);
    colony__free(p);
    pr->nprobes--;
    if (cb) cb(cb_ud);
    prober_maybe_finish(pr);
}

static void maybe_free(colony_probe *p)
{
    if (p->closing && !p->timer_open && !p->run) probe_free(p);
}

/* Consul's counters: a passing run makes the probe passing only after
 * success_before_passing of them in a row; a failing one (warning counts)
 * leaves passing only after failures_before_critical in a row. */
static int apply(colony_probe *p, colony_probe_status run_status)
{
    if (run_status == COLONY_PROBE_PASSING) {
        p->ok_streak++;
        p->fail_streak = 0;
        if (p->ok_streak < p->success_before_passing && p->status != COLONY_PROBE_PASSING) return 0;
    } else {
        p->fail_streak++;
        p->ok_streak = 0;
        if (p->fail_streak < p->failures_before_critical && p->status == COLONY_PROBE_PASSING)
            return 0;
    }
    int changed = p->status != run_status;
    p->status = run_status;
    return changed;
}

/* Reports a run's result and schedules the next one (unless closed meanwhile,
 * possibly by the callbacks themselves). */
static void report(colony_probe *p, colony_probe_status run_status, const char *output,
                   int http_status, int err)
{
    colony_probe_result r = {.run_status = run_status,
                             .output = output ? output : "out of memory",
                             .http_status = http_status,
                             .err = err};
    r.changed = apply(p, run_status);
    r.status = p->status;
    if (p->on_result) p->on_result(p, &r, p->ud);
    if (!p->closing && r.changed && p->on_change) p->on_change(p, &r, p->ud);
    /* Fails only on a closing timer: then the probe is closing anyway. */
    if (!p->closing && uv_timer_start(&p->timer, on_interval, p->interval_ms, 0) != 0)
        COLONY_LOG_ERROR("probe: cannot restart its timer", COLONY_LF_STR("target", p->url));
}

static void run_free(probe_run *run)
{
    colony__free(run);
}

void colony__probe_run_done(probe_run *run, const char *output)
{
    colony_probe *p = run->probe;
    colony_prober *pr = p->pr;
    p->run = NULL;
    p->target->inflight--;
    pr->inflight--;
    pr->runs++;
    target_update(pr, p->target);
    if (!p->closing) report(p, run->run_status, output, run->http_status, run->err);
    run_free(run);
    maybe_free(p); /* only if closing */
    colony__probe_pump(pr);
}

/* Starts p's run; a run that cannot start is reported at once as critical. */
static void run_start(colony_prober *pr, colony_probe *p)
{
    probe_target *t = p->target;
    probe_run *run = colony__calloc(1, sizeof(*run) + pr->opts.max_output + 1);
    int rc = COLONY_ENOMEM;
    if (run) {
        run->probe = p;
        run->run_status = COLONY_PROBE_CRITICAL;
        p->run = run;
        t->inflight++;
        pr->inflight++;
        rc = p->kind == COLONY_PROBE_HTTP ? colony__probe_http_start(run)
                                          : colony__probe_tcp_start(run);
        if (!rc) return;
        p->run = NULL;
        t->inflight--;
        pr->inflight--;
        run_free(run);
    }
    char line[900];
    if (p->kind == COLONY_PROBE_HTTP)
        snprintf(line, sizeof(line), "HTTP %s %s: cannot start: %s", p->method ? p->method : "GET",
                 p->url, colony_strerror(rc));
    else
        snprintf(line, sizeof(line), "TCP connect %s: cannot start: %s", p->url,
                 colony_strerror(rc));
    pr->runs++;
    report(p, COLONY_PROBE_CRITICAL, line, 0, rc);
}

/* Runs due probes while there is room, one per ready target in turn. Not
 * reentrant: a run that ends inside it (or a callback that closes a probe)
 * only updates the lists this loop reads. */
void colony__probe_pump(colony_prober *pr)
{
    if (pr->pumping) return;
    pr->pumping = 1;
    while (pr->inflight < pr->opts.max_inflight && !colony__list_empty(&pr->ready)) {
        probe_target *t =
            COLONY__CONTAINER_OF(colony__list_pop_front(&pr->ready), probe_target, ready_link);
        colony_probe *p =
            COLONY__CONTAINER_OF(colony__list_pop_front(&t->due), colony_probe, due_link);
        pr->due--;
        t->users++; /* keep t while p's run may close p */
        run_start(pr, p);
        target_update(pr, t);
        target_release(pr, t);
    }
    pr->pumping = 0;
}

static void on_interval(uv_timer_t *timer)
{
    colony_probe *p = timer->data;
    colony_prober *pr = p->pr;
    if (p->closing || p->run || colony__list_linked(&p->due_link)) return;
    colony__list_push_back(&p->target->due, &p->due_link);
    pr->due++;
    target_update(pr, p->target);
    colony__probe_pump(pr);
}

/* ---- probes ---- */

/* A copy of the name, value list, with "User-Agent: colony-probe" added
 * when the caller gave none. */
static char **copy_headers(const char *const *h, int *rc)
{
    size_t n = 0;
    int has_agent = 0;
    *rc = 0;
    for (; h && h[n] && h[n + 1]; n += 2)
        if (strcasecmp(h[n], "User-Agent") == 0) has_agent = 1;
    static const char *const agent[] = {"User-Agent", "colony-probe"};
    char **out = colony__calloc(n + 3, sizeof(*out));
    if (!out) {
        *rc = COLONY_ENOMEM;
        return NULL;
    }
    size_t total = has_agent ? n : n + 2;
    for (size_t i = 0; i < total; i++)
        if (!(out[i] = colony__strdup(i < n ? h[i] : agent[i - n]))) {
            for (size_t j = 0; j < i; j++)
                colony__free(out[j]);
            colony__free(out);
            *rc = COLONY_ENOMEM;
            return NULL;
        }
    return out;
}

static uint64_t next_random(colony_prober *pr)
{
    pr->rng ^= pr->rng << 13;
    pr->rng ^= pr->rng >> 7;
    pr->rng ^= pr->rng << 17;
    return pr->rng;
}

static void timer_closed(uv_handle_t *h)
{
    colony_probe *p = h->data;
    p->timer_open = 0;
    maybe_free(p);
}

int colony_probe_start(colony_prober *pr, const colony_probe_options *o, colony_probe **out)
{
    if (!pr || !o || !out) return COLONY_EINVAL;
    if (pr->closing) return COLONY_ESHUTDOWN;
    int rc = colony_probe_options_check(o, NULL, 0);
    if (rc) return rc;
    colony_probe *p = colony__calloc(1, sizeof(*p));
    if (!p) return COLONY_ENOMEM;
    char key[PROBE_HOST_MAX + 40];
    if (o->kind == COLONY_PROBE_TCP) { /* its key: host:port */
        rc = colony__probe_target_key(o->kind, o->target, p->host, sizeof(p->host), &p->port, NULL,
                                      0);
        snprintf(key, sizeof(key), "%s:%d", p->host, p->port);
    } else { /* its key: the origin */
        rc = colony__probe_target_key(o->kind, o->target, key, sizeof(key), &p->port, NULL, 0);
    }
    p->url = rc ? NULL : colony__strdup(o->target);
    p->method = p->url && o->method ? colony__strdup(o->method) : NULL;
    p->body = p->url && o->body ? colony__strdup(o->body) : NULL;
    int hrc = 0;
    p->headers = p->url && o->kind == COLONY_PROBE_HTTP ? copy_headers(o->headers, &hrc) : NULL;
    if (!rc && (!p->url || (o->method && !p->method) || (o->body && !p->body) || hrc))
        rc = COLONY_ENOMEM;
    const char *tls[] = {o->tls_ca_file, o->tls_server_name, o->tls_cert_file, o->tls_key_file};
    for (size_t i = 0; !rc && o->kind == COLONY_PROBE_HTTP && i < sizeof(tls) / sizeof(tls[0]); i++)
        if (tls[i] && !(p->tls[i] = colony__strdup(tls[i]))) rc = COLONY_ENOMEM;
    probe_target *t = rc ? NULL : target_get(pr, key);
    if (!rc && !t) rc = COLONY_ENOMEM;
    if (!rc) rc = uv_timer_init(pr->loop, &p->timer);
    if (rc) {
        if (t && t->users == 0) {
            t->users = 1;
            target_release(pr, t);
        }
        probe_strings_free(p);
        colony__free(p);
        return rc;
    }
    p->pr = pr;
    p->target = t;
    t->users++;
    p->kind = o->kind;
    p->interval_ms = o->interval_ms;
    p->timeout_ms = o->timeout_ms;
    p->success_before_passing = o->success_before_passing;
    p->failures_before_critical = o->failures_before_critical;
    p->status = o->initial_status;
    p->on_result = o->on_result;
    p->on_change = o->on_change;
    p->ud = o->ud;
    p->timer.data = p;
    p->timer_open = 1;
    colony__list_init(&p->due_link);
    colony__list_push_back(&pr->probes, &p->all_link);
    pr->nprobes++;
    uint64_t first =
        o->first_run_ms >= 0 ? (uint64_t)o->first_run_ms : next_random(pr) % (o->interval_ms + 1);
    rc = uv_timer_start(&p->timer, on_interval, first, 0);
    if (rc) { /* not expected on a fresh timer; the probe is freed after its close */
        colony_probe_close(p, NULL, NULL);
        return rc;
    }
    *out = p;
    return 0;
}

void colony_probe_close(colony_probe *p, colony_probe_closed_cb cb, void *ud)
{
    if (!p || p->closing) return;
    p->closing = 1;
    p->closed_cb = cb;
    p->closed_ud = ud;
    if (colony__list_linked(&p->due_link)) {
        colony__list_remove(&p->due_link);
        p->pr->due--;
        target_update(p->pr, p->target);
    }
    uv_close((uv_handle_t *)&p->timer, timer_closed);
    if (p->run) {
        if (p->kind == COLONY_PROBE_HTTP)
            colony__probe_http_cancel(p->run);
        else
            colony__probe_tcp_cancel(p->run);
    }
}
