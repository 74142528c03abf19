/* Service registration and discovery against a Consul-compatible registry
 * (`colony registry`, or Consul itself), over its HTTP API.
 *
 *   colony_registry_client *reg = colony_registry_client_new(loop,
 * &(colony_registry_client_options){ .url = "http://127.0.0.1:8500"});
 *   colony_registry_client_register(reg, &(colony_registration){.name = "orders",
 *       .address = "10.0.0.5", .port = 8080, .check = COLONY_CHECK_TTL,
 *       .ttl_ms = 10000, .heartbeat = 1}, NULL, NULL);
 *   colony_discovery *d;
 *   colony_discovery_watch(reg, &(colony_discovery_options){.service = "payments",
 *       .balancer = payments_lb, .on_change = changed}, &d);
 *
 * A watch keeps a local cache of a service's instances current with blocking
 * queries (/v1/health/service/:name?passing&index=N&wait=...), backs off with
 * jitter on errors, resets its index when the registry's index goes backwards
 * (Consul's client rule), feeds a balancer and calls back on real changes.
 *
 * Threading: a registry handle and everything made from it belong to one loop
 * and are used only from that loop's thread. */
#ifndef COLONY_DISCOVERY_H
#define COLONY_DISCOVERY_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "balance.h"
#include "config.h"
#include "export.h"
#include "service.h"

typedef struct colony_registry_client colony_registry_client;
typedef struct colony_discovery colony_discovery;

typedef struct colony_registry_client_options {
    const char *url;       /* "http://host:port" of the registry; required */
    const char *token;     /* sent as X-Consul-Token; NULL = none */
    uint64_t wait_ms;      /* blocking-query wait; 0 = 60000 */
    uint64_t retry_min_ms; /* first backoff after an error; 0 = 250 */
    uint64_t retry_max_ms; /* backoff cap; 0 = 30000 */
    uint64_t timeout_ms;   /* non-blocking calls (register, heartbeat); 0 = 5000 */
} colony_registry_client_options;
/* Fills o with the defaults above (url stays NULL: set it). */
COLONY_API void colony_registry_client_options_init(colony_registry_client_options *o);

/* Creates a registry client on loop (the options' strings are copied).
 * Returns NULL on a missing or bad URL or on allocation failure. */
COLONY_API colony_registry_client *
colony_registry_client_new(uv_loop_t *loop, const colony_registry_client_options *opts);
/* Stops every heartbeat and watch, cancels calls in flight and frees the handle
 * and its watches; cb (may be NULL) runs once everything is closed, from the
 * loop, never before this function returns. */
typedef void (*colony_registry_client_closed_cb)(void *ud);
COLONY_API void colony_registry_client_close(colony_registry_client *r,
                                             colony_registry_client_closed_cb cb, void *ud);

/* ---- registration ---- */

typedef enum colony_check_kind {
    COLONY_CHECK_NONE, /* no health check: always passing */
    COLONY_CHECK_TTL,  /* the service reports in; critical after ttl_ms of silence */
    COLONY_CHECK_HTTP, /* the registry polls http_url every interval_ms */
} colony_check_kind;

typedef enum colony_check_status {
    COLONY_CHECK_PASSING,
    COLONY_CHECK_WARNING,
    COLONY_CHECK_CRITICAL,
} colony_check_status;

/* One service instance to register (all strings copied). */
typedef struct colony_registration {
    const char *name;        /* service name; required */
    const char *id;          /* instance id; NULL = name */
    const char *address;     /* NULL = the registry node's address */
    int port;                /* 0..65535 */
    const char *const *tags; /* ntags strings */
    size_t ntags;
    const char *const *meta; /* nmeta key/value pairs: meta[2i], meta[2i+1] */
    size_t nmeta;
    uint32_t weight; /* Weights.Passing; 0 = 1 */
    colony_check_kind check;
    uint64_t ttl_ms;                       /* TTL check */
    int heartbeat;                         /* TTL check: this handle passes it every ttl_ms/3 */
    const char *http_url;                  /* HTTP check target */
    uint64_t interval_ms;                  /* HTTP check; 0 = 10000 */
    uint64_t check_timeout_ms;             /* HTTP check; 0 = registry default */
    uint64_t deregister_critical_after_ms; /* 0 = never */
} colony_registration;

/* Completion of a registry call: 0, or COLONY_EINVAL (400), -EACCES (403),
 * COLONY_ENOENT (404), COLONY_EIO (5xx), COLONY_EPROTO (other statuses) or a
 * transport error (ECONNREFUSED, ETIMEDOUT, ECANCELED on close). */
typedef void (*colony_registry_client_done_cb)(int err, void *ud);

/* PUT /v1/agent/service/register. With a TTL check and heartbeat set, the
 * handle keeps the check passing at ttl_ms/3 (re-registering if the registry
 * forgot the check) until colony_registry_client_deregister() or close. cb may be
 * NULL. Returns 0 (cb will run) or COLONY_EINVAL / COLONY_ENOMEM (it will not). */
COLONY_API int colony_registry_client_register(colony_registry_client *r,
                                               const colony_registration *reg,
                                               colony_registry_client_done_cb cb, void *ud);
/* Stops the instance's heartbeat and sends PUT /v1/agent/service/deregister/:id. */
COLONY_API int colony_registry_client_deregister(colony_registry_client *r, const char *service_id,
                                                 colony_registry_client_done_cb cb, void *ud);
/* PUT /v1/agent/check/{pass,warn,fail}/:check_id with an optional note. The
 * check of a service registered here is "service:<id>". */
COLONY_API int colony_registry_client_check_update(colony_registry_client *r, const char *check_id,
                                                   colony_check_status status, const char *note,
                                                   colony_registry_client_done_cb cb, void *ud);
/* Pauses (on = 0) or resumes (on = 1) the heartbeat of an instance registered
 * with heartbeat set, e.g. while it is overloaded. COLONY_ENOENT if none. */
COLONY_API int colony_registry_client_set_heartbeat(colony_registry_client *r,
                                                    const char *service_id, int on);

/* ---- discovery ---- */

/* One instance in a watch's cache. Valid until the next change callback (or
 * stop/close); copy what must outlive it. */
typedef struct colony_instance {
    const char *id;
    const char *service;
    const char *address; /* Service.Address, else the node's address */
    int port;
    const char *const *tags;
    size_t ntags;
    const char *const *meta; /* nmeta key/value pairs */
    size_t nmeta;
    uint32_t weight;            /* Weights.Passing (1 when absent) */
    colony_check_status status; /* worst of the instance's checks */
} colony_instance;

/* A watch's cache changed (instances, addresses, weights or health). Not
 * called when a blocking query returns without a change. */
typedef void (*colony_discovery_change_cb)(colony_discovery *d, void *ud);

typedef struct colony_discovery_options {
    const char *service; /* required */
    const char *tag;     /* only instances with this tag; NULL = all */
    int all_instances;   /* 0: only passing instances (?passing); 1: every instance */
    /* If set, its endpoint set follows the cache: passing instances only,
     * id = instance id, address = host:port, weight = instance weight. The
     * balancer must outlive the watch. */
    colony_balancer *balancer;
    colony_discovery_change_cb on_change;
    void *ud;
} colony_discovery_options;
/* Fills o with the defaults: passing instances of any tag, no balancer, no
 * callback (service stays NULL: set it). */
COLONY_API void colony_discovery_options_init(colony_discovery_options *o);

/* Starts watching a service. Returns 0 with *out set, or COLONY_EINVAL /
 * COLONY_ENOMEM. The watch belongs to r: stop it with colony_discovery_stop()
 * or let colony_registry_client_close() free it. */
COLONY_API int colony_discovery_watch(colony_registry_client *r,
                                      const colony_discovery_options *opts, colony_discovery **out);
/* Stops a watch; its callback never runs again and it is freed. */
COLONY_API void colony_discovery_stop(colony_discovery *d);

/* Instances in the cache (0 before the first answer). */
COLONY_API size_t colony_discovery_count(const colony_discovery *d);
/* The i-th instance (i < count) or NULL. Borrowed: see colony_instance. */
COLONY_API const colony_instance *colony_discovery_at(const colony_discovery *d, size_t i);
/* 1 once the first answer arrived (an empty service counts). */
COLONY_API int colony_discovery_ready(const colony_discovery *d);
/* X-Consul-Index of the last answer (0 before the first or after a reset). */
COLONY_API uint64_t colony_discovery_index(const colony_discovery *d);
/* The error of the last failed query (0 after a success) and the number of
 * failures in a row: the cache keeps its last good content meanwhile. */
COLONY_API int colony_discovery_last_error(const colony_discovery *d);
COLONY_API unsigned colony_discovery_failures(const colony_discovery *d);

/* ---- a colony_service registering itself ---- */

/* Settings for a service that registers itself: pass them in
 * colony_service_options.settings. registry.url (env COLONY_REGISTRY_URL),
 * registry.enabled, registry.token, registry.check (ttl or http),
 * registry.ttl, registry.interval, registry.deregister_after, service.id,
 * service.address, service.tags, service.meta, service.version, service.weight. */
COLONY_API extern const colony_config_setting colony_registry_settings[];
COLONY_API extern const size_t colony_registry_settings_count;

/* Reads those settings and, unless registry.url is empty or registry.enabled
 * false, registers the service once it listens (with a TTL heartbeat or an
 * HTTP check on its /health) and deregisters it first thing during graceful
 * shutdown. Uses colony_service_on_started. Returns 0 (also when registration is off) or
 * COLONY_EINVAL when the settings are not in the service's table. */
COLONY_API int colony_service_enable_registry(colony_service *svc);

#endif
