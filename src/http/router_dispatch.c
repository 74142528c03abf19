/* Request glue: colony_router_handle() matches the request, keeps the result
 * in the request (arena memory under a private data key), then runs the
 * middleware chain and finally the route handler or the 404/405/400 answer. */
#include <string.h>
#include "colony/error.h"
#include "colony/router.h"
#include "http/router_internal.h"

static const char route_data_key[] = "colony.router.route";
static const char query_data_key[] = "colony.router.query";

typedef struct route_state {
    const colony_router *router;
    struct colony_chain *chain; /* one link per middleware, allocated with the state */
    size_t nchain;
    const colony__route *route; /* NULL on 404/405 */
    int status;                 /* 200, or the error to answer after the middleware */
    const char *allow;          /* for 405 and OPTIONS */
    size_t nparams;
    const char **param_names;
    const char **param_values; /* percent-decoded */
} route_state;

struct colony_chain {
    colony_request *req;
    route_state *state;
    size_t next_index; /* the middleware to run next; nmiddleware = the end */
    int used;
};

static void run_chain(colony_request *req, route_state *st, size_t index);

/* Decodes the captured parameters into the arena. Returns COLONY_EINVAL for a
 * malformed escape or %00, COLONY_ENOMEM when the arena is full. */
static int decode_params(colony_arena *a, const char *path, const colony__route_match *m,
                         route_state *st)
{
    st->nparams = m->nparams;
    if (m->nparams == 0) return 0;
    st->param_names = colony_arena_alloc(a, m->nparams * sizeof(char *));
    st->param_values = colony_arena_alloc(a, m->nparams * sizeof(char *));
    if (!st->param_names || !st->param_values) return COLONY_ENOMEM;
    for (size_t i = 0; i < m->nparams; i++) {
        const colony__span *sp = &m->params[i];
        char *value = colony_arena_alloc(a, sp->len + 1);
        if (!value) return COLONY_ENOMEM;
        size_t out_len;
        int rc = colony__percent_decode(path + sp->off, sp->len, 0, value, &out_len);
        if (rc != 0) return rc;
        st->param_names[i] = m->route->param_names[i];
        st->param_values[i] = value;
    }
    return 0;
}

/* Fills the route state; returns 0 or COLONY_ENOMEM. A bad parameter escape
 * is not an error here: it becomes a 400 answered after the middleware. */
static int route_state_init(colony_request *req, const colony_router *router, route_state *st)
{
    colony_arena *a = colony_request_arena(req);
    const char *method = colony_request_method(req);
    const char *path = colony_request_path(req);
    colony__route_match m;
    colony__router_lookup(router, method, path, path ? strlen(path) : 0, &m);
    st->router = router;
    st->status = m.status;
    if (m.status == 200) {
        st->route = m.route;
        int rc = decode_params(a, path, &m, st);
        if (rc == COLONY_ENOMEM) return rc;
        if (rc != 0) {
            st->status = 400;
            st->nparams = 0;
        }
    } else if (m.status == 405) {
        size_t len = colony__router_format_allow(&m, NULL, 0);
        char *allow = colony_arena_alloc(a, len + 1);
        if (!allow) return COLONY_ENOMEM;
        colony__router_format_allow(&m, allow, len + 1);
        st->allow = allow;
    }
    return 0;
}

/* What runs after the last middleware when no handler matched. OPTIONS on a
 * path with routes but no OPTIONS route gets 204 + Allow, as in Express. */
static void answer_unrouted(colony_request *req, const route_state *st)
{
    const char *method = colony_request_method(req);
    const char *path = colony_request_path(req);
    colony_arena *a = colony_request_arena(req);
    if (st->status == 400) {
        colony_respond_error(req, 400, "bad_request",
                             "invalid percent-encoding in a path parameter");
        return;
    }
    if (st->status == 405) {
        colony_response_header(req, "Allow", st->allow);
        if (strcmp(method, "OPTIONS") == 0) {
            colony_respond(req, 204, NULL, NULL, 0);
            return;
        }
        const char *msg = colony_arena_sprintf(a, "method %s not allowed for %s", method, path);
        colony_respond_error(req, 405, "method_not_allowed", msg ? msg : "method not allowed");
        return;
    }
    const char *msg = colony_arena_sprintf(a, "no route for %s %s", method, path);
    colony_respond_error(req, 404, "not_found", msg ? msg : "no route");
}

/* Runs middleware[index], or the end of the chain. A response already
 * started (a middleware answered and still called next) stops the chain. */
static void run_chain(colony_request *req, route_state *st, size_t index)
{
    if (colony_response_status(req) != 0) return;
    const colony_router *r = st->router;
    if (index < r->nmiddleware) {
        colony_chain *next = index < st->nchain
                                 ? &st->chain[index]
                                 : colony_arena_alloc(colony_request_arena(req), sizeof(*next));
        if (!next) { /* middleware added while this request was under way */
            colony_respond_error(req, 500, "internal", "out of memory");
            return;
        }
        next->req = req;
        next->state = st;
        next->next_index = index + 1;
        next->used = 0;
        r->middleware[index].cb(req, next, r->middleware[index].ud);
        return;
    }
    if (st->route && st->status == 200)
        st->route->handler(req, st->route->ud);
    else
        answer_unrouted(req, st);
}

void colony_next(colony_chain *next)
{
    if (!next || next->used) return;
    next->used = 1;
    run_chain(next->req, next->state, next->next_index);
}

void colony_router_handle(colony_request *req, void *router)
{
    if (!router) {
        colony_respond_error(req, 500, "internal", "no router");
        return;
    }
    /* The state and every chain link in one allocation (a link per
     * middleware call was an allocation per step). */
    const colony_router *r = router;
    route_state *st = colony_arena_alloc(colony_request_arena(req),
                                         sizeof(*st) + r->nmiddleware * sizeof(colony_chain));
    if (st) {
        memset(st, 0, sizeof(*st));
        st->chain = (colony_chain *)(st + 1);
        st->nchain = r->nmiddleware;
    }
    if (!st || route_state_init(req, router, st) != 0) {
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    colony_request_set_data(req, route_data_key, st);
    run_chain(req, st, 0);
}

const char *colony_request_param(const colony_request *req, const char *name)
{
    const route_state *st = req && name ? colony_request_get_data(req, route_data_key) : NULL;
    if (!st) return NULL;
    for (size_t i = 0; i < st->nparams; i++)
        if (strcmp(st->param_names[i], name) == 0) return st->param_values[i];
    return NULL;
}

const char *colony_request_route(const colony_request *req)
{
    const route_state *st = req ? colony_request_get_data(req, route_data_key) : NULL;
    return st && st->route ? st->route->pattern : NULL;
}

const char *colony_request_query_param(colony_request *req, const char *name)
{
    if (!req || !name) return NULL;
    colony__query *q = colony_request_get_data(req, query_data_key);
    if (!q) {
        const char *query = colony_request_query(req);
        q = colony__query_parse(colony_request_arena(req), query ? query : "");
        if (!q) return NULL;
        colony_request_set_data(req, query_data_key, q);
    }
    return colony__query_get(q, name);
}
