/* What keeps an upstream in trouble from being buried (docs/gateway.md,
 * "Circuit breaker, retry budget and deadlines"): a circuit breaker per
 * upstream (open: 503 circuit_open without calling it), a retry budget per
 * route (retries at most a share of requests) and the deadline forwarded in
 * X-Colony-Deadline-Ms. One loop thread. */
#ifndef COLONY_GATEWAY_BREAKER_H
#define COLONY_GATEWAY_BREAKER_H

#include <stdint.h>
#include "colony/http_server.h"
#include "colony/resilience.h"
#include "gateway/config.h"

/* A breaker for upstream u (NULL *out when its breaker is off). 0 or ENOMEM. */
int colony__gw_breaker_new(const gw_upstream *u, colony_breaker **out);
/* A retry budget for route r (NULL *out when it never retries). 0 or ENOMEM. */
int colony__gw_retry_budget_new(const gw_route_conf *r, colony_retry_budget **out);

/* The total time the request may take: the route's total timeout, or less
 * when the caller sent a smaller X-Colony-Deadline-Ms. At least 1. */
uint64_t colony__gw_deadline_total(colony_request *req, const gw_route_conf *r);

#endif
