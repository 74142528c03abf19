/* Routes file keys of health checks, breaker, retry budget and header
 * transforms (config_health.h). */
#include "gateway/config_health.h"
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "colony/error.h"
#include "core/alloc.h"

#define FAIL(at, ...)     colony__gw_parse_fail((at), NULL, __VA_ARGS__)
#define GW_MAX_HEADER_OPS 32

static int must_be_object(gw_parse *at, const json_t *obj, const char *what)
{
    return json_is_object(obj) ? 0 : FAIL(at, "\"%s\" must be an object", what);
}

/* ---- health.active ---- */

void colony__gw_active_health_init(gw_active_health *a)
{
    memset(a, 0, sizeof(*a));
    a->interval_ms = 5000;
    a->timeout_ms = 1000;
    a->healthy_threshold = 2;
    a->unhealthy_threshold = 2;
}

int colony__gw_parse_active_health(gw_parse *at, const json_t *obj, gw_active_health *out)
{
    static const char *const keys[] = {
        "path", "interval", "timeout", "healthy_threshold", "unhealthy_threshold", NULL};
    size_t len = colony__gw_parse_push(at, "active");
    uint64_t healthy = out->healthy_threshold, unhealthy = out->unhealthy_threshold;
    int rc = must_be_object(at, obj, "active");
    if (!rc) rc = colony__gw_parse_only(at, obj, keys);
    json_t *path = json_object_get(obj, "path");
    if (!rc && !path) rc = FAIL(at, "\"path\" is required");
    if (!rc) {
        size_t len_p = colony__gw_parse_push(at, "path");
        const char *p = json_string_value(path);
        if (!p || p[0] != '/' || strlen(p) != json_string_length(path) || strpbrk(p, " \t\r\n#"))
            rc = FAIL(at, "\"path\" must be a path starting with \"/\" (a query is allowed)");
        else if (!(out->path = colony__strdup(p)))
            rc = colony__gw_parse_fail(at, NULL, "out of memory");
        colony__gw_parse_pop(at, len_p);
    }
    if (!rc) rc = colony__gw_parse_interval(at, obj, "interval", &out->interval_ms);
    if (!rc) rc = colony__gw_parse_interval(at, obj, "timeout", &out->timeout_ms);
    if (!rc) rc = colony__gw_parse_uint(at, obj, "healthy_threshold", 1, 100, &healthy);
    if (!rc) rc = colony__gw_parse_uint(at, obj, "unhealthy_threshold", 1, 100, &unhealthy);
    out->healthy_threshold = (uint32_t)healthy;
    out->unhealthy_threshold = (uint32_t)unhealthy;
    if (!rc && out->timeout_ms > out->interval_ms) {
        size_t len_t = json_object_get(obj, "timeout") ? colony__gw_parse_push(at, "timeout")
                                                       : strlen(at->path);
        rc = FAIL(at, "\"timeout\" must not be longer than \"interval\"");
        colony__gw_parse_pop(at, len_t);
    }
    colony__gw_parse_pop(at, len);
    return rc;
}

void colony__gw_active_health_clear(gw_active_health *a)
{
    colony__free(a->path);
    a->path = NULL;
}

/* ---- breaker ---- */

void colony__gw_breaker_init(gw_breaker_conf *b)
{
    memset(b, 0, sizeof(*b));
    b->failure_percent = 50;
    b->min_calls = 20;
    b->window_calls = 100;
    b->window_ms = 60000;
    b->open_ms = 30000;
    b->half_open_calls = 5;
}

int colony__gw_parse_breaker(gw_parse *at, const json_t *obj, gw_breaker_conf *out)
{
    static const char *const keys[] = {"failure_ratio", "min_calls",       "open_for", "window",
                                       "window_calls",  "half_open_calls", NULL};
    size_t len = colony__gw_parse_push(at, "breaker");
    uint64_t min_calls = out->min_calls, window_calls = out->window_calls,
             trials = out->half_open_calls;
    int rc = must_be_object(at, obj, "breaker");
    if (!rc) rc = colony__gw_parse_only(at, obj, keys);
    json_t *ratio = json_object_get(obj, "failure_ratio");
    if (!rc && ratio) {
        size_t len_r = colony__gw_parse_push(at, "failure_ratio");
        double r = json_number_value(ratio);
        if (!json_is_number(ratio) || r <= 0 || r > 1)
            rc = FAIL(at, "\"failure_ratio\" must be a number above 0 and at most 1");
        else
            out->failure_percent = (unsigned)(r * 100 + 0.5) ? (unsigned)(r * 100 + 0.5) : 1;
        colony__gw_parse_pop(at, len_r);
    }
    if (!rc) rc = colony__gw_parse_uint(at, obj, "min_calls", 1, 100000, &min_calls);
    if (!rc) rc = colony__gw_parse_interval(at, obj, "open_for", &out->open_ms);
    if (!rc) rc = colony__gw_parse_interval(at, obj, "window", &out->window_ms);
    if (!rc) rc = colony__gw_parse_uint(at, obj, "window_calls", 1, 100000, &window_calls);
    if (!rc) rc = colony__gw_parse_uint(at, obj, "half_open_calls", 1, 1000, &trials);
    out->min_calls = (unsigned)min_calls;
    out->window_calls = (unsigned)window_calls;
    out->half_open_calls = (unsigned)trials;
    if (!rc && out->min_calls > out->window_calls) {
        size_t len_m = json_object_get(obj, "min_calls") ? colony__gw_parse_push(at, "min_calls")
                                                         : strlen(at->path);
        rc = FAIL(at, "\"min_calls\" (%u) cannot exceed \"window_calls\" (%u): it would never trip",
                  out->min_calls, out->window_calls);
        colony__gw_parse_pop(at, len_m);
    }
    out->enabled = rc == 0;
    colony__gw_parse_pop(at, len);
    return rc;
}

/* ---- retry_budget ---- */

void colony__gw_retry_budget_init(gw_retry_budget_conf *r)
{
    r->percent = 20; /* Envoy's and Finagle's */
    r->min_per_sec = 10;
    r->window_ms = 10000;
}

int colony__gw_parse_retry_budget(gw_parse *at, const json_t *obj, gw_retry_budget_conf *out)
{
    static const char *const keys[] = {"percent", "min_per_sec", "window", NULL};
    size_t len = colony__gw_parse_push(at, "retry_budget");
    uint64_t percent = out->percent, floor = out->min_per_sec;
    int rc = must_be_object(at, obj, "retry_budget");
    if (!rc) rc = colony__gw_parse_only(at, obj, keys);
    if (!rc) rc = colony__gw_parse_uint(at, obj, "percent", 0, 1000, &percent);
    if (!rc) rc = colony__gw_parse_uint(at, obj, "min_per_sec", 0, 100000, &floor);
    if (!rc) rc = colony__gw_parse_interval(at, obj, "window", &out->window_ms);
    if (!rc && out->window_ms < 10) {
        size_t len_w = colony__gw_parse_push(at, "window");
        rc = FAIL(at, "\"window\" must be at least 10ms");
        colony__gw_parse_pop(at, len_w);
    }
    out->percent = (unsigned)percent;
    out->min_per_sec = (unsigned)floor;
    colony__gw_parse_pop(at, len);
    return rc;
}

/* ---- request_headers / response_headers ---- */

/* Why name may not be touched by a transform, or NULL if it may. Hop-by-hop
 * headers belong to one connection; the gateway computes framing, Host and the
 * forwarding headers itself; identity headers (X-User-*) come only from the
 * gateway's own authentication, so no route may set them. */
static const char *refused_name(const char *name, int request, int removing)
{
    static const char *const hop[] = {"Connection",        "Proxy-Connection", "Keep-Alive", "TE",
                                      "Transfer-Encoding", "Upgrade",          "Trailer"};
    static const char *const computed[] = {"Content-Length", "Host"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (strcasecmp(name, hop[i]) == 0) return "is hop-by-hop: it is never forwarded";
    for (size_t i = 0; i < sizeof(computed) / sizeof(computed[0]); i++)
        if (strcasecmp(name, computed[i]) == 0) return "is set by the gateway itself";
    if (request && !removing && strncasecmp(name, "X-User-", 7) == 0)
        return "is an identity header: only the gateway's authentication sets X-User-*";
    if (request && strcasecmp(name, "X-Colony-Deadline-Ms") == 0)
        return "is set by the gateway from the route's timeouts";
    for (const char *p = name; *p; p++)
        if (*p <= ' ' || *p >= 127 || strchr("()<>@,;:\\\"/[]?={}", *p))
            return "is not a valid header name";
    return NULL;
}

static int parse_pairs(gw_parse *at, const json_t *obj, const char *key, int request, char ***out,
                       size_t *n)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    size_t len = colony__gw_parse_push(at, key);
    int rc = 0;
    if (!json_is_object(v) || json_object_size(v) == 0 || json_object_size(v) > GW_MAX_HEADER_OPS)
        rc = FAIL(at, "\"%s\" must be an object of 1 to %d \"Header-Name\": \"value\"", key,
                  GW_MAX_HEADER_OPS);
    else if (!(*out = colony__calloc(2 * json_object_size(v), sizeof(char *))))
        rc = colony__gw_parse_fail(at, NULL, "out of memory");
    const char *name;
    json_t *value;
    if (!rc) json_object_foreach(v, name, value)
        {
            size_t len_h = colony__gw_parse_push(at, name);
            const char *why = name[0] ? refused_name(name, request, 0) : "is empty";
            const char *s = json_string_value(value);
            if (why)
                rc = FAIL(at, "header \"%s\" %s", name, why);
            else if (!s || strlen(s) != json_string_length(value) || strpbrk(s, "\r\n"))
                rc = FAIL(at, "a header value must be a string on one line");
            else if (!((*out)[2 * *n] = colony__strdup(name)) ||
                     !((*out)[2 * *n + 1] = colony__strdup(s)))
                rc = colony__gw_parse_fail(at, NULL, "out of memory");
            (*n)++;
            colony__gw_parse_pop(at, len_h);
            if (rc) break;
        }
    colony__gw_parse_pop(at, len);
    return rc;
}

static int parse_remove(gw_parse *at, const json_t *obj, int request, gw_header_ops *out)
{
    json_t *v = json_object_get(obj, "remove");
    if (!v) return 0;
    size_t len = colony__gw_parse_push(at, "remove");
    int rc = 0;
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > GW_MAX_HEADER_OPS)
        rc = FAIL(at, "\"remove\" must be an array of 1 to %d header names", GW_MAX_HEADER_OPS);
    else if (!(out->remove = colony__calloc(json_array_size(v), sizeof(char *))))
        rc = colony__gw_parse_fail(at, NULL, "out of memory");
    for (size_t i = 0; !rc && i < json_array_size(v); i++) {
        char idx[24];
        snprintf(idx, sizeof(idx), "%zu", i);
        size_t len_i = colony__gw_parse_push(at, idx);
        const char *name = json_string_value(json_array_get(v, i));
        const char *why = !name || !name[0] ? "is not a name" : refused_name(name, request, 1);
        if (why)
            rc = FAIL(at, "header \"%s\" %s", name ? name : "", why);
        else if (!(out->remove[out->nremove++] = colony__strdup(name)))
            rc = colony__gw_parse_fail(at, NULL, "out of memory");
        colony__gw_parse_pop(at, len_i);
    }
    colony__gw_parse_pop(at, len);
    return rc;
}

int colony__gw_parse_header_ops(gw_parse *at, const json_t *obj, int request, gw_header_ops *out)
{
    static const char *const keys[] = {"set", "add", "remove", NULL};
    const char *what = request ? "request_headers" : "response_headers";
    size_t len = colony__gw_parse_push(at, what);
    int rc = must_be_object(at, obj, what);
    if (!rc) rc = colony__gw_parse_only(at, obj, keys);
    if (!rc) rc = parse_pairs(at, obj, "set", request, &out->set, &out->nset);
    if (!rc) rc = parse_pairs(at, obj, "add", request, &out->add, &out->nadd);
    if (!rc) rc = parse_remove(at, obj, request, out);
    colony__gw_parse_pop(at, len);
    return rc;
}

void colony__gw_header_ops_clear(gw_header_ops *h)
{
    for (size_t i = 0; h->set && i < 2 * h->nset; i++)
        colony__free(h->set[i]);
    for (size_t i = 0; h->add && i < 2 * h->nadd; i++)
        colony__free(h->add[i]);
    for (size_t i = 0; h->remove && i < h->nremove; i++)
        colony__free(h->remove[i]);
    colony__free(h->set);
    colony__free(h->add);
    colony__free(h->remove);
    memset(h, 0, sizeof(*h));
}
