/* `colony registry`: the daemon. A colony_service (server, router, /health,
 * /ready, /metrics, signals, graceful shutdown) with the Consul API routes,
 * run with one worker: all state lives on that loop, as all writes go through
 * Consul's single raft leader, so nothing needs a lock. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "colony/error.h"
#include "colony/log.h"
#include "colony/service.h"
#include "core/alloc.h"
#include "core/closer.h"
#include "registry/registry.h"
#include "registry/checks.h"
#include "registry/registry_internal.h"
#include "registry/store.h"
#include "registry/waiters.h"
#include "registry/names.h"
#include "registry/api.h"

static const colony_config_setting registry_settings[] = {
    {"data-dir", COLONY_CONFIG_STRING, "data/registry", 0,
     "folder for the registry's SQLite database (created if missing)", 0, 0},
    {"acl-file", COLONY_CONFIG_STRING, "", 0,
     "JSON file with ACL tokens and the anonymous policy; empty = ACLs off", 0, 0},
    {"advertise", COLONY_CONFIG_STRING, "", 0,
     "node address reported in answers; empty = the listen host (127.0.0.1 for 0.0.0.0)", 0, 0},
    {"checks.min-interval", COLONY_CONFIG_DURATION, "1s", 0,
     "shortest interval between two runs of an HTTP or TCP check (Consul: 1s)", 0, 0},
    {"checks.max-inflight", COLONY_CONFIG_INT, "64", 0,
     "HTTP and TCP check runs at once, all targets together", 1, 100000},
    {"checks.max-per-target", COLONY_CONFIG_INT, "1", 0,
     "HTTP and TCP check runs at once against one host:port (a target that hangs holds at most "
     "this many)",
     1, 1024},
    {"checks.min-deregister", COLONY_CONFIG_DURATION, "1m", 0,
     "floor for DeregisterCriticalServiceAfter (Consul: 1m)", 0, 0},
    {"kv.tombstone-ttl", COLONY_CONFIG_DURATION, "15m", 0,
     "deleted KV keys are remembered this long for blocking queries (Consul: 15m)", 0, 0},
};

typedef struct daemon_ctx {
    registry reg;
    colony_service *svc;
    uv_timer_t drain_timer; /* polls the store until its last batch is done */
    int drain_timer_open, started;
    colony__closer closer; /* frees the context once drain_timer has closed */
    void (*done)(colony_service *);
} daemon_ctx;

static int mkdir_p(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) && errno != EEXIST) return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0755) && errno != EEXIST) return -errno;
    return 0;
}

/* Only a batch on disk moves `committed`: a failed attempt fails the pending
 * acks (the store retries the batch) and readers keep waiting for it. */
static void on_committed(registry *reg, int err, uint64_t index, const colony__list *ops)
{
    if (err) {
        colony__reg_waiters_failed(reg);
        return;
    }
    if (index > reg->committed) reg->committed = index;
    colony__reg_waiters_committed(reg, ops);
}

/* Blocking queries would hold the drain for minutes: answer them as soon as a
 * shutdown begins (the service's stopping hook, before the drain). */
static void on_stopping(colony_service *svc, void *ud)
{
    (void)svc;
    daemon_ctx *d = ud;
    d->reg.shutting_down = 1;
    colony__reg_waiters_flush(&d->reg);
}

static void free_state(registry *reg)
{
    colony__reg_state_free(reg);
    colony__reg_acl_free(&reg->acl);
    colony__free(reg->node_address);
    colony__free(reg->leader);
}

/* The last step: the context's own handles have closed. */
static void ctx_closed(void *ud)
{
    daemon_ctx *d = ud;
    void (*done)(colony_service *) = d->done;
    colony_service *svc = d->svc;
    colony__free(d);
    done(svc);
}

/* Releases everything setup built (any part of it: this also runs after a
 * failed setup), then hands over to the next shutdown hook once the handles
 * inside d have closed. */
static void finish(daemon_ctx *d)
{
    if (d->started && !colony__reg_store_lost(d->reg.store))
        COLONY_LOG_INFO("registry: state saved");
    /* Every handle that lives inside d closes before d is freed: the drain
     * timer, and the checks' reaper (taken here so checks_stop leaves it). */
    colony__closer_init(&d->closer, ctx_closed, d);
    if (d->drain_timer_open) colony__closer_close(&d->closer, (uv_handle_t *)&d->drain_timer);
    if (d->reg.reaper_open) colony__closer_close(&d->closer, (uv_handle_t *)&d->reg.reaper);
    d->reg.reaper_open = 0;
    colony__reg_checks_stop(&d->reg);
    colony__reg_store_close(d->reg.store);
    free_state(&d->reg);
    colony__closer_finish(&d->closer, d->reg.loop);
}

/* The server has drained: wait for the last batch to commit, then finish. */
static void drain_tick(uv_timer_t *t)
{
    daemon_ctx *d = t->data;
    if (colony__reg_store_idle(d->reg.store)) finish(d);
}

static void on_shutdown(colony_service *svc, void (*done)(colony_service *), void *ud)
{
    (void)svc;
    daemon_ctx *d = ud;
    d->done = done;
    d->reg.shutting_down = 1;
    colony__reg_waiters_flush(&d->reg);
    if (!d->reg.store || colony__reg_store_idle(d->reg.store)) {
        if (d->reg.store) colony__reg_store_shutdown(d->reg.store);
        finish(d);
        return;
    }
    colony__reg_store_shutdown(d->reg.store);
    /* Cannot fail: the timer was initialized by setup and is not closing. */
    (void)uv_timer_start(&d->drain_timer, drain_tick, 0, 5);
}

static void on_started(colony_service *svc, void *ud)
{
    daemon_ctx *d = ud;
    d->started = 1;
    char buf[300];
    snprintf(buf, sizeof(buf), "%s:%d", d->reg.node_address, colony_service_port(svc));
    char *leader = colony__strdup(buf);
    if (leader) {
        colony__free(d->reg.leader);
        d->reg.leader = leader;
    }
    COLONY_LOG_INFO("registry: ready", COLONY_LF_STR("node", buf),
                    COLONY_LF_INT("index", (long long)d->reg.index),
                    COLONY_LF_INT("services", (long long)d->reg.services.count),
                    COLONY_LF_INT("checks", (long long)d->reg.checks.count),
                    COLONY_LF_INT("keys", (long long)d->reg.nkv));
}

static char *node_address(colony_config *cfg)
{
    const char *adv = colony_config_get_string(cfg, "advertise");
    if (adv && *adv) return colony__strdup(adv);
    const char *listen = colony_config_get_string(cfg, "listen");
    char host[256] = "127.0.0.1";
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (listen && colon && strncmp(listen, "unix:", 5) != 0) {
        size_t n = (size_t)(colon - listen);
        if (listen[0] == '[' && n >= 2) {
            listen++;
            n -= 2;
        }
        if (n && n < sizeof(host)) {
            memcpy(host, listen, n);
            host[n] = '\0';
        }
    }
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0) strcpy(host, "127.0.0.1");
    return colony__strdup(host);
}

/* Readiness follows the store: not ready while commits fail (disk full,
 * I/O errors), since no write can be acknowledged then. */
static void store_ready(colony_health_probe *probe, void *ud)
{
    registry *reg = ud;
    if (reg->store && colony__reg_store_failing(reg->store)) {
        char why[600];
        snprintf(why, sizeof(why), "commits to %s are failing: writes cannot be made durable",
                 colony__reg_store_path(reg->store));
        colony_health_probe_done(probe, 0, NULL, why);
        return;
    }
    colony_health_probe_done(probe, 1, json_pack("{sI}", "committed", (json_int_t)reg->committed),
                             NULL);
}

static double kv_tombstones_gauge(void *ud)
{
    return (double)colony__reg_kv_tombstones(ud);
}

static double kv_keys_gauge(void *ud)
{
    const registry *reg = ud;
    return (double)(reg->nkv - colony__reg_kv_tombstones(reg));
}

static int setup(daemon_ctx *d, colony_config *cfg)
{
    registry *reg = &d->reg;
    char msg[512];
    reg->loop = colony_service_loop(d->svc);
    colony__reg_waiters_init(reg);
    int rc = uv_timer_init(reg->loop, &d->drain_timer);
    if (rc) return rc;
    d->drain_timer.data = d;
    d->drain_timer_open = 1;
    reg->min_interval_ms = (uint64_t)colony_config_get_int(cfg, "checks.min-interval");
    reg->min_deregister_ms = (uint64_t)colony_config_get_int(cfg, "checks.min-deregister");
    reg->tombstone_ttl_ms = (uint64_t)colony_config_get_int(cfg, "kv.tombstone-ttl");
    reg->node_address = node_address(cfg);
    reg->leader = colony__strdup("127.0.0.1:8500");
    if (!reg->node_address || !reg->leader) return COLONY_ENOMEM;
    const char *acl_file = colony_config_get_string(cfg, "acl-file");
    if (acl_file && *acl_file && colony__reg_acl_load(&reg->acl, acl_file, msg, sizeof(msg))) {
        fprintf(stderr, "registry: acl-file: %s\n", msg);
        return COLONY_EINVAL;
    }
    const char *dir = colony_config_get_string(cfg, "data-dir");
    rc = mkdir_p(dir);
    if (rc) {
        fprintf(stderr, "registry: cannot create data-dir %s: %s\n", dir, colony_strerror(rc));
        return rc;
    }
    rc = colony__reg_store_open(&reg->store, reg->loop, dir, msg, sizeof(msg));
    if (rc) {
        fprintf(stderr, "registry: %s\n", msg);
        return rc;
    }
    rc = colony__reg_store_load(reg->store, reg, msg, sizeof(msg));
    if (rc) {
        fprintf(stderr, "registry: %s\n", msg);
        return rc;
    }
    rc = colony__reg_names_rebuild(reg);
    if (rc) {
        fprintf(stderr, "registry: cannot load %s: %s\n", dir, colony_strerror(rc));
        return rc;
    }
    colony__reg_store_set_callback(reg->store, reg, on_committed);
    colony_metrics *m = colony_service_metrics(d->svc);
    if (m && (colony_metrics_gauge_fn(m, "colony_registry_kv_keys", "live KV keys", kv_keys_gauge,
                                      reg) ||
              colony_metrics_gauge_fn(m, "colony_registry_kv_tombstones",
                                      "deleted KV keys remembered for blocking queries",
                                      kv_tombstones_gauge, reg)))
        return COLONY_ENOMEM;
    colony_router *r = colony_service_router(d->svc);
    rc = colony__reg_routes_agent(reg, r);
    if (!rc) rc = colony__reg_routes_catalog(reg, r);
    if (!rc) rc = colony__reg_routes_kv(reg, r);
    if (rc) return rc;
    rc = colony__reg_checks_start(reg, m, cfg);
    if (!rc)
        rc = colony_health_add(colony_service_health(d->svc), "store", COLONY_HEALTH_READINESS,
                               store_ready, reg, 0);
    if (!rc) rc = colony_service_on_stopping(d->svc, on_stopping, d);
    if (!rc) rc = colony_service_on_started(d->svc, on_started, d);
    return rc;
}

int colony_registry_main(int argc, char **argv)
{
    int code = 1;
    colony_service_options opts = {
        .name = "registry",
        .settings = registry_settings,
        .nsettings = sizeof(registry_settings) / sizeof(registry_settings[0]),
        .argc = argc,
        .argv = argv,
        .listen = "127.0.0.1:8500",
        /* One worker, whatever the settings say: the state has one owner. */
        .workers = 1,
        .usage = "colony registry"};
    colony_service *svc = colony_service_new(&opts, stderr, &code);
    if (!svc) return code;
    srand((unsigned)uv_hrtime());
    daemon_ctx *d = colony__calloc(1, sizeof(*d));
    if (!d) return colony_service_discard(svc, 1);
    d->svc = svc;
    /* The shutdown hook first: it releases whatever setup built, also when
     * setup fails half way (colony_service_discard runs it). */
    int rc = colony_service_on_shutdown(svc, on_shutdown, d);
    if (rc) {
        colony__free(d);
        return colony_service_discard(svc, 1);
    }
    rc = setup(d, colony_service_config(svc));
    if (rc) {
        COLONY_LOG_ERROR("registry: cannot start", COLONY_LF_STR("error", colony_strerror(rc)));
        return colony_service_discard(svc, rc == COLONY_EINVAL ? 2 : 1);
    }
    return colony_service_run(svc);
}
