/* Readiness of an instance (runtime.h): with a port, the port accepting a
 * connection (or, with "ready": "/path", GET answering 200), polled every
 * 100 ms; past listen_timeout it is taken as ready with a warning, as PM2
 * does. Without a port an instance is ready once started. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    if (ok)
        became_ready(inst, 0);
    else
        schedule(inst);
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

static void probe_now(uv_timer_t *t)
{
    sup_instance *inst = t->data;
    sup *s = inst->app->sup;
    if (inst->status != SUP_LAUNCHING || inst->probing || s->shutting_down) return;
    if (colony_clock_now(&s->clock) >= inst->ready_deadline_ms) {
        became_ready(inst, 1);
        return;
    }
    int port = inst->app->conf->port + inst->index;
    const char *path = inst->app->conf->ready_path;
    if (path) {
        if (!s->client) {
            colony_client_options o;
            memset(&o, 0, sizeof(o));
            colony_client_options_init(&o);
            o.max_per_origin = 2;
            o.idle_timeout_ms = 1;
            s->client = colony_client_new(s->loop, &o);
            if (!s->client) return schedule(inst);
        }
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
    if (!inst->app->conf->port) {
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
