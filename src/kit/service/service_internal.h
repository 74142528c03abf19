/* Shared between service.c (lifecycle) and service_middleware.c. */
#ifndef COLONY_KIT_SERVICE_INTERNAL_H
#define COLONY_KIT_SERVICE_INTERNAL_H

#include "colony/service.h"

typedef struct service_hook {
    colony_service_hook_cb cb;
    void *ud;
    struct service_hook *next;
} service_hook;

typedef struct service_started {
    colony_service_started_cb cb;
    void *ud;
    struct service_started *next;
} service_started;

typedef struct service_stopping {
    colony_service_stopping_cb cb;
    void *ud;
    struct service_stopping *next;
} service_stopping;

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
    service_hook *hooks; /* most recent first: they run in reverse order */
    service_hook *next_hook;
    struct service_started *started;         /* in order of registration */
    struct service_stopping *stopping_hooks; /* in order of registration */
    int stopping;
    int signals_open;       /* sigterm and sigint were initialized by run */
    unsigned fixed_workers; /* colony_service_options.workers */
};

/* Adds the metrics and tracing middleware the configuration enables. */
int colony__service_install_middleware(colony_service *svc);

#endif
