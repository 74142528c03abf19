/* Registration bodies (Consul's shapes) to services and checks. */
#ifndef COLONY_REGISTRY_PARSE_H
#define COLONY_REGISTRY_PARSE_H

#include "registry/registry_internal.h"

/* Parses a service registration body into svc and checks (NULL-terminated
 * array, caller frees). On error, msg says what is wrong. */
int colony__reg_parse_service(const json_t *body, reg_service **svc_out, reg_check ***checks_out,
                              char *msg, size_t msg_size);
/* Parses one check definition (also used to restore checks). */
reg_check *colony__reg_parse_check(const json_t *def, const char *service_id,
                                   const char *service_name, int ordinal, char *msg,
                                   size_t msg_size);

#endif
