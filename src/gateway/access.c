/* Per-route security (access.h): the route's keys parsed with their lines,
 * and the checks run before a request is forwarded, cheapest first: the
 * client's address, CORS (a preflight needs no credentials), the body size,
 * then API keys and JWT. */
#include "gateway/access.h"
#include <arpa/inet.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "gateway/cors.h"
#include "gateway/forward.h"
#include "gateway/jwt.h"

#define GW_MAX_API_KEYS 10000
#define GW_MAX_CIDRS    1000

/* ---- addresses ------------------------------------------------------ */

/* "10.0.0.0/8", "::1", "fd00::/8"; a bare address is a /32 or /128. The
 * bits below the prefix must be zero, so a typo like 10.0.0.1/8 is seen. */
static int parse_cidr(const char *text, gw_cidr *out)
{
    char buf[64];
    const char *slash = strchr(text, '/');
    size_t len = slash ? (size_t)(slash - text) : strlen(text);
    if (len == 0 || len >= sizeof(buf)) return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->addr) == 1)
        out->family = AF_INET;
    else if (inet_pton(AF_INET6, buf, out->addr) == 1)
        out->family = AF_INET6;
    else
        return -1;
    unsigned max = out->family == AF_INET ? 32 : 128;
    out->prefix = max;
    if (slash) {
        char *end;
        unsigned long prefix = strtoul(slash + 1, &end, 10);
        if (!slash[1] || *end || prefix > max) return -1;
        out->prefix = (unsigned)prefix;
    }
    for (unsigned bit = out->prefix; bit < max; bit++)
        if (out->addr[bit / 8] & (0x80 >> (bit % 8))) return -2;
    return 0;
}

static int cidr_has(const gw_cidr *c, int family, const uint8_t *addr)
{
    if (c->family != family) return 0;
    unsigned full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(c->addr, addr, full) != 0) return 0;
    return rest == 0 || ((c->addr[full] ^ addr[full]) & (0xff00 >> rest) & 0xff) == 0;
}

static int parse_cidrs(gw_parse *p, const json_t *obj, const char *key, gw_cidr **out, size_t *n)
{
    char **list = NULL;
    size_t count = 0;
    int rc = colony__gw_parse_strings(p, obj, key, GW_MAX_CIDRS, &list, &count);
    if (!rc && count && !(*out = colony__calloc(count, sizeof(gw_cidr))))
        rc = colony__gw_parse_fail(p, key, "out of memory");
    for (size_t i = 0; !rc && i < count; i++) {
        char idx[24];
        snprintf(idx, sizeof(idx), "%zu", i);
        size_t at = colony__gw_parse_push(p, key);
        int bad = parse_cidr(list[i], &(*out)[i]);
        if (bad == -1)
            rc =
                colony__gw_parse_fail(p, idx, "\"%s\" is not an IP address or CIDR block", list[i]);
        else if (bad == -2)
            rc = colony__gw_parse_fail(p, idx,
                                       "\"%s\" has bits set below its prefix length (did you mean "
                                       "the network address?)",
                                       list[i]);
        colony__gw_parse_pop(p, at);
        if (!rc) (*n)++;
    }
    colony__gw_strings_free(list, count);
    return rc;
}

int colony__gw_access_ip_allowed(const gw_access *a, const char *ip)
{
    if (!a || (!a->nallow && !a->ndeny)) return 1;
    uint8_t addr[16];
    int family = AF_INET;
    if (inet_pton(AF_INET, ip, addr) != 1) {
        family = AF_INET6;
        if (inet_pton(AF_INET6, ip, addr) != 1) return 0; /* not an IP: refuse */
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(addr, mapped, 12) == 0) { /* ::ffff:10.1.2.3 is 10.1.2.3 */
            memmove(addr, addr + 12, 4);
            family = AF_INET;
        }
    }
    for (size_t i = 0; i < a->ndeny; i++)
        if (cidr_has(&a->deny[i], family, addr)) return 0;
    if (!a->nallow) return 1;
    for (size_t i = 0; i < a->nallow; i++)
        if (cidr_has(&a->allow[i], family, addr)) return 1;
    return 0;
}

/* ---- the route's security ------------------------------------------- */

static int parse_api_keys(gw_parse *p, const json_t *obj, gw_access *a)
{
    static const char *const keys[] = {"header", "keys", NULL};
    size_t at = colony__gw_parse_push(p, "api_keys");
    int rc = json_is_object(obj) ? colony__gw_parse_only(p, obj, keys)
                                 : colony__gw_parse_fail(p, NULL, "\"api_keys\" must be an object");
    if (!rc) rc = colony__gw_parse_string(p, obj, "header", 0, &a->api_key_header);
    if (!rc && !a->api_key_header && !(a->api_key_header = colony__strdup("X-API-Key")))
        rc = colony__gw_parse_fail(p, NULL, "out of memory");
    json_t *map = json_object_get(obj, "keys");
    size_t n = json_object_size(map);
    if (!rc && (!json_is_object(map) || n == 0 || n > GW_MAX_API_KEYS))
        rc = colony__gw_parse_fail(p, map ? "keys" : NULL,
                                   "\"keys\" must be an object of 1 to %d \"key\": \"consumer\"",
                                   GW_MAX_API_KEYS);
    if (!rc && (!(a->api_keys = colony__calloc(n, sizeof(char *))) ||
                !(a->api_consumers = colony__calloc(n, sizeof(char *)))))
        rc = colony__gw_parse_fail(p, NULL, "out of memory");
    const char *key;
    json_t *v;
    if (!rc) json_object_foreach(map, key, v)
        {
            size_t at_k = colony__gw_parse_push(p, "keys");
            const char *consumer = json_string_value(v);
            if (strlen(key) < 16)
                rc = colony__gw_parse_fail(p, key, "an API key has 16 characters or more");
            else if (!consumer || !*consumer || strlen(consumer) != json_string_length(v) ||
                     strcspn(consumer, "\r\n") != strlen(consumer))
                rc = colony__gw_parse_fail(p, key, "the consumer is a non-empty one-line string");
            colony__gw_parse_pop(p, at_k);
            if (rc) break;
            if (!(a->api_keys[a->napi_keys] = colony__strdup(key)) ||
                !(a->api_consumers[a->napi_keys++] = colony__strdup(consumer))) {
                rc = colony__gw_parse_fail(p, NULL, "out of memory");
                break;
            }
        }
    colony__gw_parse_pop(p, at);
    return rc;
}

int colony__gw_access_parse(gw_parse *p, const json_t *obj, gw_access **out)
{
    *out = NULL;
    static const char *const keys[] = {GW_ACCESS_KEYS, NULL};
    int any = 0;
    for (const char *const *k = keys; *k; k++)
        any |= json_object_get(obj, *k) != NULL;
    if (!any) return 0;
    gw_access *a = colony__calloc(1, sizeof(*a));
    if (!a) return colony__gw_parse_fail(p, NULL, "out of memory");
    int rc = parse_cidrs(p, obj, "allow", &a->allow, &a->nallow);
    if (!rc) rc = parse_cidrs(p, obj, "deny", &a->deny, &a->ndeny);
    json_t *v = json_object_get(obj, "max_body");
    if (!rc && v) {
        int64_t bytes = -1;
        if (json_is_integer(v))
            bytes = json_integer_value(v);
        else if (!json_is_string(v) || colony_config_parse_size(json_string_value(v), &bytes))
            bytes = -1;
        if (bytes <= 0)
            rc = colony__gw_parse_fail(p, "max_body",
                                       "\"max_body\" must be a size above 0 (\"1mb\", \"64kb\", or "
                                       "bytes)");
        a->max_body = bytes > 0 ? (uint64_t)bytes : 0;
    }
    if (!rc && (v = json_object_get(obj, "api_keys"))) rc = parse_api_keys(p, v, a);
    if (!rc && (v = json_object_get(obj, "cors"))) {
        size_t at = colony__gw_parse_push(p, "cors");
        rc = colony__gw_cors_parse(p, v, &a->cors);
        colony__gw_parse_pop(p, at);
    }
    if (!rc && (v = json_object_get(obj, "jwt"))) {
        size_t at = colony__gw_parse_push(p, "jwt");
        rc = colony__gw_jwt_parse(p, v, &a->jwt);
        colony__gw_parse_pop(p, at);
    }
    if (rc) {
        colony__gw_access_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void colony__gw_access_free(gw_access *a)
{
    if (!a) return;
    colony__free(a->allow);
    colony__free(a->deny);
    colony__free(a->api_key_header);
    colony__gw_strings_free(a->api_keys, a->napi_keys);
    colony__gw_strings_free(a->api_consumers, a->napi_keys);
    colony__gw_cors_free(a->cors);
    colony__gw_jwt_free(a->jwt);
    colony__free(a);
}

int colony__gw_access_is_preflight(colony_request *req)
{
    return strcmp(colony_request_method(req), "OPTIONS") == 0 &&
           colony_request_header(req, "Origin") &&
           colony_request_header(req, "Access-Control-Request-Method");
}

/* The client's address without its port. */
/* The consumer of the request's API key, or NULL. Every key is compared in
 * full, so the time taken does not say how much of a guess was right. */
static const char *api_consumer(const gw_access *a, const char *given)
{
    const char *found = NULL;
    size_t len = strlen(given);
    for (size_t i = 0; i < a->napi_keys; i++)
        if (strlen(a->api_keys[i]) == len && CRYPTO_memcmp(a->api_keys[i], given, len) == 0)
            found = a->api_consumers[i];
    return found;
}

int colony__gw_access_check(const gw_access *a, colony_request *req, gw_forward *f)
{
    if (!a) return 0;
    if (!colony__gw_access_ip_allowed(a, colony_request_peer_ip(req))) {
        colony_respond_error(req, 403, "forbidden", "this address may not use this route");
        return 403;
    }
    int rc = a->cors ? colony__gw_cors_check(a->cors, req) : 0;
    if (rc) return rc;
    size_t body_len = 0;
    colony_request_body(req, &body_len);
    if (a->max_body && body_len > a->max_body) {
        char msg[96];
        snprintf(msg, sizeof(msg), "the body is larger than this route's %llu bytes",
                 (unsigned long long)a->max_body);
        colony_respond_error(req, 413, "payload_too_large", msg);
        return 413;
    }
    if (a->napi_keys) {
        const char *given = colony_request_header(req, a->api_key_header);
        const char *consumer = given ? api_consumer(a, given) : NULL;
        if (!consumer) {
            colony_respond_error(req, 401, "unauthorized",
                                 given ? "the API key is not valid" : "an API key is required");
            return 401;
        }
        const char *added[] = {"X-Consumer-ID", consumer};
        if (colony__gw_forward_add_headers(f, added, 1)) {
            colony_respond_error(req, 503, "overloaded", "out of memory");
            return 503;
        }
    }
    return a->jwt ? colony__gw_jwt_check(a->jwt, req, f) : 0;
}
