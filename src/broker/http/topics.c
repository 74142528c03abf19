/* Bindings over HTTP (topic/topic.h): a topic name or glob pattern bound to
 * a stream. Patterns may hold '/', so they travel in the body or the query,
 * not the path:
 *
 *   GET    /bindings                               every binding, in binding order
 *   PUT    /bindings  {"topic": "order.*", "stream": "orders"}    bind (201; 200 if bound)
 *   DELETE /bindings?topic=order.*&stream=orders  unbind
 *
 * Bindings are durable when the call returns (the table is rewritten and
 * fsynced by topic.c). Publishing to a topic is in publish.c. */
#include <string.h>
#include "colony/error.h"
#include "broker/http/http.h"

#define TOPIC_MAX 1024

static int topics_ready(colony__bhttp *h, colony_request *req)
{
    if (h->topics && h->engine) return 1;
    colony__bhttp_fail(req, 501, "not_implemented", "topics and bindings are not available");
    return 0;
}

static void list_bindings(colony_request *req, void *ud)
{
    colony__bhttp *h = ud;
    if (!topics_ready(h, req)) return;
    json_t *arr = json_array();
    size_t pos = 0, plen;
    const char *pattern, *stream;
    while (arr && colony__btopics_next(h->topics, &pos, &pattern, &plen, &stream) == 0)
        if (json_array_append_new(
                arr, json_pack("{s:s%, s:s}", "topic", pattern, plen, "stream", stream))) {
            json_decref(arr);
            arr = NULL;
        }
    colony__bhttp_reply(req, 200, arr ? json_pack("{s:o}", "bindings", arr) : NULL);
}

/* topic and stream from the body (PUT) or the query (DELETE). */
static int binding_args(colony_request *req, json_t *body, const char **topic, const char **stream)
{
    if (body) {
        *topic = json_string_value(json_object_get(body, "topic"));
        *stream = json_string_value(json_object_get(body, "stream"));
    } else {
        *topic = colony_request_query_param(req, "topic");
        *stream = colony_request_query_param(req, "stream");
    }
    if (!*topic || !**topic || strlen(*topic) > TOPIC_MAX) {
        colony__bhttp_fail(req, 400, "bad_request",
                           "topic (a name or pattern, 1 to %d bytes) is "
                           "required",
                           TOPIC_MAX);
        return COLONY_EINVAL;
    }
    if (!colony__bhttp_name_ok(*stream)) {
        colony__bhttp_fail(req, 400, "bad_request", "stream (1 to %d bytes) is required",
                           COLONY__BHTTP_NAME_MAX);
        return COLONY_EINVAL;
    }
    return 0;
}

static void put_binding(colony_request *req, void *ud)
{
    colony__bhttp *h = ud;
    if (!topics_ready(h, req)) return;
    json_t *body;
    if (colony__bhttp_body_json(req, &body)) return;
    if (!json_is_object(body)) {
        json_decref(body);
        colony__bhttp_fail(req, 400, "bad_request", "the body is {\"topic\", \"stream\"}");
        return;
    }
    const char *topic, *stream;
    if (binding_args(req, body, &topic, &stream)) {
        json_decref(body);
        return;
    }
    int rc = colony__btopics_bind(h->topics, topic, strlen(topic), stream);
    json_t *reply = json_pack("{s:s, s:s}", "topic", topic, "stream", stream);
    json_decref(body);
    if (rc && rc != COLONY_EEXIST) {
        json_decref(reply);
        colony__bhttp_store_error(req, rc, "cannot bind");
        return;
    }
    colony__bhttp_reply(req, rc == COLONY_EEXIST ? 200 : 201, reply);
}

static void delete_binding(colony_request *req, void *ud)
{
    colony__bhttp *h = ud;
    if (!topics_ready(h, req)) return;
    const char *topic, *stream;
    if (binding_args(req, NULL, &topic, &stream)) return;
    int rc = colony__btopics_unbind(h->topics, topic, strlen(topic), stream);
    if (rc == COLONY_ENOENT) {
        colony__bhttp_fail(req, 404, "not_found", "no binding of %.300s to %.300s", topic, stream);
        return;
    }
    if (rc) {
        colony__bhttp_store_error(req, rc, "cannot unbind");
        return;
    }
    colony__bhttp_reply(req, 200, json_pack("{s:s, s:s}", "unbound", topic, "stream", stream));
}

int colony__bhttp_routes_topics(colony__bhttp *h, colony_router *r)
{
    int rc = colony_router_add(r, "GET", "/bindings", list_bindings, h);
    if (!rc) rc = colony_router_add(r, "PUT", "/bindings", put_binding, h);
    if (!rc) rc = colony_router_add(r, "DELETE", "/bindings", delete_binding, h);
    return rc;
}
