/* JWT bearer tokens per route (docs/gateway.md, "Route security"), verified
 * with OpenSSL: HS256, RS256 and ES256, each key with its own allow-list of
 * algorithms enforced before any signature is checked. */
#ifndef COLONY_GATEWAY_JWT_H
#define COLONY_GATEWAY_JWT_H

#include <stdint.h>
#include "gateway/access.h"

enum { GW_JWT_HS256 = 1, GW_JWT_RS256 = 2, GW_JWT_ES256 = 4 };

/* Parses obj (the route's "jwt") at p's path. 0 or COLONY_EINVAL/ENOMEM. */
int colony__gw_jwt_parse(gw_parse *p, const json_t *obj, gw_jwt **out);
void colony__gw_jwt_free(gw_jwt *j);

/* Verifies token at time now (seconds since the epoch). Returns 0 with the
 * claims (a new reference) in *claims, 401 (missing, malformed, bad
 * signature, algorithm or key, expired, not yet valid, wrong issuer or
 * audience) or 403 (role not allowed), with *why saying which. */
int colony__gw_jwt_verify(const gw_jwt *j, const char *token, int64_t now, json_t **claims,
                          const char **why);

/* Checks req's "Authorization: Bearer" token and adds the claims headers to
 * f. Returns 0 or the status it answered with. */
/* The request slot (colony_request_get_data) where a passed check leaves the
 * token's "sub" claim as text, for rate limits keyed by "jwt:sub". */
#define GW_REQ_JWT_SUB "gw.jwt_sub"

int colony__gw_jwt_check(const gw_jwt *j, colony_request *req, gw_forward *f);

#endif
