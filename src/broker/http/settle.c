/* Settling deliveries over HTTP, through the delivery engine:
 *
 *   POST /streams/:stream/groups/:group/ack     {"ids": [...]}
 *   POST /streams/:stream/groups/:group/nack    {"id", "delay"?, "error"?, "dead_letter"?}
 *   POST /streams/:stream/groups/:group/extend  {"id", "ms"}
 *
 * Each answers once its change is durable, and wakes the stream's waiting
 * consumers (a streamed consume's window may have room again). */
#include <string.h>
#include "colony/config.h"
#include "colony/error.h"
#include "core/alloc.h"
#include "broker/http/http.h"

/* The route's stream (404 unless it exists) and the body as an object. */
static colony__bstream *prelude(colony__bhttp *h, colony_request *req, json_t **body)
{
    *body = NULL;
    if (!colony__bhttp_engine_ready(h, req)) return NULL;
    colony__bstream *st = colony__bhttp_stream(h, req, NULL);
    if (!st) return NULL;
    const char *group = colony_request_param(req, "group");
    if (!colony__bgroup_get(st, group)) {
        colony__bhttp_fail(req, 404, "not_found", "no group %.255s", group);
        return NULL;
    }
    if (colony__bhttp_body_json(req, body)) return NULL;
    if (!json_is_object(*body)) {
        json_decref(*body);
        *body = NULL;
        colony__bhttp_fail(req, 400, "bad_request", "the body is a JSON object");
        return NULL;
    }
    return st;
}

static int id_field(colony_request *req, json_t *body, colony__bid *id)
{
    json_t *v = json_object_get(body, "id");
    if (json_is_string(v) && colony__bhttp_id_parse(json_string_value(v), id) == 0) return 0;
    colony__bhttp_fail(req, 400, "bad_request", "\"id\" is an entry id (\"ms-seq\")");
    return COLONY_EINVAL;
}

/* A duration field: a number of ms or a string ("5s"). 1 if absent. */
int colony__bhttp_duration_field(colony_request *req, json_t *body, const char *name, uint64_t *ms)
{
    json_t *v = json_object_get(body, name);
    if (!v || json_is_null(v)) return 1;
    int64_t x = -1;
    if (json_is_integer(v))
        x = json_integer_value(v);
    else if (json_is_string(v) && colony_config_parse_duration(json_string_value(v), &x))
        x = -1;
    if (x < 0) {
        colony__bhttp_fail(req, 400, "bad_request",
                           "\"%s\" is a duration: milliseconds or a string (\"5s\")", name);
        return COLONY_EINVAL;
    }
    *ms = (uint64_t)x;
    return 0;
}

static void post_ack(colony_request *req, void *ud)
{
    colony__bhttp *h = ud;
    json_t *body;
    colony__bstream *st = prelude(h, req, &body);
    if (!st) return;
    json_t *ids = json_object_get(body, "ids");
    size_t n = json_array_size(ids);
    if (!json_is_array(ids) || n == 0 || n > h->set.max_batch) {
        json_decref(body);
        colony__bhttp_fail(req, 400, "bad_request", "\"ids\" is an array of 1 to %zu ids",
                           h->set.max_batch);
        return;
    }
    colony__bid *list = colony__malloc(n * sizeof(*list));
    if (!list) {
        json_decref(body);
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(ids, i);
        if (!json_is_string(v) || colony__bhttp_id_parse(json_string_value(v), &list[i])) {
            colony__free(list);
            json_decref(body);
            colony__bhttp_fail(req, 400, "bad_request", "ids[%zu] is not an entry id", i);
            return;
        }
    }
    json_decref(body);
    long acked = colony__bdelivery_ack(h->engine, colony_request_param(req, "stream"),
                                       colony_request_param(req, "group"), list, n);
    colony__free(list);
    if (acked < 0) {
        colony__bhttp_store_error(req, (int)acked, "ack failed");
        return;
    }
    h->stats.acked += (uint64_t)acked;
    colony__bhttp_wake(h, colony_request_param(req, "stream")); /* streamed windows refill */
    colony__bhttp_reply_durable(h, req, st, 200, json_pack("{s:I}", "acked", (json_int_t)acked),
                                NULL, NULL);
}

static void post_nack(colony_request *req, void *ud)
{
    colony__bhttp *h = ud;
    json_t *body;
    colony__bstream *st = prelude(h, req, &body);
    if (!st) return;
    colony__bid id;
    uint64_t delay = COLONY__BNACK_BACKOFF;
    json_t *err = json_object_get(body, "error"), *dl = json_object_get(body, "dead_letter");
    if (id_field(req, body, &id) || colony__bhttp_duration_field(req, body, "delay", &delay) < 0) {
        json_decref(body);
        return;
    }
    if ((err && !json_is_string(err)) || (dl && !json_is_boolean(dl))) {
        json_decref(body);
        colony__bhttp_fail(req, 400, "bad_request",
                           "\"error\" is a string and \"dead_letter\" a boolean");
        return;
    }
    int rc = colony__bdelivery_nack(h->engine, colony_request_param(req, "stream"),
                                    colony_request_param(req, "group"), id, delay,
                                    err ? json_string_value(err) : NULL,
                                    err ? json_string_length(err) : 0, json_is_true(dl));
    json_decref(body);
    if (rc == COLONY_ENOENT) {
        colony__bhttp_fail(req, 404, "not_pending", "that entry is not pending in this group");
        return;
    }
    if (rc) {
        colony__bhttp_store_error(req, rc, "nack failed");
        return;
    }
    h->stats.nacked++;
    colony__bhttp_wake(h, colony_request_param(req, "stream"));
    colony__bstream *sts[8];
    size_t ns = colony__bhttp_touched(h, st, sts, 8);
    colony__bhttp_reply_durable_n(h, req, sts, ns, 200, json_pack("{s:b}", "nacked", 1), NULL,
                                  NULL);
}

static void post_extend(colony_request *req, void *ud)
{
    colony__bhttp *h = ud;
    json_t *body;
    colony__bstream *st = prelude(h, req, &body);
    if (!st) return;
    colony__bid id;
    uint64_t ms = 0;
    int r = 0;
    if (id_field(req, body, &id) || (r = colony__bhttp_duration_field(req, body, "ms", &ms)) != 0) {
        json_decref(body);
        if (r > 0) colony__bhttp_fail(req, 400, "bad_request", "\"ms\" is required");
        return;
    }
    json_decref(body);
    int rc = colony__bdelivery_extend(h->engine, colony_request_param(req, "stream"),
                                      colony_request_param(req, "group"), id, ms);
    if (rc == COLONY_ENOENT) {
        colony__bhttp_fail(req, 404, "not_pending", "that entry is not pending in this group");
        return;
    }
    if (rc) {
        colony__bhttp_store_error(req, rc, "extend failed");
        return;
    }
    colony__bhttp_reply_durable(h, req, st, 200, json_pack("{s:b}", "extended", 1), NULL, NULL);
}

int colony__bhttp_routes_settle(colony__bhttp *h, colony_router *r)
{
    int rc = colony_router_add(r, "POST", "/streams/:stream/groups/:group/ack", post_ack, h);
    if (!rc) rc = colony_router_add(r, "POST", "/streams/:stream/groups/:group/nack", post_nack, h);
    if (!rc)
        rc = colony_router_add(r, "POST", "/streams/:stream/groups/:group/extend", post_extend, h);
    return rc;
}
