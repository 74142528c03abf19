/* A colony_service registering itself: settings, registration once the
 * server listens (TTL heartbeat or an HTTP check on /health, retried with
 * backoff while the registry is unreachable) and deregistration first thing
 * during graceful shutdown. */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "kit/discovery/discovery_internal.h"
#include "kit/service/service_internal.h"

#define MAX_TAGS 64
#define MAX_META 64

const colony_config_setting colony_registry_settings[] = {
    {"registry.url", COLONY_CONFIG_STRING, "", 0,
     "registry to register with, e.g. http://127.0.0.1:8500 (COLONY_REGISTRY_URL); empty = none", 0,
     0},
    {"registry.enabled", COLONY_CONFIG_BOOL, "true", 0, "register this service with the registry",
     0, 0},
    {"registry.token", COLONY_CONFIG_STRING, "", 0, "ACL token sent as X-Consul-Token", 0, 0},
    {"registry.check", COLONY_CONFIG_STRING, "ttl", 0,
     "health check: ttl (the service heartbeats) or http (the registry polls /health)", 0, 0},
    {"registry.ttl", COLONY_CONFIG_DURATION, "10s", 0,
     "TTL check: critical after this long without a heartbeat (sent every ttl/3)", 1, 86400000},
    {"registry.interval", COLONY_CONFIG_DURATION, "10s", 0, "HTTP check: how often it runs", 1,
     86400000},
    {"registry.deregister_after", COLONY_CONFIG_DURATION, "0", 0,
     "remove the instance after it was critical this long; 0 = never", 0, 0},
    {"service.id", COLONY_CONFIG_STRING, "", 0, "instance id; empty = name-address-port", 0, 0},
    {"service.address", COLONY_CONFIG_STRING, "", 0,
     "address others reach this instance at; empty = the listen host (or a local interface)", 0, 0},
    {"service.tags", COLONY_CONFIG_STRING, "", 0, "comma-separated tags", 0, 0},
    {"service.meta", COLONY_CONFIG_STRING, "", 0, "comma-separated key=value metadata", 0, 0},
    {"service.version", COLONY_CONFIG_STRING, "", 0, "version, registered as meta \"version\"", 0,
     0},
    {"service.weight", COLONY_CONFIG_INT, "1", 0, "load-balancing weight", 1,
     COLONY_BALANCE_MAX_WEIGHT},
};
const size_t colony_registry_settings_count =
    sizeof(colony_registry_settings) / sizeof(colony_registry_settings[0]);

typedef struct self_registration {
    colony_service *svc;
    colony_registry_client *registry;
    colony_registration reg;
    char name[256], id[640], address[256], http_url[600];
    char tag_text[1024], meta_text[2048];
    const char *tags[MAX_TAGS];
    const char *meta[2 * MAX_META];
    uv_timer_t retry; /* HTTP-check registrations retry through this timer */
    unsigned failures;
    int registered, shutting_down, pending_closes;
    void (*done)(colony_service *);
} self_registration;

/* Splits text in place at commas into trimmed, non-empty items. */
static size_t split_list(char *text, const char **items, size_t max)
{
    size_t n = 0;
    for (char *p = text; p && *p && n < max;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        while (*p == ' ')
            p++;
        char *end = p + strlen(p);
        while (end > p && end[-1] == ' ')
            *--end = '\0';
        if (*p) items[n++] = p;
        p = comma ? comma + 1 : NULL;
    }
    return n;
}

/* The host others should use: service.address, else the listen host, else
 * (wildcard listen) the first external IPv4 interface, else 127.0.0.1. */
static int pick_address(colony_config *cfg, char *out, size_t size)
{
    const char *configured = colony_config_get_string(cfg, "service.address");
    if (configured && *configured) {
        snprintf(out, size, "%s", configured);
        return 0;
    }
    const char *listen = colony_config_get_string(cfg, "listen");
    if (!listen || strncmp(listen, "unix:", 5) == 0) return COLONY_ENOTSUP;
    const char *start = listen, *end = strrchr(listen, ':');
    if (*listen == '[') {
        start = listen + 1;
        end = strchr(start, ']');
    }
    if (!end) end = listen + strlen(listen);
    snprintf(out, size, "%.*s", (int)(end - start), start);
    if (*out && strcmp(out, "0.0.0.0") != 0 && strcmp(out, "::") != 0) return 0;
    snprintf(out, size, "127.0.0.1");
    uv_interface_address_t *ifs;
    int count;
    if (uv_interface_addresses(&ifs, &count) == 0) {
        for (int i = 0; i < count; i++) {
            if (ifs[i].is_internal || ifs[i].address.address4.sin_family != AF_INET) continue;
            uv_ip4_name(&ifs[i].address.address4, out, size);
            break;
        }
        uv_free_interface_addresses(ifs, count);
    }
    return 0;
}

static void fill_meta(self_registration *s, colony_config *cfg)
{
    snprintf(s->meta_text, sizeof(s->meta_text), "%s",
             colony_config_get_string(cfg, "service.meta"));
    const char *pairs[MAX_META];
    size_t n = split_list(s->meta_text, pairs, MAX_META - 1), m = 0;
    for (size_t i = 0; i < n; i++) {
        char *eq = strchr(pairs[i], '=');
        if (!eq || eq == pairs[i]) {
            COLONY_LOG_WARN("registry: service.meta item is not key=value; skipped",
                            COLONY_LF_STR("item", pairs[i]));
            continue;
        }
        *eq = '\0';
        s->meta[2 * m] = pairs[i];
        s->meta[2 * m + 1] = eq + 1;
        m++;
    }
    const char *version = colony_config_get_string(cfg, "service.version");
    if (version && *version) {
        s->meta[2 * m] = "version";
        s->meta[2 * m + 1] = version;
        m++;
    }
    s->reg.meta = s->meta;
    s->reg.nmeta = m;
}

static int build_registration(self_registration *s, colony_config *cfg, int port)
{
    snprintf(s->name, sizeof(s->name), "%s", s->svc->name);
    int rc = pick_address(cfg, s->address, sizeof(s->address));
    if (rc) return rc;
    const char *id = colony_config_get_string(cfg, "service.id");
    if (id && *id)
        snprintf(s->id, sizeof(s->id), "%s", id);
    else
        snprintf(s->id, sizeof(s->id), "%s-%s-%d", s->name, s->address, port);
    snprintf(s->tag_text, sizeof(s->tag_text), "%s", colony_config_get_string(cfg, "service.tags"));
    s->reg.tags = s->tags;
    s->reg.ntags = split_list(s->tag_text, s->tags, MAX_TAGS);
    fill_meta(s, cfg);
    s->reg.name = s->name;
    s->reg.id = s->id;
    s->reg.address = s->address;
    s->reg.port = port;
    s->reg.weight = (uint32_t)colony_config_get_int(cfg, "service.weight");
    s->reg.deregister_critical_after_ms =
        (uint64_t)colony_config_get_int(cfg, "registry.deregister_after");
    if (strcmp(colony_config_get_string(cfg, "registry.check"), "http") == 0) {
        int v6 = strchr(s->address, ':') != NULL;
        snprintf(s->http_url, sizeof(s->http_url),
                 v6 ? "http://[%s]:%d/health" : "http://%s:%d/health", s->address, port);
        s->reg.check = COLONY_CHECK_HTTP;
        s->reg.http_url = s->http_url;
        s->reg.interval_ms = (uint64_t)colony_config_get_int(cfg, "registry.interval");
    } else {
        s->reg.check = COLONY_CHECK_TTL;
        s->reg.ttl_ms = (uint64_t)colony_config_get_int(cfg, "registry.ttl");
        s->reg.heartbeat = 1; /* the heartbeat also retries the registration */
    }
    return 0;
}

static void send_registration(self_registration *s);

static void on_retry_timer(uv_timer_t *t)
{
    send_registration(t->data);
}

static void on_registered(int err, void *ud)
{
    self_registration *s = ud;
    if (err == COLONY_ECANCELED || s->shutting_down) return;
    if (!err) {
        s->registered = 1;
        s->failures = 0;
        COLONY_LOG_INFO("registered with the registry", COLONY_LF_STR("service_id", s->id),
                        COLONY_LF_STR("address", s->address), COLONY_LF_INT("port", s->reg.port));
        return;
    }
    s->failures++;
    if (s->failures == 1)
        COLONY_LOG_WARN("registration failed; retrying", COLONY_LF_STR("service_id", s->id),
                        COLONY_LF_STR("error", colony_strerror(err)));
    if (s->reg.check != COLONY_CHECK_TTL) /* the TTL heartbeat retries on its own */
        uv_timer_start(&s->retry, on_retry_timer,
                       colony__registry_backoff(s->registry, s->failures), 0);
}

static void send_registration(self_registration *s)
{
    int rc = colony_registry_client_register(s->registry, &s->reg, on_registered, s);
    if (rc) {
        COLONY_LOG_ERROR("cannot register", COLONY_LF_STR("service_id", s->id),
                         COLONY_LF_STR("error", colony_strerror(rc)));
    }
}

static void finish_shutdown(self_registration *s)
{
    if (--s->pending_closes > 0) return;
    colony_service *svc = s->svc;
    void (*done)(colony_service *) = s->done;
    colony__free(s);
    done(svc);
}

static void on_registry_closed(void *ud)
{
    finish_shutdown(ud);
}

static void on_retry_closed(uv_handle_t *h)
{
    finish_shutdown(h->data);
}

static void on_deregistered(int err, void *ud)
{
    self_registration *s = ud;
    if (err)
        COLONY_LOG_WARN("deregistration failed", COLONY_LF_STR("service_id", s->id),
                        COLONY_LF_STR("error", colony_strerror(err)));
    else
        COLONY_LOG_INFO("deregistered from the registry", COLONY_LF_STR("service_id", s->id));
    colony_registry_client_close(s->registry, on_registry_closed, s);
}

/* Shutdown hook: deregister, then close the registry handle and the timer. */
static void on_shutdown(colony_service *svc, void (*done)(colony_service *), void *ud)
{
    (void)svc;
    self_registration *s = ud;
    s->shutting_down = 1;
    s->done = done;
    s->pending_closes = 2;
    uv_close((uv_handle_t *)&s->retry, on_retry_closed);
    if (colony_registry_client_deregister(s->registry, s->id, on_deregistered, s) != 0)
        colony_registry_client_close(s->registry, on_registry_closed, s);
}

static void on_started(colony_service *svc, void *ud)
{
    (void)ud;
    colony_config *cfg = colony_service_config(svc);
    self_registration *s = colony__calloc(1, sizeof(*s));
    if (!s) {
        COLONY_LOG_ERROR("registry: out of memory; not registering");
        return;
    }
    s->svc = svc;
    int rc = build_registration(s, cfg, colony_service_port(svc));
    if (!rc) {
        const char *token = colony_config_get_string(cfg, "registry.token");
        colony_registry_client_options opts = {.url = colony_config_get_string(cfg, "registry.url"),
                                               .token = token,
                                               .timeout_ms = 2000};
        s->registry = colony_registry_client_new(colony_service_loop(svc), &opts);
        rc = s->registry ? 0 : COLONY_EINVAL;
    }
    if (!rc) rc = colony_service_on_shutdown(svc, on_shutdown, s);
    if (rc) {
        COLONY_LOG_ERROR("registry: not registering", COLONY_LF_STR("error", colony_strerror(rc)));
        if (s->registry) colony_registry_client_close(s->registry, NULL, NULL);
        colony__free(s);
        return;
    }
    uv_timer_init(colony_service_loop(svc), &s->retry);
    s->retry.data = s;
    send_registration(s);
}

int colony_service_enable_registry(colony_service *svc)
{
    colony_config *cfg = svc ? colony_service_config(svc) : NULL;
    const char *url = cfg ? colony_config_get_string(cfg, "registry.url") : NULL;
    const char *check = cfg ? colony_config_get_string(cfg, "registry.check") : NULL;
    if (!url || !check) {
        COLONY_LOG_ERROR("registry settings missing: pass colony_registry_settings in "
                         "colony_service_options.settings");
        return COLONY_EINVAL;
    }
    if (strcmp(check, "ttl") != 0 && strcmp(check, "http") != 0) {
        COLONY_LOG_ERROR("registry.check must be ttl or http", COLONY_LF_STR("value", check));
        return COLONY_EINVAL;
    }
    if (!*url || !colony_config_get_bool(cfg, "registry.enabled")) return 0;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "http+unix://", 12) != 0) {
        COLONY_LOG_ERROR("registry.url must be an http:// URL", COLONY_LF_STR("value", url));
        return COLONY_EINVAL;
    }
    return colony_service_on_started(svc, on_started, NULL);
}
