/* Per-route security (docs/gateway.md, "Route security"): IP allow and deny
 * lists, CORS, a body limit, API keys and JWT, checked in that order before a
 * request is forwarded. Parsed with the routes file and immutable after. */
#ifndef COLONY_GATEWAY_ACCESS_H
#define COLONY_GATEWAY_ACCESS_H

#include <stddef.h>
#include <stdint.h>
#include "colony/config.h"
#include "colony/request.h"
#include "gateway/parse.h"

typedef struct json_t json_t;
typedef struct gw_forward gw_forward;
typedef struct gw_jwt gw_jwt;
typedef struct gw_cors gw_cors;

typedef struct gw_cidr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix;
} gw_cidr;

typedef struct gw_access {
    gw_cidr *allow, *deny; /* allow: none means everyone not denied */
    size_t nallow, ndeny;
    uint64_t max_body; /* 0: the proxy's limit only */
    char *api_key_header;
    char **api_keys, **api_consumers;
    size_t napi_keys;
    gw_cors *cors;
    gw_jwt *jwt;
} gw_access;

/* Parses the security keys of route obj ("jwt", "api_keys", "cors", "allow",
 * "deny", "max_body") at path (the route's, "routes.3"). *out stays NULL for a
 * route with none. 0 or COLONY_EINVAL / COLONY_ENOMEM with err set. */
int colony__gw_access_parse(gw_parse *p, const json_t *obj, gw_access **out);
void colony__gw_access_free(gw_access *a);

/* The keys of a route object that colony__gw_access_parse reads. */
#define GW_ACCESS_KEYS "jwt", "api_keys", "cors", "allow", "deny", "max_body"

/* Checks req against a (may be NULL) before it is forwarded; identity
 * headers go into f. Returns 0 to forward, or the status it has answered
 * with (a preflight's 204, 401, 403, 413, 503). */
int colony__gw_access_check(const gw_access *a, colony_request *req, gw_forward *f);

/* 1 if req is a CORS preflight (OPTIONS with Origin and
 * Access-Control-Request-Method). */
int colony__gw_access_is_preflight(colony_request *req);

/* 1 if the address (text, no port) is let through by the lists. */
int colony__gw_access_ip_allowed(const gw_access *a, const char *ip);

#endif
