/* Discovery watches: a local cache of one service's instances kept current
 * by blocking queries on /v1/health/service/:name, following Consul's client
 * rules (https://developer.hashicorp.com/consul/api-docs/features/blocking):
 * reset the index when it goes backwards, never block on index 0, back off
 * with jitter on errors, rate-limit answers that bring nothing new. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "colony/arena.h"
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "core/hash.h"
#include "kit/discovery/discovery_internal.h"

#define MAX_INSTANCES   100000
#define QUIET_ANSWER_MS 50 /* an unchanged answer faster than this is not a real block */

struct colony_discovery {
    colony_discovery *next;
    colony_registry_client *r;
    char *path_prefix; /* "/v1/health/service/name?passing&tag=t" or ".../name?" */
    char *service;
    colony_balancer *balancer;
    colony_discovery_change_cb on_change;
    void *ud;
    uint64_t index;
    uint64_t sent_at_ms;
    int ready, last_error;
    unsigned failures;
    uv_timer_t timer;
    colony_client_call *call;
    int stopped;
    colony__closer closer; /* once stopped: the timer and the call in flight */
    /* the cache: instances and their strings live in arena */
    colony_arena *arena;
    colony_instance *instances;
    size_t count;
    uint64_t fingerprint;
};

/* A parsed answer before it replaces the cache. */
typedef struct snapshot {
    colony_arena *arena;
    colony_instance *instances;
    size_t count;
    uint64_t fingerprint;
} snapshot;

static void send_query(colony_discovery *d);

static uint64_t fnv1a_str(uint64_t h, const char *s)
{
    return colony__fnv1a(h, s, strlen(s) + 1);
}

static colony_check_status parse_status(json_t *checks)
{
    colony_check_status worst = COLONY_CHECK_PASSING;
    size_t i;
    json_t *check;
    json_array_foreach(checks, i, check)
    {
        const char *s = json_string_value(json_object_get(check, "Status"));
        if (!s || strcmp(s, "passing") == 0) continue;
        colony_check_status st =
            strcmp(s, "warning") == 0 ? COLONY_CHECK_WARNING : COLONY_CHECK_CRITICAL;
        if (st > worst) worst = st;
    }
    return worst;
}

static const char *arena_json_str(colony_arena *a, json_t *v)
{
    const char *s = json_string_value(v);
    return colony_arena_strdup(a, s ? s : "");
}

/* Fills one instance from a health entry; returns 0 or COLONY_ENOMEM/EPROTO. */
static int parse_instance(colony_arena *a, json_t *entry, colony_instance *inst)
{
    json_t *svc = json_object_get(entry, "Service");
    if (!json_is_object(svc)) return COLONY_EPROTO;
    const char *address = json_string_value(json_object_get(svc, "Address"));
    if (!address || !*address)
        address = json_string_value(json_object_get(json_object_get(entry, "Node"), "Address"));
    inst->id = arena_json_str(a, json_object_get(svc, "ID"));
    inst->service = arena_json_str(a, json_object_get(svc, "Service"));
    inst->address = colony_arena_strdup(a, address ? address : "");
    if (!inst->id || !inst->service || !inst->address) return COLONY_ENOMEM;
    json_int_t port = json_integer_value(json_object_get(svc, "Port"));
    inst->port = port >= 0 && port <= 65535 ? (int)port : 0;
    json_int_t w = json_integer_value(json_object_get(json_object_get(svc, "Weights"), "Passing"));
    inst->weight = w <= 0                          ? 1
                   : w > COLONY_BALANCE_MAX_WEIGHT ? COLONY_BALANCE_MAX_WEIGHT
                                                   : (uint32_t)w;
    inst->status = parse_status(json_object_get(entry, "Checks"));

    json_t *tags = json_object_get(svc, "Tags");
    size_t ntags = json_is_array(tags) ? json_array_size(tags) : 0;
    const char **tag_list = colony_arena_calloc(a, (ntags + 1) * sizeof(char *));
    if (!tag_list) return COLONY_ENOMEM;
    for (size_t i = 0; i < ntags; i++)
        if (!(tag_list[i] = arena_json_str(a, json_array_get(tags, i)))) return COLONY_ENOMEM;
    inst->tags = tag_list;
    inst->ntags = ntags;

    json_t *meta = json_object_get(svc, "Meta");
    size_t nmeta = json_is_object(meta) ? json_object_size(meta) : 0, m = 0;
    const char **meta_list = colony_arena_calloc(a, (2 * nmeta + 1) * sizeof(char *));
    if (!meta_list) return COLONY_ENOMEM;
    const char *key;
    json_t *value;
    json_object_foreach(meta, key, value)
    {
        meta_list[2 * m] = colony_arena_strdup(a, key);
        meta_list[2 * m + 1] = arena_json_str(a, value);
        if (!meta_list[2 * m] || !meta_list[2 * m + 1]) return COLONY_ENOMEM;
        m++;
    }
    inst->meta = meta_list;
    inst->nmeta = m;
    return 0;
}

/* What the change callback is about: everything a caller can see. */
static uint64_t instance_fingerprint(uint64_t h, const colony_instance *in)
{
    h = fnv1a_str(h, in->id);
    h = fnv1a_str(h, in->address);
    h = colony__fnv1a(h, &in->port, sizeof(in->port));
    h = colony__fnv1a(h, &in->weight, sizeof(in->weight));
    h = colony__fnv1a(h, &in->status, sizeof(in->status));
    for (size_t i = 0; i < in->ntags; i++)
        h = fnv1a_str(h, in->tags[i]);
    for (size_t i = 0; i < 2 * in->nmeta; i++)
        h = fnv1a_str(h, in->meta[i]);
    return h;
}

static int parse_answer(const char *body, size_t len, snapshot *out)
{
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    json_t *doc = json_loadb(body ? body : "", len, 0, &jerr);
    if (!json_is_array(doc) || json_array_size(doc) > MAX_INSTANCES) {
        json_decref(doc);
        return COLONY_EPROTO;
    }
    int rc = COLONY_ENOMEM;
    out->arena = colony_arena_new(0, 0);
    size_t n = json_array_size(doc);
    if (out->arena)
        out->instances = colony_arena_calloc(out->arena, (n + 1) * sizeof(colony_instance));
    if (out->instances) {
        rc = 0;
        uint64_t h = COLONY_FNV1A_OFFSET;
        for (size_t i = 0; i < n && !rc; i++) {
            rc = parse_instance(out->arena, json_array_get(doc, i), &out->instances[i]);
            if (!rc) h = instance_fingerprint(h, &out->instances[i]);
        }
        out->count = n;
        out->fingerprint = colony__fnv1a(h, &n, sizeof(n));
    }
    json_decref(doc);
    if (rc) {
        colony_arena_free(out->arena);
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

/* Feeds the balancer the passing instances. On failure the old set stays. */
static void update_balancer(colony_discovery *d)
{
    if (!d->balancer) return;
    colony_endpoint_spec *specs = colony__calloc(d->count + 1, sizeof(*specs));
    char **addresses = colony__calloc(d->count + 1, sizeof(char *));
    size_t n = 0;
    int rc = specs && addresses ? 0 : COLONY_ENOMEM;
    for (size_t i = 0; i < d->count && !rc; i++) {
        const colony_instance *in = &d->instances[i];
        if (in->status != COLONY_CHECK_PASSING || !*in->id || !*in->address) continue;
        size_t len = strlen(in->address) + 16;
        addresses[n] = colony__malloc(len);
        if (!addresses[n]) {
            rc = COLONY_ENOMEM;
            break;
        }
        int v6 = strchr(in->address, ':') != NULL;
        snprintf(addresses[n], len, v6 ? "[%s]:%d" : "%s:%d", in->address, in->port);
        specs[n] =
            (colony_endpoint_spec){.id = in->id, .address = addresses[n], .weight = in->weight};
        n++;
    }
    if (!rc) rc = colony_balancer_set_endpoints(d->balancer, specs, n);
    if (rc)
        COLONY_LOG_WARN("discovery: cannot update the endpoint set",
                        COLONY_LF_STR("service", d->service),
                        COLONY_LF_STR("error", colony_strerror(rc)));
    for (size_t i = 0; addresses && i < n; i++)
        colony__free(addresses[i]);
    colony__free(addresses);
    colony__free(specs);
}

static uint64_t header_index(const colony_client_response *res, int *found)
{
    *found = 0;
    for (size_t i = 0; i < res->num_headers; i++) {
        const colony_http_header *h = &res->headers[i];
        if (h->name_len == 14 && strncasecmp(h->name, "X-Consul-Index", 14) == 0) {
            char text[32];
            size_t n = h->value_len < sizeof(text) - 1 ? h->value_len : sizeof(text) - 1;
            memcpy(text, h->value, n);
            text[n] = '\0';
            char *end;
            unsigned long long v = strtoull(text, &end, 10);
            if (end == text || *end) return 0;
            *found = 1;
            return (uint64_t)v;
        }
    }
    return 0;
}

static void on_retry_timer(uv_timer_t *t)
{
    send_query(t->data);
}

static void schedule(colony_discovery *d, uint64_t delay_ms)
{
    uv_timer_start(&d->timer, on_retry_timer, delay_ms, 0);
}

static void on_failure(colony_discovery *d, int err)
{
    d->failures++;
    d->last_error = err;
    /* the registry may have restarted with other data: ask afresh (a
     * non-blocking query) rather than block on an index it may never reach */
    d->index = 0;
    uint64_t delay = colony__registry_backoff(d->r, d->failures);
    if (d->failures == 1)
        COLONY_LOG_WARN(
            "discovery: registry query failed; backing off", COLONY_LF_STR("service", d->service),
            COLONY_LF_STR("error", colony_strerror(err)), COLONY_LF_INT("retry_ms", delay));
    schedule(d, delay);
}

/* The watch's closer is done: its timer is closed and its call ended. */
static void watch_freed(void *ud)
{
    colony_discovery *d = ud;
    colony_registry_client *r = d->r;
    colony_arena_free(d->arena);
    colony__free(d->path_prefix);
    colony__free(d->service);
    colony__free(d);
    colony__closer_release(&r->closer);
}

/* Applies one 200 answer: index rules, then the cache if it changed. */
static void on_answer(colony_discovery *d, const colony_client_response *res)
{
    int found;
    uint64_t index = header_index(res, &found);
    snapshot snap;
    int rc = found ? parse_answer(res->body, res->body_len, &snap) : COLONY_EPROTO;
    if (rc) {
        on_failure(d, rc);
        return;
    }
    uint64_t previous = d->index;
    if (index < previous)
        d->index = 0; /* went backwards (registry restored or reset): start over */
    else
        d->index = index > 0 ? index : 1; /* index 0 would never block */
    d->failures = 0;
    d->last_error = 0;
    int changed = !d->ready || snap.fingerprint != d->fingerprint;
    if (changed) {
        colony_arena_free(d->arena);
        d->arena = snap.arena;
        d->instances = snap.instances;
        d->count = snap.count;
        d->fingerprint = snap.fingerprint;
        d->ready = 1;
        update_balancer(d);
    } else {
        colony_arena_free(snap.arena);
    }
    uint64_t elapsed = uv_now(d->r->loop) - d->sent_at_ms;
    if (!changed && index == previous && elapsed < QUIET_ANSWER_MS)
        schedule(d, d->r->retry_min_ms); /* not blocking: do not spin */
    else
        send_query(d);
    if (changed && d->on_change) d->on_change(d, d->ud); /* last: it may stop the watch */
}

static void on_query_done(colony_client_call *call, int err, const colony_client_response *res,
                          void *ud)
{
    (void)call;
    colony_discovery *d = ud;
    d->call = NULL;
    if (d->stopped) {
        colony__closer_release(&d->closer);
        return;
    }
    if (err)
        on_failure(d, err);
    else if (res->status != 200)
        on_failure(d, colony__registry_status_error(res->status));
    else
        on_answer(d, res);
}

static void send_query(colony_discovery *d)
{
    if (d->stopped || d->call) return;
    colony_registry_client *r = d->r;
    char path[1200], wait[32];
    uint64_t timeout = r->timeout_ms;
    if (d->index > 0) {
        colony__registry_duration(wait, sizeof(wait), r->wait_ms);
        size_t n = strlen(d->path_prefix);
        snprintf(path, sizeof(path), "%s%sindex=%llu&wait=%s", d->path_prefix,
                 d->path_prefix[n - 1] == '?' ? "" : "&", (unsigned long long)d->index, wait);
        timeout = r->wait_ms + r->wait_ms / 16 + r->timeout_ms;
    } else {
        size_t n = strlen(d->path_prefix);
        snprintf(path, sizeof(path), "%.*s", (int)(d->path_prefix[n - 1] == '?' ? n - 1 : n),
                 d->path_prefix);
    }
    d->sent_at_ms = uv_now(r->loop);
    int rc = colony__registry_send(r, "GET", path, NULL, 0, timeout, on_query_done, d, &d->call);
    if (rc) {
        d->call = NULL;
        on_failure(d, rc);
    }
}

void colony_discovery_options_init(colony_discovery_options *o)
{
    *o = (colony_discovery_options){0};
}

int colony_discovery_watch(colony_registry_client *r, const colony_discovery_options *opts,
                           colony_discovery **out)
{
    if (!r || !opts || !opts->service || !*opts->service || !out) return COLONY_EINVAL;
    if (r->closing) return COLONY_ESHUTDOWN;
    char name[600], tag[600] = "", prefix[1300];
    if (colony__registry_escape(name, sizeof(name), opts->service)) return COLONY_EINVAL;
    if (opts->tag && colony__registry_escape(tag, sizeof(tag), opts->tag)) return COLONY_EINVAL;
    snprintf(prefix, sizeof(prefix), "/v1/health/service/%s?%s%s%s", name,
             opts->all_instances ? "" : "passing",
             opts->tag ? (opts->all_instances ? "tag=" : "&tag=") : "", tag);
    colony_discovery *d = colony__calloc(1, sizeof(*d));
    if (!d) return COLONY_ENOMEM;
    d->path_prefix = colony__strdup(prefix);
    d->service = colony__strdup(opts->service);
    if (!d->path_prefix || !d->service) {
        colony__free(d->path_prefix);
        colony__free(d->service);
        colony__free(d);
        return COLONY_ENOMEM;
    }
    d->r = r;
    d->balancer = opts->balancer;
    d->on_change = opts->on_change;
    d->ud = opts->ud;
    uv_timer_init(r->loop, &d->timer); /* cannot fail: it only links the handle */
    d->timer.data = d;
    d->next = r->watches;
    r->watches = d;
    colony__closer_hold(&r->closer);
    schedule(d, 0);
    *out = d;
    return 0;
}

void colony_discovery_stop(colony_discovery *d)
{
    if (!d || d->stopped) return;
    colony_discovery **p = &d->r->watches;
    while (*p && *p != d)
        p = &(*p)->next;
    if (*p) *p = d->next;
    d->stopped = 1;
    colony__closer_init(&d->closer, watch_freed, d);
    if (d->call) {
        colony__closer_hold(&d->closer); /* released by on_query_done */
        colony_client_call_cancel(d->call);
    }
    colony__closer_close(&d->closer, (uv_handle_t *)&d->timer);
    colony__closer_finish(&d->closer, d->r->loop);
}

void colony__discovery_stop_all(colony_registry_client *r)
{
    while (r->watches)
        colony_discovery_stop(r->watches);
}

size_t colony_discovery_count(const colony_discovery *d)
{
    return d ? d->count : 0;
}

const colony_instance *colony_discovery_at(const colony_discovery *d, size_t i)
{
    return d && i < d->count ? &d->instances[i] : NULL;
}

int colony_discovery_ready(const colony_discovery *d)
{
    return d ? d->ready : 0;
}

uint64_t colony_discovery_index(const colony_discovery *d)
{
    return d ? d->index : 0;
}

int colony_discovery_last_error(const colony_discovery *d)
{
    return d ? d->last_error : 0;
}

unsigned colony_discovery_failures(const colony_discovery *d)
{
    return d ? d->failures : 0;
}
