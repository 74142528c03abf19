/* Header transforms of a route (docs/gateway.md, "Header transforms"):
 * "set" replaces every header of that name, "add" appends one more, "remove"
 * deletes them all; on the request after the gateway's own forwarding rules
 * (hop-by-hop and X-User-* are gone already and cannot be set), on the
 * response before it is sent back. The request also gets the remaining
 * deadline in X-Colony-Deadline-Ms, one slot filled per attempt. */
#ifndef COLONY_GATEWAY_TRANSFORM_H
#define COLONY_GATEWAY_TRANSFORM_H

#include <stddef.h>
#include "colony/http_client.h"
#include "colony/http_server.h"
#include "gateway/config.h"
#include "gateway/forward.h"

/* Rewrites f->headers (prepared by colony__gw_forward_prepare) with r's
 * request transforms and a deadline slot; *deadline_slot is the index of its
 * name (the value, f->headers[*deadline_slot + 1], is set per attempt with
 * colony__gw_transform_deadline). 0 or COLONY_ENOMEM. */
int colony__gw_transform_request(gw_forward *f, const gw_route_conf *r, size_t *deadline_slot);
/* Writes left_ms into the deadline slot for the next attempt. 0 or ENOMEM. */
int colony__gw_transform_deadline(gw_forward *f, size_t deadline_slot, uint64_t left_ms);
/* colony__gw_forward_response_head with r's response transforms applied. */
int colony__gw_transform_response(colony_request *req, const colony_client_response *res,
                                  const gw_route_conf *r);

#endif
