/* Health checks on the registry's loop: TTL checks expire to critical; HTTP
 * and TCP checks are probed every Interval with start times spread by jitter
 * and at most REG_MAX_INFLIGHT_CHECKS probes in flight (the rest queue), so a
 * thousand checks cost a few timers and sockets. A reaper deregisters services
 * whose check stayed critical past DeregisterCriticalServiceAfter. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "registry/registry_internal.h"

static void start_probe(registry *reg, reg_check *chk);

static void maybe_free(reg_check *chk)
{
    if (chk->removed && !chk->timer_open && !chk->probing && !chk->queued)
        colony__reg_check_free(chk);
}

static void timer_closed(uv_handle_t *h)
{
    reg_check *chk = h->data;
    chk->timer_open = 0;
    maybe_free(chk);
}

static uint64_t interval_of(registry *reg, const reg_check *chk)
{
    return chk->interval_ms < reg->min_interval_ms ? reg->min_interval_ms : chk->interval_ms;
}

/* Applies a probe result with Consul's SuccessBeforePassing and
 * FailuresBeforeCritical counters (warnings count as failures). */
static void apply_result(registry *reg, reg_check *chk, int status, const char *output)
{
    if (status == REG_PASSING) {
        chk->ok_streak++;
        chk->fail_streak = 0;
        if (chk->ok_streak < chk->success_before_passing && chk->status != REG_PASSING) return;
    } else {
        chk->fail_streak++;
        chk->ok_streak = 0;
        if (chk->fail_streak < chk->failures_before_critical && chk->status == REG_PASSING) return;
    }
    colony__reg_check_set_status(reg, chk, status, output);
}

static void run_queue(registry *reg)
{
    while (reg->probes_inflight < REG_MAX_INFLIGHT_CHECKS && reg->probe_queue_head) {
        reg_check *chk = reg->probe_queue_head;
        reg->probe_queue_head = chk->next_queued;
        if (!reg->probe_queue_head) reg->probe_queue_tail = NULL;
        chk->next_queued = NULL;
        chk->queued = 0;
        if (chk->removed) {
            maybe_free(chk);
            continue;
        }
        start_probe(reg, chk);
    }
}

static void on_interval(uv_timer_t *t);

/* A probe finished: record it, schedule the next one, let a queued one run. */
static void probe_complete(registry *reg, reg_check *chk, int status, const char *output)
{
    chk->probing = 0;
    chk->probe = NULL;
    reg->probes_inflight--;
    if (chk->removed) {
        maybe_free(chk);
    } else {
        apply_result(reg, chk, status, output);
        if (chk->timer_open) uv_timer_start(&chk->timer, on_interval, interval_of(reg, chk), 0);
    }
    run_queue(reg);
}

/* ---- HTTP ---- */
static void http_done(colony_client_call *call, int err, const colony_client_response *res,
                      void *ud)
{
    (void)call;
    reg_check *chk = ud;
    char out[REG_MAX_OUTPUT + 256];
    const char *method = chk->method && *chk->method ? chk->method : "GET";
    int status = REG_CRITICAL;
    if (err) {
        snprintf(out, sizeof(out), "HTTP %s %s: %s", method, chk->target, colony_strerror(err));
    } else {
        status = res->status >= 200 && res->status < 300 ? REG_PASSING
                 : res->status == 429                    ? REG_WARNING
                                                         : REG_CRITICAL;
        int body_len = (int)(res->body_len > REG_MAX_OUTPUT ? REG_MAX_OUTPUT : res->body_len);
        snprintf(out, sizeof(out), "HTTP %s %s: %d Output: %.*s", method, chk->target, res->status,
                 body_len, res->body ? res->body : "");
    }
    probe_complete(chk->reg, chk, status, out);
}

static void start_http(registry *reg, reg_check *chk)
{
    size_t n = 0, k = 0;
    const char *name;
    json_t *vals;
    json_object_foreach(chk->header, name, vals) n += json_array_size(vals);
    const char **headers = colony__calloc(2 * n + 5, sizeof(*headers));
    if (!headers) {
        probe_complete(reg, chk, REG_CRITICAL, "out of memory");
        return;
    }
    json_object_foreach(chk->header, name, vals)
    {
        size_t i;
        json_t *v;
        json_array_foreach(vals, i, v)
        {
            headers[k++] = name;
            headers[k++] = json_string_value(v);
        }
    }
    headers[k++] = "User-Agent";
    headers[k++] = "Consul Health Check";
    colony_client_request r = {.method = chk->method && *chk->method ? chk->method : "GET",
                               .url = chk->target,
                               .headers = headers,
                               .body = chk->body,
                               .body_len = chk->body ? strlen(chk->body) : 0,
                               .timeout_ms = chk->timeout_ms};
    colony_client_call *call = NULL;
    int rc = colony_client_request_send(reg->client, &r, http_done, chk, &call);
    colony__free(headers);
    if (rc) {
        char out[512];
        snprintf(out, sizeof(out), "HTTP %s %s: %s", r.method, chk->target, colony_strerror(rc));
        probe_complete(reg, chk, REG_CRITICAL, out);
        return;
    }
    chk->probe = call;
}

/* ---- TCP ---- */
typedef struct tcp_probe {
    reg_check *chk;
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    int open_handles, done, status;
    char output[600];
} tcp_probe;

static void tcp_handle_closed(uv_handle_t *h)
{
    tcp_probe *p = h->data;
    if (--p->open_handles > 0) return;
    reg_check *chk = p->chk;
    probe_complete(chk->reg, chk, p->status, p->output);
    colony__free(p);
}

static void tcp_finish(tcp_probe *p, int status, const char *why)
{
    if (p->done) return;
    p->done = 1;
    p->status = status;
    snprintf(p->output, sizeof(p->output), "TCP connect %s: %s", p->chk->target, why);
    uv_close((uv_handle_t *)&p->timer, tcp_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&p->tcp)) uv_close((uv_handle_t *)&p->tcp, tcp_handle_closed);
}

static void tcp_connected(uv_connect_t *c, int status)
{
    tcp_probe *p = c->data;
    if (status == 0)
        tcp_finish(p, REG_PASSING, "Success");
    else
        tcp_finish(p, REG_CRITICAL, uv_strerror(status));
}

static void tcp_timeout(uv_timer_t *t)
{
    tcp_finish(t->data, REG_CRITICAL, "timeout");
}

static void tcp_connect_to(tcp_probe *p, const struct sockaddr *addr)
{
    p->connect.data = p;
    int rc = uv_tcp_connect(&p->connect, &p->tcp, addr, tcp_connected);
    if (rc) tcp_finish(p, REG_CRITICAL, uv_strerror(rc));
}

static void tcp_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    tcp_probe *p = g->data;
    if (!p->done) {
        if (status || !res)
            tcp_finish(p, REG_CRITICAL, status ? uv_strerror(status) : "no address");
        else
            tcp_connect_to(p, res->ai_addr);
    }
    uv_freeaddrinfo(res);
    tcp_handle_closed((uv_handle_t *)&p->timer); /* the lookup counted as a handle */
}

static void start_tcp(registry *reg, reg_check *chk)
{
    tcp_probe *p = colony__calloc(1, sizeof(*p));
    if (!p) {
        probe_complete(reg, chk, REG_CRITICAL, "out of memory");
        return;
    }
    p->chk = chk;
    uv_tcp_init(reg->loop, &p->tcp);
    uv_timer_init(reg->loop, &p->timer);
    p->tcp.data = p->timer.data = p;
    p->open_handles = 2;
    chk->probe = p;
    uv_timer_start(&p->timer, tcp_timeout, chk->timeout_ms, 0);
    char host[256];
    const char *colon = strrchr(chk->target, ':');
    size_t hlen = (size_t)(colon - chk->target);
    if (hlen >= sizeof(host)) hlen = sizeof(host) - 1;
    memcpy(host, chk->target, hlen);
    host[hlen] = '\0';
    if (host[0] == '[' && hlen > 1 && host[hlen - 1] == ']') {
        memmove(host, host + 1, hlen - 2);
        host[hlen - 2] = '\0';
    }
    int port = atoi(colon + 1);
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0) {
        tcp_connect_to(p, (const struct sockaddr *)&ss);
        return;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    p->gai.data = p;
    p->open_handles++;
    if (uv_getaddrinfo(reg->loop, &p->gai, tcp_resolved, host, colon + 1, &hints)) {
        p->open_handles--;
        tcp_finish(p, REG_CRITICAL, "cannot resolve host");
    }
}

static void start_probe(registry *reg, reg_check *chk)
{
    chk->probing = 1;
    reg->probes_inflight++;
    if (chk->type == REG_CHECK_HTTP)
        start_http(reg, chk);
    else
        start_tcp(reg, chk);
}

static void on_interval(uv_timer_t *t)
{
    reg_check *chk = t->data;
    registry *reg = chk->reg;
    if (chk->probing || chk->queued || chk->removed) return;
    chk->queued = 1;
    if (reg->probe_queue_tail)
        reg->probe_queue_tail->next_queued = chk;
    else
        reg->probe_queue_head = chk;
    reg->probe_queue_tail = chk;
    run_queue(reg);
}

static void on_ttl_expired(uv_timer_t *t)
{
    reg_check *chk = t->data;
    colony__reg_check_set_status(chk->reg, chk, REG_CRITICAL, "TTL expired");
}

void colony__reg_check_arm(registry *reg, reg_check *chk)
{
    chk->reg = reg;
    if (chk->status == REG_CRITICAL && !chk->critical_since_ms)
        chk->critical_since_ms = uv_now(reg->loop);
    if (uv_timer_init(reg->loop, &chk->timer)) return;
    chk->timer.data = chk;
    chk->timer_open = 1;
    if (chk->type == REG_CHECK_TTL) {
        uv_timer_start(&chk->timer, on_ttl_expired, chk->ttl_ms, 0);
    } else {
        /* Spread first runs over one interval so many checks do not fire at once. */
        uint64_t iv = interval_of(reg, chk);
        uv_timer_start(&chk->timer, on_interval, (uint64_t)rand() % (iv + 1), 0);
    }
}

int colony__reg_check_ttl_update(registry *reg, reg_check *chk, int status, const char *note)
{
    int rc = colony__reg_check_set_status(reg, chk, status, note);
    if (rc < 0) return rc; /* nothing changed: the client is told, the TTL runs on */
    if (chk->timer_open) uv_timer_start(&chk->timer, on_ttl_expired, chk->ttl_ms, 0);
    return 0;
}

void colony__reg_check_disarm(reg_check *chk)
{
    chk->removed = 1;
    if (chk->timer_open && !uv_is_closing((uv_handle_t *)&chk->timer))
        uv_close((uv_handle_t *)&chk->timer, timer_closed);
    if (chk->probing && chk->probe) {
        if (chk->type == REG_CHECK_HTTP)
            colony_client_call_cancel(chk->probe);
        else
            tcp_finish(chk->probe, REG_CRITICAL, "cancelled");
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

void colony__reg_checks_start_reaper(registry *reg)
{
    if (uv_timer_init(reg->loop, &reg->reaper)) return;
    reg->reaper.data = reg;
    reg->reaper_open = 1;
    uv_timer_start(&reg->reaper, reap, REG_REAP_INTERVAL_MS, REG_REAP_INTERVAL_MS);
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
    while (reg->probe_queue_head) {
        reg_check *c = reg->probe_queue_head;
        reg->probe_queue_head = c->next_queued;
        c->queued = 0;
        maybe_free(c);
    }
    reg->probe_queue_tail = NULL;
}
