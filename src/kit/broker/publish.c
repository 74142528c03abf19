/* Publishing: one POST per message, answered by the broker after its fsync,
 * so the callback's success means durable. A stream that does not exist yet
 * is created once and the publish sent again (a 404 appended nothing), as
 * XADD creates its stream. */
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "kit/broker/broker_internal.h"

typedef struct publish {
    colony_broker_client *c;
    char *path, *stream_path, *body, *key;
    int created; /* the stream was created for it once */
    colony_broker_publish_cb cb;
    void *ud;
} publish;

static void publish_free(publish *p)
{
    colony__free(p->path);
    colony__free(p->stream_path);
    colony__free(p->body);
    colony__free(p->key);
    colony__free(p);
}

static int publish_send(publish *p);

static void finish(publish *p, int err, int status, json_t *body)
{
    colony_broker_reply r = {.status = status};
    if (json_is_object(body)) {
        r.error = json_string_value(json_object_get(body, "error"));
        r.message = json_string_value(json_object_get(body, "message"));
        r.duplicate = json_is_true(json_object_get(body, "duplicate"));
        r.id = json_string_value(json_object_get(body, "id"));
        if (!r.id) { /* a topic: the first stream that took it */
            json_t *msgs = json_object_get(body, "messages");
            json_t *sts = json_object_get(json_array_get(msgs, 0), "streams");
            size_t i;
            json_t *t;
            json_array_foreach(sts, i, t)
            {
                if ((r.id = json_string_value(json_object_get(t, "id")))) break;
            }
            if (!err && json_array_size(sts) && !r.id) {
                err = COLONY_EBUSY; /* every bound stream refused it */
                r.message = json_string_value(json_object_get(json_array_get(sts, 0), "error"));
            }
        }
    }
    if (p->cb) p->cb(err, &r, p->ud);
    publish_free(p);
}

static void on_created(colony_broker_client *c, int err, int status, json_t *body, void *ud)
{
    (void)c;
    publish *p = ud;
    if (!err) err = colony__bc_status_error(status, NULL);
    if (!err) err = publish_send(p);
    if (err) finish(p, err, status, body);
}

static void on_published(colony_broker_client *c, int err, int status, json_t *body, void *ud)
{
    publish *p = ud;
    const char *code = json_string_value(json_object_get(body, "error"));
    if (!err && status == 404 && p->stream_path && !p->created && code &&
        strcmp(code, "not_found") == 0) { /* also while closing: it is in flight */
        p->created = 1;
        err = colony__bc_call(c, "PUT", p->stream_path, NULL, NULL, 0, on_created, p, NULL);
        if (!err) return;
    }
    if (!err) err = colony__bc_status_error(status, code);
    finish(p, err, status, body);
}

static int publish_send(publish *p)
{
    const char *extra[] = {"Idempotency-Key", p->key, NULL};
    return colony__bc_call(p->c, "POST", p->path, p->body, p->key ? extra : NULL, 0, on_published,
                           p, NULL);
}

/* The JSON body of m, or NULL (EINVAL / ENOMEM in *err). */
static char *message_body(const colony_broker_message *m, int *err)
{
    unsigned long failed = colony__alloc_failed_count(); /* jansson hides ENOMEM as bad input */
    size_t len = m->len ? m->len : strlen(m->data);
    json_t *data =
        m->json ? json_loadb(m->data, len, JSON_DECODE_ANY, NULL) : json_stringn(m->data, len);
    json_t *obj = json_object(), *headers = NULL;
    *err = COLONY_EINVAL;
    if (!data || !obj || json_object_set(obj, "data", data)) goto out;
    for (size_t i = 0; m->headers && m->headers[i]; i += 2) {
        if (!m->headers[i + 1]) goto out;
        if (!headers && !(headers = json_object())) goto out;
        if (json_object_set_new(headers, m->headers[i], json_string(m->headers[i + 1])))
            goto out; /* the value is stolen even then */
    }
    if (headers && json_object_set(obj, "headers", headers)) goto out;
    if (m->delay_ms && json_object_set_new(obj, "delay", json_integer((json_int_t)m->delay_ms)))
        goto out;
    if (m->ttl_ms && json_object_set_new(obj, "ttl", json_integer((json_int_t)m->ttl_ms))) goto out;
    char *copy = json_dumps(obj, JSON_COMPACT); /* through colony__malloc (core/alloc.c) */
    *err = copy ? 0 : COLONY_ENOMEM;
    json_decref(data);
    json_decref(headers);
    json_decref(obj);
    return copy;
out:
    json_decref(data);
    json_decref(headers);
    json_decref(obj);
    if (colony__alloc_failed_count() != failed) *err = COLONY_ENOMEM;
    return NULL;
}

int colony_broker_publish(colony_broker_client *c, const colony_broker_message *m,
                          colony_broker_publish_cb cb, void *ud)
{
    if (!c || !m || !m->data || !(m->stream || m->topic) || (m->stream && m->topic))
        return COLONY_EINVAL;
    if (c->closing) return COLONY_ESHUTDOWN;
    const char *name = m->stream ? m->stream : m->topic;
    if (!*name) return COLONY_EINVAL;
    int rc;
    publish *p = colony__calloc(1, sizeof(*p));
    if (!p) return COLONY_ENOMEM;
    *p = (publish){.c = c, .cb = cb, .ud = ud};
    p->body = message_body(m, &rc);
    if (!p->body) {
        publish_free(p);
        return rc;
    }
    p->path = colony__bc_path(m->stream ? "/streams/" : "/topics/", name, "/messages");
    if (m->stream) p->stream_path = colony__bc_path("/streams/", name, NULL);
    if (m->idempotency_key) p->key = colony__strdup(m->idempotency_key);
    if (!p->path || (m->stream && !p->stream_path) || (m->idempotency_key && !p->key)) {
        publish_free(p);
        return COLONY_ENOMEM;
    }
    rc = publish_send(p);
    if (rc) publish_free(p);
    return rc;
}
