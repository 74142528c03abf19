/* Route table: a tree of path segments. Each node has sorted literal children,
 * at most one parameter child and at most one wildcard child, plus the routes
 * (one per method) whose pattern ends there. Matching walks the path segment
 * by segment, trying literal, then parameter, then wildcard, backtracking on
 * failure; a node sits at a fixed depth, so each node is visited at most once
 * per lookup and the cost is bounded by the path length, not the route count. */
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "colony/router.h"
#include "core/alloc.h"
#include "http/parser_internal.h"
#include "http/router_internal.h"

typedef struct literal_child {
    char *segment;
    size_t len;
    colony__router_node *node;
} literal_child;

struct colony__router_node {
    literal_child *literals; /* sorted by (len, bytes) */
    size_t nliterals;
    colony__router_node *param;
    colony__router_node *wildcard;
    colony__route **routes;
    size_t nroutes;
};

enum segment_kind { SEG_LITERAL, SEG_PARAM, SEG_WILDCARD };

typedef struct pattern_segment {
    enum segment_kind kind;
    const char *text; /* literal bytes or parameter name, inside the pattern */
    size_t len;
} pattern_segment;

static void node_free(colony__router_node *n)
{
    if (!n) return;
    for (size_t i = 0; i < n->nliterals; i++) {
        colony__free(n->literals[i].segment);
        node_free(n->literals[i].node);
    }
    colony__free(n->literals);
    node_free(n->param);
    node_free(n->wildcard);
    for (size_t i = 0; i < n->nroutes; i++) {
        colony__route *rt = n->routes[i];
        for (size_t p = 0; p < rt->nparams; p++)
            colony__free(rt->param_names[p]);
        colony__free(rt->param_names);
        colony__free(rt->method);
        colony__free(rt->pattern);
        colony__free(rt);
    }
    colony__free(n->routes);
    colony__free(n);
}

colony_router *colony_router_new(void)
{
    colony_router *r = colony__calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->root = colony__calloc(1, sizeof(*r->root));
    if (!r->root) {
        colony__free(r);
        return NULL;
    }
    return r;
}

void colony_router_free(colony_router *r)
{
    if (!r) return;
    node_free(r->root);
    colony__free(r->middleware);
    colony__free(r);
}

int colony_router_use(colony_router *r, colony_middleware_cb mw, void *ud)
{
    if (!r || !mw) return COLONY_EINVAL;
    if (r->nmiddleware == r->middleware_cap) {
        size_t cap = r->middleware_cap ? r->middleware_cap * 2 : 4;
        colony__middleware *grown = colony__realloc(r->middleware, cap * sizeof(*grown));
        if (!grown) return COLONY_ENOMEM;
        r->middleware = grown;
        r->middleware_cap = cap;
    }
    r->middleware[r->nmiddleware].cb = mw;
    r->middleware[r->nmiddleware].ud = ud;
    r->nmiddleware++;
    return 0;
}

static int valid_method(const char *m)
{
    if (!m[0]) return 0;
    if (strcmp(m, "*") == 0) return 1;
    for (const char *p = m; *p; p++)
        if (!COLONY__HTTP_IS(*p, COLONY__CC_TCHAR)) return 0;
    return 1;
}

static int is_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Characters a literal segment may hold: what a raw request path can contain
 * (visible ASCII) minus '?', '#' and '*', which would be ambiguous. */
static int is_literal_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '?' && c != '#' && c != '*' && c != '/';
}

/* Splits and validates a pattern before anything is inserted, so a rejected
 * pattern leaves the tree untouched. Returns the segment count or
 * COLONY_EINVAL. */
static int parse_pattern(const char *pattern, pattern_segment *segs, size_t max_segs,
                         size_t *nparams)
{
    size_t plen = strlen(pattern);
    if (plen == 0 || plen > COLONY__ROUTER_MAX_PATTERN || pattern[0] != '/') return COLONY_EINVAL;
    size_t nsegs = 0;
    *nparams = 0;
    size_t start = 1;
    for (;;) {
        const char *slash = memchr(pattern + start, '/', plen - start);
        size_t end = slash ? (size_t)(slash - pattern) : plen;
        int last = slash == NULL;
        const char *seg = pattern + start;
        size_t len = end - start;
        if (nsegs == max_segs) return COLONY_EINVAL;
        pattern_segment *out = &segs[nsegs++];
        if (len == 0) {
            if (!last) return COLONY_EINVAL; /* "//" inside a pattern */
            out->kind = SEG_LITERAL;
        } else if (seg[0] == ':') {
            if (len == 1) return COLONY_EINVAL;
            for (size_t i = 1; i < len; i++)
                if (!is_name_char((unsigned char)seg[i])) return COLONY_EINVAL;
            out->kind = SEG_PARAM;
            seg++;
            len--;
            for (size_t i = 0; i + 1 < nsegs; i++)
                if (segs[i].kind == SEG_PARAM && segs[i].len == len &&
                    memcmp(segs[i].text, seg, len) == 0)
                    return COLONY_EINVAL; /* duplicate parameter name */
        } else if (len == 1 && seg[0] == '*') {
            if (!last) return COLONY_EINVAL;
            out->kind = SEG_WILDCARD;
        } else {
            for (size_t i = 0; i < len; i++)
                if (!is_literal_char((unsigned char)seg[i])) return COLONY_EINVAL;
            out->kind = SEG_LITERAL;
        }
        out->text = seg;
        out->len = len;
        if (out->kind != SEG_LITERAL && ++*nparams > COLONY__ROUTER_MAX_PARAMS)
            return COLONY_EINVAL;
        if (last) break;
        start = end + 1;
    }
    return (int)nsegs;
}

static int literal_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen) return alen < blen ? -1 : 1;
    return memcmp(a, b, alen);
}

/* Binary search over the sorted literal children; returns the index of the
 * match or, with *found 0, where it would be inserted. */
static size_t literal_find(const colony__router_node *n, const char *seg, size_t len, int *found)
{
    size_t lo = 0, hi = n->nliterals;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = literal_cmp(n->literals[mid].segment, n->literals[mid].len, seg, len);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static colony__router_node *literal_child_get_or_add(colony__router_node *n, const char *seg,
                                                     size_t len)
{
    int found;
    size_t at = literal_find(n, seg, len, &found);
    if (found) return n->literals[at].node;
    literal_child *grown = colony__realloc(n->literals, (n->nliterals + 1) * sizeof(*grown));
    if (!grown) return NULL;
    n->literals = grown;
    char *copy = colony__strndup(seg, len);
    colony__router_node *child = colony__calloc(1, sizeof(*child));
    if (!copy || !child) {
        colony__free(copy);
        colony__free(child);
        return NULL;
    }
    memmove(&n->literals[at + 1], &n->literals[at], (n->nliterals - at) * sizeof(*grown));
    n->literals[at].segment = copy;
    n->literals[at].len = len;
    n->literals[at].node = child;
    n->nliterals++;
    return child;
}

static colony__router_node *special_child_get_or_add(colony__router_node **slot)
{
    if (!*slot) *slot = colony__calloc(1, sizeof(**slot));
    return *slot;
}

static colony__route *route_new(const char *method, const char *pattern,
                                const pattern_segment *segs, size_t nsegs, size_t nparams,
                                colony_handler_cb handler, void *ud)
{
    colony__route *rt = colony__calloc(1, sizeof(*rt));
    if (!rt) return NULL;
    rt->method = colony__strdup(method);
    rt->pattern = colony__strdup(pattern);
    rt->param_names = nparams ? colony__calloc(nparams, sizeof(char *)) : NULL;
    int ok = rt->method && rt->pattern && (nparams == 0 || rt->param_names);
    for (size_t i = 0; ok && i < nsegs; i++) {
        if (segs[i].kind == SEG_LITERAL) continue;
        const char *name = segs[i].kind == SEG_WILDCARD ? "*" : segs[i].text;
        size_t len = segs[i].kind == SEG_WILDCARD ? 1 : segs[i].len;
        char *copy = colony__strndup(name, len);
        if (!copy) {
            ok = 0;
            break;
        }
        rt->param_names[rt->nparams++] = copy;
    }
    rt->handler = handler;
    rt->ud = ud;
    if (!ok) {
        for (size_t i = 0; i < rt->nparams; i++)
            colony__free(rt->param_names[i]);
        colony__free(rt->param_names);
        colony__free(rt->method);
        colony__free(rt->pattern);
        colony__free(rt);
        return NULL;
    }
    return rt;
}

int colony_router_add(colony_router *r, const char *method, const char *pattern,
                      colony_handler_cb handler, void *ud)
{
    if (!r || !method || !pattern || !handler || !valid_method(method)) return COLONY_EINVAL;
    pattern_segment segs[COLONY__ROUTER_MAX_PATTERN / 2 + 1];
    size_t nparams;
    int nsegs = parse_pattern(pattern, segs, sizeof(segs) / sizeof(segs[0]), &nparams);
    if (nsegs < 0) return nsegs;

    /* Walk (and grow) the tree. Nodes created before an allocation failure
     * stay, empty: they match nothing and are freed with the router. */
    colony__router_node *n = r->root;
    for (int i = 0; i < nsegs && n; i++) {
        if (segs[i].kind == SEG_LITERAL)
            n = literal_child_get_or_add(n, segs[i].text, segs[i].len);
        else if (segs[i].kind == SEG_PARAM)
            n = special_child_get_or_add(&n->param);
        else
            n = special_child_get_or_add(&n->wildcard);
    }
    if (!n) return COLONY_ENOMEM;
    for (size_t i = 0; i < n->nroutes; i++)
        if (strcmp(n->routes[i]->method, method) == 0) return COLONY_EEXIST;

    colony__route **grown = colony__realloc(n->routes, (n->nroutes + 1) * sizeof(*grown));
    if (!grown) return COLONY_ENOMEM;
    n->routes = grown;
    colony__route *rt = route_new(method, pattern, segs, (size_t)nsegs, nparams, handler, ud);
    if (!rt) return COLONY_ENOMEM;
    n->routes[n->nroutes++] = rt;
    return 0;
}

/* ---- matching ---- */

typedef struct lookup {
    const char *method;
    const char *path;
    size_t len;
    colony__route_match *m;
} lookup;

static const colony__route *route_for_method(const colony__router_node *n, const char *method)
{
    const colony__route *get = NULL, *any = NULL;
    int is_head = strcmp(method, "HEAD") == 0;
    for (size_t i = 0; i < n->nroutes; i++) {
        const char *rm = n->routes[i]->method;
        if (strcmp(rm, method) == 0) return n->routes[i];
        if (is_head && strcmp(rm, "GET") == 0) get = n->routes[i];
        if (strcmp(rm, "*") == 0) any = n->routes[i];
    }
    return get ? get : any;
}

static void allow_add(colony__route_match *m, const char *method)
{
    for (size_t i = 0; i < m->nallow; i++)
        if (strcmp(m->allow[i], method) == 0) return;
    if (m->nallow < COLONY__ROUTER_MAX_ALLOW) m->allow[m->nallow++] = method;
}

/* The path ended at node n: a route for the method wins (returns 1);
 * otherwise its methods go into the Allow list and the search goes on. */
static int try_terminal(const lookup *lk, const colony__router_node *n)
{
    if (n->nroutes == 0) return 0;
    const colony__route *rt = route_for_method(n, lk->method);
    if (rt) {
        lk->m->route = rt;
        return 1;
    }
    for (size_t i = 0; i < n->nroutes; i++) {
        allow_add(lk->m, n->routes[i]->method);
        if (strcmp(n->routes[i]->method, "GET") == 0) allow_add(lk->m, "HEAD");
    }
    return 0;
}

/* Matches the segment starting at `start` (just after a '/') against n's
 * children in priority order. Captured values are pushed on m->params and
 * popped when a branch fails. */
static int match_from(const lookup *lk, const colony__router_node *n, size_t start)
{
    const char *slash = memchr(lk->path + start, '/', lk->len - start);
    size_t end = slash ? (size_t)(slash - lk->path) : lk->len;
    size_t seg_len = end - start;
    colony__route_match *m = lk->m;

    if (n->nliterals) {
        int found;
        size_t at = literal_find(n, lk->path + start, seg_len, &found);
        if (found) {
            const colony__router_node *child = n->literals[at].node;
            if (slash ? match_from(lk, child, end + 1) : try_terminal(lk, child)) return 1;
        }
    }
    if (n->param && seg_len > 0 && m->nparams < COLONY__ROUTER_MAX_PARAMS) {
        m->params[m->nparams].off = start;
        m->params[m->nparams].len = seg_len;
        m->nparams++;
        if (slash ? match_from(lk, n->param, end + 1) : try_terminal(lk, n->param)) return 1;
        m->nparams--;
    }
    if (n->wildcard && m->nparams < COLONY__ROUTER_MAX_PARAMS) {
        m->params[m->nparams].off = start;
        m->params[m->nparams].len = lk->len - start;
        m->nparams++;
        if (try_terminal(lk, n->wildcard)) return 1;
        m->nparams--;
    }
    return 0;
}

int colony__router_lookup(const colony_router *r, const char *method, const char *path,
                          size_t path_len, colony__route_match *m)
{
    m->route = NULL;
    m->nparams = 0;
    m->nallow = 0;
    m->status = 404;
    if (!r || !method || !path || path_len == 0 || path[0] != '/') return m->status;
    lookup lk = {method, path, path_len, m};
    if (match_from(&lk, r->root, 1))
        m->status = 200;
    else if (m->nallow > 0)
        m->status = 405;
    if (m->status != 200) m->nparams = 0;
    return m->status;
}

static int cmp_method(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

size_t colony__router_format_allow(const colony__route_match *m, char *out, size_t size)
{
    const char *sorted[COLONY__ROUTER_MAX_ALLOW];
    memcpy(sorted, m->allow, m->nallow * sizeof(sorted[0]));
    qsort(sorted, m->nallow, sizeof(sorted[0]), cmp_method);
    size_t total = 0;
    for (size_t i = 0; i < m->nallow; i++) {
        const char *parts[2] = {i ? ", " : "", sorted[i]};
        for (int p = 0; p < 2; p++) {
            size_t n = strlen(parts[p]);
            if (total < size) {
                size_t room = size - 1 - total;
                memcpy(out + total, parts[p], n < room ? n : room);
            }
            total += n;
        }
    }
    if (size > 0) out[total < size ? total : size - 1] = '\0';
    return total;
}

int colony_router_match(const colony_router *r, const char *method, const char *path, char *allow,
                        size_t allow_size)
{
    if (allow && allow_size > 0) allow[0] = '\0';
    if (!path) return 404;
    colony__route_match m;
    int status = colony__router_lookup(r, method, path, strcspn(path, "?"), &m);
    if (status == 405 && allow) colony__router_format_allow(&m, allow, allow_size);
    return status;
}
