/* Shared answer helpers and the Consul JSON shapes of services, checks and
 * the registry's single node. */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "registry/registry_internal.h"
#include "registry/api.h"

void colony__reg_respond_json(colony_request *req, int status, json_t *body)
{
    if (!body) {
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    colony_respond_json(req, status, body);
    json_decref(body);
}

int colony__reg_body_json(colony_request *req, json_t **out)
{
    size_t len;
    const char *body = colony_request_body(req, &len);
    json_error_t err;
    *out = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &err);
    if (*out) return 0;
    char msg[400];
    snprintf(msg, sizeof(msg), "invalid JSON at line %d, column %d: %s", err.line, err.column,
             err.text);
    colony__reg_bad_request(req, msg);
    return COLONY_EINVAL;
}

void colony__reg_bad_request(colony_request *req, const char *msg)
{
    colony_respond_error(req, 400, "bad_request", msg);
}

int colony__reg_deny(colony_request *req, int have, int need, const char *what, const char *name)
{
    if (have >= need) return 0;
    char msg[512];
    snprintf(msg, sizeof(msg), "Permission denied: token lacks %s:%s on \"%.300s\"", what,
             need == REG_ACL_WRITE ? "write" : "read", name);
    colony_respond_error(req, 403, "permission_denied", msg);
    return 1;
}

json_t *colony__reg_service_agent_json(const reg_service *s)
{
    return json_pack("{s:s, s:s, s:O, s:O, s:i, s:s, s:{s:i, s:i}, s:b, s:s, s:I, s:I}", "ID",
                     s->id, "Service", s->name, "Tags", s->tags, "Meta", s->meta, "Port", s->port,
                     "Address", s->address, "Weights", "Passing", s->weight_passing, "Warning",
                     s->weight_warning, "EnableTagOverride", s->enable_tag_override, "Datacenter",
                     REG_DATACENTER, "CreateIndex", (json_int_t)s->create_index, "ModifyIndex",
                     (json_int_t)s->modify_index);
}

static const char *check_type_name(int type)
{
    return type == REG_CHECK_TTL ? "ttl" : type == REG_CHECK_HTTP ? "http" : "tcp";
}

static json_t *duration_string(uint64_t ms)
{
    char buf[32];
    if (ms == 0) return json_string("");
    if (ms % 1000 == 0)
        snprintf(buf, sizeof(buf), "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(buf, sizeof(buf), "%llums", (unsigned long long)ms);
    return json_string(buf);
}

json_t *colony__reg_check_json(const registry *reg, const reg_check *c)
{
    (void)reg;
    json_t *tags = NULL;
    const reg_service *svc = c->service_id ? colony__map_get(&reg->services, c->service_id) : NULL;
    tags = svc ? json_incref(svc->tags) : json_array();
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:o, s:o, s:i, s:{}, "
                     "s:I, s:I}",
                     "Node", REG_NODE_NAME, "CheckID", c->id, "Name", c->name, "Status",
                     colony__reg_status_name(c->status), "Notes", c->notes ? c->notes : "",
                     "Output", c->output ? c->output : "", "ServiceID",
                     c->service_id ? c->service_id : "", "ServiceName",
                     c->service_name ? c->service_name : "", "ServiceTags", tags, "Type",
                     check_type_name(c->type), "Interval", duration_string(c->interval_ms),
                     "Timeout", duration_string(c->type == REG_CHECK_TTL ? 0 : c->timeout_ms),
                     "ExposedPort", 0, "Definition", "CreateIndex", (json_int_t)c->create_index,
                     "ModifyIndex", (json_int_t)c->modify_index);
}

json_t *colony__reg_node_json(const registry *reg)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:{}, s:i, s:i}", "ID",
                     "00000000-0000-0000-0000-000000000001", "Node", REG_NODE_NAME, "Address",
                     reg->node_address, "Datacenter", REG_DATACENTER, "TaggedAddresses", "lan",
                     reg->node_address, "wan", reg->node_address, "Meta", "CreateIndex", 1,
                     "ModifyIndex", 1);
}

/* Consul's agent health check on every node; always passing here since the
 * registry is its own (only) node. */
json_t *colony__reg_node_check_json(const registry *reg)
{
    (void)reg;
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:[], s:s, s:s, s:s, s:i, s:{}, "
                     "s:i, s:i}",
                     "Node", REG_NODE_NAME, "CheckID", "serfHealth", "Name", "Serf Health Status",
                     "Status", "passing", "Notes", "", "Output", "Agent alive and reachable",
                     "ServiceID", "", "ServiceName", "", "ServiceTags", "Type", "", "Interval", "",
                     "Timeout", "", "ExposedPort", 0, "Definition", "CreateIndex", 1, "ModifyIndex",
                     1);
}
