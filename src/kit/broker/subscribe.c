/* A subscription: makes sure its stream and group exist, then long-polls the
 * group (GET .../messages?consumer=&max=&wait=) with at most one poll at a
 * time, asking for no more than the prefetch window has room for. Any
 * failure (broker down, restarting, 5xx) backs off with jitter, doubling up
 * to retry_max_ms, and polls again; a 404 (the stream or group went away)
 * creates them again first. Entries it held when the broker went away come
 * back through the broker's visibility timeout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "kit/broker/broker_internal.h"

static void retry_later(colony_broker_sub *s);

static void on_retry(uv_timer_t *t)
{
    colony__bsub_poll(t->data);
}

static void retry_later(colony_broker_sub *s)
{
    colony_broker_client *c = s->c;
    if (s->stopped) return;
    if (s->connected)
        COLONY_LOG_WARN("broker unreachable, reconnecting", COLONY_LF_STR("url", c->url),
                        COLONY_LF_STR("stream", s->stream), COLONY_LF_STR("group", s->group));
    s->connected = 0;
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : c->o.retry_min_ms;
    if (s->backoff_ms > c->o.retry_max_ms) s->backoff_ms = c->o.retry_max_ms;
    uint64_t half = s->backoff_ms / 2;
    uint64_t delay = half + (uint64_t)rand() % (half + 1); /* jitter: [half, full] */
    uv_timer_start(&s->retry, on_retry, delay, 0);
}

static void on_group(colony_broker_client *c, int err, int status, json_t *body, void *ud)
{
    (void)c;
    colony_broker_sub *s = ud;
    s->setting_up = 0;
    s->calls--;
    if (!err) err = colony__bc_status_error(status, NULL);
    if (err) {
        if (status)
            COLONY_LOG_WARN(
                "broker: cannot create the group", COLONY_LF_STR("group", s->group),
                COLONY_LF_INT("status", status),
                COLONY_LF_STR("message", json_string_value(json_object_get(body, "message"))));
        retry_later(s);
    } else {
        s->need_setup = 0;
        s->connected = 1;
        s->backoff_ms = 0;
        colony__bsub_poll(s);
    }
    colony__bsub_progress(s);
}

static void on_stream(colony_broker_client *c, int err, int status, json_t *body, void *ud)
{
    colony_broker_sub *s = ud;
    s->calls--;
    if (!err) err = colony__bc_status_error(status, NULL);
    if (!err && !s->stopped) {
        json_t *b = json_pack("{s:s}", "start", s->start);
        char *text = b ? json_dumps(b, JSON_COMPACT) : NULL;
        json_decref(b);
        err = text ? colony__bc_call(c, "PUT", s->group_path, text, NULL, 0, on_group, s, NULL)
                   : COLONY_ENOMEM;
        colony__free(text);
        if (!err) {
            s->calls++;
            return;
        }
    }
    s->setting_up = 0;
    if (err && status)
        COLONY_LOG_WARN(
            "broker: cannot create the stream", COLONY_LF_STR("stream", s->stream),
            COLONY_LF_INT("status", status),
            COLONY_LF_STR("message", json_string_value(json_object_get(body, "message"))));
    retry_later(s);
    colony__bsub_progress(s);
}

/* PUT the stream, then the group (both answer 200 when they exist). */
static void setup(colony_broker_sub *s)
{
    s->setting_up = 1;
    if (colony__bc_call(s->c, "PUT", s->stream_path, NULL, NULL, 0, on_stream, s, NULL)) {
        s->setting_up = 0;
        retry_later(s);
        return;
    }
    s->calls++;
}

static void on_poll(colony_broker_client *c, int err, int status, json_t *body, void *ud)
{
    (void)c;
    colony_broker_sub *s = ud;
    s->poll = NULL;
    if (s->stopped) {
        colony__bsub_progress(s);
        return;
    }
    if (!err && status == 404) s->need_setup = 1;
    if (err || status != 200) {
        retry_later(s);
        return;
    }
    s->connected = 1;
    s->backoff_ms = 0;
    colony__bmsg_dispatch(s, json_object_get(body, "messages"));
    colony__bsub_poll(s);
    colony__bsub_progress(s);
}

void colony__bsub_poll(colony_broker_sub *s)
{
    if (s->stopped || s->poll || s->setting_up || s->dispatching ||
        uv_is_active((uv_handle_t *)&s->retry))
        return;
    if (s->need_setup) {
        setup(s);
        return;
    }
    if (s->in_flight >= s->prefetch) return;
    char *consumer = colony__bc_path("", s->consumer, NULL);
    char query[96];
    snprintf(query, sizeof(query), "&max=%u&wait=%llums", s->prefetch - s->in_flight,
             (unsigned long long)s->wait_ms);
    size_t gl = strlen(s->group_path);
    char *path = consumer ? colony__malloc(gl + strlen(consumer) + strlen(query) + 32) : NULL;
    int rc = COLONY_ENOMEM;
    if (path) {
        sprintf(path, "%s/messages?consumer=%s%s", s->group_path, consumer, query);
        rc = colony__bc_call(s->c, "GET", path, NULL, NULL, s->wait_ms + s->c->o.timeout_ms,
                             on_poll, s, &s->poll);
    }
    colony__free(consumer);
    colony__free(path);
    if (rc) retry_later(s);
}

/* ---- lifetime ---- */

static void sub_freed(void *ud)
{
    colony_broker_sub *s = ud;
    colony_broker_client *c = s->c;
    colony_broker_closed_cb cb = s->unsub_cb;
    void *cud = s->unsub_ud;
    colony__list_remove(&s->link);
    json_decref(s->acks);
    colony__free(s->stream);
    colony__free(s->group);
    colony__free(s->consumer);
    colony__free(s->start);
    colony__free(s->stream_path);
    colony__free(s->group_path);
    colony__free(s);
    if (cb) cb(cud);
    colony__bc_progress(c);
}

void colony__bsub_progress(colony_broker_sub *s)
{
    if (!s->stopped || s->freeing || s->poll || s->setting_up || s->calls || s->in_flight ||
        s->dispatching)
        return;
    s->freeing = 1;
    colony__closer_init(&s->closer, sub_freed, s);
    colony__closer_close(&s->closer, (uv_handle_t *)&s->retry);
    colony__closer_close(&s->closer, (uv_handle_t *)&s->flush);
    colony__closer_finish(&s->closer, s->c->loop);
}

void colony__bsub_stop(colony_broker_sub *s)
{
    if (s->stopped) return;
    s->stopped = 1;
    uv_timer_stop(&s->retry);
    if (s->poll) colony_client_call_cancel(s->poll);
    colony__bsub_progress(s);
}

void colony__bsub_detach(colony_broker_sub *s)
{
    colony__list *n;
    while ((n = colony__list_pop_front(&s->held))) {
        colony_broker_msg *m = COLONY__CONTAINER_OF(n, colony_broker_msg, link);
        m->sub = NULL;
        s->in_flight--;
    }
    colony__bsub_progress(s);
}

int colony_broker_subscribe(colony_broker_client *c, const colony_broker_sub_options *o,
                            colony_broker_sub **out)
{
    if (!c || !o || !o->stream || !*o->stream || !o->group || !*o->group || !o->handler ||
        (o->consumer && !*o->consumer) ||
        (o->start && strcmp(o->start, "0") && strcmp(o->start, "$")))
        return COLONY_EINVAL;
    if (c->closing) return COLONY_ESHUTDOWN;
    colony_broker_sub *s = colony__calloc(1, sizeof(*s));
    if (!s) return COLONY_ENOMEM;
    s->c = c;
    s->handler = o->handler;
    s->ud = o->ud;
    s->prefetch = o->prefetch ? o->prefetch : 10;
    if (s->prefetch > COLONY__BC_MAX_PREFETCH) s->prefetch = COLONY__BC_MAX_PREFETCH;
    s->wait_ms = o->wait_ms ? o->wait_ms : 30000;
    s->stream = colony__strdup(o->stream);
    s->group = colony__strdup(o->group);
    s->consumer = colony__strdup(o->consumer ? o->consumer : c->consumer);
    s->start = colony__strdup(o->start ? o->start : "0");
    s->stream_path = colony__bc_path("/streams/", o->stream, NULL);
    char *prefix = s->stream_path ? colony__malloc(strlen(s->stream_path) + 9) : NULL;
    if (prefix) sprintf(prefix, "%s/groups/", s->stream_path);
    s->group_path = prefix ? colony__bc_path(prefix, o->group, NULL) : NULL;
    colony__free(prefix);
    if (!s->stream || !s->group || !s->consumer || !s->start || !s->group_path) {
        colony__free(s->stream);
        colony__free(s->group);
        colony__free(s->consumer);
        colony__free(s->start);
        colony__free(s->stream_path);
        colony__free(s->group_path);
        colony__free(s);
        return COLONY_ENOMEM;
    }
    colony__list_init(&s->held);
    uv_timer_init(c->loop, &s->retry);
    uv_timer_init(c->loop, &s->flush);
    s->retry.data = s;
    s->flush.data = s;
    s->need_setup = 1;
    colony__list_push_back(&c->subs, &s->link);
    colony__bsub_poll(s);
    if (out) *out = s;
    return 0;
}

void colony_broker_unsubscribe(colony_broker_sub *s, colony_broker_closed_cb cb, void *ud)
{
    if (!s || s->stopped) return;
    s->unsub_cb = cb;
    s->unsub_ud = ud;
    colony__bsub_stop(s);
}

unsigned colony_broker_sub_in_flight(const colony_broker_sub *s)
{
    return s ? s->in_flight : 0;
}

int colony_broker_sub_connected(const colony_broker_sub *s)
{
    return s ? s->connected : 0;
}
