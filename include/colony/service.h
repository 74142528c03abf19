/* A Colony service in one call: configuration, logging, an HTTP server with a
 * router, /health, /ready and /metrics, request metrics and tracing
 * middleware, and graceful shutdown on SIGTERM or SIGINT the way the Node.js
 * BaseService did it: readiness turns false, the stopping hooks run, the
 * server stops accepting, in-flight requests drain (up to shutdown_timeout),
 * shutdown hooks run, and colony_service_run() returns 0.
 *
 *   colony_service *svc = colony_service_new(&(colony_service_options){
 *       .name = "orders", .argc = argc, .argv = argv}, stderr);
 *   colony_router_add(colony_service_router(svc), "GET", "/orders/:id", get_order, db);
 *   return colony_service_run(svc);   // frees svc
 *
 * Built-in settings (see --help): listen, workers, shutdown_timeout,
 * log.level, metrics.enabled, tracing.enabled, tracing.sample_ratio,
 * tracing.endpoint, http.max_body, http.header_timeout, http.idle_timeout. */
#ifndef COLONY_SERVICE_H
#define COLONY_SERVICE_H

#include <stdio.h>
#include "config.h"
#include "http_client.h"
#include "export.h"
#include "health.h"
#include "metrics.h"
#include "router.h"
#include "trace.h"

typedef struct colony_service colony_service;

typedef struct colony_service_options {
    const char *name;                      /* service name in logs, traces and metrics */
    const colony_config_setting *settings; /* the service's own settings, or NULL */
    size_t nsettings;
    int argc; /* command line: argv[0] is skipped; --help prints the settings */
    char **argv;
    const char *config_dir; /* NULL = "config" */
    const char *listen;     /* default for the listen setting; NULL = 127.0.0.1:8080 */
    const char *listen_key; /* name of that setting; NULL = "listen". A daemon whose main
                               listener is its own (the gateway's proxy) names the service's
                               one "admin-listen". Must outlive the service. */
    unsigned workers;       /* nonzero: exactly this many workers, whatever the settings say
                               (a daemon whose state has one owner uses 1) */
    const char *usage;      /* command shown by --help ("colony registry"); NULL = name */
} colony_service_options;
/* Fills o with the defaults above (name stays NULL: set it). */
COLONY_API void colony_service_options_init(colony_service_options *o);

/* Builds a service and loads its configuration. With --help it prints the
 * settings to stdout; on a bad configuration it writes file, line, key and
 * reason to err_out. Both return NULL with *exit_code set (0 for --help, 2
 * for bad config, 1 for other failures). */
COLONY_API colony_service *colony_service_new(const colony_service_options *opts, FILE *err_out,
                                              int *exit_code);

/* The parts of a service. Borrowed: the service owns and frees them; they are
 * valid until colony_service_run() returns (it frees the service). Do not free
 * them or keep them past that. */
COLONY_API colony_router *colony_service_router(colony_service *svc);
COLONY_API colony_config *colony_service_config(colony_service *svc);
COLONY_API colony_metrics *colony_service_metrics(colony_service *svc);
COLONY_API colony_health *colony_service_health(colony_service *svc);
COLONY_API colony_tracer *colony_service_tracer(colony_service *svc);
COLONY_API uv_loop_t *colony_service_loop(colony_service *svc);
/* The port the service listens on once running (0 before). */
COLONY_API int colony_service_port(colony_service *svc);

/* Runs after the server has drained during shutdown (and also when
 * colony_service_run cannot listen, so a hook must not assume the service
 * ever listened), in reverse order of registration; call done() when finished
 * (it may be asynchronous). */
typedef void (*colony_service_hook_cb)(colony_service *svc, void (*done)(colony_service *),
                                       void *ud);
COLONY_API int colony_service_on_shutdown(colony_service *svc, colony_service_hook_cb hook,
                                          void *ud);
/* Called once when a shutdown begins (SIGTERM, SIGINT, colony_service_stop,
 * a failed listen or colony_service_discard), after readiness turns false and
 * before in-flight requests drain: the place to answer long-held requests
 * (blocking queries, streams) so the drain does not wait for them. A daemon
 * uses this instead of watching signals itself. Several may be added; they run
 * in the order added. 0 or COLONY_ENOMEM. */
typedef void (*colony_service_stopping_cb)(colony_service *svc, void *ud);
COLONY_API int colony_service_on_stopping(colony_service *svc, colony_service_stopping_cb cb,
                                          void *ud);
/* Called once the server listens (e.g. to register with the registry).
 * Several may be added; they run in the order added. 0 or COLONY_ENOMEM. */
typedef void (*colony_service_started_cb)(colony_service *svc, void *ud);
COLONY_API int colony_service_on_started(colony_service *svc, colony_service_started_cb cb,
                                         void *ud);

/* Listens, runs the loop until a signal or colony_service_stop(), shuts down
 * gracefully, frees the service, closes the default loop and returns the
 * process exit code: 0, or 1 when it cannot listen (logged as "cannot listen";
 * the shutdown hooks and the colony_service_client() close still run, without
 * a drain) or a handle was left open on the loop. */
COLONY_API int colony_service_run(colony_service *svc);
/* Starts a graceful shutdown as SIGTERM would (from the service's loop thread). */
COLONY_API void colony_service_stop(colony_service *svc);
/* Instead of colony_service_run when the program's own setup failed after
 * colony_service_new: runs the stopping and shutdown hooks (so they release
 * what setup built; nothing listens, nothing drains), frees the service,
 * closes the default loop and returns exit_code (1 if a handle was left open). */
COLONY_API int colony_service_discard(colony_service *svc, int exit_code);

/* The server span of a request handled by a service (NULL when tracing is off). */
COLONY_API colony_span *colony_request_span(const colony_request *req);
/* Milliseconds left before the deadline the caller sent in X-Colony-Deadline-Ms
 * (capped at 5 minutes), or UINT64_MAX when it sent none. */
COLONY_API uint64_t colony_request_deadline_remaining(const colony_request *req);

/* Calls another service on behalf of req (req may be NULL): a client span,
 * child of the request's server span, covers the call; traceparent and the
 * remaining deadline (X-Colony-Deadline-Ms) are sent along, and the call's
 * timeout is the smaller of r->timeout_ms and what is left. client must belong
 * to the loop of the calling thread (colony_service_client() for the main
 * loop). Same contract as colony_client_request_send(); a call whose deadline
 * has already passed fails with COLONY_ETIMEDOUT and no callback. */
COLONY_API int colony_request_call(colony_request *req, colony_client *client,
                                   const colony_client_request *r, colony_client_done_cb cb,
                                   void *ud);
typedef struct colony_policy_set colony_policy_set; /* policy.h */
/* Makes svc send calls made with colony_request_call() on behalf of its
 * requests through ps. The service owns ps from then on and closes it during
 * shutdown (after the server has drained). COLONY_EEXIST if it has one. */
COLONY_API int colony_service_set_policy(colony_service *svc, colony_policy_set *ps);
/* A client on the service's main loop, created on first use and closed at
 * shutdown. */
COLONY_API colony_client *colony_service_client(colony_service *svc);

#endif
