/* Health checks. A request runs every check of its kind in parallel on its
 * own loop; each probe has a timer for its timeout. A probe is freed once both
 * its result (or timeout) is in and its timer handle is closed, so a check
 * that answers late never touches freed memory. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <uv.h>
#include "colony/error.h"
#include "colony/health.h"
#include "colony/router.h"
#include "core/alloc.h"

typedef struct health_check {
    char *name;
    colony_health_kind kind;
    colony_health_check_cb cb;
    void *ud;
    uint64_t timeout_ms;
    struct health_check *next;
} health_check;

struct colony_health {
    health_check *checks;
    atomic_int ready;
    colony_server *server;
    uint64_t started_ms;
};

typedef struct health_run health_run; /* one /health or /ready request */

struct colony_health_probe {
    health_run *run;
    const health_check *check;
    uv_timer_t timer;
    uint64_t started_ns;
    int reported; /* result or timeout recorded */
    int closed;   /* timer closed */
};

struct health_run {
    colony_request *req;
    colony_health *health;
    colony_health_kind kind;
    json_t *checks; /* name -> result object */
    int healthy;
    size_t pending; /* probes not reported yet */
    size_t live;    /* probes not freed yet */
    int answered;
};

static uint64_t mono_ms(void)
{
    return uv_hrtime() / 1000000u;
}

colony_health *colony_health_new(void)
{
    colony_health *h = colony__calloc(1, sizeof(*h));
    if (!h) return NULL;
    atomic_init(&h->ready, 1);
    h->started_ms = mono_ms();
    return h;
}

void colony_health_free(colony_health *h)
{
    if (!h) return;
    for (health_check *c = h->checks; c;) {
        health_check *next = c->next;
        colony__free(c->name);
        colony__free(c);
        c = next;
    }
    colony__free(h);
}

int colony_health_add(colony_health *h, const char *name, colony_health_kind kind,
                      colony_health_check_cb cb, void *ud, uint64_t timeout_ms)
{
    if (!name || !cb || !(kind & COLONY_HEALTH_BOTH)) return COLONY_EINVAL;
    health_check **tail = &h->checks;
    for (; *tail; tail = &(*tail)->next)
        if (strcmp((*tail)->name, name) == 0) return COLONY_EEXIST;
    health_check *c = colony__calloc(1, sizeof(*c));
    if (!c) return COLONY_ENOMEM;
    c->name = colony__strdup(name);
    if (!c->name) {
        colony__free(c);
        return COLONY_ENOMEM;
    }
    c->kind = kind;
    c->cb = cb;
    c->ud = ud;
    c->timeout_ms = timeout_ms ? timeout_ms : 5000;
    *tail = c;
    return 0;
}

void colony_health_set_ready(colony_health *h, int ready)
{
    atomic_store(&h->ready, ready ? 1 : 0);
}

void colony_health_watch_server(colony_health *h, colony_server *srv)
{
    h->server = srv;
}

static void iso_timestamp(char *out, size_t size)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%03dZ", (int)(tv.tv_usec / 1000));
}

static void answer(health_run *run)
{
    colony_health *h = run->health;
    int healthy = run->healthy;
    if (run->kind == COLONY_HEALTH_READINESS &&
        (!atomic_load(&h->ready) || (h->server && colony_server_is_shutting_down(h->server))))
        healthy = 0;
    char ts[40];
    iso_timestamp(ts, sizeof(ts));
    json_t *body = json_pack("{s:s, s:s, s:f, s:O}", "status", healthy ? "healthy" : "unhealthy",
                             "timestamp", ts, "uptime",
                             (double)(mono_ms() - h->started_ms) / 1000.0, "checks", run->checks);
    if (run->kind == COLONY_HEALTH_READINESS && body && !atomic_load(&h->ready))
        json_object_set_new(body, "reason", json_string("not ready"));
    else if (run->kind == COLONY_HEALTH_READINESS && body && h->server &&
             colony_server_is_shutting_down(h->server))
        json_object_set_new(body, "reason", json_string("shutting down"));
    if (body)
        colony_respond_json(run->req, healthy ? 200 : 503, body);
    else
        colony_respond_error(run->req, 500, "internal", "out of memory");
    json_decref(body);
    run->answered = 1;
}

static void run_release(health_run *run)
{
    if (run->live == 0 && run->answered) {
        json_decref(run->checks);
        colony__free(run);
    }
}

static void on_probe_closed(uv_handle_t *handle)
{
    colony_health_probe *p = handle->data;
    health_run *run = p->run;
    colony__free(p);
    run->live--;
    run_release(run);
}

/* Records a result once; answers the request after the last one. */
static void record(colony_health_probe *p, int ok, json_t *details, const char *error)
{
    health_run *run = p->run;
    p->reported = 1;
    double ms = (double)(uv_hrtime() - p->started_ns) / 1e6;
    json_t *r = json_pack("{s:s, s:f}", "status", ok ? "healthy" : "unhealthy", "responseTime",
                          round(ms * 1000) / 1000);
    if (r && ok && details) json_object_set(r, "details", details);
    if (r && !ok) json_object_set_new(r, "error", json_string(error ? error : "check failed"));
    if (r) json_object_set_new(run->checks, p->check->name, r);
    json_decref(details);
    if (!ok || !r) run->healthy = 0;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_probe_closed);
    if (--run->pending == 0) answer(run);
}

void colony_health_probe_done(colony_health_probe *p, int ok, json_t *details, const char *error)
{
    if (!p || p->reported) {
        json_decref(details);
        return;
    }
    record(p, ok, details, error);
}

static void on_probe_timeout(uv_timer_t *t)
{
    colony_health_probe *p = t->data;
    char msg[64];
    snprintf(msg, sizeof(msg), "timed out after %llu ms", (unsigned long long)p->check->timeout_ms);
    record(p, 0, NULL, msg);
}

static void handle(colony_request *req, colony_health *h, colony_health_kind kind)
{
    health_run *run = colony__calloc(1, sizeof(*run));
    json_t *checks = json_object();
    if (!run || !checks) {
        colony__free(run);
        json_decref(checks);
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    run->req = req;
    run->health = h;
    run->kind = kind;
    run->checks = checks;
    run->healthy = 1;
    run->pending = 1; /* held until every probe has started */
    for (const health_check *c = h->checks; c; c = c->next) {
        if (!(c->kind & kind)) continue;
        colony_health_probe *p = colony__calloc(1, sizeof(*p));
        if (!p) {
            run->healthy = 0;
            continue;
        }
        p->run = run;
        p->check = c;
        p->started_ns = uv_hrtime();
        uv_timer_init(colony_request_loop(req), &p->timer);
        p->timer.data = p;
        uv_timer_start(&p->timer, on_probe_timeout, c->timeout_ms, 0);
        run->pending++;
        run->live++;
        c->cb(p, c->ud);
    }
    if (--run->pending == 0) answer(run);
    run_release(run);
}

void colony_health_handle_live(colony_request *req, void *health)
{
    handle(req, health, COLONY_HEALTH_LIVENESS);
}

void colony_health_handle_ready(colony_request *req, void *health)
{
    handle(req, health, COLONY_HEALTH_READINESS);
}
