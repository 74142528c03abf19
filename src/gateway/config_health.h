/* The routes file keys of active health checks, the circuit breaker, the
 * retry budget and header transforms (docs/gateway.md, "Health, breaker,
 * deadlines and header transforms"). config.c calls these parsers from
 * parse_upstream() and parse_route(); they refuse mistakes with file, line,
 * key and reason through colony_json_doc_error, on the same path buffer. */
#ifndef COLONY_GATEWAY_CONFIG_HEALTH_H
#define COLONY_GATEWAY_CONFIG_HEALTH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "colony/config.h"
#include "gateway/parse.h"

/* "health": {"active": {...}}: one HTTP probe per instance. */
typedef struct gw_active_health {
    char *path; /* "/health"; NULL: no active checks */
    uint64_t interval_ms, timeout_ms;
    uint32_t healthy_threshold, unhealthy_threshold;
} gw_active_health;

/* "breaker": {...}, mapped onto colony_breaker_options. */
typedef struct gw_breaker_conf {
    int enabled;
    unsigned failure_percent; /* failure_ratio x 100 */
    unsigned min_calls, window_calls, half_open_calls;
    uint64_t open_ms, window_ms;
} gw_breaker_conf;

/* "retry_budget": {...} of a route, mapped onto colony_retry_budget_options. */
typedef struct gw_retry_budget_conf {
    unsigned percent, min_per_sec;
    uint64_t window_ms;
} gw_retry_budget_conf;

/* One direction of "request_headers" / "response_headers". */
typedef struct gw_header_ops {
    char **set; /* name, value, name, value ... */
    size_t nset;
    char **add;
    size_t nadd;
    char **remove;
    size_t nremove;
} gw_header_ops;

void colony__gw_active_health_init(gw_active_health *a);
void colony__gw_breaker_init(gw_breaker_conf *b);
void colony__gw_retry_budget_init(gw_retry_budget_conf *r);

/* Each parses the value of its key (obj, at path "...key"), 0 or COLONY_EINVAL /
 * COLONY_ENOMEM with at->err filled. */
int colony__gw_parse_active_health(gw_parse *at, const json_t *obj, gw_active_health *out);
int colony__gw_parse_breaker(gw_parse *at, const json_t *obj, gw_breaker_conf *out);
int colony__gw_parse_retry_budget(gw_parse *at, const json_t *obj, gw_retry_budget_conf *out);
/* request 1 for "request_headers", 0 for "response_headers". */
int colony__gw_parse_header_ops(gw_parse *at, const json_t *obj, int request, gw_header_ops *out);

void colony__gw_active_health_clear(gw_active_health *a);
void colony__gw_header_ops_clear(gw_header_ops *h);

#endif
