/* Shared between service.c (lifecycle) and service_middleware.c. */
#ifndef COLONY_KIT_SERVICE_INTERNAL_H
#define COLONY_KIT_SERVICE_INTERNAL_H

#include "colony/service.h"
#include "core/list.h"

/* A callback registered with the service: a shutdown hook, a started or a
 * stopping callback, on the list of its kind. */
typedef struct service_callback {
    colony__list node;
    union {
        colony_service_hook_cb hook;
        colony_service_started_cb started;
        colony_service_stopping_cb stopping;
    } fn;
    void *ud;
} service_callback;

struct colony_service {
    char *name;
    uv_loop_t *loop;
    colony_config *config;
    colony_config_setting *table; /* built-in settings + the service's own */
    colony_router *router;
    colony_server *server;
    colony_metrics *metrics;
    colony_health *health;
    colony_tracer *tracer;
    colony_client *client;            /* main-loop client for colony_service_client() */
    struct colony_policy_set *policy; /* colony_service_set_policy(); owned */
    colony_metric *requests_total, *request_duration;
    uv_signal_t sigterm, sigint;
    colony__list hooks;          /* most recent first: they run in reverse order */
    colony__list *next_hook;     /* the hook to run next, or &hooks when done */
    colony__list started;        /* in order of registration */
    colony__list stopping_hooks; /* in order of registration */
    int stopping;
    int signals_open;       /* sigterm and sigint were initialized by run */
    unsigned fixed_workers; /* colony_service_options.workers */
};

/* Adds the metrics and tracing middleware the configuration enables. */
int colony__service_install_middleware(colony_service *svc);

#endif
