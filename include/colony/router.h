/* Router and middleware. Patterns are matched segment by segment: literal
 * segments, parameters (/users/:id) and a trailing wildcard segment "*" (as in
 * "/static/" followed by "*"), whose value is the rest of the path, available as
 * the parameter "*". Literal segments win over parameters, parameters over
 * wildcards, whatever the order
 * of registration. No match is 404; a path that matches with another method is
 * 405 with an Allow header. HEAD falls back to the GET route.
 *
 * Middleware runs in the order added, before the route's handler. Each calls
 * colony_next() to go on, or answers itself to stop the chain; to act after
 * the handler it registers colony_request_on_response()/on_finish() hooks. */
#ifndef COLONY_ROUTER_H
#define COLONY_ROUTER_H

#include <jansson.h>
#include "export.h"
#include "http_server.h"

typedef struct colony_router colony_router;
typedef struct colony_chain colony_chain; /* the rest of a middleware chain */

typedef void (*colony_middleware_cb)(colony_request *req, colony_chain *next, void *ud);

/* The caller owns the router. It is borrowed by every server that dispatches
 * through it (colony_router_handle as the server's handler), so free it only
 * after those servers are freed (or their shutdown callback has run). The ud
 * pointers given to add/use are borrowed too and must outlive the router. */
COLONY_API colony_router *colony_router_new(void);
COLONY_API void colony_router_free(colony_router *r);

/* Adds a route. method is "GET", "POST", ... or "*" for any. Returns 0,
 * COLONY_EINVAL for a malformed pattern (wildcard not last, empty parameter
 * name, duplicate parameter name), COLONY_EEXIST for a duplicate route. */
COLONY_API int colony_router_add(colony_router *r, const char *method, const char *pattern,
                                 colony_handler_cb handler, void *ud);
/* Appends a middleware to the chain. */
COLONY_API int colony_router_use(colony_router *r, colony_middleware_cb mw, void *ud);

/* A colony_handler_cb that dispatches through the router: pass it to
 * colony_server_new() with the router as ud. */
COLONY_API void colony_router_handle(colony_request *req, void *router);

/* Continues the middleware chain (then the handler). Call at most once. */
COLONY_API void colony_next(colony_chain *next);

/* Matches without a request, for tests and tools: returns 200 when a route
 * matches, else 404 or 405 (allow then receives the Allow list, NUL-terminated). */
COLONY_API int colony_router_match(const colony_router *r, const char *method, const char *path,
                                   char *allow, size_t allow_size);

#endif
