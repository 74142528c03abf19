/* /v1/catalog/..., /v1/health/service/:name and /v1/status/...: the read side of
 * service discovery. The registry is a single node named "colony", so every
 * instance lives on it and carries that node's "serfHealth" check, as every
 * instance does in Consul. */
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "registry/registry_internal.h"

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

static int by_id(const void *a, const void *b)
{
    return strcmp((*(reg_service *const *)a)->id, (*(reg_service *const *)b)->id);
}

/* Instances of name (optionally with tag), sorted by ID; caller frees. */
static reg_service **instances(registry *reg, const char *name, const char *tag, size_t *n)
{
    reg_service **out = colony__calloc(reg->services.count + 1, sizeof(*out));
    *n = 0;
    for (size_t i = 0; out && i < reg->services.cap; i++) {
        reg_service *s = reg->services.slots[i].key ? reg->services.slots[i].value : NULL;
        if (!s || strcmp(s->name, name) != 0) continue;
        if (tag && !has_tag(s, tag)) continue;
        out[(*n)++] = s;
    }
    if (out && *n > 1) qsort(out, *n, sizeof(*out), by_id);
    return out;
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
    size_t n;
    reg_service **list = instances(reg, name, colony_request_query_param(req, "tag"), &n);
    json_t *out = list ? json_array() : NULL;
    for (size_t i = 0; out && i < n; i++) {
        reg_service *s = list[i];
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
    colony__free(list);
    colony__reg_respond_json(req, 200, out);
}

static void catalog_service(colony_request *req, void *ud)
{
    reg_topic t = {TOPIC_SERVICE, colony_request_param(req, "name")};
    colony__reg_serve_read(ud, req, &t, render_catalog_service);
}

static void render_health_service(registry *reg, colony_request *req)
{
    const char *name = colony_request_param(req, "name");
    if (denied_read(reg, req, name)) return;
    const char *passing = colony_request_query_param(req, "passing");
    int only_passing = passing && strcmp(passing, "false") != 0 && strcmp(passing, "0") != 0;
    size_t n, nchecks = 0;
    reg_service **list = instances(reg, name, colony_request_query_param(req, "tag"), &n);
    /* One pass over all checks picks this service's; then per instance. */
    reg_check **mine = list ? colony__calloc(reg->checks.count + 1, sizeof(*mine)) : NULL;
    for (size_t k = 0; mine && k < reg->checks.cap; k++) {
        reg_check *c = reg->checks.slots[k].key ? reg->checks.slots[k].value : NULL;
        if (c && c->service_name && strcmp(c->service_name, name) == 0) mine[nchecks++] = c;
    }
    json_t *out = mine ? json_array() : NULL;
    for (size_t i = 0; out && i < n; i++) {
        reg_service *s = list[i];
        json_t *checks = json_array();
        int healthy = 1;
        json_array_append_new(checks, colony__reg_node_check_json(reg));
        for (size_t k = 0; k < nchecks; k++) {
            reg_check *c = mine[k];
            if (!c->service_id || strcmp(c->service_id, s->id) != 0) continue;
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
    colony__free(mine);
    colony__free(list);
    colony__reg_respond_json(req, 200, out);
}

static void health_service(colony_request *req, void *ud)
{
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
