/* Route compilation, matching and path rewriting (route.h). A gateway has tens
 * of routes, not thousands: matching scans them all and keeps the most
 * specific match, so precedence does not depend on how routes are indexed. */
#include "gateway/route.h"
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "colony/error.h"
#include "colony/http_parser.h"
#include "core/alloc.h"

static int fail(char *err, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
    return COLONY_EINVAL;
}

static int is_token(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s)) return 0;
    return 1;
}

static int is_param_name(const char *s, size_t n)
{
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_') return 0;
    return 1;
}

static int compile_pattern(gw_route *rt, char *err, size_t size)
{
    size_t n = 0;
    for (const char *p = rt->path; *p; p++)
        n += *p == '/';
    rt->segments = colony__calloc(n, sizeof(*rt->segments));
    if (!rt->segments) return COLONY_ENOMEM;
    size_t nparams = 0;
    const char *p = rt->path + 1;
    for (size_t i = 0; i < n; i++) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        gw_segment *seg = &rt->segments[rt->nsegments++];
        if (len == 1 && p[0] == '*') {
            if (end) return fail(err, size, "pattern: '*' must be the last segment");
            *seg = (gw_segment){GW_SEG_WILDCARD, "*", 1};
            nparams++;
        } else if (len > 0 && p[0] == ':') {
            if (!is_param_name(p + 1, len - 1))
                return fail(err, size,
                            "pattern: parameter '%.*s' needs a name of letters, "
                            "digits and '_'",
                            (int)len, p);
            for (size_t j = 0; j + 1 < rt->nsegments; j++)
                if (rt->segments[j].kind == GW_SEG_PARAM && rt->segments[j].len == len - 1 &&
                    memcmp(rt->segments[j].text, p + 1, len - 1) == 0)
                    return fail(err, size, "pattern: parameter '%.*s' appears twice", (int)len, p);
            *seg = (gw_segment){GW_SEG_PARAM, p + 1, len - 1};
            nparams++;
        } else {
            if (memchr(p, '*', len) || memchr(p, ':', len))
                return fail(err, size, "pattern: '*' and ':' must start a segment of their own");
            *seg = (gw_segment){GW_SEG_LITERAL, p, len};
            rt->literal_len += len;
        }
        rt->literal_len++; /* the '/' before the segment */
        p = end ? end + 1 : p + len;
    }
    if (nparams > GW_MAX_PARAMS)
        return fail(err, size, "pattern: more than %d parameters", GW_MAX_PARAMS);
    return 0;
}

/* Checks that every ":name" and "*" of a pattern route's rewrite exists in its
 * pattern: a template that cannot be filled is a config error, not a 500. */
static int check_rewrite(const gw_route *rt, char *err, size_t size)
{
    if (rt->rewrite[0] != '/') return fail(err, size, "rewrite: must start with '/'");
    if (rt->kind != GW_PATH_PATTERN) {
        if (strpbrk(rt->rewrite, ":*"))
            return fail(err, size, "rewrite: ':name' and '*' need a \"pattern\" route");
        return 0;
    }
    for (const char *p = rt->rewrite + 1; *p;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        int found = 0;
        if ((len > 0 && p[0] == ':') || (len == 1 && p[0] == '*')) {
            gw_segment_kind want = p[0] == '*' ? GW_SEG_WILDCARD : GW_SEG_PARAM;
            const char *name = p[0] == '*' ? "*" : p + 1;
            size_t name_len = p[0] == '*' ? 1 : len - 1;
            for (size_t i = 0; i < rt->nsegments && !found; i++)
                found = rt->segments[i].kind == want && rt->segments[i].len == name_len &&
                        memcmp(rt->segments[i].text, name, name_len) == 0;
            if (!found)
                return fail(err, size, "rewrite: '%.*s' is not in the pattern", (int)len, p);
        }
        p = end ? end + 1 : p + len;
    }
    return 0;
}

int colony__gw_route_compile(gw_route *rt, char *err, size_t size)
{
    if (!rt->path || rt->path[0] != '/') return fail(err, size, "path: must start with '/'");
    char *norm = colony__malloc(strlen(rt->path) + 1);
    if (!norm) return COLONY_ENOMEM;
    int n = colony_http_path_normalize(rt->path, strlen(rt->path), norm);
    if (n < 0) {
        colony__free(norm);
        return fail(err, size, "path: not a valid path (bad escape or '..' above the root)");
    }
    if (strcmp(norm, rt->path) != 0) {
        int rc = fail(err, size, "path: write it normalized, as \"%s\"", norm);
        colony__free(norm);
        return rc;
    }
    colony__free(norm);
    rt->path_len = (size_t)n;
    rt->literal_len = 0;
    if (rt->kind == GW_PATH_PATTERN) {
        int rc = compile_pattern(rt, err, size);
        if (rc) return rc;
    } else {
        if (strpbrk(rt->path, "*") || strstr(rt->path, "/:"))
            return fail(err, size, "path: ':name' and '*' need a \"pattern\" route");
        rt->literal_len = rt->path_len;
    }
    if (rt->strip_prefix && rt->kind != GW_PATH_PREFIX)
        return fail(err, size, "strip_prefix: only for \"prefix\" routes");
    if (rt->rewrite) {
        int rc = check_rewrite(rt, err, size);
        if (rc) return rc;
    }
    for (size_t i = 0; i < rt->nhosts; i++) {
        char *h = rt->hosts[i];
        for (char *c = h; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        const char *rest = strncmp(h, "*.", 2) == 0 ? h + 2 : h;
        if (!*rest || strpbrk(rest, "*/ :"))
            return fail(err, size,
                        "hosts: \"%s\" is not a host name (a leading \"*.\" is the "
                        "only wildcard; no port)",
                        h);
    }
    for (size_t i = 0; i < rt->nmethods; i++) {
        if (!is_token(rt->methods[i]))
            return fail(err, size, "methods: \"%s\" is not a method", rt->methods[i]);
    }
    for (size_t i = 0; i < rt->nheaders; i++)
        if (!is_token(rt->headers[i].name))
            return fail(err, size, "headers: \"%s\" is not a header name", rt->headers[i].name);
    return 0;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        colony__free(v[i]);
    colony__free(v);
}

void colony__gw_route_clear(gw_route *rt)
{
    colony__free(rt->name);
    free_strings(rt->hosts, rt->nhosts);
    free_strings(rt->methods, rt->nmethods);
    colony__free(rt->path);
    colony__free(rt->segments);
    for (size_t i = 0; i < rt->nheaders; i++) {
        colony__free(rt->headers[i].name);
        colony__free(rt->headers[i].value);
    }
    colony__free(rt->headers);
    colony__free(rt->rewrite);
    memset(rt, 0, sizeof(*rt));
}

/* ---- matching ------------------------------------------------------- */

/* How well a route's hosts fit the request's host: 0 for no fit, else a rank
 * where an exact name beats any wildcard and a longer wildcard suffix beats a
 * shorter one; routes without hosts fit every host with rank 1. */
static size_t host_rank(const gw_route *rt, const char *host, size_t host_len)
{
    if (rt->nhosts == 0) return 1;
    size_t best = 0;
    for (size_t i = 0; i < rt->nhosts && host; i++) {
        const char *h = rt->hosts[i];
        size_t len = strlen(h);
        if (h[0] == '*') {
            size_t suffix = len - 1; /* ".example.com" */
            if (host_len > suffix && strncasecmp(host + host_len - suffix, h + 1, suffix) == 0 &&
                2 + suffix > best)
                best = 2 + suffix;
        } else if (len == host_len && strncasecmp(host, h, len) == 0) {
            return (size_t)1 << 30; /* exact */
        }
    }
    return best;
}

/* The host without its port: "example.com:8000" -> "example.com", "[::1]:80" -> "[::1]". */
static size_t host_name_len(const char *host)
{
    if (!host) return 0;
    if (host[0] == '[') {
        const char *close = strchr(host, ']');
        return close ? (size_t)(close - host) + 1 : strlen(host);
    }
    const char *colon = strchr(host, ':');
    return colon ? (size_t)(colon - host) : strlen(host);
}

static int method_fits(const gw_route *rt, const char *method)
{
    if (rt->nmethods == 0) return 1;
    for (size_t i = 0; i < rt->nmethods; i++) {
        if (strcmp(rt->methods[i], method) == 0) return 1;
        if (strcmp(method, "HEAD") == 0 && strcmp(rt->methods[i], "GET") == 0) return 1;
    }
    return 0;
}

static int pattern_fits(const gw_route *rt, const char *path, gw_match *m)
{
    const char *p = path + 1;
    for (size_t i = 0; i < rt->nsegments; i++) {
        const gw_segment *seg = &rt->segments[i];
        if (!p) return 0; /* the path ran out of segments */
        if (seg->kind == GW_SEG_WILDCARD) {
            m->params[m->nparams++] = (gw_param){"*", 1, p, strlen(p)};
            return 1;
        }
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (seg->kind == GW_SEG_LITERAL) {
            if (len != seg->len || memcmp(p, seg->text, len) != 0) return 0;
        } else {
            if (len == 0) return 0;
            m->params[m->nparams++] = (gw_param){seg->text, seg->len, p, len};
        }
        p = end ? end + 1 : NULL;
    }
    return p == NULL;
}

static int path_fits(const gw_route *rt, const char *path, size_t path_len, gw_match *m)
{
    switch (rt->kind) {
    case GW_PATH_EXACT:
        return path_len == rt->path_len && memcmp(path, rt->path, path_len) == 0;
    case GW_PATH_PREFIX:
        if (path_len < rt->path_len || memcmp(path, rt->path, rt->path_len) != 0) return 0;
        /* whole segments only: "/api/users" takes "/api/users/1", not "/api/usersX" */
        if (path_len > rt->path_len && rt->path[rt->path_len - 1] != '/' &&
            path[rt->path_len] != '/')
            return 0;
        m->prefix_len = rt->path_len;
        return 1;
    case GW_PATH_PATTERN:
        return pattern_fits(rt, path, m);
    }
    return 0;
}

static int headers_fit(const gw_route *rt, gw_header_fn header, void *ud)
{
    for (size_t i = 0; i < rt->nheaders; i++) {
        const char *v = header ? header(ud, rt->headers[i].name) : NULL;
        if (!v) return 0;
        if (rt->headers[i].value && strcmp(v, rt->headers[i].value) != 0) return 0;
    }
    return 1;
}

/* The precedence of docs/gateway.md as a comparison: > 0 when a beats b. */
static int more_specific(const gw_route *a, size_t a_host, const gw_route *b, size_t b_host)
{
    if (a_host != b_host) return a_host > b_host ? 1 : -1;
    int a_exact = a->kind == GW_PATH_EXACT, b_exact = b->kind == GW_PATH_EXACT;
    if (a_exact != b_exact) return a_exact - b_exact;
    if (a->literal_len != b->literal_len) return a->literal_len > b->literal_len ? 1 : -1;
    int a_pat = a->kind == GW_PATH_PATTERN, b_pat = b->kind == GW_PATH_PATTERN;
    if (a_pat != b_pat) return a_pat - b_pat;
    if (a->nheaders != b->nheaders) return a->nheaders > b->nheaders ? 1 : -1;
    int a_methods = a->nmethods > 0, b_methods = b->nmethods > 0;
    if (a_methods != b_methods) return a_methods - b_methods;
    return a->order < b->order ? 1 : -1;
}

int colony__gw_match(gw_route *const *routes, size_t n, const char *method, const char *host,
                     const char *path, gw_header_fn header, void *header_ud, gw_match *out)
{
    size_t host_len = host_name_len(host), path_len = strlen(path), best_host = 0;
    gw_match m;
    out->route = NULL;
    for (size_t i = 0; i < n; i++) {
        const gw_route *rt = routes[i];
        if (!method_fits(rt, method)) continue;
        size_t rank = host_rank(rt, host, host_len);
        if (rank == 0) continue;
        if (out->route && more_specific(rt, rank, out->route, best_host) < 0) continue;
        memset(&m, 0, sizeof(m));
        if (!path_fits(rt, path, path_len, &m) || !headers_fit(rt, header, header_ud)) continue;
        m.route = rt;
        *out = m;
        best_host = rank;
    }
    return out->route != NULL;
}

/* ---- rewriting ------------------------------------------------------ */

typedef struct out_buf {
    char *p;
    size_t len, size;
    int overflow;
} out_buf;

static void put(out_buf *o, const char *s, size_t n)
{
    if (o->len + n >= o->size) {
        o->overflow = 1;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static const gw_param *find_param(const gw_match *m, const char *name, size_t len)
{
    for (size_t i = 0; i < m->nparams; i++)
        if (m->params[i].name_len == len && memcmp(m->params[i].name, name, len) == 0)
            return &m->params[i];
    return NULL;
}

static void fill_template(out_buf *o, const gw_match *m, const char *tpl)
{
    for (const char *p = tpl; *p;) {
        if (*p != '/') { /* only right after the leading '/' of a segment */
            p++;
            continue;
        }
        put(o, "/", 1);
        p++;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const gw_param *param = NULL;
        if (len == 1 && p[0] == '*')
            param = find_param(m, "*", 1);
        else if (len > 1 && p[0] == ':')
            param = find_param(m, p + 1, len - 1);
        if (param)
            put(o, param->value, param->len);
        else
            put(o, p, len);
        p += len;
    }
}

int colony__gw_rewrite(const gw_match *m, const char *path, char *out, size_t size)
{
    const gw_route *rt = m->route;
    out_buf o = {out, 0, size, 0};
    if (rt->kind == GW_PATH_PATTERN && rt->rewrite) {
        fill_template(&o, m, rt->rewrite);
    } else if (rt->kind == GW_PATH_PREFIX && (rt->rewrite || rt->strip_prefix)) {
        const char *rest = path + m->prefix_len;
        const char *base = rt->rewrite ? rt->rewrite : "";
        size_t base_len = strlen(base);
        put(&o, base, base_len);
        int base_slash = base_len > 0 && base[base_len - 1] == '/';
        if (*rest == '/' && base_slash) rest++;
        if (*rest && *rest != '/' && !base_slash) put(&o, "/", 1);
        put(&o, rest, strlen(rest));
        if (o.len == 0) put(&o, "/", 1);
    } else {
        const char *src = rt->rewrite ? rt->rewrite : path;
        put(&o, src, strlen(src));
    }
    if (o.overflow) return COLONY_E2BIG;
    out[o.len] = '\0';
    return (int)o.len;
}
