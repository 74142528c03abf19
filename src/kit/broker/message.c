/* A delivered message and how it is settled: acks of a subscription are
 * gathered and sent as one POST .../ack {"ids": [...]} (those settled while
 * the handler runs over a poll's batch, or within one loop turn otherwise);
 * a retry or dead letter is one POST .../nack each. A message counts in its
 * subscription's prefetch window until the broker has answered its ack or
 * nack. */
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "kit/broker/broker_internal.h"

static void msg_free(colony_broker_msg *m)
{
    json_decref(m->obj);
    colony__free(m->json_text);
    colony__free(m->error);
    colony__free(m);
}

/* ---- settling ---- */

typedef struct settle_call {
    colony_broker_sub *s;
    unsigned n;
} settle_call;

static void on_settled(colony_broker_client *c, int err, int status, json_t *body, void *ud)
{
    (void)c;
    settle_call *k = ud;
    colony_broker_sub *s = k->s;
    if (err || status != 200)
        COLONY_LOG_WARN(
            "broker: ack/nack failed (the entries come back after the visibility "
            "timeout)",
            COLONY_LF_STR("stream", s->stream), COLONY_LF_INT("status", status),
            COLONY_LF_STR("error", err ? colony_strerror(err)
                                       : json_string_value(json_object_get(body, "message"))));
    s->in_flight -= k->n;
    s->calls--;
    colony__free(k);
    colony__bsub_poll(s);
    colony__bsub_progress(s);
}

/* Sends body to the group's action; the n messages leave the window when
 * it is answered (or now if it cannot be sent). */
static void send_settle(colony_broker_sub *s, const char *action, json_t *body, unsigned n)
{
    char *path = colony__malloc(strlen(s->group_path) + strlen(action) + 2);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    settle_call *k = colony__malloc(sizeof(*k));
    int rc = COLONY_ENOMEM;
    if (path && text && k) {
        strcpy(path, s->group_path);
        strcat(path, "/");
        strcat(path, action);
        *k = (settle_call){s, n};
        rc = colony__bc_call(s->c, "POST", path, text, NULL, 0, on_settled, k, NULL);
    }
    colony__free(path);
    colony__free(text);
    if (rc) {
        colony__free(k);
        s->in_flight -= n;
        COLONY_LOG_WARN("broker: cannot send an ack/nack", COLONY_LF_STR("stream", s->stream),
                        COLONY_LF_STR("error", colony_strerror(rc)));
        return;
    }
    s->calls++;
}

void colony__bsub_flush_acks(colony_broker_sub *s)
{
    uv_timer_stop(&s->flush);
    json_t *ids = s->acks;
    if (!ids) return;
    s->acks = NULL;
    unsigned n = (unsigned)json_array_size(ids);
    json_t *body = json_pack("{s:o}", "ids", ids);
    send_settle(s, "ack", body, n);
    json_decref(body);
}

static void on_flush(uv_timer_t *t)
{
    colony_broker_sub *s = t->data;
    colony__bsub_flush_acks(s);
    colony__bsub_progress(s);
}

int colony_broker_msg_settle(colony_broker_msg *m, colony_broker_verdict v)
{
    if (!m || v == COLONY_BROKER_LATER || (unsigned)v > COLONY_BROKER_LATER) return COLONY_EINVAL;
    colony_broker_sub *s = m->sub;
    if (!s) {
        msg_free(m);
        return COLONY_ESHUTDOWN;
    }
    colony__list_remove(&m->link);
    if (v == COLONY_BROKER_ACK) {
        if (!s->acks) s->acks = json_array();
        if (!s->acks || json_array_append_new(s->acks, json_string(m->id))) {
            s->in_flight--; /* not acked: it comes back after the visibility timeout */
        } else if (!s->dispatching && !uv_is_active((uv_handle_t *)&s->flush)) {
            uv_timer_start(&s->flush, on_flush, 0, 0);
        }
    } else {
        json_t *body = json_pack("{s:s}", "id", m->id);
        if (body && m->error) json_object_set_new(body, "error", json_string(m->error));
        if (body && v == COLONY_BROKER_DEAD_LETTER)
            json_object_set_new(body, "dead_letter", json_true());
        send_settle(s, "nack", body, 1);
        json_decref(body);
    }
    msg_free(m);
    colony__bsub_progress(s);
    return 0;
}

int colony_broker_msg_ack(colony_broker_msg *m)
{
    return colony_broker_msg_settle(m, COLONY_BROKER_ACK);
}

int colony_broker_msg_nack(colony_broker_msg *m, int dead_letter, const char *error)
{
    if (m && error && colony_broker_msg_set_error(m, error)) return COLONY_ENOMEM;
    return colony_broker_msg_settle(m,
                                    dead_letter ? COLONY_BROKER_DEAD_LETTER : COLONY_BROKER_RETRY);
}

int colony_broker_msg_set_error(colony_broker_msg *m, const char *text)
{
    if (!m) return COLONY_EINVAL;
    char *copy = text ? colony__strdup(text) : NULL;
    if (text && !copy) return COLONY_ENOMEM;
    colony__free(m->error);
    m->error = copy;
    return 0;
}

/* ---- delivery ---- */

static colony_broker_msg *msg_new(colony_broker_sub *s, json_t *obj)
{
    const char *id = json_string_value(json_object_get(obj, "id"));
    json_t *data = json_object_get(obj, "data");
    if (!id) return NULL;
    colony_broker_msg *m = colony__calloc(1, sizeof(*m));
    if (!m) return NULL;
    m->sub = s;
    m->obj = json_incref(obj);
    m->id = id;
    json_int_t d = json_integer_value(json_object_get(obj, "deliveries"));
    m->deliveries = d > 0 ? (unsigned)d : 1;
    if (json_is_string(data)) {
        m->data = json_string_value(data);
        m->data_len = json_string_length(data);
    } else if (data) {
        m->json_text = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!m->json_text) {
            msg_free(m);
            return NULL;
        }
        m->data = m->json_text;
        m->data_len = strlen(m->json_text);
    } else {
        m->data = "";
    }
    return m;
}

void colony__bmsg_dispatch(colony_broker_sub *s, json_t *messages)
{
    size_t i;
    json_t *obj;
    s->dispatching = 1;
    json_array_foreach(messages, i, obj)
    {
        if (s->stopped) break; /* the rest come back after the visibility timeout */
        colony_broker_msg *m = msg_new(s, obj);
        if (!m) continue; /* likewise */
        s->in_flight++;
        colony__list_push_back(&s->held, &m->link);
        colony_broker_verdict v = s->handler(m, s->ud);
        if (v != COLONY_BROKER_LATER) colony_broker_msg_settle(m, v);
    }
    s->dispatching = 0;
    colony__bsub_flush_acks(s);
}

/* ---- accessors ---- */

const char *colony_broker_msg_id(const colony_broker_msg *m)
{
    return m->id;
}

const char *colony_broker_msg_stream(const colony_broker_msg *m)
{
    return m->sub ? m->sub->stream : NULL;
}

unsigned colony_broker_msg_deliveries(const colony_broker_msg *m)
{
    return m->deliveries;
}

const char *colony_broker_msg_data(const colony_broker_msg *m, size_t *len)
{
    if (len) *len = m->data_len;
    return m->data;
}

const json_t *colony_broker_msg_json(const colony_broker_msg *m)
{
    json_t *data = json_object_get(m->obj, "data");
    return json_is_string(data) ? NULL : data;
}

const char *colony_broker_msg_header(const colony_broker_msg *m, const char *name)
{
    return json_string_value(json_object_get(json_object_get(m->obj, "headers"), name));
}
