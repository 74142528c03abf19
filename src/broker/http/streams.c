/* Streams and groups as resources: list, create, inspect, delete.
 *
 *   GET    /streams                          every stream with its figures
 *   PUT    /streams/:stream                  create (201; 200 if it exists), and set
 *                                            the policy fields the body names
 *   GET    /streams/:stream                  one stream, with its groups
 *   DELETE /streams/:stream                  delete it and its files
 *   GET    /streams/:stream/messages         read entries (?start=&end=&count=&reverse=1),
 *                                            as XRANGE: no group, nothing recorded
 *   GET    /streams/:stream/groups           its groups
 *   PUT    /streams/:stream/groups/:group    create ({"start": "0"|"$"|id}) and set
 *                                            the policy fields the body names
 *   GET    /streams/:stream/groups/:group    one group, with its consumers
 *   DELETE /streams/:stream/groups/:group    delete it (its pending entries too)
 *
 * Creations and deletions answer once durable. */
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "broker/http/http.h"

#define GROUP_NAME_MAX 255

/* Entries in the group's dead-letter stream (0 without the engine); the
 * group's policy is added to policy_out when given. */
static uint64_t dead_letters(colony__bhttp *h, const char *stream, const char *group,
                             json_t *policy_out)
{
    colony__bgroup_policy gp;
    if (!h->engine || colony__bdelivery_group_policy_get(h->engine, stream, group, &gp)) return 0;
    if (policy_out) json_object_set_new(policy_out, "policy", colony__bhttp_group_policy_json(&gp));
    colony__bstream *dlq = gp.dead_letter ? colony__bstore_get(h->store, gp.dead_letter) : NULL;
    if (!dlq) return 0;
    colony__bstream_info si;
    colony__bstream_info_get(dlq, &si);
    return si.length;
}

static json_t *group_json(colony__bhttp *h, colony__bstream *st, colony__bgroup *g,
                          int with_consumers)
{
    colony__bgroup_info gi;
    colony__bstream_info si;
    colony__bgroup_info_get(g, &gi);
    colony__bstream_info_get(st, &si);
    json_t *o =
        json_pack("{s:s, s:o, s:I, s:I, s:I}", "name", gi.name, "cursor",
                  colony__bhttp_id_json(gi.cursor), "pending", (json_int_t)gi.pending, "consumers",
                  (json_int_t)gi.consumers, "lag", (json_int_t)colony__bhttp_lag(st, gi.cursor));
    if (o && json_object_set_new(o, "dead_letters",
                                 json_integer((json_int_t)dead_letters(h, si.name, gi.name, o)))) {
        json_decref(o);
        return NULL;
    }
    if (!o || !with_consumers) return o;
    json_t *list = json_array();
    size_t pos = 0, pending;
    const char *c;
    while (list && (c = colony__bgroup_consumer_next(g, &pos, &pending)))
        if (json_array_append_new(
                list, json_pack("{s:s, s:I}", "name", c, "pending", (json_int_t)pending))) {
            json_decref(list);
            list = NULL;
        }
    if (!list || json_object_set_new(o, "consumer_list", list)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* A stream's figures; its groups listed when with_groups. */
static json_t *stream_json(colony__bhttp *h, colony__bstream *st, int with_groups)
{
    colony__bstream_info si;
    colony__bstream_info_get(st, &si);
    uint64_t pending = 0, lag = 0, dead = 0;
    json_t *groups = with_groups ? json_array() : NULL;
    if (with_groups && !groups) return NULL;
    size_t pos = 0;
    colony__bgroup *g;
    while ((g = colony__bgroup_next(st, &pos))) {
        colony__bgroup_info gi;
        colony__bgroup_info_get(g, &gi);
        pending += gi.pending;
        dead += dead_letters(h, si.name, gi.name, NULL);
        uint64_t l = colony__bhttp_lag(st, gi.cursor);
        if (l > lag) lag = l;
        if (groups && json_array_append_new(groups, group_json(h, st, g, 0))) {
            json_decref(groups);
            return NULL;
        }
    }
    json_t *o =
        json_pack("{s:s, s:I, s:I, s:I, s:o, s:o, s:I, s:I, s:I, s:I}", "name", si.name, "entries",
                  (json_int_t)si.length, "bytes", (json_int_t)si.bytes, "segments",
                  (json_int_t)si.segments, "first_id", colony__bhttp_id_json(si.first), "last_id",
                  colony__bhttp_id_json(si.last), "groups", (json_int_t)si.groups, "pending",
                  (json_int_t)pending, "lag", (json_int_t)lag, "dead_letters", (json_int_t)dead);
    colony__bstream_policy sp;
    if (o && h->engine && !colony__bdelivery_stream_policy_get(h->engine, si.name, &sp))
        json_object_set_new(o, "policy", colony__bhttp_stream_policy_json(&sp));
    if (o && groups && json_object_set_new(o, "group_list", groups)) {
        json_decref(o);
        return NULL;
    }
    if (!o) json_decref(groups);
    return o;
}

static void list_streams(colony_request *req, void *ud)
{
    colony__bhttp *h = ud;
    json_t *arr = json_array();
    size_t pos = 0;
    colony__bstream *st;
    while (arr && (st = colony__bstore_next(h->store, &pos)))
        if (json_array_append_new(arr, stream_json(h, st, 0))) {
            json_decref(arr);
            arr = NULL;
        }
    const char *why, *name;
    pos = 0;
    while (arr && (name = colony__bstore_damaged_next(h->store, &pos, &why)))
        if (json_array_append_new(arr, json_pack("{s:s, s:s}", "name", name, "damaged", why))) {
            json_decref(arr);
            arr = NULL;
        }
    colony__bhttp_reply(req, 200, arr ? json_pack("{s:o}", "streams", arr) : NULL);
}

/* Sets the policy fields body names (over the current policy); 0, or <0
 * after answering. */
static int apply_stream_policy(colony__bhttp *h, colony_request *req, const char *name,
                               json_t *body)
{
    if (!body || json_object_size(body) == 0) return 0;
    if (!h->engine) {
        colony__bhttp_fail(req, 501, "not_implemented",
                           "policies need the delivery engine, not available");
        return COLONY_ENOTSUP;
    }
    colony__bstream_policy p;
    if (colony__bdelivery_stream_policy_get(h->engine, name, &p))
        colony__bstream_policy_default(&p);
    if (colony__bhttp_stream_policy_parse(req, body, &p)) return COLONY_EINVAL;
    int rc = colony__bdelivery_stream_policy_set(h->engine, name, &p);
    if (rc) colony__bhttp_store_error(req, rc, "cannot set the policy");
    return rc;
}

static void put_stream(colony_request *req, void *ud)
{
    colony__bhttp *h = ud;
    const char *name = colony_request_param(req, "stream");
    if (!colony__bhttp_name_ok(name)) {
        colony__bhttp_fail(req, 400, "bad_request", "a stream name is 1 to %d bytes",
                           COLONY__BHTTP_NAME_MAX);
        return;
    }
    json_t *body;
    if (colony__bhttp_body_json(req, &body)) return;
    if (body && !json_is_object(body)) {
        json_decref(body);
        colony__bhttp_fail(req, 400, "bad_request", "the body is a policy object");
        return;
    }
    colony__bstream *st = colony__bstore_get(h->store, name);
    int status = 200;
    if (!st) {
        int rc = colony__bstore_create(h->store, name, &st);
        if (rc == COLONY_EIO) {
            json_decref(body);
            colony__bhttp_fail(req, 409, "damaged", "a damaged stream is named %.300s: %s", name,
                               colony__bstore_damaged(h->store, name));
            return;
        }
        if (rc) {
            json_decref(body);
            colony__bhttp_store_error(req, rc, "cannot create the stream");
            return;
        }
        status = 201; /* the directory is fsynced by create */
    }
    int rc = apply_stream_policy(h, req, name, body);
    json_decref(body);
    if (!rc) colony__bhttp_reply(req, status, stream_json(h, st, 1));
}

static void get_stream(colony_request *req, void *ud)
{
    colony__bstream *st = colony__bhttp_stream(ud, req, NULL);
    if (st) colony__bhttp_reply(req, 200, stream_json(ud, st, 1));
}

static void delete_stream(colony_request *req, void *ud)
{
    colony__bhttp *h = ud;
    const char *name = colony_request_param(req, "stream");
    if (!colony__bhttp_name_ok(name)) {
        colony__bhttp_fail(req, 400, "bad_request", "a stream name is 1 to %d bytes",
                           COLONY__BHTTP_NAME_MAX);
        return;
    }
    int rc = colony__bstore_drop(h->store, name);
    if (rc == COLONY_ENOENT) {
        colony__bhttp_fail(req, 404, "not_found", "no stream %.300s", name);
        return;
    }
    if (rc) {
        colony__bhttp_store_error(req, rc, "cannot delete the stream");
        return;
    }
    colony__bhttp_wake(h, name); /* its long-polls answer 404 */
    colony__bhttp_reply(req, 200, json_pack("{s:s}", "deleted", name));
}

static int add_entry(void *ud, const colony__bentry *e)
{
    json_t *m = colony__bmsg_to_json(e);
    return json_array_append_new(ud, m) ? COLONY_ENOMEM : 0;
}

/* A bound of a range: an id, "-" / "+" or absent (the dflt). */
static int bound_param(colony_request *req, const char *name, colony__bid dflt, colony__bid *out)
{
    const char *s = colony_request_query_param(req, name);
    *out = dflt;
    if (!s || !*s || !strcmp(s, "-") || !strcmp(s, "+")) {
        if (s && !strcmp(s, "-")) *out = (colony__bid){0, 0};
        if (s && !strcmp(s, "+")) *out = (colony__bid){UINT64_MAX, UINT64_MAX};
        return 0;
    }
    if (colony__bhttp_id_parse(s, out) == 0) return 0;
    colony__bhttp_fail(req, 400, "bad_request", "%s is an entry id, - or +", name);
    return COLONY_EINVAL;
}

static void read_messages(colony_request *req, void *ud)
{
    colony__bhttp *h = ud;
    colony__bstream *st = colony__bhttp_stream(h, req, NULL);
    if (!st) return;
    colony__bid start, end;
    const char *c = colony_request_query_param(req, "count");
    const char *rev = colony_request_query_param(req, "reverse");
    char *stop = NULL;
    unsigned long long count = c && *c ? strtoull(c, &stop, 10) : 100;
    if ((stop && *stop) || count == 0 || count > h->set.max_batch) {
        colony__bhttp_fail(req, 400, "bad_request", "count is 1 to %zu", h->set.max_batch);
        return;
    }
    if (bound_param(req, "start", (colony__bid){0, 0}, &start) ||
        bound_param(req, "end", (colony__bid){UINT64_MAX, UINT64_MAX}, &end))
        return;
    int reverse = rev && (!strcmp(rev, "1") || !strcmp(rev, "true"));
    json_t *arr = json_array();
    long n = arr ? colony__bstream_range(st, start, end, reverse, (size_t)count, add_entry, arr)
                 : COLONY_ENOMEM;
    if (n < 0) {
        json_decref(arr);
        colony__bhttp_store_error(req, (int)n, "read failed");
        return;
    }
    colony__bhttp_reply(req, 200, json_pack("{s:o}", "messages", arr));
}

static void list_groups(colony_request *req, void *ud)
{
    colony__bstream *st = colony__bhttp_stream(ud, req, NULL);
    if (!st) return;
    json_t *arr = json_array();
    size_t pos = 0;
    colony__bgroup *g;
    while (arr && (g = colony__bgroup_next(st, &pos)))
        if (json_array_append_new(arr, group_json(ud, st, g, 0))) {
            json_decref(arr);
            arr = NULL;
        }
    colony__bhttp_reply(req, 200, arr ? json_pack("{s:o}", "groups", arr) : NULL);
}

static const char *group_param(colony_request *req)
{
    const char *g = colony_request_param(req, "group");
    size_t n = g ? strlen(g) : 0;
    if (n == 0 || n > GROUP_NAME_MAX) {
        colony__bhttp_fail(req, 400, "bad_request", "a group name is 1 to %d bytes",
                           GROUP_NAME_MAX);
        return NULL;
    }
    return g;
}

static void put_group(colony_request *req, void *ud)
{
    colony__bhttp *h = ud;
    const char *sname;
    colony__bstream *st = colony__bhttp_stream(h, req, &sname);
    const char *name = st ? group_param(req) : NULL;
    if (!name) return;
    json_t *body;
    if (colony__bhttp_body_json(req, &body)) return;
    if (body && !json_is_object(body)) {
        json_decref(body);
        colony__bhttp_fail(req, 400, "bad_request", "the body is an object (start, policy)");
        return;
    }
    json_t *start = body ? json_object_get(body, "start") : NULL;
    colony__bid cursor = {0, 0};
    const char *s = start ? json_string_value(start) : "0";
    if (s && strcmp(s, "$") == 0) {
        colony__bstream_info si;
        colony__bstream_info_get(st, &si);
        cursor = si.top;
    } else if (!s || colony__bhttp_id_parse(s, &cursor)) {
        json_decref(body);
        colony__bhttp_fail(req, 400, "bad_request", "\"start\" is \"0\", \"$\" or an id");
        return;
    }
    colony__bgroup_policy p;
    int has_policy = body && json_object_size(body) > (size_t)(start != NULL);
    if (has_policy && !h->engine) {
        json_decref(body);
        colony__bhttp_fail(req, 501, "not_implemented",
                           "policies need the delivery engine, not available");
        return;
    }
    if (has_policy) {
        if (colony__bdelivery_group_policy_get(h->engine, sname, name, &p))
            colony__bgroup_policy_default(&p);
        if (colony__bhttp_group_policy_parse(req, body, &p)) {
            json_decref(body);
            return;
        }
    }
    colony__bgroup *g = colony__bgroup_get(st, name);
    int status = 200, rc = 0;
    if (!g) {
        rc = colony__bgroup_create(st, name, cursor, &g);
        status = 201;
    }
    if (!rc && has_policy) rc = colony__bdelivery_group_policy_set(h->engine, sname, name, &p);
    json_decref(body); /* p.dead_letter pointed into it: set already */
    if (rc) {
        colony__bhttp_store_error(req, rc, "cannot create the group");
        return;
    }
    colony__bhttp_reply_durable(h, req, st, status, group_json(h, st, g, 1), NULL, NULL);
}

static void get_group(colony_request *req, void *ud)
{
    colony__bstream *st = colony__bhttp_stream(ud, req, NULL);
    const char *name = st ? group_param(req) : NULL;
    if (!name) return;
    colony__bgroup *g = colony__bgroup_get(st, name);
    if (!g) {
        colony__bhttp_fail(req, 404, "not_found", "no group %.255s", name);
        return;
    }
    colony__bhttp_reply(req, 200, group_json(ud, st, g, 1));
}

static void delete_group(colony_request *req, void *ud)
{
    colony__bhttp *h = ud;
    const char *sname;
    colony__bstream *st = colony__bhttp_stream(h, req, &sname);
    const char *name = st ? group_param(req) : NULL;
    if (!name) return;
    int rc = colony__bgroup_destroy(st, name);
    if (rc == COLONY_ENOENT) {
        colony__bhttp_fail(req, 404, "not_found", "no group %.255s", name);
        return;
    }
    if (rc) {
        colony__bhttp_store_error(req, rc, "cannot delete the group");
        return;
    }
    colony__bhttp_wake(h, sname);
    colony__bhttp_reply_durable(h, req, st, 200, json_pack("{s:s}", "deleted", name), NULL, NULL);
}

int colony__bhttp_routes_streams(colony__bhttp *h, colony_router *r)
{
    static const struct {
        const char *method, *path;
        colony_handler_cb cb;
    } routes[] = {
        {"GET", "/streams", list_streams},
        {"PUT", "/streams/:stream", put_stream},
        {"GET", "/streams/:stream", get_stream},
        {"DELETE", "/streams/:stream", delete_stream},
        {"GET", "/streams/:stream/messages", read_messages},
        {"GET", "/streams/:stream/groups", list_groups},
        {"PUT", "/streams/:stream/groups/:group", put_group},
        {"GET", "/streams/:stream/groups/:group", get_group},
        {"DELETE", "/streams/:stream/groups/:group", delete_group},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        int rc = colony_router_add(r, routes[i].method, routes[i].path, routes[i].cb, h);
        if (rc) return rc;
    }
    return 0;
}
