/* Deferred answers on the registry's loop: blocking queries (?index=&wait=)
 * parked until their topic's index moves past the client's, and write acks
 * held until the change is committed. A reader is never answered with an
 * index that is not durable yet, so X-Consul-Index cannot go backwards after a
 * crash. Watchers are woken only by commits that touch their topic (a service
 * name, a KV key or prefix), never by unrelated churn. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "core/closer.h"
#include "registry/registry_internal.h"
#include "registry/store.h"
#include "registry/waiters.h"
#include "registry/names.h"
#include "registry/api.h"

struct reg_waiter {
    registry *reg;
    colony_request *req; /* NULL once answered or the connection died */
    reg_topic topic;
    reg_render_cb render;
    uint64_t min_index; /* reads: answer once the topic index passes it */
    uint64_t ack_index; /* acks: answer once this is committed */
    int ack_status;
    json_t *ack_body;
    uv_timer_t timer;
    int timer_open, is_ack;
    colony__list node;     /* in reg->waiters (reads) or reg->acks (index order) */
    colony__closer closer; /* frees the waiter once its request ended and its timer closed */
};

static void unlink_waiter(reg_waiter *w)
{
    colony__list_remove(&w->node); /* harmless when not linked */
}

static void free_waiter(void *ud)
{
    reg_waiter *w = ud;
    json_decref(w->ack_body);
    colony__free(w);
}

static void close_timer(reg_waiter *w)
{
    if (!w->timer_open) return;
    w->timer_open = 0;
    colony__closer_close(&w->closer, (uv_handle_t *)&w->timer); /* stops it too */
}

/* The request is over (answered or its connection died): once the timer has
 * closed, the closer frees the waiter. */
static void on_request_finished(colony_request *req, int status, void *ud)
{
    (void)req;
    (void)status;
    reg_waiter *w = ud;
    unlink_waiter(w); /* died while parked */
    w->req = NULL;
    close_timer(w);
    colony__closer_finish(&w->closer, w->reg->loop);
}

void colony__reg_waiters_init(registry *reg)
{
    colony__list_init(&reg->waiters);
    colony__list_init(&reg->acks);
}

static reg_waiter *waiter_of(colony__list *n)
{
    return COLONY__CONTAINER_OF(n, reg_waiter, node);
}

void colony__reg_set_index_headers(colony_request *req, uint64_t index)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)(index ? index : 1));
    colony_response_header(req, "X-Consul-Index", buf);
    colony_response_header(req, "X-Consul-KnownLeader", "true");
    colony_response_header(req, "X-Consul-LastContact", "0");
}

uint64_t colony__reg_topic_index(registry *reg, const reg_topic *t)
{
    uint64_t idx = 0;
    switch (t->kind) {
    case TOPIC_SERVICE: {
        reg_name *nm = colony__reg_name_get(reg, t->name);
        idx = nm ? nm->index : 0;
        break;
    }
    case TOPIC_CATALOG:
        idx = reg->catalog_index;
        break;
    case TOPIC_CHECKS:
        idx = reg->checks_index;
        break;
    case TOPIC_KV_KEY: {
        reg_kv *e = colony__reg_kv_find(reg, t->name);
        idx = e ? e->modify_index : reg->kv_floor;
        break;
    }
    case TOPIC_KV_PREFIX:
        idx = colony__reg_kv_prefix_index(reg, t->name);
        break;
    default:
        idx = reg->committed;
        break;
    }
    return idx ? idx : 1;
}

static void answer_read(registry *reg, reg_waiter *w)
{
    colony_request *req = w->req;
    unlink_waiter(w);
    w->req = NULL;
    close_timer(w);
    colony__reg_set_index_headers(req, colony__reg_topic_index(reg, &w->topic));
    w->render(reg, req); /* may finish the request (and free w) synchronously */
}

static void answer_ack(registry *reg, reg_waiter *w, int failed)
{
    colony_request *req = w->req;
    json_t *body = w->ack_body;
    int status = w->ack_status;
    w->ack_body = NULL;
    unlink_waiter(w);
    w->req = NULL;
    if (failed) {
        json_decref(body);
        colony_respond_error(req, 500, "commit_failed", "the change could not be made durable");
    } else {
        colony__reg_set_index_headers(req, w->ack_index);
        if (body)
            colony__reg_respond_json(req, status, body);
        else
            colony_respond(req, status, NULL, "", 0);
    }
}

static int is_ready(registry *reg, reg_waiter *w)
{
    uint64_t idx = colony__reg_topic_index(reg, &w->topic);
    return idx > w->min_index && idx <= reg->committed;
}

static void on_wait_timeout(uv_timer_t *t)
{
    reg_waiter *w = t->data;
    if (!w->req) return;
    if (colony__reg_topic_index(w->reg, &w->topic) > w->reg->committed) {
        w->min_index = 0; /* wait only for the commit now */
        return;
    }
    answer_read(w->reg, w);
}

static reg_waiter *new_waiter(registry *reg, colony_request *req)
{
    reg_waiter *w = colony__calloc(1, sizeof(*w));
    if (!w) return NULL;
    w->reg = reg;
    w->req = req;
    colony__list_init(&w->node);
    colony__closer_init(&w->closer, free_waiter, w);
    if (colony_request_on_finish(req, on_request_finished, w)) {
        colony__free(w);
        return NULL;
    }
    return w;
}

static int parse_index(colony_request *req, const char *name, uint64_t *out)
{
    const char *s = colony_request_query_param(req, name);
    *out = 0;
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno || *s == '-') return COLONY_EINVAL;
    *out = v;
    return 0;
}

void colony__reg_serve_read(registry *reg, colony_request *req, const reg_topic *topic,
                            reg_render_cb render)
{
    uint64_t min_index, wait_ms = REG_DEFAULT_WAIT_MS;
    if (parse_index(req, "index", &min_index)) {
        colony__reg_bad_request(req, "invalid index: must be a non-negative integer");
        return;
    }
    const char *wait = colony_request_query_param(req, "wait");
    if (wait && *wait) {
        if (colony__reg_parse_duration(wait, &wait_ms)) {
            char msg[300];
            snprintf(msg, sizeof(msg),
                     "invalid wait \"%.200s\": use a duration like \"5s\" or \"1m\"", wait);
            colony__reg_bad_request(req, msg);
            return;
        }
        if (wait_ms > REG_MAX_WAIT_MS) wait_ms = REG_MAX_WAIT_MS;
    }
    uint64_t idx = colony__reg_topic_index(reg, topic);
    if ((min_index == 0 || idx > min_index) && idx <= reg->committed) {
        colony__reg_set_index_headers(req, idx);
        render(reg, req);
        return;
    }
    reg_waiter *w = new_waiter(reg, req);
    if (!w) {
        colony_respond_error(req, 503, "overloaded", "out of memory");
        return;
    }
    w->topic.kind = topic->kind;
    w->topic.name =
        topic->name ? colony_arena_strdup(colony_request_arena(req), topic->name) : NULL;
    w->render = render;
    w->min_index = min_index;
    if (!(min_index == 0 || idx > min_index)) {
        /* Consul adds up to wait/16 of jitter so many watchers do not return at once. */
        uint64_t jitter = wait_ms / 16 ? (uint64_t)rand() % (wait_ms / 16 + 1) : 0;
        int rc = uv_timer_init(reg->loop, &w->timer);
        if (rc) {
            /* Without its timer the query could wait forever: refuse it. */
            colony_respond_error(req, 503, "overloaded", colony_strerror(rc));
            return;
        }
        w->timer.data = w;
        w->timer_open = 1;
        (void)uv_timer_start(&w->timer, on_wait_timeout, wait_ms + jitter, 0); /* cannot fail */
    }
    colony__list_push_back(&reg->waiters, &w->node); /* else: waits for the commit only */
}

void colony__reg_ack_write(registry *reg, colony_request *req, int status, json_t *body)
{
    if (reg->committed >= reg->index) {
        colony__reg_set_index_headers(req, reg->index);
        if (body)
            colony__reg_respond_json(req, status, body);
        else
            colony_respond(req, status, NULL, "", 0);
        return;
    }
    reg_waiter *w = new_waiter(reg, req);
    if (!w) {
        json_decref(body);
        colony_respond_error(req, 503, "overloaded", "out of memory");
        return;
    }
    w->is_ack = 1;
    w->ack_index = reg->index;
    w->ack_status = status;
    w->ack_body = body;
    colony__list_push_back(&reg->acks, &w->node);
}

static int topic_matches(const reg_topic *t, const reg_op *op)
{
    switch (t->kind) {
    case TOPIC_SERVICE:
        return op->topic_service && strcmp(op->topic_service, t->name) == 0;
    case TOPIC_CATALOG:
        return op->type == OP_SERVICE_PUT || op->type == OP_SERVICE_DEL;
    case TOPIC_CHECKS:
        return op->type == OP_CHECK_PUT || op->type == OP_CHECK_DEL;
    case TOPIC_KV_KEY:
        return op->type == OP_KV_PUT && strcmp(op->key, t->name) == 0;
    case TOPIC_KV_PREFIX:
        return op->type == OP_KV_PUT && strncmp(op->key, t->name, strlen(t->name)) == 0;
    default:
        return 0;
    }
}

void colony__reg_waiters_committed(registry *reg, const colony__list *ops)
{
    colony__list *n, *tmp;
    while ((n = colony__list_first(&reg->acks)) && waiter_of(n)->ack_index <= reg->committed)
        answer_ack(reg, waiter_of(n), 0);
    if (reg->shutting_down) { /* reads held only for this commit can go now */
        colony__reg_waiters_flush(reg);
        return;
    }
    COLONY__LIST_FOREACH_SAFE(n, tmp, &reg->waiters)
    {
        reg_waiter *w = waiter_of(n);
        for (const colony__list *o = ops->next; o != ops; o = o->next) {
            if (!topic_matches(&w->topic, COLONY__CONTAINER_OF(o, reg_op, node))) continue;
            if (is_ready(reg, w)) answer_read(reg, w);
            break;
        }
    }
}

/* Every pending ack fails, not only those up to the batch's index: a write's
 * ops can span two batches (the first op starts a batch when the store is
 * idle, the rest go to the next), so a write acked at a later index may have
 * lost an op in this one. Over-failing a write that commits later is safe;
 * a 2xx for a write that is not all durable is not. */
void colony__reg_waiters_failed(registry *reg)
{
    colony__list *n;
    while ((n = colony__list_first(&reg->acks)) != NULL)
        answer_ack(reg, waiter_of(n), 1);
    if (!reg->shutting_down) return;
    /* Reads held for a commit that may never come: unavailable, not stale. */
    while ((n = colony__list_first(&reg->waiters)) != NULL) {
        reg_waiter *w = waiter_of(n);
        colony_request *req = w->req;
        unlink_waiter(w);
        w->req = NULL;
        close_timer(w);
        colony_respond_error(req, 503, "unavailable",
                             "shutting down: the state could not be saved");
    }
}

/* Shutdown: answers every parked read whose answer is durable now; one whose
 * index is not committed yet still waits for that commit (or its failure). */
void colony__reg_waiters_flush(registry *reg)
{
    colony__list *n, *tmp;
    COLONY__LIST_FOREACH_SAFE(n, tmp, &reg->waiters)
    {
        reg_waiter *w = waiter_of(n);
        if (colony__reg_topic_index(reg, &w->topic) <= reg->committed) answer_read(reg, w);
    }
}
