/* The routes file's "cache" keys (cache.h): a route's
 * {"ttl", "max_ttl", "max_entry", "vary", "statuses", "authorized",
 * "set_cookie"} and the top-level {"max_bytes"}. */
#include <jansson.h>
#include <string.h>
#include <strings.h>
#include "colony/config.h"
#include "colony/error.h"
#include "core/alloc.h"
#include "gateway/cache.h"
#include "gateway/forward.h"

#define MAX_TTL_MS    (30ull * 86400 * 1000) /* 30 days */
#define MAX_ENTRY_MAX (1ull << 30)
#define MAX_BYTES_MAX (1ull << 40)

/* A size ("64mb", "512kb" or bytes) from min to max. */
static int get_size(gw_parse *p, const json_t *obj, const char *key, uint64_t min, uint64_t max,
                    uint64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    int64_t bytes = -1;
    if (json_is_integer(v))
        bytes = json_integer_value(v);
    else if (!json_is_string(v) || colony_config_parse_size(json_string_value(v), &bytes) != 0)
        bytes = -1;
    if (bytes < 0 || (uint64_t)bytes < min || (uint64_t)bytes > max)
        return colony__gw_parse_fail(p, key,
                                     "\"%s\" must be a size from %llu to %llu bytes (\"64mb\", "
                                     "\"512kb\" or a number)",
                                     key, (unsigned long long)min, (unsigned long long)max);
    *out = (uint64_t)bytes;
    return 0;
}

static int get_bool(gw_parse *p, const json_t *obj, const char *key, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    if (!json_is_boolean(v))
        return colony__gw_parse_fail(p, key, "\"%s\" must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

static int parse_statuses(gw_parse *p, const json_t *obj, unsigned *out)
{
    json_t *v = json_object_get(obj, "statuses");
    if (!v) return 0;
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 3)
        return colony__gw_parse_fail(p, "statuses", "\"statuses\" must be a list of 200, 301, 404");
    *out = 0;
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_int_t s = json_integer_value(json_array_get(v, i));
        unsigned bit = s == 200   ? GW_CACHE_STATUS_200
                       : s == 301 ? GW_CACHE_STATUS_301
                       : s == 404 ? GW_CACHE_STATUS_404
                                  : 0;
        if (!bit || !json_is_integer(json_array_get(v, i))) {
            size_t at = colony__gw_parse_push(p, "statuses");
            int rc = colony__gw_parse_fail(p, NULL, "statuses cached are 200, 301 and 404");
            colony__gw_parse_pop(p, at);
            return rc;
        }
        *out |= bit;
    }
    return 0;
}

/* Vary names are request header names; hop-by-hop ones never reach the
 * upstream, so keying on them is a mistake. */
static int check_vary(gw_parse *p, const gw_cache_conf *c)
{
    for (size_t i = 0; i < c->nvary; i++) {
        const char *n = c->vary[i];
        size_t len = strlen(n);
        int token = len < 128;
        for (size_t k = 0; token && k < len; k++)
            token = (n[k] >= 'a' && n[k] <= 'z') || (n[k] >= 'A' && n[k] <= 'Z') ||
                    (n[k] >= '0' && n[k] <= '9') || strchr("!#$%&'*+-.^_`|~", n[k]);
        if (!token || strcmp(n, "*") == 0)
            return colony__gw_parse_fail(p, "vary", "\"%s\" is not a header name", n);
        if (colony__gw_hop_by_hop(n, len, NULL))
            return colony__gw_parse_fail(p, "vary", "\"%s\" is hop-by-hop: never a cache key", n);
        for (size_t k = 0; k < i; k++)
            if (strcasecmp(c->vary[k], n) == 0)
                return colony__gw_parse_fail(p, "vary", "\"%s\" is listed twice", n);
    }
    return 0;
}

void colony__gw_cache_conf_free(gw_cache_conf *c)
{
    if (!c) return;
    colony__gw_strings_free(c->vary, c->nvary);
    colony__free(c);
}

int colony__gw_cache_parse_route(gw_parse *p, const json_t *obj, uint64_t global_max,
                                 gw_cache_conf **out)
{
    static const char *const keys[] = {"ttl",      "max_ttl",    "max_entry",  "vary",
                                       "statuses", "authorized", "set_cookie", NULL};
    *out = NULL;
    if (!obj) return 0;
    size_t at = colony__gw_parse_push(p, "cache");
    int rc = 0;
    gw_cache_conf *c = NULL;
    if (!json_is_object(obj))
        rc = colony__gw_parse_fail(p, NULL, "\"cache\" must be an object ({} for the defaults)");
    if (!rc) rc = colony__gw_parse_only(p, obj, keys);
    if (!rc && !(c = colony__calloc(1, sizeof(*c))))
        rc = colony__gw_parse_fail(p, NULL, "out of memory");
    if (!rc) {
        c->ttl_ms = GW_CACHE_DEFAULT_TTL_MS;
        c->max_ttl_ms = GW_CACHE_DEFAULT_MAX_TTL;
        c->max_entry =
            GW_CACHE_DEFAULT_MAX_ENTRY < global_max ? GW_CACHE_DEFAULT_MAX_ENTRY : global_max;
        c->statuses = GW_CACHE_STATUS_200;
        rc = colony__gw_parse_duration(p, obj, "ttl", MAX_TTL_MS, &c->ttl_ms);
    }
    if (!rc) rc = colony__gw_parse_duration(p, obj, "max_ttl", MAX_TTL_MS, &c->max_ttl_ms);
    if (!rc && c->max_ttl_ms == 0)
        rc = colony__gw_parse_fail(p, "max_ttl", "\"max_ttl\" of 0 would store nothing");
    if (!rc && c->ttl_ms > c->max_ttl_ms)
        rc = colony__gw_parse_fail(p, "ttl", "\"ttl\" is longer than \"max_ttl\"");
    if (!rc) rc = get_size(p, obj, "max_entry", 1, MAX_ENTRY_MAX, &c->max_entry);
    if (!rc && c->max_entry > global_max)
        rc = colony__gw_parse_fail(p, "max_entry",
                                   "\"max_entry\" is larger than the cache (top-level "
                                   "cache.max_bytes, %llu bytes)",
                                   (unsigned long long)global_max);
    if (!rc) rc = colony__gw_parse_strings(p, obj, "vary", GW_CACHE_MAX_VARY, &c->vary, &c->nvary);
    if (!rc) rc = check_vary(p, c);
    if (!rc) rc = parse_statuses(p, obj, &c->statuses);
    if (!rc) rc = get_bool(p, obj, "authorized", &c->authorized);
    if (!rc) rc = get_bool(p, obj, "set_cookie", &c->set_cookie);
    colony__gw_parse_pop(p, at);
    if (rc) {
        colony__gw_cache_conf_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int colony__gw_cache_parse_global(gw_parse *p, const json_t *obj, uint64_t *max_bytes)
{
    static const char *const keys[] = {"max_bytes", NULL};
    *max_bytes = GW_CACHE_DEFAULT_MAX_BYTES;
    if (!obj) return 0;
    size_t at = colony__gw_parse_push(p, "cache");
    int rc = json_is_object(obj) ? colony__gw_parse_only(p, obj, keys)
                                 : colony__gw_parse_fail(p, NULL, "\"cache\" must be an object");
    if (!rc) rc = get_size(p, obj, "max_bytes", 1024, MAX_BYTES_MAX, max_bytes);
    colony__gw_parse_pop(p, at);
    return rc;
}
