/* Readiness of an instance (runtime.h): with a port, the port accepting a
 * connection (or, with "ready": "/path", GET answering 200), polled every
 * 100 ms; with a "registry", then also its entry passing there (Consul's
 * /v1/health/service/<name>?passing); past listen_timeout it is taken as
 * ready with a warning, as PM2 does. Without a port or registry an instance
 * is ready once started. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "supervisor/runtime.h"

#define PROBE_INTERVAL_MS 100
#define PROBE_TIMEOUT_MS  1000

typedef struct tcp_probe {
    uv_tcp_t tcp;
    uv_connect_t req;
    sup_instance *inst;
    unsigned generation;
    int ok;
} tcp_probe;

static void became_ready(sup_instance *inst, int assumed)
{
    sup *s = inst->app->sup;
    uv_timer_stop(&inst->probe_timer);
    if (inst->status != SUP_LAUNCHING) return;
    inst->status = SUP_ONLINE;
    inst->online_since_ms = colony_clock_now(&s->clock);
    if (assumed)
        colony__sup_log_event(inst, "not ready after listen_timeout %lld ms: taken as ready",
                              (long long)inst->app->conf->listen_timeout_ms);
    colony__sup_pump(s);
}

static void schedule(sup_instance *inst);

/* A probe's answer; a stale one (the run it probed is gone) is dropped. */
static void probe_result(sup_instance *inst, unsigned generation, int ok)
{
    inst->probing = 0;
    if (generation != inst->generation || inst->status != SUP_LAUNCHING) return;
    if (ok && inst->app->conf->registry_url) {
        inst->port_ready = 1; /* the registry's turn, at the next poll */
        schedule(inst);
    } else if (ok) {
        became_ready(inst, 0);
    } else {
        schedule(inst);
    }
}

static void tcp_probe_closed(uv_handle_t *h)
{
    tcp_probe *p = h->data;
    sup *s = p->inst->app->sup;
    s->open_probes--;
    probe_result(p->inst, p->generation, p->ok);
    colony__free(p);
    colony__sup_pump(s); /* a shutdown may be waiting for this probe */
}

static void tcp_connected(uv_connect_t *req, int status)
{
    tcp_probe *p = req->data;
    p->ok = status == 0;
    uv_close((uv_handle_t *)&p->tcp, tcp_probe_closed);
}

static void http_probe_done(colony_client_call *call, int err, const colony_client_response *res,
                            void *ud)
{
    (void)call;
    sup_instance *inst = ud;
    inst->app->sup->open_probes--;
    probe_result(inst, inst->probe_generation, !err && res->status == 200);
    colony__sup_pump(inst->app->sup);
}

/* ---- the registry ---- */

void colony__sup_service_id(sup_instance *inst, char *buf, size_t size)
{
    const sup_app *app = inst->app->conf;
    buf[0] = '\0';
    if (!app->registry_url) return;
    for (size_t i = 0; i < app->nenv; i++)
        if (strncmp(app->env[i], "COLONY_SERVICE_ID=", 18) == 0) return; /* the app chose */
    /* One ID per process: during a reload the old process deregisters its own
     * entry, not its replacement's (they share the port, not the ID). */
    sup *s = inst->app->sup;
    snprintf(buf, size, "%s-%d-%lu", app->registry_service ? app->registry_service : app->name,
             app->port ? app->port + inst->index : inst->index, ++s->spawn_seq);
}

typedef struct registry_probe {
    sup_instance *inst;
    int pid;
    int port;
    char service_id[160];
    sup_registry_cb cb;
} registry_probe;

static int ensure_client(sup *s)
{
    if (s->client) return 0;
    colony_client_options o;
    memset(&o, 0, sizeof(o));
    colony_client_options_init(&o);
    o.max_per_origin = 2;
    o.idle_timeout_ms = 1;
    s->client = colony_client_new(s->loop, &o);
    return s->client ? 0 : COLONY_ENOMEM;
}

/* The entries of ?passing: one with our ID, or (no ID) on our port. */
static int listed(const registry_probe *p, const colony_client_response *res)
{
    if (res->status != 200 || !res->body) return 0;
    json_t *doc = json_loadb(res->body, res->body_len, 0, NULL);
    int found = 0;
    size_t i;
    json_t *entry;
    json_array_foreach(doc, i, entry)
    {
        json_t *svc = json_object_get(entry, "Service");
        const char *id = json_string_value(json_object_get(svc, "ID"));
        json_int_t port = json_integer_value(json_object_get(svc, "Port"));
        if (p->service_id[0] ? id && strcmp(id, p->service_id) == 0 : port == p->port) found = 1;
    }
    json_decref(doc);
    return found;
}

static void registry_probe_done(colony_client_call *call, int err,
                                const colony_client_response *res, void *ud)
{
    (void)call;
    registry_probe *p = ud;
    sup *s = p->inst->app->sup;
    s->open_probes--;
    p->cb(p->inst, p->pid, !err && listed(p, res));
    colony__free(p);
    colony__sup_pump(s);
}

int colony__sup_registry_probe(sup_instance *inst, const sup_run *run, sup_registry_cb cb)
{
    sup *s = inst->app->sup;
    const sup_app *app = inst->app->conf;
    if (ensure_client(s)) return COLONY_ENOMEM;
    registry_probe *p = colony__calloc(1, sizeof(*p));
    if (!p) return COLONY_ENOMEM;
    p->inst = inst;
    p->pid = run->pid;
    p->port = app->port ? app->port + inst->index : 0;
    p->cb = cb;
    snprintf(p->service_id, sizeof(p->service_id), "%s", run->service_id);
    char url[640];
    size_t n = strlen(app->registry_url);
    if (n && app->registry_url[n - 1] == '/') n--; /* no "//" */
    snprintf(url, sizeof(url), "%.*s/v1/health/service/%s?passing", (int)n, app->registry_url,
             app->registry_service ? app->registry_service : app->name);
    colony_client_request r;
    memset(&r, 0, sizeof(r));
    r.url = url;
    r.timeout_ms = PROBE_TIMEOUT_MS;
    s->open_probes++; /* before the send: its answer may come at any time after */
    int rc = colony_client_request_send(s->client, &r, registry_probe_done, p, NULL);
    if (rc) {
        s->open_probes--;
        colony__free(p);
    }
    return rc;
}

/* Start-up: the port answered; now the registry must list the instance. */
static void start_registry_result(sup_instance *inst, int pid, int passing)
{
    inst->probing = 0;
    if (pid != inst->pid || inst->status != SUP_LAUNCHING) return;
    if (passing)
        became_ready(inst, 0);
    else
        schedule(inst);
}

static void probe_registry(sup_instance *inst)
{
    inst->probing = 1;
    if (!inst->run || colony__sup_registry_probe(inst, inst->run, start_registry_result) != 0) {
        inst->probing = 0;
        schedule(inst);
    }
}

static void probe_now(uv_timer_t *t)
{
    sup_instance *inst = t->data;
    sup *s = inst->app->sup;
    if (inst->status != SUP_LAUNCHING || inst->probing || s->shutting_down) return;
    if (colony_clock_now(&s->clock) >= inst->ready_deadline_ms) {
        became_ready(inst, 1);
        return;
    }
    if (inst->port_ready) {
        probe_registry(inst);
        return;
    }
    int port = inst->app->conf->port + inst->index;
    const char *path = inst->app->conf->ready_path;
    if (path) {
        if (ensure_client(s)) return schedule(inst);
        char url[512];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
        colony_client_request r;
        memset(&r, 0, sizeof(r));
        r.url = url;
        r.timeout_ms = PROBE_TIMEOUT_MS;
        if (colony_client_request_send(s->client, &r, http_probe_done, inst, NULL) != 0)
            return schedule(inst);
        inst->probing = 1;
        inst->probe_generation = inst->generation;
        s->open_probes++;
        return;
    }
    tcp_probe *p = colony__calloc(1, sizeof(*p));
    if (!p) return schedule(inst);
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", port, &addr);
    uv_tcp_init(s->loop, &p->tcp);
    p->tcp.data = p->req.data = p;
    p->inst = inst;
    p->generation = inst->generation;
    inst->probing = 1;
    s->open_probes++;
    if (uv_tcp_connect(&p->req, &p->tcp, (const struct sockaddr *)&addr, tcp_connected) != 0)
        uv_close((uv_handle_t *)&p->tcp, tcp_probe_closed);
}

static void schedule(sup_instance *inst)
{
    if (inst->status == SUP_LAUNCHING && !inst->app->sup->shutting_down)
        uv_timer_start(&inst->probe_timer, probe_now, PROBE_INTERVAL_MS, 0);
}

void colony__sup_ready_begin(sup_instance *inst)
{
    sup *s = inst->app->sup;
    inst->port_ready = !inst->app->conf->port;
    if (!inst->app->conf->port && !inst->app->conf->registry_url) {
        became_ready(inst, 0);
        return;
    }
    inst->ready_deadline_ms =
        colony_clock_now(&s->clock) + (uint64_t)inst->app->conf->listen_timeout_ms;
    uv_timer_start(&inst->probe_timer, probe_now, 20, 0);
}

void colony__sup_ready_stop(sup_instance *inst)
{
    uv_timer_stop(&inst->probe_timer);
}
