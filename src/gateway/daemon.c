/* Gateway lifecycle (daemon.h). */
#include "gateway/daemon.h"
#include <stdio.h>
#include <string.h>
#include "colony/log.h"
#include "gateway/upload.h"

static int needs_registry(const gw_config *cfg)
{
    for (size_t i = 0; i < cfg->nupstreams; i++)
        if (cfg->upstreams[i].service) return 1;
    return 0;
}

static int load_config(gw_daemon *d, gw_config **out)
{
    if (d->routes_file) return colony__gw_config_load(d->routes_file, out, &d->last_error);
    return colony__gw_config_quick(d->quick_routes, d->nquick, out, &d->last_error);
}

/* Builds a runtime for cfg (creating the registry client on first need) and
 * makes it the one new requests take. Drops the caller's config reference. */
static int install(gw_daemon *d, gw_config *cfg)
{
    int rc = 0;
    if (needs_registry(cfg) && !d->registry) {
        colony_config *conf = colony_service_config(d->svc);
        colony_registry_client_options o;
        colony_registry_client_options_init(&o);
        o.url = colony_config_get_string(conf, "registry");
        d->registry = colony_registry_client_new(d->loop, &o);
        if (!d->registry) rc = COLONY_ENOMEM;
    }
    gw_runtime *rt = NULL;
    if (!rc)
        rc = colony__gw_runtime_new(d->loop, cfg, d->registry, d->generation + 1, d->proxy.current,
                                    &rt);
    colony__gw_config_unref(cfg);
    if (rc) return rc;
    d->generation++;
    colony__gw_proxy_install(&d->proxy, rt);
    return 0;
}

static void log_refused(const colony_config_error *err)
{
    char text[768];
    COLONY_LOG_ERROR("routes refused, keeping the running routes",
                     COLONY_LF_STR("error", colony_config_error_format(err, text, sizeof(text))),
                     COLONY_LF_STR("file", err->file), COLONY_LF_INT("line", err->line),
                     COLONY_LF_STR("key", err->key), COLONY_LF_STR("reason", err->reason));
}

int colony__gw_daemon_reload(gw_daemon *d)
{
    gw_config *cfg;
    int rc = load_config(d, &cfg);
    if (!rc) rc = install(d, cfg);
    if (rc) {
        d->reloads_failed++;
        if (rc != COLONY_EINVAL) {
            snprintf(d->last_error.reason, sizeof(d->last_error.reason), "%s", colony_strerror(rc));
            rc = COLONY_EINVAL;
        }
        log_refused(&d->last_error);
        return rc;
    }
    d->reloads++;
    const gw_config *now = d->proxy.current->cfg;
    if (d->listen_cfg) colony__gw_listeners_update(&d->listen_cfg->listeners, &now->listeners);
    COLONY_LOG_INFO("routes loaded", COLONY_LF_INT("routes", (long long)now->nroutes),
                    COLONY_LF_INT("upstreams", (long long)now->nupstreams),
                    COLONY_LF_INT("generation", (long long)d->generation));
    return 0;
}

static void on_reload_trigger(void *ud)
{
    colony__gw_daemon_reload(ud);
}

static void proxy_ready(colony_health_probe *probe, void *ud)
{
    gw_daemon *d = ud;
    int ok =
        d->proxy.current && d->proxy_server && !colony_server_is_shutting_down(d->proxy_server);
    colony_health_probe_done(probe, ok, NULL, ok ? NULL : "the proxy is not serving");
}

/* ---- shutdown: proxy server, then its client and the registry ----
 * The proxy drains from the moment a shutdown begins (the stopping hook),
 * alongside the admin server; the shutdown hook waits for it to finish. */

static void proxy_finished(gw_daemon *d)
{
    d->proxy_done = 1;
    if (d->done) d->done(d->svc);
}

static void registry_closed(void *ud)
{
    proxy_finished(ud);
}

static void proxy_closed(void *ud)
{
    gw_daemon *d = ud;
    if (d->registry) {
        colony_registry_client *r = d->registry;
        d->registry = NULL;
        colony_registry_client_close(r, registry_closed, d);
        return;
    }
    proxy_finished(d);
}

static void proxy_server_closed(colony_server *srv, void *ud)
{
    gw_daemon *d = ud;
    if (srv) colony_server_free(srv);
    d->proxy_server = NULL;
    colony__gw_config_unref(d->listen_cfg);
    d->listen_cfg = NULL;
    if (d->proxy_ready) {
        d->proxy_ready = 0;
        colony__gw_proxy_close(&d->proxy, proxy_closed, d);
        return;
    }
    proxy_closed(d);
}

static void on_stopping(colony_service *svc, void *ud)
{
    gw_daemon *d = ud;
    colony_reload_watch_stop(d->watch);
    d->watch = NULL;
    if (d->proxy_ready) colony__gw_proxy_stop_workers(&d->proxy);
    if (d->proxy_server) {
        uint64_t deadline =
            (uint64_t)colony_config_get_int(colony_service_config(svc), "shutdown_timeout");
        colony_server_shutdown(d->proxy_server, deadline, proxy_server_closed, d);
        return;
    }
    proxy_server_closed(NULL, d);
}

static void on_shutdown(colony_service *svc, void (*done)(colony_service *), void *ud)
{
    gw_daemon *d = ud;
    if (d->proxy_done) {
        done(svc);
        return;
    }
    d->done = done;
}

/* ---- setup ---- */

static int start_proxy_server(gw_daemon *d, colony_config *conf)
{
    colony_server_options so;
    memset(&so, 0, sizeof(so));
    colony_server_options_init(&so);
    so.workers = d->workers;
    so.limits.max_body = (uint64_t)colony_config_get_int(conf, "proxy.max_body");
    so.idle_timeout_ms = (uint64_t)colony_config_get_int(conf, "proxy.idle_timeout");
    so.tunnel_idle_timeout_ms = (uint64_t)colony_config_get_int(conf, "proxy.tunnel_idle_timeout");
    so.max_connections = (unsigned)colony_config_get_int(conf, "proxy.max_connections");
    int64_t per_address = colony_config_get_int(conf, "proxy.max_connections_per_address");
    so.max_connections_per_address = per_address ? (unsigned)per_address : COLONY_SERVER_UNLIMITED;
    d->proxy_server = colony_server_new(d->loop, &so, colony__gw_proxy_handle, &d->proxy);
    if (!d->proxy_server) return COLONY_ENOMEM;
    d->proxy.max_body = so.limits.max_body;
    colony_server_set_head_hook(d->proxy_server, colony__gw_upload_head, &d->proxy);
    const char *listen = colony_config_get_string(conf, "listen");
    int rc = colony_server_listen(d->proxy_server, listen);
    if (rc) {
        COLONY_LOG_ERROR("cannot listen", COLONY_LF_STR("address", listen),
                         COLONY_LF_STR("error", colony_strerror(rc)));
        return rc;
    }
    COLONY_LOG_INFO("proxy listening", COLONY_LF_STR("address", listen),
                    COLONY_LF_INT("port", colony_server_port(d->proxy_server)));
    d->listen_cfg = colony__gw_config_ref(d->proxy.current->cfg);
    return colony__gw_listeners_start(&d->listen_cfg->listeners, d->proxy_server);
}

int colony__gw_daemon_setup(gw_daemon *d, colony_service *svc, const char *const *routes,
                            size_t nroutes)
{
    d->svc = svc;
    d->loop = colony_service_loop(svc);
    colony_config *conf = colony_service_config(svc);
    int rc = colony_service_on_stopping(svc, on_stopping, d);
    if (!rc) rc = colony_service_on_shutdown(svc, on_shutdown, d);
    if (rc) return rc;
    const char *file = colony_config_get_string(conf, "routes");
    const char *token = colony_config_get_string(conf, "admin.token");
    d->token = token && *token ? token : NULL;
    d->routes_file = file && *file ? file : NULL;
    int64_t workers = colony_config_get_int(conf, "workers");
    if (workers <= 0) workers = (int64_t)uv_available_parallelism();
    d->workers = (unsigned)(workers < 1 ? 1 : workers > GW_MAX_WORKERS ? GW_MAX_WORKERS : workers);
    d->quick_routes = routes;
    d->nquick = nroutes;
    if (d->routes_file && nroutes) {
        snprintf(d->last_error.file, sizeof(d->last_error.file), "command line");
        snprintf(d->last_error.reason, sizeof(d->last_error.reason),
                 "give a routes file (--routes FILE) or --route PATH=URL, not both");
        return COLONY_EINVAL;
    }
    if (!d->routes_file && !nroutes) {
        snprintf(d->last_error.file, sizeof(d->last_error.file), "command line");
        snprintf(d->last_error.reason, sizeof(d->last_error.reason),
                 "no routes: give --routes FILE or --route PATH=URL");
        return COLONY_EINVAL;
    }
    rc = colony__gw_proxy_init(&d->proxy, d->loop, colony_service_metrics(svc),
                               colony_config_get_bool(conf, "access-log"));
    if (rc) return rc;
    d->proxy_ready = 1;
    d->proxy.tracer = colony_service_tracer(svc);
    gw_config *cfg;
    rc = load_config(d, &cfg);
    if (!rc) rc = install(d, cfg);
    if (rc) return rc;
    rc = colony_health_add(colony_service_health(svc), "proxy", COLONY_HEALTH_READINESS,
                           proxy_ready, d, 0);
    if (!rc) rc = colony__gw_admin_routes(d, colony_service_router(svc));
    if (!rc) rc = start_proxy_server(d, conf);
    if (!rc && d->routes_file)
        rc =
            colony_reload_watch_start(d->loop, &d->routes_file, 1, on_reload_trigger, d, &d->watch);
    return rc;
}
