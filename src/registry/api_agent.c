/* /v1/agent/...: registering and deregistering services with their checks,
 * TTL check updates, and the agent's view of services and checks. */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "registry/checks.h"
#include "registry/registry_internal.h"
#include "registry/waiters.h"
#include "registry/parse.h"
#include "registry/api.h"

static int token_service_access(registry *reg, colony_request *req, const char *name)
{
    return colony__reg_acl_service(&reg->acl, colony__reg_acl_request_token(req), name);
}

/* Removes checks of service id that are not in the new registration
 * (?replace-existing-checks, as in Consul). */
static int drop_other_checks(registry *reg, const char *id, reg_check **keep)
{
    char **drop = colony__calloc(reg->checks.count + 1, sizeof(*drop));
    size_t n = 0;
    int rc = drop ? 0 : COLONY_ENOMEM;
    for (size_t i = 0; drop && i < reg->checks.cap; i++) {
        reg_check *c = reg->checks.slots[i].key ? reg->checks.slots[i].value : NULL;
        if (!c || !c->service_id || strcmp(c->service_id, id) != 0) continue;
        int kept = 0;
        for (size_t k = 0; keep[k]; k++)
            kept |= strcmp(keep[k]->id, c->id) == 0;
        if (!kept && !(drop[n++] = colony__strdup(c->id))) rc = COLONY_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (!rc && colony__reg_check_remove(reg, drop[i]) == COLONY_ENOMEM) rc = COLONY_ENOMEM;
        colony__free(drop[i]);
    }
    colony__free(drop);
    return rc;
}

/* Re-registering replaces the instance and checks with the same IDs: the
 * token also needs write on the service they belong to now (as Consul's
 * vetServiceRegister), or it could take over another team's instance.
 * Answers 403 and returns nonzero when denied. */
static int denied_takeover(registry *reg, colony_request *req, const reg_service *svc,
                           reg_check *const *checks)
{
    const reg_service *old = colony__map_get(&reg->services, svc->id);
    if (old && strcmp(old->name, svc->name) != 0 &&
        colony__reg_deny(req, token_service_access(reg, req, old->name), REG_ACL_WRITE, "service",
                         old->name))
        return 1;
    for (size_t i = 0; checks[i]; i++) {
        const reg_check *c = colony__map_get(&reg->checks, checks[i]->id);
        const char *owner = c && c->service_name ? c->service_name : "";
        if (c && strcmp(owner, svc->name) != 0 &&
            colony__reg_deny(req, token_service_access(reg, req, owner), REG_ACL_WRITE, "service",
                             owner))
            return 1;
    }
    return 0;
}

static void register_service(colony_request *req, void *ud)
{
    registry *reg = ud;
    json_t *body = NULL;
    if (colony__reg_body_json(req, &body)) return;
    reg_service *svc = NULL;
    reg_check **checks = NULL;
    char msg[512];
    int rc = colony__reg_parse_service(body, &svc, &checks, msg, sizeof(msg));
    json_decref(body);
    if (rc) {
        colony__reg_bad_request(req, msg);
        return;
    }
    if (colony__reg_deny(req, token_service_access(reg, req, svc->name), REG_ACL_WRITE, "service",
                         svc->name) ||
        denied_takeover(reg, req, svc, checks)) {
        colony__reg_service_free(svc);
        for (size_t i = 0; checks[i]; i++)
            colony__reg_check_free(checks[i]);
        colony__free(checks);
        return;
    }
    reg_service *old = colony__map_get(&reg->services, svc->id);
    if (old && colony_request_query_param(req, "replace-existing-checks"))
        rc = drop_other_checks(reg, svc->id, checks);
    if (rc)
        colony__reg_service_free(svc);
    else
        rc = colony__reg_service_put(reg, svc);
    for (size_t i = 0; checks[i]; i++) {
        if (rc)
            colony__reg_check_free(checks[i]);
        else
            rc = colony__reg_check_put(reg, checks[i]);
    }
    colony__free(checks);
    if (rc) {
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    colony__reg_ack_write(reg, req, 200, NULL);
}

static void deregister_service(colony_request *req, void *ud)
{
    registry *reg = ud;
    const char *id = colony_request_param(req, "id");
    reg_service *svc = colony__map_get(&reg->services, id);
    if (svc) {
        if (colony__reg_deny(req, token_service_access(reg, req, svc->name), REG_ACL_WRITE,
                             "service", svc->name))
            return;
        if (colony__reg_service_remove(reg, id) == COLONY_ENOMEM) {
            colony_respond_error(req, 500, "internal", "out of memory");
            return;
        }
    }
    /* An unknown ID is not an error: deregistration is idempotent. */
    colony__reg_ack_write(reg, req, 200, NULL);
}

static reg_check *writable_check(registry *reg, colony_request *req, const char *id)
{
    reg_check *chk = colony__map_get(&reg->checks, id);
    if (!chk) {
        char msg[400];
        snprintf(msg, sizeof(msg), "Unknown check ID \"%.300s\"", id);
        colony_respond_error(req, 404, "not_found", msg);
        return NULL;
    }
    if (colony__reg_deny(req,
                         token_service_access(reg, req, chk->service_name ? chk->service_name : ""),
                         REG_ACL_WRITE, "service", chk->service_name ? chk->service_name : ""))
        return NULL;
    if (chk->type != REG_CHECK_TTL) {
        char msg[400];
        snprintf(msg, sizeof(msg), "CheckID \"%.300s\" does not have associated TTL", id);
        colony__reg_bad_request(req, msg);
        return NULL;
    }
    return chk;
}

static void update_check(colony_request *req, registry *reg, int status, const char *note)
{
    reg_check *chk = writable_check(reg, req, colony_request_param(req, "id"));
    if (!chk) return;
    if (colony__reg_check_ttl_update(reg, chk, status, note ? note : "")) {
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    colony__reg_ack_write(reg, req, 200, NULL);
}

static void check_pass(colony_request *req, void *ud)
{
    update_check(req, ud, REG_PASSING, colony_request_query_param(req, "note"));
}

static void check_warn(colony_request *req, void *ud)
{
    update_check(req, ud, REG_WARNING, colony_request_query_param(req, "note"));
}

static void check_fail(colony_request *req, void *ud)
{
    update_check(req, ud, REG_CRITICAL, colony_request_query_param(req, "note"));
}

/* PUT /v1/agent/check/update/:id with {"Status": ..., "Output": ...}. */
static void check_update(colony_request *req, void *ud)
{
    json_t *body = NULL;
    if (colony__reg_body_json(req, &body)) return;
    int status = colony__reg_status_parse(json_string_value(colony__reg_field(body, "Status")));
    const char *output = json_string_value(colony__reg_field(body, "Output"));
    if (status < 0) {
        json_decref(body);
        colony__reg_bad_request(req, "Status must be passing, warning or critical");
        return;
    }
    update_check(req, ud, status, output);
    json_decref(body);
}

static void render_agent_services(registry *reg, colony_request *req)
{
    json_t *out = json_object();
    const char *token = colony__reg_acl_request_token(req);
    for (size_t i = 0; out && i < reg->services.cap; i++) {
        reg_service *s = reg->services.slots[i].key ? reg->services.slots[i].value : NULL;
        if (!s || colony__reg_acl_service(&reg->acl, token, s->name) < REG_ACL_READ) continue;
        json_object_set_new(out, s->id, colony__reg_service_agent_json(s));
    }
    colony__reg_respond_json(req, 200, out);
}

static void agent_services(colony_request *req, void *ud)
{
    reg_topic t = {TOPIC_CATALOG, NULL};
    colony__reg_serve_read(ud, req, &t, render_agent_services);
}

static void render_agent_service(registry *reg, colony_request *req)
{
    reg_service *s = colony__map_get(&reg->services, colony_request_param(req, "id"));
    if (!s) {
        colony_respond_error(req, 404, "not_found", "unknown service ID");
        return;
    }
    if (colony__reg_deny(req, token_service_access(reg, req, s->name), REG_ACL_READ, "service",
                         s->name))
        return;
    colony__reg_respond_json(req, 200, colony__reg_service_agent_json(s));
}

static void agent_service(colony_request *req, void *ud)
{
    reg_topic t = {TOPIC_CATALOG, NULL};
    colony__reg_serve_read(ud, req, &t, render_agent_service);
}

static void render_agent_checks(registry *reg, colony_request *req)
{
    json_t *out = json_object();
    const char *token = colony__reg_acl_request_token(req);
    for (size_t i = 0; out && i < reg->checks.cap; i++) {
        reg_check *c = reg->checks.slots[i].key ? reg->checks.slots[i].value : NULL;
        if (!c || colony__reg_acl_service(&reg->acl, token,
                                          c->service_name ? c->service_name : "") < REG_ACL_READ)
            continue;
        json_object_set_new(out, c->id, colony__reg_check_json(reg, c));
    }
    colony__reg_respond_json(req, 200, out);
}

static void agent_checks(colony_request *req, void *ud)
{
    reg_topic t = {TOPIC_CHECKS, NULL};
    colony__reg_serve_read(ud, req, &t, render_agent_checks);
}

int colony__reg_routes_agent(registry *reg, colony_router *r)
{
    int rc = colony_router_add(r, "PUT", "/v1/agent/service/register", register_service, reg);
    if (!rc)
        rc = colony_router_add(r, "PUT", "/v1/agent/service/deregister/:id", deregister_service,
                               reg);
    if (!rc) rc = colony_router_add(r, "PUT", "/v1/agent/check/pass/:id", check_pass, reg);
    if (!rc) rc = colony_router_add(r, "PUT", "/v1/agent/check/warn/:id", check_warn, reg);
    if (!rc) rc = colony_router_add(r, "PUT", "/v1/agent/check/fail/:id", check_fail, reg);
    if (!rc) rc = colony_router_add(r, "PUT", "/v1/agent/check/update/:id", check_update, reg);
    if (!rc) rc = colony_router_add(r, "GET", "/v1/agent/services", agent_services, reg);
    if (!rc) rc = colony_router_add(r, "GET", "/v1/agent/service/:id", agent_service, reg);
    if (!rc) rc = colony_router_add(r, "GET", "/v1/agent/checks", agent_checks, reg);
    return rc;
}
