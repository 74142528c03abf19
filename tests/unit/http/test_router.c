/* Router matching without a server: priority and backtracking, parameters,
 * wildcards, 404 vs 405 with the exact Allow list, HEAD -> GET, malformed and
 * duplicate patterns, percent-decoding and query parsing. */
#include "test_support.h"
#include <stdio.h>
#include <string.h>
#include "colony/colony.h"
#include "core/alloc.h"
#include "http/router_internal.h"

/* Handlers are told apart by their ud (the route's name). */
static void dummy_handler(colony_request *req, void *ud)
{
    (void)req;
    (void)ud;
}

static void dummy_middleware(colony_request *req, colony_chain *next, void *ud)
{
    (void)req;
    (void)next;
    (void)ud;
}

static const char *const table_routes[][2] = {
    {"GET", "/"},
    {"GET", "/users"},
    {"POST", "/users"},
    {"GET", "/users/:id"},
    {"DELETE", "/users/:id"},
    {"GET", "/users/me"},
    {"GET", "/users/:id/orders/:orderId"},
    {"GET", "/a/:x/c"},
    {"GET", "/a/b/d"},
    {"GET", "/static/*"},
    {"GET", "/static/special.txt"},
    {"PUT", "/files/:name/*"},
    {"*", "/any"},
    {"HEAD", "/head-only"},
    {"GET", "/trail/"},
    {"GET", "/p/:a/x"},
    {"POST", "/p/b/y"},
    {"GET", "/w/*"},
    {"GET", "/w/:p/q"},
    {"GET", "/enc/:v"},
};

static colony_router *table_router(void)
{
    colony_router *r = colony_router_new();
    assert_non_null(r);
    for (size_t i = 0; i < sizeof(table_routes) / sizeof(table_routes[0]); i++)
        assert_int_equal(colony_router_add(r, table_routes[i][0], table_routes[i][1], dummy_handler,
                                           (void *)table_routes[i][1]),
                         0);
    return r;
}

typedef struct match_case {
    const char *method;
    const char *path;
    int status;
    const char *pattern; /* for 200 */
    const char *params;  /* "name=value;name=value" (raw values) for 200, Allow for 405 */
} match_case;

static const match_case cases[] = {
    {"GET", "/", 200, "/", ""},
    {"GET", "/users", 200, "/users", ""},
    {"POST", "/users", 200, "/users", ""},
    {"PATCH", "/users", 405, NULL, "GET, HEAD, POST"},
    {"GET", "/users/", 404, NULL, ""}, /* strict trailing slash; params never empty */
    {"GET", "/users/42", 200, "/users/:id", "id=42"},
    {"DELETE", "/users/42", 200, "/users/:id", "id=42"},
    {"POST", "/users/42", 405, NULL, "DELETE, GET, HEAD"},
    {"GET", "/users/me", 200, "/users/me", ""},          /* literal beats parameter */
    {"DELETE", "/users/me", 200, "/users/:id", "id=me"}, /* literal has no DELETE: backtrack */
    {"POST", "/users/me", 405, NULL, "DELETE, GET, HEAD"},
    {"GET", "/users/7/orders/99", 200, "/users/:id/orders/:orderId", "id=7;orderId=99"},
    {"GET", "/users/7/orders", 404, NULL, ""},
    {"GET", "/users/7/orders/99/x", 404, NULL, ""},
    {"GET", "/a/b/c", 200, "/a/:x/c", "x=b"}, /* backtracking out of the literal branch */
    {"GET", "/a/b/d", 200, "/a/b/d", ""},
    {"GET", "/a/z/c", 200, "/a/:x/c", "x=z"},
    {"GET", "/a/z/d", 404, NULL, ""},
    {"GET", "/static/css/site.css", 200, "/static/*", "*=css/site.css"},
    {"GET", "/static/", 200, "/static/*", "*="},
    {"GET", "/static", 404, NULL, ""},
    {"GET", "/static/special.txt", 200, "/static/special.txt", ""},
    {"GET", "/static/special.txt/x", 200, "/static/*", "*=special.txt/x"},
    {"GET", "/static//double", 200, "/static/*", "*=/double"},
    {"PUT", "/files/a/b/c", 200, "/files/:name/*", "name=a;*=b/c"},
    {"PUT", "/files/a/", 200, "/files/:name/*", "name=a;*="},
    {"GET", "/files/a/b", 405, NULL, "PUT"},
    {"GET", "/any", 200, "/any", ""},
    {"BREW", "/any", 200, "/any", ""},
    {"HEAD", "/users", 200, "/users", ""}, /* HEAD falls back to GET */
    {"HEAD", "/head-only", 200, "/head-only", ""},
    {"GET", "/head-only", 405, NULL, "HEAD"},
    {"GET", "/trail/", 200, "/trail/", ""},
    {"GET", "/trail", 404, NULL, ""},
    {"POST", "/p/b/x", 405, NULL, "GET, HEAD"},
    {"GET", "/p/b/y", 405, NULL, "POST"},
    {"GET", "/p/b/x", 200, "/p/:a/x", "a=b"},
    {"GET", "/w/a/q", 200, "/w/:p/q", "p=a"}, /* parameter beats wildcard */
    {"GET", "/w/a/r", 200, "/w/*", "*=a/r"},  /* ...and falls back to it */
    {"GET", "/enc/a%20b", 200, "/enc/:v", "v=a%20b"},
    {"GET", "/nope", 404, NULL, ""},
    {"GET", "", 404, NULL, ""},
    {"GET", "*", 404, NULL, ""},
    {"GET", "users", 404, NULL, ""},
    {"GET", "//", 404, NULL, ""},
    {"GET", "/users?x=1", 200, "/users", ""},        /* colony_router_match stops at '?' */
    {"get", "/users", 405, NULL, "GET, HEAD, POST"}, /* methods are case-sensitive */
};

static void format_params(const char *path, const colony__route_match *m, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < m->nparams && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%s=%.*s", i ? ";" : "",
                                 m->route->param_names[i], (int)m->params[i].len,
                                 path + m->params[i].off);
}

static void matching_table(void **state)
{
    (void)state;
    colony_router *r = table_router();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const match_case *c = &cases[i];
        char allow[128];
        int status = colony_router_match(r, c->method, c->path, allow, sizeof(allow));
        if (status != c->status)
            fail_msg("%s %s: status %d, want %d", c->method, c->path, status, c->status);
        if (c->status == 405 && strcmp(allow, c->params) != 0)
            fail_msg("%s %s: Allow '%s', want '%s'", c->method, c->path, allow, c->params);
        if (c->status != 405 && allow[0] != '\0')
            fail_msg("%s %s: Allow not empty", c->method, c->path);

        colony__route_match m;
        size_t path_len = strcspn(c->path, "?");
        assert_int_equal(colony__router_lookup(r, c->method, c->path, path_len, &m), c->status);
        if (c->status == 200) {
            if (strcmp(m.route->pattern, c->pattern) != 0)
                fail_msg("%s %s: matched %s, want %s", c->method, c->path, m.route->pattern,
                         c->pattern);
            assert_string_equal((const char *)m.route->ud, c->pattern);
            char params[256];
            format_params(c->path, &m, params, sizeof(params));
            if (strcmp(params, c->params) != 0)
                fail_msg("%s %s: params '%s', want '%s'", c->method, c->path, params, c->params);
        } else {
            assert_null(m.route);
            assert_int_equal(m.nparams, 0);
        }
    }
    colony_router_free(r);
}

/* Registration order must not change priority. */
static void priority_independent_of_order(void **state)
{
    (void)state;
    colony_router *r = colony_router_new();
    assert_int_equal(colony_router_add(r, "GET", "/x/*", dummy_handler, "wild"), 0);
    assert_int_equal(colony_router_add(r, "GET", "/x/:id", dummy_handler, "param"), 0);
    assert_int_equal(colony_router_add(r, "GET", "/x/lit", dummy_handler, "lit"), 0);
    colony__route_match m;
    assert_int_equal(colony__router_lookup(r, "GET", "/x/lit", 6, &m), 200);
    assert_string_equal(m.route->ud, "lit");
    assert_int_equal(colony__router_lookup(r, "GET", "/x/other", 8, &m), 200);
    assert_string_equal(m.route->ud, "param");
    assert_int_equal(colony__router_lookup(r, "GET", "/x/a/b", 6, &m), 200);
    assert_string_equal(m.route->ud, "wild");
    colony_router_free(r);
}

static void malformed_patterns(void **state)
{
    (void)state;
    colony_router *r = colony_router_new();
    static const char *const bad[] = {
        "",           "users",   "/users/:",     "/:",     "/a/:id/b/:id", "/*/x",  "/a/*/b",
        "/a//b",      "//",      "/a/:i-d",      "/a b",   "/a?b",         "/a#b",  "/a*",
        "/static/*x", "/a/\x01", "/caf\xc3\xa9", "/:x/:x", "/a/:id*",      "/a/*/",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (colony_router_add(r, "GET", bad[i], dummy_handler, NULL) != COLONY_EINVAL)
            fail_msg("pattern '%s' accepted", bad[i]);
    assert_int_equal(colony_router_add(r, "", "/ok", dummy_handler, NULL), COLONY_EINVAL);
    assert_int_equal(colony_router_add(r, "G ET", "/ok", dummy_handler, NULL), COLONY_EINVAL);
    assert_int_equal(colony_router_add(r, "GET", "/ok", NULL, NULL), COLONY_EINVAL);
    assert_int_equal(colony_router_add(r, "GET", NULL, dummy_handler, NULL), COLONY_EINVAL);
    assert_int_equal(colony_router_add(NULL, "GET", "/ok", dummy_handler, NULL), COLONY_EINVAL);
    assert_int_equal(colony_router_use(r, NULL, NULL), COLONY_EINVAL);

    char longp[COLONY__ROUTER_MAX_PATTERN + 2];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[0] = '/';
    longp[sizeof(longp) - 1] = '\0';
    assert_int_equal(colony_router_add(r, "GET", longp, dummy_handler, NULL), COLONY_EINVAL);
    /* More parameters than a route may capture. */
    char many[512] = "";
    for (int i = 0; i <= COLONY__ROUTER_MAX_PARAMS; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "/:p%d", i);
    assert_int_equal(colony_router_add(r, "GET", many, dummy_handler, NULL), COLONY_EINVAL);

    /* Nothing was inserted: every path is still 404. */
    assert_int_equal(colony_router_match(r, "GET", "/a/x/b", NULL, 0), 404);
    assert_int_equal(colony_router_match(r, "GET", "/users", NULL, 0), 404);
    colony_router_free(r);
}

static void accepted_patterns(void **state)
{
    (void)state;
    colony_router *r = colony_router_new();
    static const char *const good[] = {"/",   "/*",       "/a:b",     "/:a/:b/*",
                                       "/x/", "/%7Euser", "/v1/kv/*", "/a/:A_1"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (colony_router_add(r, "GET", good[i], dummy_handler, NULL) != 0)
            fail_msg("pattern '%s' rejected", good[i]);
    assert_int_equal(colony_router_match(r, "GET", "/a:b", NULL, 0), 200);
    assert_int_equal(colony_router_match(r, "GET", "/%7Euser", NULL, 0), 200);
    colony__route_match m;
    assert_int_equal(colony__router_lookup(r, "GET", "/", 1, &m), 200);
    assert_string_equal(m.route->pattern, "/"); /* the literal root beats the wildcard */
    assert_int_equal(colony__router_lookup(r, "GET", "/zz", 3, &m), 200);
    assert_string_equal(m.route->pattern, "/*");
    colony_router_free(r);
}

static void duplicates(void **state)
{
    (void)state;
    colony_router *r = colony_router_new();
    assert_int_equal(colony_router_add(r, "GET", "/users/:id", dummy_handler, NULL), 0);
    assert_int_equal(colony_router_add(r, "GET", "/users/:id", dummy_handler, NULL), COLONY_EEXIST);
    /* Same shape, other parameter name: the same route. */
    assert_int_equal(colony_router_add(r, "GET", "/users/:name", dummy_handler, NULL),
                     COLONY_EEXIST);
    assert_int_equal(colony_router_add(r, "POST", "/users/:id", dummy_handler, NULL), 0);
    assert_int_equal(colony_router_add(r, "*", "/users/:id", dummy_handler, NULL), 0);
    assert_int_equal(colony_router_add(r, "*", "/users/:id", dummy_handler, NULL), COLONY_EEXIST);
    assert_int_equal(colony_router_add(r, "GET", "/users/:id/", dummy_handler, NULL), 0);
    /* With "*" registered, every method matches: never 405. */
    assert_int_equal(colony_router_match(r, "PATCH", "/users/1", NULL, 0), 200);
    colony_router_free(r);
}

static void allow_truncation(void **state)
{
    (void)state;
    colony_router *r = colony_router_new();
    assert_int_equal(colony_router_add(r, "GET", "/r", dummy_handler, NULL), 0);
    assert_int_equal(colony_router_add(r, "POST", "/r", dummy_handler, NULL), 0);
    char small[6];
    assert_int_equal(colony_router_match(r, "PUT", "/r", small, sizeof(small)), 405);
    assert_string_equal(small, "GET, ");
    colony__route_match m;
    colony__router_lookup(r, "PUT", "/r", 2, &m);
    assert_int_equal(colony__router_format_allow(&m, NULL, 0), strlen("GET, HEAD, POST"));
    colony_router_free(r);
}

static void allocation_failures(void **state)
{
    (void)state;
    /* Fail each allocation in turn: every failure is reported, nothing leaks,
     * and the router stays usable. */
    for (long n = 0; n < 40; n++) {
        colony__alloc_fail_after(n);
        colony_router *r = colony_router_new();
        int rc1 = r ? colony_router_add(r, "GET", "/a/:b/c", dummy_handler, NULL) : COLONY_ENOMEM;
        int rc2 = r ? colony_router_add(r, "GET", "/a/x/*", dummy_handler, NULL) : COLONY_ENOMEM;
        int rc3 = r ? colony_router_use(r, dummy_middleware, NULL) : COLONY_ENOMEM;
        colony__alloc_fail_reset();
        assert_true(rc1 == 0 || rc1 == COLONY_ENOMEM);
        assert_true(rc2 == 0 || rc2 == COLONY_ENOMEM);
        assert_true(rc3 == 0 || rc3 == COLONY_ENOMEM);
        if (r) {
            int status = colony_router_match(r, "GET", "/a/q/c", NULL, 0);
            assert_int_equal(status, rc1 == 0 ? 200 : 404);
            if (rc1 != 0)
                assert_int_equal(colony_router_add(r, "GET", "/a/:b/c", dummy_handler, NULL), 0);
            colony_router_free(r);
        }
    }
}

static void percent_decoding(void **state)
{
    (void)state;
    char out[64];
    size_t len;
    assert_int_equal(colony__percent_decode("a%20b%2Fc", 9, 0, out, &len), 0);
    assert_string_equal(out, "a b/c");
    assert_int_equal(len, 5);
    assert_int_equal(colony__percent_decode("%e2%82%ac+", 10, 0, out, &len), 0);
    assert_string_equal(out, "\xe2\x82\xac+");
    assert_int_equal(colony__percent_decode("a+b", 3, 1, out, &len), 0);
    assert_string_equal(out, "a b");
    assert_int_equal(colony__percent_decode("", 0, 0, out, &len), 0);
    assert_string_equal(out, "");
    static const char *const bad[] = {"%", "%2", "a%zz", "%g0", "%00", "x%0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(colony__percent_decode(bad[i], strlen(bad[i]), 0, out, &len),
                         COLONY_EINVAL);
    /* Exactly len bytes are read: "%4" followed by an inaccessible page. */
    char *guarded = colony_test_guarded_copy("ab%4", 4);
    assert_int_equal(colony__percent_decode(guarded, 4, 0, out, &len), COLONY_EINVAL);
    colony_test_guarded_free(guarded, 4);
}

static void query_parsing(void **state)
{
    (void)state;
    colony_arena *a = colony_arena_new(0, 0);
    colony__query *q =
        colony__query_parse(a, "a=1&b=x+y&a=2&&flag&c=%41%zz&e=&=v&d=caf%C3%A9&n=%00");
    assert_non_null(q);
    assert_string_equal(colony__query_get(q, "a"), "1"); /* first wins */
    assert_string_equal(colony__query_get(q, "b"), "x y");
    assert_string_equal(colony__query_get(q, "flag"), "");
    assert_string_equal(colony__query_get(q, "c"), "%41%zz"); /* bad escape: kept as sent */
    assert_string_equal(colony__query_get(q, "e"), "");
    assert_string_equal(colony__query_get(q, ""), "v");
    assert_string_equal(colony__query_get(q, "d"), "caf\xc3\xa9");
    assert_string_equal(colony__query_get(q, "n"), "%00");
    assert_null(colony__query_get(q, "zz"));
    q = colony__query_parse(a, "");
    assert_non_null(q);
    assert_int_equal(q->npairs, 0);
    q = colony__query_parse(a, "k%20ey=v%3Dx");
    assert_string_equal(colony__query_get(q, "k ey"), "v=x");
    colony_arena_free(a);

    colony_arena *tiny = colony_arena_new(64, 64);
    assert_null(colony__query_parse(
        tiny, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaa=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"));
    colony_arena_free(tiny);
}

/* A deep pattern tree and a long path: matching terminates and the
 * backtracking cost stays bounded (each node visited at most once). */
static void deep_patterns(void **state)
{
    (void)state;
    colony_router *r = colony_router_new();
    char pattern[COLONY__ROUTER_MAX_PATTERN + 1];
    size_t used = 0;
    while (used + 3 < COLONY__ROUTER_MAX_PATTERN) {
        pattern[used++] = '/';
        pattern[used++] = 'a';
    }
    pattern[used] = '\0';
    assert_int_equal(colony_router_add(r, "GET", pattern, dummy_handler, NULL), 0);
    /* Ten parameters and literals interleaved so that a miss backtracks. */
    for (int i = 0; i < 10; i++) {
        char p[128] = "";
        for (int j = 0; j < 10; j++)
            snprintf(p + strlen(p), sizeof(p) - strlen(p), j == i ? "/b" : "/:p%d", j);
        assert_int_equal(colony_router_add(r, "GET", p, dummy_handler, NULL), 0);
    }
    assert_int_equal(colony_router_match(r, "GET", pattern, NULL, 0), 200);
    assert_int_equal(colony_router_match(r, "GET", "/b/b/b/b/b/b/b/b/b/b/b", NULL, 0), 404);
    assert_int_equal(colony_router_match(r, "GET", "/b/b/b/b/b/b/b/b/b/b", NULL, 0), 200);
    colony_router_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matching_table),      cmocka_unit_test(priority_independent_of_order),
        cmocka_unit_test(malformed_patterns),  cmocka_unit_test(accepted_patterns),
        cmocka_unit_test(duplicates),          cmocka_unit_test(allow_truncation),
        cmocka_unit_test(allocation_failures), cmocka_unit_test(percent_decoding),
        cmocka_unit_test(query_parsing),       cmocka_unit_test(deep_patterns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
