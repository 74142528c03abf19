/* Active health checks (active_health.h). Probes are keyed by endpoint id and
 * address: an instance that moves to another address is a new endpoint in the
 * balancer and gets a new probe. */
#include "gateway/active_health.h"
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "core/map.h"
#include "gateway/forward.h"

typedef struct gw_checked {
    gw_active *owner;
    colony_probe *probe;
    char *id;      /* the endpoint's id */
    char *address; /* and address */
    char *reason;  /* the output of the run that took it out of rotation; NULL while up */
    int https;     /* probed over TLS (colony__gw_endpoint_https) */
    int seen;      /* still in the set (during a sync) */
} gw_checked;

struct gw_active {
    colony_prober *prober;
    colony_balancer *balancer; /* its set changes only on this loop; up/down under lock */
    uv_mutex_t *lock;
    const gw_upstream *up; /* its TLS settings */
    const gw_active_health *conf;
    const char *name;
    colony__map probes; /* "id\naddress" -> gw_checked */
};

static colony_endpoint *endpoint_of(const gw_checked *c)
{
    colony_endpoint *ep = colony_balancer_find(c->owner->balancer, c->id);
    return ep && strcmp(colony_endpoint_address(ep), c->address) == 0 ? ep : NULL;
}

static void status_changed(colony_probe *p, const colony_probe_result *r, void *ud)
{
    (void)p;
    gw_checked *c = ud;
    int down = r->status == COLONY_PROBE_CRITICAL;
    colony_endpoint *ep = endpoint_of(c);
    if (ep) {
        uv_mutex_lock(c->owner->lock);
        colony_endpoint_set_down(ep, down);
        uv_mutex_unlock(c->owner->lock);
    }
    colony__free(c->reason);
    c->reason = down && r->output ? colony__strdup(r->output) : NULL;
    if (down)
        COLONY_LOG_WARN("instance failed its health check: out of rotation",
                        COLONY_LF_STR("upstream", c->owner->name), COLONY_LF_STR("id", c->id),
                        COLONY_LF_STR("address", c->address),
                        COLONY_LF_STR("output", r->output ? r->output : ""));
    else
        COLONY_LOG_INFO("instance passes its health check: back in rotation",
                        COLONY_LF_STR("upstream", c->owner->name), COLONY_LF_STR("id", c->id),
                        COLONY_LF_STR("address", c->address));
}

static void checked_free(gw_checked *c)
{
    if (c->probe) colony_probe_close(c->probe, NULL, NULL);
    colony__free(c->id);
    colony__free(c->address);
    colony__free(c->reason);
    colony__free(c);
}

static int start_probe(gw_active *a, colony_endpoint *ep, const char *key)
{
    gw_checked *c = colony__calloc(1, sizeof(*c));
    if (!c) return COLONY_ENOMEM;
    c->owner = a;
    c->seen = 1;
    c->id = colony__strdup(colony_endpoint_id(ep));
    c->address = colony__strdup(colony_endpoint_address(ep));
    c->https = colony__gw_endpoint_https(a->up, ep);
    size_t url_len =
        strlen("https://") + strlen(colony_endpoint_address(ep)) + strlen(a->conf->path);
    char *url = colony__malloc(url_len + 1);
    int rc = c->id && c->address && url ? 0 : COLONY_ENOMEM;
    if (!rc) {
        snprintf(url, url_len + 1, "%s://%s%s", c->https ? "https" : "http", c->address,
                 a->conf->path);
        colony_probe_options o;
        colony_probe_options_init(&o);
        o.kind = COLONY_PROBE_HTTP;
        o.target = url;
        o.interval_ms = a->conf->interval_ms;
        o.timeout_ms = a->conf->timeout_ms;
        o.success_before_passing = a->conf->healthy_threshold;
        o.failures_before_critical = a->conf->unhealthy_threshold;
        o.initial_status = COLONY_PROBE_PASSING; /* in rotation until shown otherwise */
        o.on_change = status_changed;
        o.ud = c;
        if (c->https) { /* verified as the proxy verifies it (forward.c) */
            o.tls_ca_file = a->up->tls_ca_file;
            o.tls_server_name = a->up->tls_server_name;
            o.tls_cert_file = a->up->tls_cert_file;
            o.tls_key_file = a->up->tls_key_file;
        }
        rc = colony_probe_start(a->prober, &o, &c->probe);
    }
    colony__free(url);
    if (!rc) rc = colony__map_put(&a->probes, key, c);
    if (rc) checked_free(c);
    return rc;
}

/* "id\naddress\nscheme": an instance that moves or starts or stops speaking
 * TLS gets a new probe. */
static char *key_of(gw_active *a, colony_endpoint *ep)
{
    const char *id = colony_endpoint_id(ep), *address = colony_endpoint_address(ep);
    size_t len = strlen(id) + 1 + strlen(address) + sizeof("\nhttps");
    char *key = colony__malloc(len);
    if (key)
        snprintf(key, len, "%s\n%s\n%s", id, address,
                 colony__gw_endpoint_https(a->up, ep) ? "https" : "http");
    return key;
}

int colony__gw_active_sync(gw_active *a)
{
    size_t pos = 0;
    for (colony__map_slot *s; (s = colony__map_next(&a->probes, &pos));)
        ((gw_checked *)s->value)->seen = 0;
    int rc = 0;
    for (size_t i = 0; i < colony_balancer_count(a->balancer); i++) {
        colony_endpoint *ep = colony_balancer_at(a->balancer, i);
        char *key = key_of(a, ep);
        if (!key) return COLONY_ENOMEM;
        gw_checked *c = colony__map_get(&a->probes, key);
        if (c) {
            c->seen = 1;
            int down = colony_probe_get_status(c->probe) == COLONY_PROBE_CRITICAL;
            uv_mutex_lock(a->lock);
            colony_endpoint_set_down(ep, down);
            uv_mutex_unlock(a->lock);
        } else if (!rc) {
            rc = start_probe(a, ep, key);
        }
        colony__free(key);
    }
    /* Probes of endpoints gone: collected first (no removal while iterating). */
    size_t gone = 0;
    pos = 0;
    for (colony__map_slot *s; (s = colony__map_next(&a->probes, &pos));)
        gone += !((gw_checked *)s->value)->seen;
    while (gone--) {
        pos = 0;
        for (colony__map_slot *s; (s = colony__map_next(&a->probes, &pos));) {
            gw_checked *c = s->value;
            if (c->seen) continue;
            colony__map_remove(&a->probes, s->key);
            checked_free(c);
            break;
        }
    }
    return rc;
}

int colony__gw_active_start(colony_prober *pr, colony_balancer *balancer, uv_mutex_t *lock,
                            const gw_upstream *up, gw_active **out)
{
    *out = NULL;
    gw_active *a = colony__calloc(1, sizeof(*a));
    if (!a) return COLONY_ENOMEM;
    a->prober = pr;
    a->balancer = balancer;
    a->lock = lock;
    a->up = up;
    a->conf = &up->active;
    a->name = up->name;
    int rc = colony__gw_active_sync(a);
    if (rc) {
        colony__gw_active_stop(a);
        return rc;
    }
    *out = a;
    return 0;
}

const char *colony__gw_active_reason(gw_active *a, colony_endpoint *ep)
{
    if (!a) return NULL;
    char *key = key_of(a, ep);
    gw_checked *c = key ? colony__map_get(&a->probes, key) : NULL;
    colony__free(key);
    return c ? c->reason : NULL;
}

void colony__gw_active_stop(gw_active *a)
{
    if (!a) return;
    size_t pos = 0;
    for (colony__map_slot *s; (s = colony__map_next(&a->probes, &pos));)
        checked_free(s->value);
    colony__map_free(&a->probes);
    colony__free(a);
}
