/* /v1/catalog/..., /v1/health/service/:name and /v1/status/...: the read side of
 * service discovery. The registry is a single node named "colony", so every
 * instance lives on it and carries that node's "serfHealth" check, as every
 * instance does in Consul. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "registry/registry_internal.h"
#include "registry/waiters.h"
#include "registry/names.h"
#include "registry/api.h"

typedef struct reg_tag_filter {
    const char **tags; /* every ?tag= value (request arena) */
    size_t n;
    char *key; /* cache key of this answer variant */
} reg_tag_filter;

static int has_tag(const reg_service *s, const char *tag)
{
    size_t i;
    json_t *t;
    json_array_foreach(s->tags, i, t)
    {
        if (strcmp(json_string_value(t), tag) == 0) return 1;
    }
    return 0;
}

/* Consul's ?tag= may repeat; an instance must carry every one of them. */
static int has_tags(const reg_service *s, const reg_tag_filter *f)
{
    for (size_t i = 0; i < f->n; i++)
        if (!has_tag(s, f->tags[i])) return 0;
    return 1;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes (and "+" to space) one query value into the arena, as
 * colony_request_query_param does. */
static char *decode_value(colony_arena *a, const char *s, size_t n)
{
    char *out = colony_arena_alloc(a, n + 1);
    size_t k = 0;
    for (size_t i = 0; out && i < n; i++) {
        int hi, lo;
        if (s[i] == '+') {
            out[k++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && (hi = hex_value(s[i + 1])) >= 0 &&
                   (lo = hex_value(s[i + 2])) >= 0) {
            out[k++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[k++] = s[i];
        }
    }
    if (out) out[k] = '\0';
    return out;
}

/* Every ?tag= value, in order, and the cache key of the variant (endpoint,
 * passing, tags length-prefixed so no two filters share a key). */
static int tag_filter(colony_request *req, char kind, int passing, reg_tag_filter *f)
{
    colony_arena *a = colony_request_arena(req);
    const char *q = colony_request_query(req);
    size_t most = 1, keylen = 3;
    for (const char *p = q; *p; p++)
        most += *p == '&';
    f->n = 0;
    f->tags = colony_arena_alloc(a, most * sizeof(*f->tags));
    if (!f->tags) return COLONY_ENOMEM;
    while (*q) {
        size_t len = strcspn(q, "&");
        const char *eq = memchr(q, '=', len);
        size_t key_len = eq ? (size_t)(eq - q) : len;
        const char *key = decode_value(a, q, key_len);
        if (!key) return COLONY_ENOMEM;
        if (strcmp(key, "tag") == 0) {
            char *v = eq ? decode_value(a, eq + 1, len - key_len - 1) : decode_value(a, "", 0);
            if (!v) return COLONY_ENOMEM;
            f->tags[f->n++] = v;
            keylen += strlen(v) + 24;
        }
        q += len;
        if (*q == '&') q++;
    }
    f->key = colony_arena_alloc(a, keylen + 1);
    if (!f->key) return COLONY_ENOMEM;
    size_t k = (size_t)snprintf(f->key, keylen + 1, "%c%d", kind, passing);
    for (size_t i = 0; i < f->n; i++)
        k +=
            (size_t)snprintf(f->key + k, keylen + 1 - k, "|%zu:%s", strlen(f->tags[i]), f->tags[i]);
    return 0;
}

/* Sends a rendered answer and keeps it for the next identical request. */
static void respond_cached(colony_request *req, reg_name *nm, const char *key, json_t *out)
{
    char *body = out ? json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(out);
    if (!body) {
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    size_t len = strlen(body);
    if (nm) colony__reg_cache_put(nm, key, body, len);
    colony_respond(req, 200, "application/json", body, len);
    json_free_t jfree;
    json_get_alloc_funcs(NULL, &jfree);
    jfree(body); /* json_dumps allocates with jansson's allocator */
}

/* Answers from the name's cache when it holds this variant. */
static int respond_from_cache(colony_request *req, const reg_name *nm, const char *key)
{
    const reg_render_cache *c = nm ? colony__reg_cache_get(nm, key) : NULL;
    if (!c) return 0;
    colony_respond(req, 200, "application/json", c->body, c->len);
    return 1;
}

static int denied_read(registry *reg, colony_request *req, const char *name)
{
    int have = colony__reg_acl_service(&reg->acl, colony__reg_acl_request_token(req), name);
    return colony__reg_deny(req, have, REG_ACL_READ, "service", name);
}

static void render_catalog_services(registry *reg, colony_request *req)
{
    json_t *out = json_object();
    const char *token = colony__reg_acl_request_token(req);
    for (size_t i = 0; out && i < reg->services.cap; i++) {
        reg_service *s = reg->services.slots[i].key ? reg->services.slots[i].value : NULL;
        if (!s || colony__reg_acl_service(&reg->acl, token, s->name) < REG_ACL_READ) continue;
        json_t *tags = json_object_get(out, s->name);
        if (!tags) {
            tags = json_array();
            json_object_set_new(out, s->name, tags);
        }
        size_t k;
        json_t *t;
        json_array_foreach(s->tags, k, t)
        {
            int seen = 0;
            size_t j;
            json_t *u;
            json_array_foreach(tags, j, u)
            {
                seen |= json_equal(t, u);
            }
            if (!seen) json_array_append(tags, t);
        }
    }
    colony__reg_respond_json(req, 200, out);
}

static void catalog_services(colony_request *req, void *ud)
{
    reg_topic t = {TOPIC_CATALOG, NULL};
    colony__reg_serve_read(ud, req, &t, render_catalog_services);
}

static void render_catalog_service(registry *reg, colony_request *req)
{
    const char *name = colony_request_param(req, "name");
    if (denied_read(reg, req, name)) return;
    reg_tag_filter f;
    if (tag_filter(req, 'c', 0, &f)) {
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    reg_name *nm = colony__reg_name_get(reg, name);
    if (respond_from_cache(req, nm, f.key)) return;
    json_t *out = json_array();
    for (size_t i = 0; out && nm && i < nm->ninstances; i++) {
        reg_service *s = nm->instances[i];
        if (!has_tags(s, &f)) continue;
        json_array_append_new(
            out,
            json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:{}, s:s, s:s, s:s, s:O, s:s, "
                      "s:{s:i, s:i}, s:O, s:i, s:b, s:I, s:I}",
                      "ID", "00000000-0000-0000-0000-000000000001", "Node", REG_NODE_NAME,
                      "Address", reg->node_address, "Datacenter", REG_DATACENTER, "TaggedAddresses",
                      "lan", reg->node_address, "wan", reg->node_address, "NodeMeta", "ServiceKind",
                      "", "ServiceID", s->id, "ServiceName", s->name, "ServiceTags", s->tags,
                      "ServiceAddress", s->address, "ServiceWeights", "Passing", s->weight_passing,
                      "Warning", s->weight_warning, "ServiceMeta", s->meta, "ServicePort", s->port,
                      "ServiceEnableTagOverride", s->enable_tag_override, "CreateIndex",
                      (json_int_t)s->create_index, "ModifyIndex", (json_int_t)s->modify_index));
    }
    respond_cached(req, nm, f.key, out);
}

static void catalog_service(colony_request *req, void *ud)
{
    if (denied_read(ud, req, colony_request_param(req, "name"))) return; /* before parking */
    reg_topic t = {TOPIC_SERVICE, colony_request_param(req, "name")};
    colony__reg_serve_read(ud, req, &t, render_catalog_service);
}

static const char *check_sid(const reg_check *c)
{
    return c->service_id ? c->service_id : "";
}

static void render_health_service(registry *reg, colony_request *req)
{
    const char *name = colony_request_param(req, "name");
    if (denied_read(reg, req, name)) return;
    const char *passing = colony_request_query_param(req, "passing");
    int only_passing = passing && strcmp(passing, "false") != 0 && strcmp(passing, "0") != 0;
    reg_tag_filter f;
    if (tag_filter(req, 'h', only_passing, &f)) {
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    reg_name *nm = colony__reg_name_get(reg, name);
    if (respond_from_cache(req, nm, f.key)) return;
    json_t *out = json_array();
    /* Instances are sorted by ID and checks by (ServiceID, CheckID): one merge walk. */
    size_t j = 0;
    for (size_t i = 0; out && nm && i < nm->ninstances; i++) {
        reg_service *s = nm->instances[i];
        if (!has_tags(s, &f)) continue;
        while (j < nm->nchecks && strcmp(check_sid(nm->checks[j]), s->id) < 0)
            j++;
        json_t *checks = json_array();
        int healthy = 1;
        json_array_append_new(checks, colony__reg_node_check_json(reg));
        for (size_t k = j; k < nm->nchecks && strcmp(check_sid(nm->checks[k]), s->id) == 0; k++) {
            reg_check *c = nm->checks[k];
            if (c->status != REG_PASSING) healthy = 0;
            json_array_append_new(checks, colony__reg_check_json(reg, c));
        }
        if (only_passing && !healthy) {
            json_decref(checks);
            continue;
        }
        json_t *svc = colony__reg_service_agent_json(s);
        json_object_del(svc, "Datacenter");
        json_array_append_new(out, json_pack("{s:o, s:o, s:o}", "Node", colony__reg_node_json(reg),
                                             "Service", svc, "Checks", checks));
    }
    respond_cached(req, nm, f.key, out);
}

static void health_service(colony_request *req, void *ud)
{
    if (denied_read(ud, req, colony_request_param(req, "name"))) return; /* before parking */
    reg_topic t = {TOPIC_SERVICE, colony_request_param(req, "name")};
    colony__reg_serve_read(ud, req, &t, render_health_service);
}

static void render_nodes(registry *reg, colony_request *req)
{
    colony__reg_respond_json(req, 200, json_pack("[o]", colony__reg_node_json(reg)));
}

static void catalog_nodes(colony_request *req, void *ud)
{
    reg_topic t = {TOPIC_NONE, NULL};
    colony__reg_serve_read(ud, req, &t, render_nodes);
}

static void status_leader(colony_request *req, void *ud)
{
    registry *reg = ud;
    colony__reg_respond_json(req, 200, json_string(reg->leader));
}

static void status_peers(colony_request *req, void *ud)
{
    registry *reg = ud;
    colony__reg_respond_json(req, 200, json_pack("[s]", reg->leader));
}

int colony__reg_routes_catalog(registry *reg, colony_router *r)
{
    int rc = colony_router_add(r, "GET", "/v1/catalog/services", catalog_services, reg);
    if (!rc) rc = colony_router_add(r, "GET", "/v1/catalog/service/:name", catalog_service, reg);
    if (!rc) rc = colony_router_add(r, "GET", "/v1/catalog/nodes", catalog_nodes, reg);
    if (!rc) rc = colony_router_add(r, "GET", "/v1/health/service/:name", health_service, reg);
    if (!rc) rc = colony_router_add(r, "GET", "/v1/status/leader", status_leader, reg);
    if (!rc) rc = colony_router_add(r, "GET", "/v1/status/peers", status_peers, reg);
    return rc;
}
