/* The gateway daemon's parts and their lifecycle: load routes, put them to
 * work, reload them, serve the admin API and shut everything down in order. */
#ifndef COLONY_GATEWAY_DAEMON_H
#define COLONY_GATEWAY_DAEMON_H

#include <stddef.h>
#include "colony/colony.h"
#include "gateway/proxy.h"

typedef struct gw_daemon {
    colony_service *svc;
    uv_loop_t *loop;
    colony_server *proxy_server;
    gw_proxy proxy;
    int proxy_ready;                  /* colony__gw_proxy_init succeeded: close it at shutdown */
    colony_registry_client *registry; /* created when an upstream names a service */
    colony_reload_watch *watch;
    const char *routes_file; /* NULL with --route quick starts */
    const char *const *quick_routes;
    size_t nquick;
    const char *token; /* admin bearer token; NULL: none */
    unsigned workers;  /* proxy worker threads (loops), each on its own SO_REUSEPORT listener */
    uint64_t generation;
    uint64_t reloads, reloads_failed;
    colony_config_error last_error; /* of the last refused load */
    int proxy_done;                 /* the proxy has drained and closed */
    gw_config *listen_cfg;          /* the config whose "listeners" are open (a reference) */
    void (*done)(colony_service *); /* the shutdown hook waiting for it */
} gw_daemon;

/* Loads the routes, builds the proxy and its server (listening), the admin
 * routes and the reload watch. On error returns COLONY_EINVAL (last_error
 * says why: bad routes) or another code; the service's shutdown hook still
 * closes whatever was opened, through colony_service_discard(). */
int colony__gw_daemon_setup(gw_daemon *d, colony_service *svc, const char *const *routes,
                            size_t nroutes);
/* Loads the routes again and swaps them in for new requests. 0, or
 * COLONY_EINVAL with last_error set (the running routes stay). */
int colony__gw_daemon_reload(gw_daemon *d);
/* Adds /gateway/routes, /gateway/stats and POST /gateway/reload. */
int colony__gw_admin_routes(gw_daemon *d, colony_router *r);

#endif
