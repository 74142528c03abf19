/* CORS (cors.h), after the Fetch standard's CORS protocol: a preflight is
 * answered here and never reaches the upstream; an actual request from an
 * allowed origin gets Access-Control-Allow-Origin on whatever answers it. */
#include "gateway/cors.h"
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "colony/error.h"
#include "core/alloc.h"

struct gw_cors {
    char **origins; /* exact "scheme://host[:port]"; "*" is any_origin */
    size_t norigins;
    int any_origin;
    char *methods; /* comma-joined, for the headers */
    char **method_list;
    size_t nmethods;
    char *headers; /* NULL: the requested ones are allowed */
    char **header_list;
    size_t nheaders;
    char *expose; /* NULL: none */
    int credentials;
    char max_age[24]; /* seconds, "" when not set */
};

static char *join(char **list, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(list[i]) + 2;
    char *s = colony__malloc(len);
    if (!s) return NULL;
    s[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i) strcat(s, ", ");
        strcat(s, list[i]);
    }
    return s;
}

static int token_chars(const char *s)
{
    return strspn(
               s,
               "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_!#$%&'*+.^`|~") ==
           strlen(s);
}

int colony__gw_cors_parse(gw_parse *p, const json_t *obj, gw_cors **out)
{
    static const char *const keys[] = {"origins", "methods",        "headers", "credentials",
                                       "max_age", "expose_headers", NULL};
    *out = NULL;
    if (!json_is_object(obj)) return colony__gw_parse_fail(p, NULL, "\"cors\" must be an object");
    int rc = colony__gw_parse_only(p, obj, keys);
    if (rc) return rc;
    gw_cors *c = colony__calloc(1, sizeof(*c));
    if (!c) return colony__gw_parse_fail(p, NULL, "out of memory");
    *out = c;
    if (!json_object_get(obj, "origins"))
        return colony__gw_parse_fail(p, NULL, "\"origins\" is required");
    rc = colony__gw_parse_strings(p, obj, "origins", 100, &c->origins, &c->norigins);
    for (size_t i = 0; !rc && i < c->norigins; i++) {
        const char *o = c->origins[i];
        if (strcmp(o, "*") == 0) {
            c->any_origin = 1;
            continue;
        }
        const char *host = strstr(o, "://");
        if ((strncmp(o, "http://", 7) != 0 && strncmp(o, "https://", 8) != 0) || !host[3] ||
            strchr(host + 3, '/') || strchr(o, '*'))
            rc = colony__gw_parse_fail(p, "origins",
                                       "\"%s\": an origin is \"*\" or scheme://host[:port], "
                                       "without a path",
                                       o);
    }
    if (!rc && json_is_true(json_object_get(obj, "credentials"))) c->credentials = 1;
    if (!rc && json_object_get(obj, "credentials") &&
        !json_is_boolean(json_object_get(obj, "credentials")))
        rc = colony__gw_parse_fail(p, "credentials", "\"credentials\" must be true or false");
    if (!rc && c->any_origin && c->credentials)
        rc = colony__gw_parse_fail(p, "credentials",
                                   "\"credentials\": true with origin \"*\" would let every site "
                                   "call with the user's cookies; list the origins");
    if (!rc) rc = colony__gw_parse_strings(p, obj, "methods", 32, &c->method_list, &c->nmethods);
    if (!rc) rc = colony__gw_parse_strings(p, obj, "headers", 64, &c->header_list, &c->nheaders);
    char **expose = NULL;
    size_t nexpose = 0;
    if (!rc) rc = colony__gw_parse_strings(p, obj, "expose_headers", 64, &expose, &nexpose);
    for (size_t i = 0; !rc && i < c->nmethods; i++)
        if (!token_chars(c->method_list[i]))
            rc = colony__gw_parse_fail(p, "methods", "\"%s\" is not a method", c->method_list[i]);
    for (size_t i = 0; !rc && i < c->nheaders; i++)
        if (!token_chars(c->header_list[i]))
            rc = colony__gw_parse_fail(p, "headers", "\"%s\" is not a header name",
                                       c->header_list[i]);
    for (size_t i = 0; !rc && i < nexpose; i++)
        if (!token_chars(expose[i]))
            rc = colony__gw_parse_fail(p, "expose_headers", "\"%s\" is not a header name",
                                       expose[i]);
    uint64_t max_age = 0;
    if (!rc) rc = colony__gw_parse_duration(p, obj, "max_age", 86400000, &max_age);
    if (!rc && json_object_get(obj, "max_age"))
        snprintf(c->max_age, sizeof(c->max_age), "%llu", (unsigned long long)(max_age / 1000));
    if (!rc && !c->nmethods) {
        static const char *const simple[] = {"GET", "HEAD", "POST"};
        c->method_list = colony__calloc(3, sizeof(char *));
        for (size_t i = 0; c->method_list && i < 3; i++)
            if ((c->method_list[i] = colony__strdup(simple[i]))) c->nmethods++;
        if (c->nmethods != 3) rc = colony__gw_parse_fail(p, NULL, "out of memory");
    }
    if (!rc && !(c->methods = join(c->method_list, c->nmethods)))
        rc = colony__gw_parse_fail(p, NULL, "out of memory");
    if (!rc && c->nheaders && !(c->headers = join(c->header_list, c->nheaders)))
        rc = colony__gw_parse_fail(p, NULL, "out of memory");
    if (!rc && nexpose && !(c->expose = join(expose, nexpose)))
        rc = colony__gw_parse_fail(p, NULL, "out of memory");
    colony__gw_strings_free(expose, nexpose);
    return rc;
}

void colony__gw_cors_free(gw_cors *c)
{
    if (!c) return;
    colony__gw_strings_free(c->origins, c->norigins);
    colony__gw_strings_free(c->method_list, c->nmethods);
    colony__gw_strings_free(c->header_list, c->nheaders);
    colony__free(c->methods);
    colony__free(c->headers);
    colony__free(c->expose);
    colony__free(c);
}

static int origin_allowed(const gw_cors *c, const char *origin)
{
    if (c->any_origin) return 1;
    for (size_t i = 0; i < c->norigins; i++)
        if (strcasecmp(c->origins[i], origin) == 0) return 1;
    return 0;
}

static int in_list(char **list, size_t n, const char *item, size_t len, int nocase)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == len &&
            (nocase ? strncasecmp(list[i], item, len) : strncmp(list[i], item, len)) == 0)
            return 1;
    return 0;
}

/* Every header of the comma-separated request list is allowed. */
static int headers_allowed(const gw_cors *c, const char *requested)
{
    if (!c->headers || !requested) return 1;
    for (const char *p = requested; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t n = strcspn(p, ", \t");
        if (n && !in_list(c->header_list, c->nheaders, p, n, 1)) return 0;
        p += n;
    }
    return 1;
}

/* Access-Control-Allow-Origin: "*" only for any origin without credentials;
 * otherwise the request's own origin, and Vary: Origin for caches. */
static int allow_origin(const gw_cors *c, colony_request *req, const char *origin)
{
    int rc;
    if (c->any_origin && !c->credentials)
        return colony_response_header(req, "Access-Control-Allow-Origin", "*");
    rc = colony_response_header(req, "Access-Control-Allow-Origin", origin);
    if (!rc) rc = colony_response_header(req, "Vary", "Origin");
    if (!rc && c->credentials)
        rc = colony_response_header(req, "Access-Control-Allow-Credentials", "true");
    return rc;
}

int colony__gw_cors_check(const gw_cors *c, colony_request *req)
{
    const char *origin = colony_request_header(req, "Origin");
    if (!colony__gw_access_is_preflight(req)) {
        /* The gateway answers for CORS on this route: the upstream's own
         * Access-Control-* headers would contradict or duplicate ours. */
        colony_request_set_data(req, GW_CORS_DATA_KEY, (void *)c);
        if (!origin || !origin_allowed(c, origin)) return 0; /* the browser enforces */
        int rc = allow_origin(c, req, origin);
        if (!rc && c->expose)
            rc = colony_response_header(req, "Access-Control-Expose-Headers", c->expose);
        return rc == COLONY_EINVAL ? 0
               : rc ? (colony_respond_error(req, 503, "overloaded", "out of memory"), 503)
                    : 0;
    }
    const char *method = colony_request_header(req, "Access-Control-Request-Method");
    const char *requested = colony_request_header(req, "Access-Control-Request-Headers");
    const char *why = NULL;
    if (!origin_allowed(c, origin))
        why = "this origin may not call this route";
    else if (!in_list(c->method_list, c->nmethods, method, strlen(method), 0))
        why = "this method is not allowed from other origins";
    else if (!headers_allowed(c, requested))
        why = "a requested header is not allowed from other origins";
    if (why) {
        colony_respond_error(req, 403, "cors_forbidden", why);
        return 403;
    }
    int rc = allow_origin(c, req, origin);
    if (!rc) rc = colony_response_header(req, "Access-Control-Allow-Methods", c->methods);
    if (!rc && (c->headers || (requested && *requested)))
        rc = colony_response_header(req, "Access-Control-Allow-Headers",
                                    c->headers ? c->headers : requested);
    if (!rc && c->max_age[0])
        rc = colony_response_header(req, "Access-Control-Max-Age", c->max_age);
    if (rc == COLONY_EINVAL) rc = 0; /* a requested header list that cannot be echoed */
    colony_respond(req, 204, NULL, NULL, 0);
    return 204;
}
