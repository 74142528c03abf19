/* Router internals shared by router.c (route tree and matching),
 * router_dispatch.c (request glue), query.c (percent-decoding) and the tests. */
#ifndef COLONY_HTTP_ROUTER_INTERNAL_H
#define COLONY_HTTP_ROUTER_INTERNAL_H

#include <stddef.h>
#include "colony/arena.h"
#include "colony/router.h"

#define COLONY__ROUTER_MAX_PATTERN 2048 /* bytes in a pattern */
#define COLONY__ROUTER_MAX_PARAMS  32   /* parameters (and wildcard) in a pattern */
#define COLONY__ROUTER_MAX_ALLOW   32   /* distinct methods reported in Allow */

/* One registered route. Strings are owned by the route. */
typedef struct colony__route {
    char *method; /* "GET", ... or "*" */
    char *pattern;
    colony_handler_cb handler;
    void *ud;
    size_t nparams;
    char **param_names; /* in path order; a wildcard is named "*" */
} colony__route;

typedef struct colony__router_node colony__router_node;

typedef struct colony__middleware {
    colony_middleware_cb cb;
    void *ud;
} colony__middleware;

struct colony_router {
    colony__router_node *root;
    colony__middleware *middleware;
    size_t nmiddleware;
    size_t middleware_cap;
};

/* A parameter value as a slice of the raw path. */
typedef struct colony__span {
    size_t off;
    size_t len;
} colony__span;

typedef struct colony__route_match {
    int status;                 /* 200, 404 or 405 */
    const colony__route *route; /* set when status is 200 */
    size_t nparams;             /* raw values, in route->param_names order */
    colony__span params[COLONY__ROUTER_MAX_PARAMS];
    size_t nallow; /* methods of routes whose pattern matched */
    const char *allow[COLONY__ROUTER_MAX_ALLOW];
} colony__route_match;

/* Matches path[0..path_len) (raw, without the query) for method. Never fails:
 * fills m and returns m->status. */
int colony__router_lookup(const colony_router *r, const char *method, const char *path,
                          size_t path_len, colony__route_match *m);

/* Writes the Allow list of a 405 match ("GET, HEAD, POST": sorted, HEAD added
 * when GET is there) into out (truncated, always NUL-terminated when size > 0).
 * Returns the full length, excluding the NUL. */
size_t colony__router_format_allow(const colony__route_match *m, char *out, size_t size);

/* Percent-decodes in[0..len) into out (at least len + 1 bytes, NUL-terminated)
 * and sets *out_len. With plus_is_space, '+' becomes ' ' (query strings).
 * Returns COLONY_EINVAL for a malformed escape or a decoded NUL byte. */
int colony__percent_decode(const char *in, size_t len, int plus_is_space, char *out,
                           size_t *out_len);

/* A decoded query string: pairs in order of appearance. */
typedef struct colony__query_pair {
    const char *key;
    const char *value;
} colony__query_pair;

typedef struct colony__query {
    size_t npairs;
    colony__query_pair *pairs;
} colony__query;

/* Splits "a=1&b=2" into percent-decoded pairs ('+' is a space) in the arena.
 * Empty pairs ("&&") are skipped; a pair without '=' has the value "". Text
 * that does not decode (bad escape, %00) is kept as sent. NULL on allocation
 * failure. */
colony__query *colony__query_parse(colony_arena *a, const char *query);
/* First value of key, or NULL. */
const char *colony__query_get(const colony__query *q, const char *key);

#endif
