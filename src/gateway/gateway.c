/* `colony gateway`: the daemon. A colony_service serves the admin API
 * (/health, /ready, /metrics, /gateway/...) on the loopback; a second server on
 * the same loop is the proxy. Routes come from a routes file (reloaded on
 * SIGHUP, on change and by POST /gateway/reload) or from --route flags. */
#include "gateway/gateway.h"
#include <stdio.h>
#include <string.h>
#include "colony/colony.h"
#include "core/alloc.h"
#include "gateway/daemon.h"
#include "gateway/proxy.h"
#include "gateway/worker.h"

static const colony_config_setting gateway_settings[] = {
    {"listen", COLONY_CONFIG_STRING, "0.0.0.0:8000", 0,
     "proxy address (Kong's proxy port): host:port, [v6]:port or unix:/path", 0, 0},
    {"routes", COLONY_CONFIG_STRING, "", 0,
     "routes file (JSON: routes and upstreams; see docs/gateway.md); reloaded on SIGHUP and "
     "change",
     0, 0},
    {"registry", COLONY_CONFIG_STRING, "http://127.0.0.1:8500", 0,
     "registry URL for upstreams that name a service", 0, 0},
    {"admin.token", COLONY_CONFIG_STRING, "", 0,
     "bearer token required by /gateway/... on the admin listener; empty = none", 0, 0},
    {"workers", COLONY_CONFIG_INT, "0", 0,
     "proxy worker threads, each a loop with its own SO_REUSEPORT listener; 0 = one per core "
     "(the admin API runs on the main loop)",
     0, GW_MAX_WORKERS},
    {"access-log", COLONY_CONFIG_BOOL, "true", 1, "one JSON log line per proxied request", 0, 0},
    {"proxy.max_body", COLONY_CONFIG_SIZE, "8mb", 0,
     "largest request body forwarded, streamed or not; 0 = no limit", 0, 0},
    {"proxy.idle_timeout", COLONY_CONFIG_DURATION, "60s", 0,
     "keep-alive client connection idle timeout", 0, 0},
    {"proxy.tunnel_idle_timeout", COLONY_CONFIG_DURATION, "5m", 0,
     "a WebSocket tunnel with no byte either way for this long is closed", 0, 0},
    {"proxy.max_connections", COLONY_CONFIG_INT, "10000", 0, "client connections at once", 1,
     1000000},
    {"proxy.max_connections_per_address", COLONY_CONFIG_INT, "256", 0,
     "client connections from one address at once; 0 = no limit", 0, 1000000},
};

/* The gateway's own arguments, taken out before the service sees argv. */
typedef struct gateway_args {
    const char **routes; /* --route PATH=URL */
    size_t nroutes;
    const char *check; /* --check FILE */
    char **rest;       /* argv for the service */
    int nrest;
} gateway_args;

static int take_value(int argc, char **argv, int *i, const char *flag, const char **out)
{
    size_t len = strlen(flag);
    if (strncmp(argv[*i], flag, len) != 0) return 0;
    if (argv[*i][len] == '=') {
        *out = argv[*i] + len + 1;
        return 1;
    }
    if (argv[*i][len] != '\0') return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "gateway: %s needs a value\n", flag);
        return -1;
    }
    *out = argv[++*i];
    return 1;
}

static int parse_args(int argc, char **argv, gateway_args *a)
{
    a->routes = colony__calloc((size_t)argc, sizeof(char *));
    a->rest = colony__calloc((size_t)argc + 1, sizeof(char *));
    if (!a->routes || !a->rest) return COLONY_ENOMEM;
    a->rest[a->nrest++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int got = take_value(argc, argv, &i, "--route", &v);
        if (got > 0) {
            a->routes[a->nroutes++] = v;
            continue;
        }
        if (got == 0) got = take_value(argc, argv, &i, "--check", &a->check);
        if (got < 0) return COLONY_EINVAL;
        if (got == 0) a->rest[a->nrest++] = argv[i];
    }
    return 0;
}

static void print_error(const colony_config_error *err)
{
    char text[768];
    fprintf(stderr, "gateway: %s\n", colony_config_error_format(err, text, sizeof(text)));
}

static int check_only(const char *file)
{
    gw_config *cfg;
    colony_config_error err;
    if (colony__gw_config_load(file, &cfg, &err)) {
        print_error(&err);
        return 2;
    }
    printf("%s: %zu routes, %zu upstreams: ok\n", file, cfg->nroutes, cfg->nupstreams);
    colony__gw_config_unref(cfg);
    return 0;
}

static int run(gateway_args *a)
{
    int code = 1;
    colony_service_options o;
    colony_service_options_init(&o);
    o.name = "gateway";
    o.settings = gateway_settings;
    o.nsettings = sizeof(gateway_settings) / sizeof(gateway_settings[0]);
    o.argc = a->nrest;
    o.argv = a->rest;
    o.listen = "127.0.0.1:8001";
    o.listen_key = "admin-listen";
    /* The admin API stays on the main loop; the proxy server has its own
     * workers ("workers"; docs/gateway.md, "Threads"). */
    o.workers = 1;
    o.usage = "colony gateway [--route PATH=URL ...] [--check FILE]";
    colony_service *svc = colony_service_new(&o, stderr, &code);
    if (!svc) return code;
    gw_daemon *d = colony__calloc(1, sizeof(*d));
    int rc = d ? colony__gw_daemon_setup(d, svc, a->routes, a->nroutes) : COLONY_ENOMEM;
    if (rc == COLONY_EINVAL) print_error(&d->last_error);
    int run_rc =
        rc ? colony_service_discard(svc, rc == COLONY_EINVAL ? 2 : 1) : colony_service_run(svc);
    colony__free(d);
    return run_rc;
}

int colony_gateway_main(int argc, char **argv)
{
    gateway_args a = {0};
    int rc = parse_args(argc, argv, &a);
    int code = rc == COLONY_EINVAL ? 2 : rc ? 1 : -1;
    if (code < 0 && a.check) code = check_only(a.check);
    if (code < 0) code = run(&a);
    colony__free(a.routes);
    colony__free(a.rest);
    return code;
}
