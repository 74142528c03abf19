/* Gateway routes: what a request must look like to take a route (hosts,
 * methods, a path rule, headers) and how its path is rewritten on the way
 * upstream. Matching picks the most specific route, then the first in the
 * file (docs/gateway.md, "Route precedence"). Pure functions: no I/O, no
 * allocation while matching. */
#ifndef COLONY_GATEWAY_ROUTE_H
#define COLONY_GATEWAY_ROUTE_H

#include <stddef.h>

#define GW_MAX_PARAMS 16 /* parameters in one pattern (and its wildcard) */

typedef enum gw_path_kind {
    GW_PATH_PREFIX,  /* "/api/users": the path or anything below it */
    GW_PATH_EXACT,   /* "/health": only that path */
    GW_PATH_PATTERN, /* "/users/:id/orders", or a trailing "*" segment */
} gw_path_kind;

typedef enum gw_segment_kind { GW_SEG_LITERAL, GW_SEG_PARAM, GW_SEG_WILDCARD } gw_segment_kind;

typedef struct gw_segment {
    gw_segment_kind kind;
    const char *text; /* literal bytes or parameter name, inside the route's path */
    size_t len;
} gw_segment;

typedef struct gw_header_match {
    char *name;
    char *value; /* exact value; NULL: the header only has to be present */
} gw_header_match;

typedef struct gw_route {
    char *name;
    size_t order; /* position in the file: the last tie-break */
    char **hosts; /* lowercase; "*.example.com" is a suffix wildcard; none: any host */
    size_t nhosts;
    char **methods; /* none: any method */
    size_t nmethods;
    gw_path_kind kind;
    char *path; /* normalized, as written otherwise */
    size_t path_len;
    gw_segment *segments; /* pattern routes: filled by colony__gw_route_compile */
    size_t nsegments;
    gw_header_match *headers;
    size_t nheaders;
    int strip_prefix;   /* prefix routes: drop the matched prefix upstream */
    char *rewrite;      /* NULL: keep the path; see colony__gw_rewrite */
    size_t literal_len; /* literal bytes of the path rule: specificity */
    void *target;       /* what the route leads to; not owned */
} gw_route;

typedef struct gw_param {
    const char *name; /* inside the route */
    size_t name_len;
    const char *value; /* inside the request path */
    size_t len;
} gw_param;

typedef struct gw_match {
    const gw_route *route;
    size_t nparams;
    gw_param params[GW_MAX_PARAMS];
    size_t prefix_len; /* prefix routes: bytes of the path the prefix matched */
} gw_match;

/* Validates rt (already filled from the config) and prepares it for matching.
 * On error returns COLONY_EINVAL with a reason in err ("pattern: ..."). */
int colony__gw_route_compile(gw_route *rt, char *err, size_t err_size);
/* Frees what the route owns (not target) and zeroes it. */
void colony__gw_route_clear(gw_route *rt);

/* Looks up a request header by name (case-insensitive); NULL when absent. */
typedef const char *(*gw_header_fn)(void *ud, const char *name);

/* Finds the route for a request. path must be normalized
 * (colony_http_path_normalize) and carry no query; host is the Host header as
 * sent (port and case do not matter; NULL: none). Returns 1 with *out filled,
 * or 0 when no route matches. */
int colony__gw_match(gw_route *const *routes, size_t n, const char *method, const char *host,
                     const char *path, gw_header_fn header, void *header_ud, gw_match *out);

/* The path to send upstream for a matched request: the path itself, without
 * the prefix (strip_prefix), or the rewrite template with ":name" and "*"
 * filled from the match (for a prefix route the rewrite replaces the prefix).
 * Writes a NUL-terminated path into out; returns its length or COLONY_E2BIG. */
int colony__gw_rewrite(const gw_match *m, const char *path, char *out, size_t size);

#endif
