/* Upstreams of the routes file: static targets or a registry service, the
 * balancing strategy and hashing, passive and active health, the breaker, and
 * TLS to https upstreams (config_upstream.h). */
#include "gateway/config_upstream.h"
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "gateway/parse.h"

#define GW_MAX_TARGETS 1000
#define GW_MAX_WEIGHT  COLONY_BALANCE_MAX_WEIGHT

static const struct {
    const char *name;
    colony_balance_strategy strategy;
} strategies[] = {
    {"round_robin", COLONY_BALANCE_ROUND_ROBIN},
    {"weighted_round_robin", COLONY_BALANCE_WEIGHTED_RR},
    {"least_conn", COLONY_BALANCE_LEAST_CONN},
    {"p2c", COLONY_BALANCE_P2C},
    {"random", COLONY_BALANCE_RANDOM},
    {"ip_hash", COLONY_BALANCE_IP_HASH},
    {"consistent_hash", COLONY_BALANCE_RING_HASH},
};

static int parse_strategy(gw_parse *p, const json_t *obj, gw_upstream *u)
{
    json_t *v = json_object_get(obj, "strategy");
    u->strategy = COLONY_BALANCE_WEIGHTED_RR;
    if (!v) return 0;
    const char *name = json_string_value(v);
    for (size_t i = 0; name && i < sizeof(strategies) / sizeof(strategies[0]); i++)
        if (strcmp(name, strategies[i].name) == 0) {
            u->strategy = strategies[i].strategy;
            return 0;
        }
    size_t at = colony__gw_parse_push(p, "strategy");
    int rc = colony__gw_parse_fail(p, NULL,
                                   "\"strategy\" must be one of round_robin, weighted_round_robin, "
                                   "least_conn, p2c, random, ip_hash, consistent_hash");
    colony__gw_parse_pop(p, at);
    return rc;
}

/* "http://host:port" or "https://host:port" with nothing after the port: the
 * route decides the path. *https says which. */
static int parse_target_url(gw_parse *p, gw_target *t, int *https)
{
    const char *url = t->url;
    size_t scheme_len = strncmp(url, "https://", 8) == 0 ? 8 : 7;
    if (scheme_len == 7 && strncmp(url, "http://", 7) != 0)
        return colony__gw_parse_fail(p, NULL,
                                     "\"url\" must be http://host:port or https://host:port");
    *https = scheme_len == 8;
    const char *host = url + scheme_len;
    size_t len = strlen(host);
    while (len > 0 && host[len - 1] == '/')
        len--;
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++) {
        if (host[i] == '/' || host[i] == '?' || host[i] == '#' || host[i] == '@')
            return colony__gw_parse_fail(p, NULL,
                                         "\"url\" must be http://host:port, without a path");
        if (host[i] == ':') colon = host + i;
    }
    if (!colon || colon == host || colon == host + len - 1)
        return colony__gw_parse_fail(p, NULL, "\"url\" must name a port: http://host:port");
    long port = 0;
    for (const char *d = colon + 1; d < host + len; d++) {
        if (*d < '0' || *d > '9' || (port = port * 10 + (*d - '0')) > 65535)
            return colony__gw_parse_fail(p, NULL, "\"url\" has a bad port");
    }
    if (port == 0) return colony__gw_parse_fail(p, NULL, "\"url\" has a bad port");
    t->address = colony__strndup(host, len);
    t->url[scheme_len + len] = '\0'; /* drop trailing slashes */
    return t->address ? 0 : colony__gw_parse_fail(p, NULL, "out of memory");
}

static int parse_targets(gw_parse *p, const json_t *arr, gw_upstream *u)
{
    size_t at = colony__gw_parse_push(p, "targets");
    int rc = 0;
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > GW_MAX_TARGETS)
        rc = colony__gw_parse_fail(p, NULL, "\"targets\" must be an array of 1 to %d targets",
                                   GW_MAX_TARGETS);
    else if (!(u->targets = colony__calloc(json_array_size(arr), sizeof(*u->targets))))
        rc = colony__gw_parse_fail(p, NULL, "out of memory");
    static const char *const keys[] = {"url", "weight", NULL};
    for (size_t i = 0; !rc && i < json_array_size(arr); i++) {
        json_t *t = json_array_get(arr, i);
        size_t at_i = colony__gw_parse_push_index(p, i);
        gw_target *tg = &u->targets[u->ntargets++];
        uint64_t weight = 1;
        if (json_is_string(t)) {
            if (!(tg->url = colony__strdup(json_string_value(t))))
                rc = colony__gw_parse_fail(p, NULL, "out of memory");
        } else if (!json_is_object(t)) {
            rc = colony__gw_parse_fail(
                p, NULL, "a target is \"http://host:port\" or {\"url\": ..., \"weight\": n}");
        } else if (!(rc = colony__gw_parse_only(p, t, keys)) &&
                   !(rc = colony__gw_parse_string(p, t, "url", 1, &tg->url))) {
            rc = colony__gw_parse_uint(p, t, "weight", 1, GW_MAX_WEIGHT, &weight);
        }
        tg->weight = (uint32_t)weight;
        if (!rc) {
            size_t at_url = json_is_object(t) ? colony__gw_parse_push(p, "url") : strlen(p->path);
            int https = 0;
            rc = parse_target_url(p, tg, &https);
            if (!rc && i > 0 && https != u->https)
                rc = colony__gw_parse_fail(p, NULL,
                                           "the targets of an upstream are all http:// or all "
                                           "https://");
            u->https = https;
            colony__gw_parse_pop(p, at_url);
        }
        for (size_t j = 0; !rc && j + 1 < u->ntargets; j++)
            if (strcmp(u->targets[j].address, tg->address) == 0)
                rc = colony__gw_parse_fail(p, NULL, "target %s is listed twice", tg->url);
        colony__gw_parse_pop(p, at_i);
    }
    colony__gw_parse_pop(p, at);
    return rc;
}

static int parse_upstream(gw_parse *p, const char *name, const json_t *obj, gw_upstream *u)
{
    static const char *const keys[] = {"targets",     "service",     "tag",    "strategy",
                                       "hash_header", "hash_cookie", "health", "breaker",
                                       "tls",         NULL};
    static const char *const health_keys[] = {"consecutive_failures", "base_ejection",
                                              "max_ejection_percent", "active", NULL};
    if (!(u->name = colony__strdup(name))) return colony__gw_parse_fail(p, NULL, "out of memory");
    u->consecutive_failures = 5; /* Envoy's outlier defaults */
    u->base_ejection_ms = 30000;
    u->max_ejection_percent = 10;
    colony__gw_active_health_init(&u->active);
    colony__gw_breaker_init(&u->breaker);
    if (!json_is_object(obj))
        return colony__gw_parse_fail(p, NULL, "an upstream must be an object");
    int rc = colony__gw_parse_only(p, obj, keys);
    if (!rc) rc = parse_strategy(p, obj, u);
    if (!rc) rc = colony__gw_parse_string(p, obj, "service", 0, &u->service);
    if (!rc) rc = colony__gw_parse_string(p, obj, "tag", 0, &u->tag);
    if (!rc) rc = colony__gw_parse_string(p, obj, "hash_header", 0, &u->hash_header);
    if (!rc) rc = colony__gw_parse_string(p, obj, "hash_cookie", 0, &u->hash_cookie);
    json_t *targets = json_object_get(obj, "targets");
    if (!rc && targets) rc = parse_targets(p, targets, u);
    if (!rc && !targets == !u->service)
        rc = colony__gw_parse_fail(p, NULL, "an upstream has either \"targets\" or \"service\"");
    if (!rc && u->tag && !u->service)
        rc = colony__gw_parse_fail(p, NULL, "\"tag\" filters a \"service\" upstream");
    if (!rc && u->hash_header && u->hash_cookie)
        rc = colony__gw_parse_fail(p, NULL, "hash on \"hash_header\" or \"hash_cookie\", not both");
    if (!rc && (u->hash_header || u->hash_cookie) && u->strategy != COLONY_BALANCE_RING_HASH &&
        u->strategy != COLONY_BALANCE_IP_HASH)
        rc = colony__gw_parse_fail(
            p, NULL,
            "\"hash_header\" and \"hash_cookie\" need strategy consistent_hash or ip_hash");
    json_t *health = json_object_get(obj, "health");
    if (!rc && health) {
        size_t at = colony__gw_parse_push(p, "health");
        uint64_t failures = u->consecutive_failures, percent = u->max_ejection_percent;
        if (!json_is_object(health))
            rc = colony__gw_parse_fail(p, NULL, "\"health\" must be an object");
        if (!rc) rc = colony__gw_parse_only(p, health, health_keys);
        if (!rc) rc = colony__gw_parse_uint(p, health, "consecutive_failures", 0, 1000, &failures);
        if (!rc) rc = colony__gw_parse_interval(p, health, "base_ejection", &u->base_ejection_ms);
        if (!rc) rc = colony__gw_parse_uint(p, health, "max_ejection_percent", 0, 100, &percent);
        json_t *active = json_object_get(health, "active");
        if (!rc && active) rc = colony__gw_parse_active_health(p, active, &u->active);
        u->consecutive_failures = (uint32_t)failures;
        u->max_ejection_percent = (uint32_t)percent;
        colony__gw_parse_pop(p, at);
    }
    json_t *breaker = json_object_get(obj, "breaker");
    if (!rc && breaker) rc = colony__gw_parse_breaker(p, breaker, &u->breaker);
    json_t *tls = json_object_get(obj, "tls");
    if (!rc && tls) rc = colony__gw_parse_upstream_tls(p, tls, u);
    return rc;
}

int colony__gw_parse_upstreams(gw_parse *p, const json_t *obj, gw_config *cfg)
{
    size_t at = colony__gw_parse_push(p, "upstreams");
    int rc = 0;
    if (!json_is_object(obj))
        rc = colony__gw_parse_fail(p, NULL, "\"upstreams\" must be an object of name: upstream");
    else if (json_object_size(obj) &&
             !(cfg->upstreams = colony__calloc(json_object_size(obj), sizeof(gw_upstream))))
        rc = colony__gw_parse_fail(p, NULL, "out of memory");
    const char *name;
    json_t *v;
    if (!rc) json_object_foreach((json_t *)obj, name, v)
        {
            size_t at_u = colony__gw_parse_push(p, name);
            rc = parse_upstream(p, name, v, &cfg->upstreams[cfg->nupstreams++]);
            colony__gw_parse_pop(p, at_u);
            if (rc) break;
        }
    colony__gw_parse_pop(p, at);
    return rc;
}

void colony__gw_upstream_clear(gw_upstream *u)
{
    for (size_t i = 0; i < u->ntargets; i++) {
        colony__free(u->targets[i].url);
        colony__free(u->targets[i].address);
    }
    colony__free(u->targets);
    colony__free(u->name);
    colony__free(u->service);
    colony__free(u->tag);
    colony__free(u->hash_header);
    colony__free(u->hash_cookie);
    colony__free(u->tls_ca_file);
    colony__free(u->tls_server_name);
    colony__free(u->tls_cert_file);
    colony__free(u->tls_key_file);
    colony__gw_active_health_clear(&u->active);
}
