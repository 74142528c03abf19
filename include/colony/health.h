/* Health checks: named checks, each with a timeout, served as liveness
 * (/health) and readiness (/ready) JSON:
 *   {"status":"healthy","timestamp":"2026-11-23T17:58:00.123Z","uptime":12.5,
 *    "checks":{"db":{"status":"healthy","responseTime":1.2,"details":{...}}}}
 * with 200, or 503 and "unhealthy" when any check of that kind fails or times
 * out (a failed check has "error" instead of "details"). Readiness is also
 * false from the moment a graceful shutdown begins. */
#ifndef COLONY_HEALTH_H
#define COLONY_HEALTH_H

#include <jansson.h>
#include <stdint.h>
#include "export.h"
#include "http_server.h"

typedef struct colony_health colony_health;
typedef struct colony_health_probe colony_health_probe; /* one run of one check */

typedef enum colony_health_kind {
    COLONY_HEALTH_LIVENESS = 1,  /* counted by /health */
    COLONY_HEALTH_READINESS = 2, /* counted by /ready */
    COLONY_HEALTH_BOTH = 3,
} colony_health_kind;

/* A check: runs on the loop of the request that asked, and reports exactly once
 * with colony_health_probe_done(), now or later from the same loop thread. */
typedef void (*colony_health_check_cb)(colony_health_probe *probe, void *ud);

/* Creates an empty set of checks. NULL on allocation failure. */
COLONY_API colony_health *colony_health_new(void);
/* Frees it; no request may still be running checks. */
COLONY_API void colony_health_free(colony_health *h);
/* Adds a named check (name copied). timeout_ms 0 = 5000. 0, COLONY_EEXIST or COLONY_ENOMEM. */
COLONY_API int colony_health_add(colony_health *h, const char *name, colony_health_kind kind,
                                 colony_health_check_cb cb, void *ud, uint64_t timeout_ms);
/* Reports a probe's result: ok nonzero for healthy. details (may be NULL) is
 * stolen and shown for a healthy check; error (copied) is shown for a failed
 * one. A report after the timeout is ignored (details freed). */
COLONY_API void colony_health_probe_done(colony_health_probe *probe, int ok, json_t *details,
                                         const char *error);
/* Marks the service not ready (set when graceful shutdown begins) or ready again. */
COLONY_API void colony_health_set_ready(colony_health *h, int ready);
/* Ties readiness to a server: /ready is 503 once the server is shutting down. */
COLONY_API void colony_health_watch_server(colony_health *h, colony_server *srv);

/* Handlers (ud = the colony_health) for colony_router_add: GET /health, GET /ready. */
COLONY_API void colony_health_handle_live(colony_request *req, void *health);
COLONY_API void colony_health_handle_ready(colony_request *req, void *health);

#endif
