/* Gateway routes: compile errors, each match rule, the precedence of
 * docs/gateway.md and path rewriting. */
#include "test_support.h"
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "gateway/route.h"

#define MAX_ROUTES 16

typedef struct table {
    gw_route routes[MAX_ROUTES];
    gw_route *ptrs[MAX_ROUTES];
    size_t n;
} table;

static char **strv(const char *csv, size_t *n)
{
    *n = 0;
    if (!csv) return NULL;
    char **v = colony__calloc(8, sizeof(char *));
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", csv);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        v[(*n)++] = colony__strdup(t);
    return v;
}

/* Adds a route "kind:path" (kind p, e or t for prefix, exact, pattern) with
 * optional hosts, methods and one header rule ("name=value" or "name"). */
static int add(table *t, const char *name, const char *rule, const char *hosts, const char *methods,
               const char *header, char *err)
{
    gw_route *rt = &t->routes[t->n];
    memset(rt, 0, sizeof(*rt));
    rt->name = colony__strdup(name);
    rt->order = t->n;
    rt->kind = rule[0] == 'e' ? GW_PATH_EXACT : rule[0] == 't' ? GW_PATH_PATTERN : GW_PATH_PREFIX;
    rt->path = colony__strdup(rule + 2);
    rt->hosts = strv(hosts, &rt->nhosts);
    rt->methods = strv(methods, &rt->nmethods);
    if (header) {
        rt->headers = colony__calloc(1, sizeof(*rt->headers));
        rt->nheaders = 1;
        const char *eq = strchr(header, '=');
        rt->headers[0].name =
            eq ? colony__strndup(header, (size_t)(eq - header)) : colony__strdup(header);
        rt->headers[0].value = eq ? colony__strdup(eq + 1) : NULL;
    }
    char scratch[256];
    int rc = colony__gw_route_compile(rt, err ? err : scratch, 256);
    if (rc == 0) {
        t->ptrs[t->n] = rt;
        t->n++;
    } else {
        colony__gw_route_clear(rt);
    }
    return rc;
}

static void clear(table *t)
{
    for (size_t i = 0; i < t->n; i++)
        colony__gw_route_clear(&t->routes[i]);
    t->n = 0;
}

typedef struct headers {
    const char *name, *value;
} headers;

static const char *get_header(void *ud, const char *name)
{
    for (const headers *h = ud; h && h->name; h++)
        if (strcasecmp(h->name, name) == 0) return h->value;
    return NULL;
}

/* The name of the route that takes the request, or "none". */
static const char *route_for(table *t, const char *method, const char *host, const char *path,
                             const headers *h)
{
    gw_match m;
    if (!colony__gw_match(t->ptrs, t->n, method, host, path, get_header, (void *)h, &m))
        return "none";
    return m.route->name;
}

static void compile_errors_say_why(void **state)
{
    (void)state;
    table t = {0};
    char err[256];
    assert_int_equal(add(&t, "a", "p:api", NULL, NULL, NULL, err), COLONY_EINVAL);
    assert_non_null(strstr(err, "must start with '/'"));
    assert_int_equal(add(&t, "a", "p:/a/../b", NULL, NULL, NULL, err), COLONY_EINVAL);
    assert_non_null(strstr(err, "normalized, as \"/b\""));
    assert_int_equal(add(&t, "a", "p:/../b", NULL, NULL, NULL, err), COLONY_EINVAL);
    assert_int_equal(add(&t, "a", "t:/a/*/b", NULL, NULL, NULL, err), COLONY_EINVAL);
    assert_non_null(strstr(err, "last segment"));
    assert_int_equal(add(&t, "a", "t:/a/:id/:id", NULL, NULL, NULL, err), COLONY_EINVAL);
    assert_non_null(strstr(err, "twice"));
    assert_int_equal(add(&t, "a", "t:/a/:", NULL, NULL, NULL, err), COLONY_EINVAL);
    assert_int_equal(add(&t, "a", "t:/a/x:y", NULL, NULL, NULL, err), COLONY_EINVAL);
    assert_int_equal(add(&t, "a", "p:/users/:id", NULL, NULL, NULL, err), COLONY_EINVAL);
    assert_non_null(strstr(err, "pattern"));
    assert_int_equal(add(&t, "a", "p:/a", "exa mple.com", NULL, NULL, err), COLONY_EINVAL);
    assert_int_equal(add(&t, "a", "p:/a", "a.*.com", NULL, NULL, err), COLONY_EINVAL);
    assert_int_equal(add(&t, "a", "p:/a", "a.com:80", NULL, NULL, err), COLONY_EINVAL);
    assert_int_equal(add(&t, "a", "p:/a", NULL, "GE T", NULL, err), COLONY_EINVAL);
    assert_int_equal(add(&t, "a", "p:/a", NULL, NULL, "bad name=1", err), COLONY_EINVAL);
    assert_int_equal(t.n, 0);

    gw_route rt = {.kind = GW_PATH_PATTERN,
                   .path = colony__strdup("/u/:id"),
                   .rewrite = colony__strdup("/users/:name")};
    assert_int_equal(colony__gw_route_compile(&rt, err, sizeof(err)), COLONY_EINVAL);
    assert_non_null(strstr(err, "':name' is not in the pattern"));
    colony__gw_route_clear(&rt);
    rt = (gw_route){.kind = GW_PATH_EXACT, .path = colony__strdup("/u"), .strip_prefix = 1};
    assert_int_equal(colony__gw_route_compile(&rt, err, sizeof(err)), COLONY_EINVAL);
    assert_non_null(strstr(err, "strip_prefix"));
    colony__gw_route_clear(&rt);
}

static void each_rule_matches(void **state)
{
    (void)state;
    table t = {0};
    assert_int_equal(add(&t, "users", "p:/api/users", NULL, NULL, NULL, NULL), 0);
    assert_string_equal(route_for(&t, "GET", NULL, "/api/users", NULL), "users");
    assert_string_equal(route_for(&t, "GET", NULL, "/api/users/7", NULL), "users");
    assert_string_equal(route_for(&t, "GET", NULL, "/api/usersX", NULL), "none");
    assert_string_equal(route_for(&t, "GET", NULL, "/api", NULL), "none");
    clear(&t);

    assert_int_equal(add(&t, "exact", "e:/health", NULL, NULL, NULL, NULL), 0);
    assert_string_equal(route_for(&t, "GET", NULL, "/health", NULL), "exact");
    assert_string_equal(route_for(&t, "GET", NULL, "/health/x", NULL), "none");
    clear(&t);

    assert_int_equal(add(&t, "orders", "t:/users/:id/orders", NULL, "GET,POST", NULL, NULL), 0);
    assert_string_equal(route_for(&t, "POST", NULL, "/users/42/orders", NULL), "orders");
    assert_string_equal(route_for(&t, "HEAD", NULL, "/users/42/orders", NULL), "orders");
    assert_string_equal(route_for(&t, "DELETE", NULL, "/users/42/orders", NULL), "none");
    assert_string_equal(route_for(&t, "GET", NULL, "/users//orders", NULL), "none");
    assert_string_equal(route_for(&t, "GET", NULL, "/users/42/orders/1", NULL), "none");
    clear(&t);

    assert_int_equal(add(&t, "files", "t:/files/*", NULL, NULL, NULL, NULL), 0);
    assert_string_equal(route_for(&t, "GET", NULL, "/files/a/b", NULL), "files");
    assert_string_equal(route_for(&t, "GET", NULL, "/files/", NULL), "files");
    assert_string_equal(route_for(&t, "GET", NULL, "/file", NULL), "none");
    assert_string_equal(route_for(&t, "GET", NULL, "/files", NULL), "none"); /* found by fuzzing */
    clear(&t);

    assert_int_equal(add(&t, "host", "p:/", "API.example.com", NULL, NULL, NULL), 0);
    assert_int_equal(add(&t, "wild", "p:/", "*.example.com", NULL, NULL, NULL), 0);
    assert_string_equal(route_for(&t, "GET", "api.EXAMPLE.com:8000", "/", NULL), "host");
    assert_string_equal(route_for(&t, "GET", "a.b.example.com", "/x", NULL), "wild");
    assert_string_equal(route_for(&t, "GET", "example.com", "/", NULL), "none");
    assert_string_equal(route_for(&t, "GET", NULL, "/", NULL), "none");
    clear(&t);

    assert_int_equal(add(&t, "v6", "p:/", "[::1]", NULL, NULL, NULL), COLONY_EINVAL);
    assert_int_equal(add(&t, "canary", "p:/", NULL, NULL, "X-Canary=yes", NULL), 0);
    assert_int_equal(add(&t, "present", "p:/", NULL, NULL, "X-Beta", NULL), 0);
    headers canary[] = {{"x-canary", "yes"}, {NULL, NULL}};
    headers not_canary[] = {{"X-Canary", "no"}, {NULL, NULL}};
    headers beta[] = {{"X-Beta", ""}, {NULL, NULL}};
    assert_string_equal(route_for(&t, "GET", NULL, "/", canary), "canary");
    assert_string_equal(route_for(&t, "GET", NULL, "/", not_canary), "none");
    assert_string_equal(route_for(&t, "GET", NULL, "/", beta), "present");
    clear(&t);
}

/* Most specific wins: host, then exact path, then literal length, then
 * pattern over prefix, then header and method conditions, then file order. */
static void precedence(void **state)
{
    (void)state;
    table t = {0};
    assert_int_equal(add(&t, "root", "p:/", NULL, NULL, NULL, NULL), 0);
    assert_int_equal(add(&t, "api", "p:/api", NULL, NULL, NULL, NULL), 0);
    assert_int_equal(add(&t, "user", "t:/api/users/:id", NULL, NULL, NULL, NULL), 0);
    assert_int_equal(add(&t, "users", "p:/api/users", NULL, NULL, NULL, NULL), 0);
    assert_int_equal(add(&t, "admin", "p:/api/users/admin", NULL, NULL, NULL, NULL), 0);
    assert_int_equal(add(&t, "me", "e:/api/users/me", NULL, NULL, NULL, NULL), 0);
    assert_int_equal(add(&t, "v2", "p:/api/users", NULL, NULL, "X-Version=2", NULL), 0);
    assert_int_equal(add(&t, "posts", "p:/api/users", NULL, "POST", NULL, NULL), 0);
    assert_int_equal(add(&t, "dup", "p:/api/users", NULL, "POST", NULL, NULL), 0);
    assert_int_equal(add(&t, "tenant", "p:/", "shop.example.com", NULL, NULL, NULL), 0);
    headers v2[] = {{"X-Version", "2"}, {NULL, NULL}};
    assert_string_equal(route_for(&t, "GET", NULL, "/other", NULL), "root");
    assert_string_equal(route_for(&t, "GET", NULL, "/api/x", NULL), "api");
    assert_string_equal(route_for(&t, "GET", NULL, "/api/users", NULL), "users");
    assert_string_equal(route_for(&t, "GET", NULL, "/api/users/7", NULL), "user");
    assert_string_equal(route_for(&t, "GET", NULL, "/api/users/7/x", NULL), "users");
    assert_string_equal(route_for(&t, "GET", NULL, "/api/users/admin", NULL), "admin");
    assert_string_equal(route_for(&t, "GET", NULL, "/api/users/me", NULL), "me");
    assert_string_equal(route_for(&t, "GET", NULL, "/api/users", v2), "v2");
    assert_string_equal(route_for(&t, "POST", NULL, "/api/users", NULL), "posts");
    assert_string_equal(route_for(&t, "GET", "shop.example.com", "/api/users/me", NULL), "tenant");
    /* order of the file does not matter except for a tie: reverse it */
    table r = {0};
    assert_int_equal(add(&r, "me", "e:/api/users/me", NULL, NULL, NULL, NULL), 0);
    assert_int_equal(add(&r, "users", "p:/api/users", NULL, NULL, NULL, NULL), 0);
    assert_int_equal(add(&r, "user", "t:/api/users/:id", NULL, NULL, NULL, NULL), 0);
    assert_int_equal(add(&r, "root", "p:/", NULL, NULL, NULL, NULL), 0);
    assert_string_equal(route_for(&r, "GET", NULL, "/api/users/me", NULL), "me");
    assert_string_equal(route_for(&r, "GET", NULL, "/api/users/7", NULL), "user");
    assert_string_equal(route_for(&r, "GET", NULL, "/api/users", NULL), "users");
    assert_string_equal(route_for(&r, "GET", NULL, "/x", NULL), "root");
    clear(&r);
    clear(&t);
}

static const char *rewritten(table *t, const char *path)
{
    static char out[128];
    gw_match m;
    if (!colony__gw_match(t->ptrs, t->n, "GET", NULL, path, NULL, NULL, &m)) return "no match";
    if (colony__gw_rewrite(&m, path, out, sizeof(out)) < 0) return "too long";
    return out;
}

static void rewrites(void **state)
{
    (void)state;
    table t = {0};
    assert_int_equal(add(&t, "keep", "p:/keep", NULL, NULL, NULL, NULL), 0);
    t.routes[0].strip_prefix = 0;
    assert_string_equal(rewritten(&t, "/keep/a"), "/keep/a");
    clear(&t);

    assert_int_equal(add(&t, "strip", "p:/api/users", NULL, NULL, NULL, NULL), 0);
    t.routes[0].strip_prefix = 1;
    assert_string_equal(rewritten(&t, "/api/users/7"), "/7");
    assert_string_equal(rewritten(&t, "/api/users"), "/");
    assert_string_equal(rewritten(&t, "/api/users/"), "/");
    clear(&t);

    assert_int_equal(add(&t, "slash", "p:/api/", NULL, NULL, NULL, NULL), 0);
    t.routes[0].strip_prefix = 1;
    assert_string_equal(rewritten(&t, "/api/x/y"), "/x/y");
    clear(&t);

    assert_int_equal(add(&t, "v2", "p:/v1/users", NULL, NULL, NULL, NULL), 0);
    t.routes[0].rewrite = colony__strdup("/v2/people");
    assert_string_equal(rewritten(&t, "/v1/users/7"), "/v2/people/7");
    assert_string_equal(rewritten(&t, "/v1/users"), "/v2/people");
    clear(&t);

    gw_route *rt = &t.routes[0];
    *rt = (gw_route){.kind = GW_PATH_PATTERN,
                     .path = colony__strdup("/u/:id/f/*"),
                     .rewrite = colony__strdup("/users/:id/files/*")};
    char err[128];
    assert_int_equal(colony__gw_route_compile(rt, err, sizeof(err)), 0);
    t.ptrs[0] = rt;
    t.n = 1;
    assert_string_equal(rewritten(&t, "/u/42/f/a/b.txt"), "/users/42/files/a/b.txt");
    assert_string_equal(rewritten(&t, "/u/42/f/"), "/users/42/files/");
    char small[8];
    gw_match m;
    assert_true(colony__gw_match(t.ptrs, t.n, "GET", NULL, "/u/42/f/abcdef", NULL, NULL, &m));
    assert_int_equal(colony__gw_rewrite(&m, "/u/42/f/abcdef", small, sizeof(small)), COLONY_E2BIG);
    clear(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(compile_errors_say_why),
        cmocka_unit_test(each_rule_matches),
        cmocka_unit_test(precedence),
        cmocka_unit_test(rewrites),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
