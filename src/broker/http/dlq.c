/* A group's dead letters over HTTP (the delivery engine's dead-letter stream
 * of the group, "dlq:<stream>:<group>" unless its policy names another):
 *
 *   GET    /streams/:stream/groups/:group/dlq?start=&count=   list
 *   GET    /streams/:stream/groups/:group/dlq/:id             one
 *   POST   /streams/:stream/groups/:group/dlq/replay          {"id"} | {"start","end"} | {} (all)
 *   DELETE /streams/:stream/groups/:group/dlq?upto=id         purge (all without upto)
 *
 * Each dead letter shows its id in the dead-letter stream, the original id,
 * the reason (max-deliveries, rejected, expired), the last error text, the
 * delivery count, when it was dead-lettered, and the message. */
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "broker/http/http.h"

static const colony__bid ID_MIN = {0, 0}, ID_MAX = {UINT64_MAX, UINT64_MAX};

/* The group's dead-letter stream name, or NULL after answering. */
static const char *dlq_name(colony__bhttp *h, colony_request *req)
{
    if (!h->engine) {
        colony__bhttp_fail(req, 501, "not_implemented", "the delivery engine is not available");
        return NULL;
    }
    const char *stream;
    colony__bstream *st = colony__bhttp_stream(h, req, &stream);
    if (!st) return NULL;
    const char *group = colony_request_param(req, "group");
    colony__bgroup_policy gp;
    if (!colony__bgroup_get(st, group) ||
        colony__bdelivery_group_policy_get(h->engine, stream, group, &gp) || !gp.dead_letter) {
        colony__bhttp_fail(req, 404, "not_found", "no group %.255s", group);
        return NULL;
    }
    return gp.dead_letter;
}

static int add_dead(void *ud, const colony__bdead *d)
{
    colony__bentry e = {.id = d->original, .time_ms = d->time_ms, .strs = d->strs, .n = d->n};
    json_t *m = colony__bmsg_to_json(&e);
    if (!m) return COLONY_ENOMEM;
    json_t *orig = json_object_get(m, "id");
    int rc = json_object_set(m, "original_id", orig) ||
             json_object_set_new(m, "id", colony__bhttp_id_json(d->id)) ||
             json_object_set_new(m, "stream", json_stringn(d->stream, d->stream_len)) ||
             json_object_set_new(m, "group", json_stringn(d->group, d->group_len)) ||
             json_object_set_new(m, "reason", json_stringn(d->reason, d->reason_len)) ||
             json_object_set_new(
                 m, "error", d->error ? json_stringn(d->error, d->error_len) : json_string("")) ||
             json_object_set_new(m, "deliveries", json_integer((json_int_t)d->count)) ||
             json_object_set_new(m, "time_ms", json_integer((json_int_t)d->time_ms)) ||
             json_array_append_new(ud, m);
    return rc ? COLONY_ENOMEM : 0;
}

static int id_query(colony_request *req, const char *name, colony__bid dflt, colony__bid *out)
{
    const char *s = colony_request_query_param(req, name);
    *out = dflt;
    if (!s || !*s) return 0;
    if (colony__bhttp_id_parse(s, out) == 0) return 0;
    colony__bhttp_fail(req, 400, "bad_request", "%s is an entry id", name);
    return COLONY_EINVAL;
}

static void list_dead(colony_request *req, void *ud)
{
    colony__bhttp *h = ud;
    const char *dlq = dlq_name(h, req);
    colony__bid start;
    if (!dlq || id_query(req, "start", ID_MIN, &start)) return;
    const char *c = colony_request_query_param(req, "count");
    char *stop = NULL;
    unsigned long long count = c && *c ? strtoull(c, &stop, 10) : 100;
    if ((stop && *stop) || count == 0 || count > h->set.max_batch) {
        colony__bhttp_fail(req, 400, "bad_request", "count is 1 to %zu", h->set.max_batch);
        return;
    }
    json_t *arr = json_array();
    long n = !arr || !colony__bstore_get(h->store, dlq)
                 ? 0
                 : colony__bdelivery_dead_list(h->engine, dlq, start, ID_MAX, (size_t)count,
                                               add_dead, arr);
    if (n < 0 || !arr) {
        json_decref(arr);
        colony__bhttp_store_error(req, n < 0 ? (int)n : COLONY_ENOMEM, "cannot list");
        return;
    }
    colony__bhttp_reply(req, 200,
                        json_pack("{s:s, s:o}", "dead_letter_stream", dlq, "dead_letters", arr));
}

static void get_dead(colony_request *req, void *ud)
{
    colony__bhttp *h = ud;
    const char *dlq = dlq_name(h, req);
    if (!dlq) return;
    colony__bid id;
    if (colony__bhttp_id_parse(colony_request_param(req, "id"), &id)) {
        colony__bhttp_fail(req, 400, "bad_request", "the id is \"ms-seq\"");
        return;
    }
    json_t *arr = json_array();
    long n = !arr || !colony__bstore_get(h->store, dlq)
                 ? 0
                 : colony__bdelivery_dead_list(h->engine, dlq, id, id, 1, add_dead, arr);
    if (n < 0) {
        json_decref(arr);
        colony__bhttp_store_error(req, (int)n, "cannot read");
        return;
    }
    if (n == 0 || json_array_size(arr) == 0) {
        json_decref(arr);
        colony__bhttp_fail(req, 404, "not_found", "no dead letter %.60s",
                           colony_request_param(req, "id"));
        return;
    }
    colony__bhttp_reply(req, 200, json_incref(json_array_get(arr, 0)));
    json_decref(arr);
}

static void replay_dead(colony_request *req, void *ud)
{
    colony__bhttp *h = ud;
    const char *dlq = dlq_name(h, req);
    if (!dlq) return;
    json_t *body;
    if (colony__bhttp_body_json(req, &body)) return;
    colony__bid start = ID_MIN, end = ID_MAX;
    const char *bad = NULL;
    if (body && !json_is_object(body)) bad = "the body is {\"id\"}, {\"start\", \"end\"} or {}";
    json_t *id = body ? json_object_get(body, "id") : NULL;
    json_t *js = body ? json_object_get(body, "start") : NULL;
    json_t *je = body ? json_object_get(body, "end") : NULL;
    if (!bad && id &&
        (!json_is_string(id) || colony__bhttp_id_parse(json_string_value(id), &start)))
        bad = "\"id\" is an entry id";
    if (!bad && id) end = start;
    if (!bad && js &&
        (!json_is_string(js) || colony__bhttp_id_parse(json_string_value(js), &start)))
        bad = "\"start\" is an entry id";
    if (!bad && je && (!json_is_string(je) || colony__bhttp_id_parse(json_string_value(je), &end)))
        bad = "\"end\" is an entry id";
    json_decref(body);
    if (bad) {
        colony__bhttp_fail(req, 400, "bad_request", "%s", bad);
        return;
    }
    colony__bstream *src = colony__bstore_get(h->store, dlq);
    long n = src ? colony__bdelivery_dead_replay(h->engine, dlq, start, end) : 0;
    if (n < 0) {
        colony__bhttp_store_error(req, (int)n, "replay failed");
        return;
    }
    if (id && n == 0) {
        colony__bhttp_fail(req, 404, "not_found", "no dead letter %.60s", json_string_value(id));
        return;
    }
    colony__bstream *sts[9] = {src};
    size_t ns = 1;
    colony__bstream *t;
    for (size_t i = 0; ns < 9 && (t = colony__bdelivery_touched(h->engine, i)); i++)
        sts[ns++] = t;
    colony__bhttp_reply_durable_n(h, req, sts, ns, 200,
                                  json_pack("{s:I}", "replayed", (json_int_t)n), NULL, NULL);
}

static void purge_dead(colony_request *req, void *ud)
{
    colony__bhttp *h = ud;
    const char *dlq = dlq_name(h, req);
    colony__bid upto;
    if (!dlq || id_query(req, "upto", ID_MAX, &upto)) return;
    colony__bstream *st = colony__bstore_get(h->store, dlq);
    long n = st ? colony__bdelivery_dead_purge(h->engine, dlq, upto) : 0;
    if (n < 0) {
        colony__bhttp_store_error(req, (int)n, "purge failed");
        return;
    }
    colony__bhttp_reply_durable(h, req, st, 200, json_pack("{s:I}", "purged", (json_int_t)n), NULL,
                                NULL);
}

int colony__bhttp_routes_dlq(colony__bhttp *h, colony_router *r)
{
    static const char base[] = "/streams/:stream/groups/:group/dlq";
    int rc = colony_router_add(r, "GET", base, list_dead, h);
    if (!rc) rc = colony_router_add(r, "DELETE", base, purge_dead, h);
    if (!rc)
        rc = colony_router_add(r, "GET", "/streams/:stream/groups/:group/dlq/:id", get_dead, h);
    if (!rc)
        rc = colony_router_add(r, "POST", "/streams/:stream/groups/:group/dlq/replay", replay_dead,
                               h);
    return rc;
}
