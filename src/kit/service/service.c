/* colony_service: builds a service from its configuration and runs its
 * lifecycle (listen, signals, graceful shutdown, hooks). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "colony/policy.h"
#include "core/alloc.h"
#include "kit/service/service_internal.h"

static const colony_config_setting builtin_settings[] = {
    {"listen", COLONY_CONFIG_STRING, "127.0.0.1:8080", 0,
     "address to listen on: host:port, [v6]:port or unix:/path", 0, 0},
    {"workers", COLONY_CONFIG_INT, "1", 0, "worker threads, each with its own event loop", 1, 64},
    {"max_connections", COLONY_CONFIG_INT, "10000", 0,
     "open connections; when full the oldest idle keep-alive one is closed", 1, 10000000},
    {"max_connections_per_address", COLONY_CONFIG_INT, "256", 0,
     "open connections from one client IP; 0 = unlimited", 0, 10000000},
    {"shutdown_timeout", COLONY_CONFIG_DURATION, "10s", 1,
     "how long a graceful shutdown waits for in-flight requests", 0, 0},
    {"log.level", COLONY_CONFIG_STRING, "info", 1, "debug, info, warn or error", 0, 0},
    {"metrics.enabled", COLONY_CONFIG_BOOL, "true", 0, "serve /metrics and record request metrics",
     0, 0},
    {"tracing.enabled", COLONY_CONFIG_BOOL, "true", 0, "start a server span per request", 0, 0},
    {"tracing.sample_ratio", COLONY_CONFIG_DOUBLE, "1", 0,
     "share of new traces sampled (0..1); requests with a parent follow the parent", 0, 1},
    {"tracing.endpoint", COLONY_CONFIG_STRING, "", 0,
     "OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces; empty = no export", 0, 0},
    {"tracing.flush_interval", COLONY_CONFIG_DURATION, "5s", 0,
     "how often queued spans are exported", 1, 3600000},
    {"http.max_body", COLONY_CONFIG_SIZE, "1mb", 0, "largest request body accepted", 0, 0},
    {"http.header_timeout", COLONY_CONFIG_DURATION, "10s", 0, "time allowed to send a request head",
     0, 0},
    {"http.idle_timeout", COLONY_CONFIG_DURATION, "60s", 0, "keep-alive connection idle timeout", 0,
     0},
};
#define BUILTIN_COUNT (sizeof(builtin_settings) / sizeof(builtin_settings[0]))

static void apply_log_level(colony_service *svc)
{
    colony_log_level level;
    if (colony_log_level_parse(colony_config_get_string(svc->config, "log.level"), &level) == 0)
        colony_log_set_level(level);
}

static void on_reloaded(colony_config *cfg, void *ud)
{
    (void)cfg;
    apply_log_level(ud);
}

colony_client *colony_service_client(colony_service *svc)
{
    if (!svc->client) svc->client = colony_client_new(svc->loop, NULL);
    return svc->client;
}

static void service_free(colony_service *svc)
{
    if (!svc) return;
    /* Closed by its shutdown hook once running; still here if the service
     * never ran (it cannot have calls in progress then, so this frees it). */
    if (svc->policy) colony_policy_set_close(svc->policy, NULL, NULL);
    if (svc->server) colony_server_free(svc->server);
    colony_router_free(svc->router);
    colony_health_free(svc->health);
    colony_tracer_free(svc->tracer, 2000);
    colony_metrics_free(svc->metrics);
    colony_config_free(svc->config);
    colony__list *lists[] = {&svc->hooks, &svc->started, &svc->stopping_hooks};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        for (colony__list *n; (n = colony__list_pop_front(lists[i]));)
            colony__free(COLONY__CONTAINER_OF(n, service_callback, node));
    colony__free(svc->table);
    colony__free(svc->name);
    colony__free(svc);
}

/* The combined table: built-ins first, then the service's own settings. The
 * listen default may be overridden by the service, and a service setting
 * named like a built-in replaces it (its default and meaning: the gateway's
 * "workers" defaults to one per core and sizes its proxy). */
static colony_config_setting *build_table(const colony_service_options *o, size_t *n)
{
    colony_config_setting *t = colony__calloc(BUILTIN_COUNT + o->nsettings + 1, sizeof(*t));
    if (!t) return NULL;
    memcpy(t, builtin_settings, sizeof(builtin_settings));
    if (o->listen) t[0].default_value = o->listen;
    if (o->listen_key) {
        t[0].key = o->listen_key;
        t[0].description = "address of the service's own endpoints (/health, /ready, /metrics)";
    }
    size_t own = 0;
    for (size_t i = 0; i < o->nsettings; i++) {
        size_t j = 0;
        while (j < BUILTIN_COUNT && strcmp(t[j].key, o->settings[i].key) != 0)
            j++;
        t[j < BUILTIN_COUNT ? j : BUILTIN_COUNT + own++] = o->settings[i];
    }
    *n = BUILTIN_COUNT + own;
    return t;
}

static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    return 0;
}

static int load_config(colony_service *svc, const colony_service_options *o, size_t n,
                       FILE *err_out)
{
    svc->config = colony_config_new(svc->table, n);
    if (!svc->config) return 1;
    colony_config_options copts = {.dir = o->config_dir,
                                   .argc = o->argc > 0 ? o->argc - 1 : 0,
                                   .argv = o->argc > 0 ? o->argv + 1 : NULL,
                                   .use_environment = 1};
    colony_config_error err;
    if (colony_config_load(svc->config, &copts, &err) != 0) {
        char msg[768];
        fprintf(err_out, "%s: %s\n", svc->name, colony_config_error_format(&err, msg, sizeof(msg)));
        return 2;
    }
    apply_log_level(svc);
    return 0;
}

static double active_connections(void *ud)
{
    colony_service *svc = ud;
    colony_server_stats st;
    colony_server_get_stats(svc->server, &st);
    return (double)st.active_connections;
}

static double output_bytes_buffered(void *ud)
{
    colony_service *svc = ud;
    colony_server_stats st;
    colony_server_get_stats(svc->server, &st);
    return (double)st.output_bytes_buffered;
}

static int build_parts(colony_service *svc)
{
    svc->router = colony_router_new();
    svc->metrics = colony_metrics_new();
    svc->health = colony_health_new();
    if (!svc->router || !svc->metrics || !svc->health) return COLONY_ENOMEM;
    if (colony_config_get_bool(svc->config, "tracing.enabled")) {
        const char *endpoint = colony_config_get_string(svc->config, "tracing.endpoint");
        colony_tracer_options topts = {
            .service_name = svc->name,
            .sample_ratio = colony_config_get_double(svc->config, "tracing.sample_ratio"),
            .endpoint = endpoint && *endpoint ? endpoint : NULL,
            .flush_interval_ms =
                (uint64_t)colony_config_get_int(svc->config, "tracing.flush_interval")};
        svc->tracer = colony_tracer_new(&topts);
        if (!svc->tracer) return COLONY_ENOMEM;
    }
    colony_server_options sopts = {0};
    sopts.workers = svc->fixed_workers ? svc->fixed_workers
                                       : (unsigned)colony_config_get_int(svc->config, "workers");
    sopts.limits.max_body = (uint64_t)colony_config_get_int(svc->config, "http.max_body");
    sopts.max_connections = (unsigned)colony_config_get_int(svc->config, "max_connections");
    int64_t per_address = colony_config_get_int(svc->config, "max_connections_per_address");
    sopts.max_connections_per_address =
        per_address ? (unsigned)per_address : COLONY_SERVER_UNLIMITED;
    sopts.header_timeout_ms = (uint64_t)colony_config_get_int(svc->config, "http.header_timeout");
    sopts.idle_timeout_ms = (uint64_t)colony_config_get_int(svc->config, "http.idle_timeout");
    svc->server = colony_server_new(svc->loop, &sopts, colony_router_handle, svc->router);
    if (!svc->server) return COLONY_ENOMEM;
    colony_health_watch_server(svc->health, svc->server);
    int rc = colony__service_install_middleware(svc);
    if (!rc)
        rc = colony_router_add(svc->router, "GET", "/health", colony_health_handle_live,
                               svc->health);
    if (!rc)
        rc = colony_router_add(svc->router, "GET", "/ready", colony_health_handle_ready,
                               svc->health);
    if (!rc && colony_config_get_bool(svc->config, "metrics.enabled")) {
        rc = colony_metrics_register_process(svc->metrics);
        if (!rc)
            rc = colony_metrics_gauge_fn(svc->metrics, "http_active_connections",
                                         "Open HTTP connections.", active_connections, svc);
        if (!rc)
            rc = colony_metrics_gauge_fn(svc->metrics, "http_output_bytes_buffered",
                                         "Response bytes queued but not yet sent.",
                                         output_bytes_buffered, svc);
        if (!rc)
            rc = colony_router_add(svc->router, "GET", "/metrics", colony_metrics_handle,
                                   svc->metrics);
    }
    return rc;
}

void colony_service_options_init(colony_service_options *o)
{
    *o = (colony_service_options){.config_dir = "config", .listen = "127.0.0.1:8080"};
}

colony_service *colony_service_new(const colony_service_options *o, FILE *err_out, int *exit_code)
{
    *exit_code = 1;
    colony_service *svc = colony__calloc(1, sizeof(*svc));
    if (!svc) return NULL;
    colony__list_init(&svc->hooks);
    colony__list_init(&svc->started);
    colony__list_init(&svc->stopping_hooks);
    svc->name = colony__strdup(o->name ? o->name : "service");
    svc->loop = uv_default_loop();
    size_t n = 0;
    svc->table = svc->name ? build_table(o, &n) : NULL;
    if (!svc->table) goto fail;
    colony_log_set_service(svc->name);
    if (wants_help(o->argc, o->argv)) {
        printf("usage: %s [--KEY=VALUE ...]\n\nSettings (also from config/*.json and "
               "COLONY_* environment variables):\n",
               o->usage ? o->usage : svc->name);
        colony_config_print_help(svc->table, n, stdout);
        *exit_code = 0;
        goto fail;
    }
    int rc = load_config(svc, o, n, err_out);
    if (rc) {
        *exit_code = rc;
        goto fail;
    }
    svc->fixed_workers = o->workers;
    if (build_parts(svc)) {
        fprintf(err_out, "%s: out of memory\n", svc->name);
        goto fail;
    }
    return svc;
fail:
    service_free(svc);
    return NULL;
}

colony_router *colony_service_router(colony_service *svc)
{
    return svc->router;
}

colony_config *colony_service_config(colony_service *svc)
{
    return svc->config;
}

colony_metrics *colony_service_metrics(colony_service *svc)
{
    return svc->metrics;
}

colony_health *colony_service_health(colony_service *svc)
{
    return svc->health;
}

colony_tracer *colony_service_tracer(colony_service *svc)
{
    return svc->tracer;
}

uv_loop_t *colony_service_loop(colony_service *svc)
{
    return svc->loop;
}

int colony_service_port(colony_service *svc)
{
    return svc->server ? colony_server_port(svc->server) : 0;
}

static service_callback *add_callback(colony__list *list, int first, void *ud)
{
    service_callback *c = colony__calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->ud = ud;
    if (first)
        colony__list_push_front(list, &c->node);
    else
        colony__list_push_back(list, &c->node);
    return c;
}

int colony_service_on_shutdown(colony_service *svc, colony_service_hook_cb hook, void *ud)
{
    service_callback *c = add_callback(&svc->hooks, 1, ud);
    if (!c) return COLONY_ENOMEM;
    c->fn.hook = hook;
    return 0;
}

int colony_service_on_started(colony_service *svc, colony_service_started_cb cb, void *ud)
{
    service_callback *c = add_callback(&svc->started, 0, ud);
    if (!c) return COLONY_ENOMEM;
    c->fn.started = cb;
    return 0;
}

int colony_service_on_stopping(colony_service *svc, colony_service_stopping_cb cb, void *ud)
{
    service_callback *c = add_callback(&svc->stopping_hooks, 0, ud);
    if (!c) return COLONY_ENOMEM;
    c->fn.stopping = cb;
    return 0;
}

/* The end of every shutdown, graceful or after a failed listen: closes the
 * main-loop client, the signal watchers (when run got that far) and the
 * configuration watch, so the loop has nothing left and uv_run returns. */
static void close_signals(colony_service *svc)
{
    if (svc->client) colony_client_close(svc->client, NULL, NULL);
    svc->client = NULL;
    if (svc->signals_open) {
        uv_close((uv_handle_t *)&svc->sigterm, NULL);
        uv_close((uv_handle_t *)&svc->sigint, NULL);
        svc->signals_open = 0;
    }
    colony_config_unwatch(svc->config);
}

/* Runs the shutdown hooks one after another (each may be asynchronous). */
static void run_next_hook(colony_service *svc)
{
    colony__list *n = svc->next_hook;
    if (n == &svc->hooks) {
        COLONY_LOG_INFO("stopped");
        close_signals(svc);
        return;
    }
    svc->next_hook = n->next;
    service_callback *h = COLONY__CONTAINER_OF(n, service_callback, node);
    h->fn.hook(svc, run_next_hook, h->ud);
}

static void on_server_closed(colony_server *srv, void *ud)
{
    (void)srv;
    colony_service *svc = ud;
    svc->next_hook = svc->hooks.next;
    run_next_hook(svc);
}

/* The start of every shutdown: not ready any more, then the stopping hooks,
 * once. Returns 0 if a shutdown had already begun. */
static int begin_shutdown(colony_service *svc)
{
    if (svc->stopping) return 0;
    svc->stopping = 1;
    colony_health_set_ready(svc->health, 0);
    colony__list *n, *tmp;
    COLONY__LIST_FOREACH_SAFE(n, tmp, &svc->stopping_hooks)
    {
        service_callback *c = COLONY__CONTAINER_OF(n, service_callback, node);
        c->fn.stopping(svc, c->ud);
    }
    return 1;
}

void colony_service_stop(colony_service *svc)
{
    if (!begin_shutdown(svc)) return;
    uint64_t deadline = (uint64_t)colony_config_get_int(svc->config, "shutdown_timeout");
    COLONY_LOG_INFO("shutting down", COLONY_LF_INT("deadline_ms", deadline));
    colony_server_shutdown(svc->server, deadline, on_server_closed, svc);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    colony_service *svc = sig->data;
    COLONY_LOG_INFO("signal", COLONY_LF_STR("signal", signum == SIGTERM ? "SIGTERM" : "SIGINT"));
    colony_service_stop(svc);
}

/* Runs the loop until the shutdown finishes, frees the service and closes the
 * default loop; returns exit_code, or 1 when a handle was left open. */
static int run_to_end(colony_service *svc, int exit_code)
{
    uv_run(svc->loop, UV_RUN_DEFAULT);
    service_free(svc);
    int rc = uv_loop_close(uv_default_loop());
    if (rc) {
        COLONY_LOG_ERROR("event loop still has open handles at exit",
                         COLONY_LF_STR("error", colony_strerror(rc)));
        return 1;
    }
    return exit_code;
}

/* The same teardown as a graceful stop, hooks included: they release what
 * the service set up before run. There is nothing to drain. */
int colony_service_discard(colony_service *svc, int exit_code)
{
    begin_shutdown(svc);
    colony_server_shutdown(svc->server, 0, on_server_closed, svc);
    return run_to_end(svc, exit_code);
}

int colony_service_run(colony_service *svc)
{
    const char *listen = colony_config_get_string(svc->config, svc->table[0].key);
    int rc = colony_server_listen(svc->server, listen);
    if (rc) {
        COLONY_LOG_ERROR("cannot listen", COLONY_LF_STR("address", listen),
                         COLONY_LF_STR("error", colony_strerror(rc)));
        return colony_service_discard(svc, 1);
    }
    uv_signal_init(svc->loop, &svc->sigterm);
    uv_signal_init(svc->loop, &svc->sigint);
    svc->signals_open = 1;
    svc->sigterm.data = svc->sigint.data = svc;
    uv_signal_start(&svc->sigterm, on_signal, SIGTERM);
    uv_signal_start(&svc->sigint, on_signal, SIGINT);
    colony_config_watch(svc->config, svc->loop, on_reloaded, svc);
    COLONY_LOG_INFO("listening", COLONY_LF_STR("address", listen),
                    COLONY_LF_INT("port", colony_server_port(svc->server)),
                    COLONY_LF_INT("workers", svc->fixed_workers
                                                 ? (long long)svc->fixed_workers
                                                 : colony_config_get_int(svc->config, "workers")));
    colony__list *n, *tmp;
    COLONY__LIST_FOREACH_SAFE(n, tmp, &svc->started)
    {
        service_callback *c = COLONY__CONTAINER_OF(n, service_callback, node);
        c->fn.started(svc, c->ud);
    }
    return run_to_end(svc, 0);
}
