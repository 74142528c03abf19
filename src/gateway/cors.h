/* CORS per route (docs/gateway.md, "Route security"): preflights answered by
 * the gateway, the allowed origin and exposed headers added to responses. */
#ifndef COLONY_GATEWAY_CORS_H
#define COLONY_GATEWAY_CORS_H

#include "gateway/access.h"

/* Request data set when the route's CORS applies: the upstream's own
 * Access-Control-* response headers are then not passed on. */
#define GW_CORS_DATA_KEY "gateway.cors"

/* Parses obj (the route's "cors") at p's path. */
int colony__gw_cors_parse(gw_parse *p, const json_t *obj, gw_cors **out);
void colony__gw_cors_free(gw_cors *c);

/* Answers a preflight (204 with the CORS headers, or 403 for an origin,
 * method or header not allowed), or adds the response headers for an actual
 * request from an allowed origin. Returns 0 to go on, or the status answered. */
int colony__gw_cors_check(const gw_cors *c, colony_request *req);

#endif
