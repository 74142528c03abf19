/* The registry's HTTP API (Consul's routes) and what its handlers share. */
#ifndef COLONY_REGISTRY_API_H
#define COLONY_REGISTRY_API_H

#include "colony/router.h"
#include "registry/registry_internal.h"

/* Consul-shaped JSON for answers. */
json_t *colony__reg_service_agent_json(const reg_service *svc);
json_t *colony__reg_check_json(const registry *reg, const reg_check *chk);
json_t *colony__reg_node_json(const registry *reg);
json_t *colony__reg_node_check_json(const registry *reg);

/* Routes. */
int colony__reg_routes_agent(registry *reg, colony_router *r);
int colony__reg_routes_catalog(registry *reg, colony_router *r);
int colony__reg_routes_kv(registry *reg, colony_router *r);
/* Answers 403 unless allowed; returns nonzero when it answered. */
int colony__reg_deny(colony_request *req, int have, int need, const char *what, const char *name);
/* Parses the body as JSON whatever its Content-Type (Consul ignores it);
 * on failure answers 400 with the line and column. */
int colony__reg_body_json(colony_request *req, json_t **out);
/* Answers 400 with {"error":"bad_request","message":msg}. */
void colony__reg_bad_request(colony_request *req, const char *msg);
void colony__reg_respond_json(colony_request *req, int status, json_t *body); /* steals body */

#endif
