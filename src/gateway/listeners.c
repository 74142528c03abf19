/* Extra proxy listeners and their TLS certificates (listeners.h). */
#include "gateway/listeners.h"
#include <jansson.h>
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"

#define GW_MAX_LISTENERS    16
#define GW_MAX_CERTIFICATES 64

/* One {"cert": ..., "key": ...} of tls.certificates, loaded into ctx. */
static int parse_certificate(gw_parse *p, const json_t *obj, colony_tls_ctx *ctx)
{
    static const char *const keys[] = {"cert", "key", NULL};
    if (!json_is_object(obj))
        return colony__gw_parse_fail(p, NULL, "a certificate is {\"cert\": FILE, \"key\": FILE}");
    int rc = colony__gw_parse_only(p, obj, keys);
    char *cert = NULL, *key = NULL;
    if (!rc) rc = colony__gw_parse_string(p, obj, "cert", 1, &cert);
    if (!rc) rc = colony__gw_parse_string(p, obj, "key", 1, &key);
    if (!rc) {
        char why[512];
        rc = colony_tls_ctx_add_certificate(ctx, cert, key, why, sizeof(why));
        if (rc == COLONY_ENOMEM)
            rc = colony__gw_parse_fail(p, NULL, "out of memory");
        else if (rc)
            rc = colony__gw_parse_fail(p, strncmp(why, "key file", 8) == 0 ? "key" : "cert", "%s",
                                       why);
    }
    colony__free(cert);
    colony__free(key);
    return rc;
}

static int parse_tls(gw_parse *p, const json_t *obj, gw_listener_conf *l)
{
    static const char *const keys[] = {"certificates", NULL};
    if (!json_is_object(obj))
        return colony__gw_parse_fail(p, NULL, "\"tls\" is an object with \"certificates\"");
    int rc = colony__gw_parse_only(p, obj, keys);
    if (rc) return rc;
    const json_t *certs = json_object_get(obj, "certificates");
    if (!json_is_array(certs) || json_array_size(certs) == 0 ||
        json_array_size(certs) > GW_MAX_CERTIFICATES)
        return colony__gw_parse_fail(p, "certificates",
                                     "\"certificates\" must be an array of 1 to %d "
                                     "{\"cert\": FILE, \"key\": FILE}; the first is the default",
                                     GW_MAX_CERTIFICATES);
    if (!(l->tls = colony_tls_ctx_new())) return colony__gw_parse_fail(p, NULL, "out of memory");
    size_t at = colony__gw_parse_push(p, "certificates");
    for (size_t i = 0; !rc && i < json_array_size(certs); i++) {
        size_t at_i = colony__gw_parse_push_index(p, i);
        rc = parse_certificate(p, json_array_get(certs, i), l->tls);
        colony__gw_parse_pop(p, at_i);
    }
    colony__gw_parse_pop(p, at);
    return rc;
}

static int parse_listener(gw_parse *p, const gw_listeners *done, const json_t *obj,
                          gw_listener_conf *l)
{
    static const char *const keys[] = {"listen", "tls", NULL};
    if (!json_is_object(obj))
        return colony__gw_parse_fail(p, NULL,
                                     "a listener is {\"listen\": ADDRESS, \"tls\": {...}}");
    int rc = colony__gw_parse_only(p, obj, keys);
    if (!rc) rc = colony__gw_parse_string(p, obj, "listen", 1, &l->listen);
    for (size_t i = 0; !rc && i < done->count; i++)
        if (strcmp(done->list[i].listen, l->listen) == 0)
            rc = colony__gw_parse_fail(p, "listen", "\"%s\" is listed twice", l->listen);
    const json_t *tls = json_object_get(obj, "tls");
    if (!rc && tls) {
        size_t at = colony__gw_parse_push(p, "tls");
        rc = parse_tls(p, tls, l);
        colony__gw_parse_pop(p, at);
    }
    return rc;
}

int colony__gw_parse_listeners(gw_parse *p, const json_t *obj, gw_listeners *out)
{
    memset(out, 0, sizeof(*out));
    if (!obj) return 0;
    size_t at = colony__gw_parse_push(p, "listeners");
    int rc = 0;
    size_t n = json_is_array(obj) ? json_array_size(obj) : 0;
    if (n == 0 || n > GW_MAX_LISTENERS) {
        rc = colony__gw_parse_fail(p, NULL,
                                   "\"listeners\" must be an array of 1 to %d "
                                   "{\"listen\": ADDRESS, \"tls\": {...}}",
                                   GW_MAX_LISTENERS);
    } else if (!(out->list = colony__calloc(n, sizeof(*out->list)))) {
        rc = colony__gw_parse_fail(p, NULL, "out of memory");
    }
    for (size_t i = 0; !rc && i < n; i++) {
        size_t at_i = colony__gw_parse_push_index(p, i);
        rc = parse_listener(p, out, json_array_get(obj, i), &out->list[i]);
        out->count = i + 1;
        colony__gw_parse_pop(p, at_i);
    }
    colony__gw_parse_pop(p, at);
    return rc;
}

void colony__gw_listeners_free(gw_listeners *l)
{
    for (size_t i = 0; i < l->count; i++) {
        colony__free(l->list[i].listen);
        colony_tls_ctx_free(l->list[i].tls);
    }
    colony__free(l->list);
    memset(l, 0, sizeof(*l));
}

int colony__gw_listeners_start(const gw_listeners *l, colony_server *srv)
{
    for (size_t i = 0; i < l->count; i++) {
        const gw_listener_conf *c = &l->list[i];
        int rc = c->tls ? colony_server_listen_tls(srv, c->listen, c->tls)
                        : colony_server_listen(srv, c->listen);
        if (rc) {
            COLONY_LOG_ERROR("cannot listen", COLONY_LF_STR("address", c->listen),
                             COLONY_LF_STR("error", colony_strerror(rc)));
            return rc;
        }
        COLONY_LOG_INFO("proxy listening", COLONY_LF_STR("address", c->listen),
                        COLONY_LF_STR("protocol", c->tls ? "https" : "http"),
                        COLONY_LF_INT("certificates", (long long)colony_tls_ctx_count(c->tls)));
    }
    return 0;
}

static const gw_listener_conf *find(const gw_listeners *l, const char *listen)
{
    for (size_t i = 0; i < l->count; i++)
        if (strcmp(l->list[i].listen, listen) == 0) return &l->list[i];
    return NULL;
}

size_t colony__gw_listeners_update(const gw_listeners *running, const gw_listeners *fresh)
{
    size_t updated = 0;
    for (size_t i = 0; i < fresh->count; i++) {
        const gw_listener_conf *f = &fresh->list[i];
        const gw_listener_conf *r = find(running, f->listen);
        if (r && r->tls && f->tls && colony_tls_ctx_update(r->tls, f->tls) == 0) {
            updated++;
            continue;
        }
        if (!r || !r->tls != !f->tls)
            COLONY_LOG_WARN("listener change needs a restart", COLONY_LF_STR("address", f->listen));
    }
    for (size_t i = 0; i < running->count; i++)
        if (!find(fresh, running->list[i].listen))
            COLONY_LOG_WARN("listener removal needs a restart",
                            COLONY_LF_STR("address", running->list[i].listen));
    return updated;
}
