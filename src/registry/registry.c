/* `colony registry`: the daemon. A colony_service (server, router, /health,
 * /ready, /metrics, signals, graceful shutdown) with the Consul API routes,
 * run with one worker: all state lives on that loop, as all writes go through
 * Consul's single raft leader, so nothing needs a lock. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "colony/error.h"
#include "colony/log.h"
#include "colony/service.h"
#include "core/alloc.h"
#include "registry/registry.h"
#include "registry/registry_internal.h"

static const colony_config_setting registry_settings[] = {
    {"data-dir", COLONY_CONFIG_STRING, "data/registry", 0,
     "folder for the registry's SQLite database (created if missing)", 0, 0},
    {"acl-file", COLONY_CONFIG_STRING, "", 0,
     "JSON file with ACL tokens and the anonymous policy; empty = ACLs off", 0, 0},
    {"advertise", COLONY_CONFIG_STRING, "", 0,
     "node address reported in answers; empty = the listen host (127.0.0.1 for 0.0.0.0)", 0, 0},
    {"checks.min-interval", COLONY_CONFIG_DURATION, "1s", 0,
     "shortest interval between two runs of an HTTP or TCP check (Consul: 1s)", 0, 0},
    {"checks.min-deregister", COLONY_CONFIG_DURATION, "1m", 0,
     "floor for DeregisterCriticalServiceAfter (Consul: 1m)", 0, 0},
    {"kv.tombstone-ttl", COLONY_CONFIG_DURATION, "15m", 0,
     "deleted KV keys are remembered this long for blocking queries (Consul: 15m)", 0, 0},
};

typedef struct daemon_ctx {
    registry reg;
    colony_service *svc;
    uv_signal_t sigterm, sigint;
    uv_timer_t drain_timer;
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
static void on_committed(registry *reg, int err, uint64_t index, reg_op *ops)
{
    if (err) {
        colony__reg_waiters_failed(reg);
        return;
    }
    if (index > reg->committed) reg->committed = index;
    colony__reg_waiters_committed(reg, ops);
}

/* Blocking queries would hold the drain for minutes: answer them as soon as a
 * shutdown begins (the service's own signal watcher starts the drain). */
static void on_stop_signal(uv_signal_t *sig, int signum)
{
    (void)signum;
    daemon_ctx *d = sig->data;
    d->reg.shutting_down = 1;
    colony__reg_waiters_flush(&d->reg);
}

static void free_state(registry *reg)
{
    for (size_t i = 0; i < reg->services.cap; i++)
        if (reg->services.slots[i].key) colony__reg_service_free(reg->services.slots[i].value);
    colony__map_free(&reg->services);
    colony__reg_names_free(reg);
    for (size_t i = 0; i < reg->nkv; i++) {
        colony__free(reg->kv[i]->key);
        colony__free(reg->kv[i]->value);
        colony__free(reg->kv[i]);
    }
    colony__free(reg->kv);
    colony__reg_acl_free(&reg->acl);
    colony__free(reg->node_address);
    colony__free(reg->leader);
}

static void ctx_closed(uv_handle_t *h)
{
    (void)h;
}

/* Shutdown hook: the server has drained; wait for the last batch to commit,
 * then stop checks and release everything. */
static void drain_tick(uv_timer_t *t)
{
    daemon_ctx *d = t->data;
    if (!colony__reg_store_idle(d->reg.store)) return;
    size_t lost = colony__reg_store_lost(d->reg.store);
    uv_close((uv_handle_t *)&d->drain_timer, ctx_closed);
    colony__reg_checks_stop(&d->reg);
    colony_client_close(d->reg.client, NULL, NULL);
    uv_close((uv_handle_t *)&d->sigterm, ctx_closed);
    uv_close((uv_handle_t *)&d->sigint, ctx_closed);
    colony__reg_store_close(d->reg.store);
    free_state(&d->reg);
    void (*done)(colony_service *) = d->done;
    colony_service *svc = d->svc;
    colony__free(d);
    if (!lost) COLONY_LOG_INFO("registry: state saved");
    done(svc);
}

static void on_shutdown(colony_service *svc, void (*done)(colony_service *), void *ud)
{
    (void)svc;
    daemon_ctx *d = ud;
    d->done = done;
    d->reg.shutting_down = 1;
    colony__reg_waiters_flush(&d->reg);
    colony__reg_store_shutdown(d->reg.store);
    uv_timer_init(d->reg.loop, &d->drain_timer);
    d->drain_timer.data = d;
    uv_timer_start(&d->drain_timer, drain_tick, 0, 5);
}

static void on_started(colony_service *svc, void *ud)
{
    daemon_ctx *d = ud;
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
    int rc = mkdir_p(dir);
    if (rc) {
        fprintf(stderr, "registry: cannot create data-dir %s: %s\n", dir, colony_strerror(rc));
        return rc;
    }
    rc = colony__reg_store_open(&reg->store, reg->loop, dir, msg, sizeof(msg));
    if (rc) {
        fprintf(stderr, "registry: %s\n", msg);
        return rc;
    }
    rc = colony__reg_store_load(reg->store, reg);
    if (!rc) rc = colony__reg_names_rebuild(reg);
    if (rc) {
        fprintf(stderr, "registry: cannot load %s: %s\n", dir, colony_strerror(rc));
        return rc;
    }
    colony__reg_store_set_callback(reg->store, reg, on_committed);
    colony_client_options copts;
    memset(&copts, 0, sizeof(copts));
    colony_client_options_init(&copts);
    copts.max_per_origin = 4;
    reg->client = colony_client_new(reg->loop, &copts);
    if (!reg->client) return COLONY_ENOMEM;
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
    for (size_t i = 0; i < reg->checks.cap; i++)
        if (reg->checks.slots[i].key) colony__reg_check_arm(reg, reg->checks.slots[i].value);
    colony__reg_checks_start_reaper(reg);
    uv_signal_init(reg->loop, &d->sigterm);
    uv_signal_init(reg->loop, &d->sigint);
    d->sigterm.data = d->sigint.data = d;
    uv_signal_start(&d->sigterm, on_stop_signal, SIGTERM);
    uv_signal_start(&d->sigint, on_stop_signal, SIGINT);
    rc = colony_service_on_shutdown(d->svc, on_shutdown, d);
    if (!rc) colony_service_on_started(d->svc, on_started, d);
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
    if (!d) return 1;
    d->svc = svc;
    int rc = setup(d, colony_service_config(svc));
    if (rc) {
        /* The loop has handles of a partly built daemon: close them and leave. */
        COLONY_LOG_ERROR("registry: cannot start", COLONY_LF_STR("error", colony_strerror(rc)));
        exit(rc == COLONY_EINVAL ? 2 : 1);
    }
    return colony_service_run(svc);
}
