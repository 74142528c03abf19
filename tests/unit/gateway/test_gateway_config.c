/* The gateway's routes file: a full file builds; every mistake is refused with
 * its file, line, key and reason; quick routes go through the same checks. */
#include "gateway_config_fixture.h"
#include "test_support.h"
#include <string.h>
#include "colony/colony.h"
#include "core/alloc.h"
#include "gateway/config.h"

static const char *good =
    "{\n"
    "  \"upstreams\": {\n"
    "    \"users\": {\"service\": \"users\", \"tag\": \"v2\", \"strategy\": \"least_conn\"},\n"
    "    \"static\": {\"targets\": [\"http://127.0.0.1:3001/\",\n"
    "                           {\"url\": \"http://127.0.0.1:3002\", \"weight\": 5}],\n"
    "               \"strategy\": \"consistent_hash\", \"hash_header\": \"X-User\",\n"
    "               \"health\": {\"consecutive_failures\": 3, \"base_ejection\": \"10s\"}}\n"
    "  },\n"
    "  \"routes\": [\n"
    "    {\"name\": \"users\", \"prefix\": \"/api/users\", \"upstream\": \"users\",\n"
    "     \"methods\": [\"GET\", \"POST\"], \"strip_prefix\": true,\n"
    "     \"timeouts\": {\"try\": 2000, \"total\": \"10s\"},\n"
    "     \"retries\": {\"attempts\": 2, \"on\": [\"connect\", \"503\"]}},\n"
    "    {\"pattern\": \"/u/:id\", \"rewrite\": \"/users/:id\", \"hosts\": [\"*.example.com\"],\n"
    "     \"headers\": {\"X-Canary\": \"yes\", \"X-Beta\": true},\n"
    "     \"split\": [{\"upstream\": \"users\", \"weight\": 90},\n"
    "               {\"upstream\": \"static\", \"weight\": 10}]},\n"
    "    {\"path\": \"/health\", \"upstream\": \"static\"}\n"
    "  ]\n"
    "}\n";

static int build(const char *text, gw_config **out, colony_config_error *err)
{
    return gw_test_build(text, out, err);
}

static void a_full_file_builds(void **state)
{
    (void)state;
    gw_config *cfg;
    colony_config_error err;
    int rc = build(good, &cfg, &err);
    if (rc) fail_msg("%s:%d: %s: %s", err.file, err.line, err.key, err.reason);
    assert_int_equal(cfg->nroutes, 3);
    assert_int_equal(cfg->nupstreams, 2);
    const gw_upstream *st = colony__gw_config_upstream(cfg, "static");
    assert_non_null(st);
    assert_int_equal(st->ntargets, 2);
    assert_string_equal(st->targets[0].url, "http://127.0.0.1:3001");
    assert_string_equal(st->targets[0].address, "127.0.0.1:3001");
    assert_int_equal(st->targets[1].weight, 5);
    assert_int_equal(st->strategy, COLONY_BALANCE_RING_HASH);
    assert_string_equal(st->hash_header, "X-User");
    assert_int_equal(st->consecutive_failures, 3);
    assert_int_equal(st->base_ejection_ms, 10000);
    assert_int_equal(st->max_ejection_percent, 10);
    const gw_upstream *users = colony__gw_config_upstream(cfg, "users");
    assert_string_equal(users->service, "users");
    assert_string_equal(users->tag, "v2");
    const gw_route_conf *r0 = &cfg->routes[0];
    assert_string_equal(r0->match.name, "users");
    assert_true(r0->match.strip_prefix);
    assert_int_equal(r0->try_timeout_ms, 2000);
    assert_int_equal(r0->total_timeout_ms, 10000);
    assert_int_equal(r0->retries, 2);
    assert_int_equal(r0->retry_on, GW_RETRY_CONNECT | GW_RETRY_503);
    const gw_route_conf *r1 = &cfg->routes[1];
    assert_string_equal(r1->match.name, "route-1");
    assert_int_equal(r1->nsplits, 2);
    assert_int_equal(r1->total_weight, 100);
    assert_ptr_equal(&cfg->upstreams[r1->splits[1].upstream], st);
    assert_int_equal(r1->match.nheaders, 2);
    gw_match m;
    assert_true(colony__gw_match(cfg->table, cfg->nroutes, "GET", NULL, "/health", NULL, NULL, &m));
    assert_ptr_equal(m.route->target, &cfg->routes[2]);
    /* a request holds a reference across a reload */
    colony__gw_config_ref(cfg);
    colony__gw_config_unref(cfg);
    colony__gw_config_unref(cfg);
}

/* Replaces the first occurrence of from in good with to, builds it and checks
 * the error's line and that its reason contains `reason`. */
static void refused(const char *from, const char *to, int line, const char *key, const char *reason)
{
    gw_test_refused_in(good, from, to, line, key, reason);
}

static void mistakes_name_their_line(void **state)
{
    (void)state;
    refused("\"routes\": [", "\"routez\": [", 9, "routez", "unknown key");
    refused("\"name\": \"users\", \"prefix\"", "\"nam\": \"users\", \"prefix\"", 10, "routes.0.nam",
            "unknown key");
    refused("\"upstream\": \"users\",\n", "\"upstream\": \"nobody\",\n", 10, "routes.0.upstream",
            "no upstream named \"nobody\"");
    refused("\"path\": \"/health\"", "\"path\": \"/a/../b\"", 18, "routes.2.path", "normalized");
    refused("\"prefix\": \"/api/users\"", "\"prefix\": \"/api/users\", \"path\": \"/x\"", 10,
            "routes.0", "one of");
    refused("{\"path\": \"/health\", \"upstream\": \"static\"}", "{\"upstream\": \"static\"}", 18,
            "routes.2", "needs \"prefix\"");
    refused("\"strategy\": \"least_conn\"", "\"strategy\": \"fastest\"", 3,
            "upstreams.users.strategy", "must be one of");
    refused("\"http://127.0.0.1:3001/\"", "\"ftp://127.0.0.1:3001\"", 4,
            "upstreams.static.targets.0", "http://host:port or https://host:port");
    refused("\"http://127.0.0.1:3001/\"", "\"http://127.0.0.1:3001/x\"", 4,
            "upstreams.static.targets.0", "without a path");
    refused("\"url\": \"http://127.0.0.1:3002\"", "\"url\": \"http://127.0.0.1:99999\"", 5,
            "upstreams.static.targets.1.url", "bad port");
    refused("\"url\": \"http://127.0.0.1:3002\"", "\"url\": \"http://127.0.0.1:3001\"", 5,
            "upstreams.static.targets.1", "listed twice");
    refused("\"weight\": 5", "\"weight\": 0", 5, "upstreams.static.targets.1.weight",
            "integer from 1");
    refused("\"service\": \"users\", \"tag\"",
            "\"targets\": [\"http://a:1\"], \"service\": \"users\", \"tag\"", 3, "upstreams.users",
            "either \"targets\" or \"service\"");
    refused("\"try\": 2000", "\"try\": \"soon\"", 12, "routes.0.timeouts.try", "duration");
    refused("\"on\": [\"connect\", \"503\"]", "\"on\": [\"connect\", \"500\"]", 13,
            "routes.0.retries.on.1", "retry conditions");
    refused("\"attempts\": 2", "\"attempts\": 11", 13, "routes.0.retries.attempts", "from 0 to 10");
    refused("\"weight\": 90},\n               {\"upstream\": \"static\", \"weight\": 10}",
            "\"weight\": 0},\n               {\"upstream\": \"static\", \"weight\": 0}", 16,
            "routes.1.split", "add up to 0");
    refused("\"X-Beta\": true", "\"X-Beta\": 1", 15, "routes.1.headers.X-Beta", "true (present)");
    refused("\"rewrite\": \"/users/:id\"", "\"rewrite\": \"/users/:uid\"", 14, "routes.1.rewrite",
            "':uid' is not in the pattern");
    refused("\"hosts\": [\"*.example.com\"]", "\"hosts\": [\"*.exa*mple.com\"]", 14,
            "routes.1.hosts", "not a host name");
    refused("\"path\": \"/health\", \"upstream\": \"static\"",
            "\"path\": \"/health\", \"upstream\": \"static\", \"name\": \"users\"", 18, "routes.2",
            "two routes are named");
    refused("\"routes\": [", "\"routes\": [] , \"x\": [", 9, "x", "unknown key");

    /* syntax errors carry jansson's line */
    colony_json_doc *doc;
    colony_config_error err;
    assert_int_equal(colony_json_doc_parse("r.json", "{\n\"a\": [1,\n}", 12, &doc, &err),
                     COLONY_EINVAL);
    assert_int_equal(err.line, 3);
    assert_int_equal(colony_json_doc_parse("r.json", "{\"a\":1,\"a\":2}", 13, &doc, &err),
                     COLONY_EINVAL); /* duplicate keys */
}

static void loading_a_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/colony-gw-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/routes.json", dir);
    FILE *f = fopen(path, "w");
    fputs(good, f);
    fclose(f);
    gw_config *cfg;
    colony_config_error err;
    assert_int_equal(colony__gw_config_load(path, &cfg, &err), 0);
    colony__gw_config_unref(cfg);
    unlink(path);
    assert_int_equal(colony__gw_config_load(path, &cfg, &err), COLONY_EINVAL);
    assert_string_equal(err.file, path);
    assert_non_null(strstr(err.reason, "cannot read"));
    rmdir(dir);
}

static void quick_routes(void **state)
{
    (void)state;
    const char *routes[] = {"/api=http://127.0.0.1:3000", "/=http://localhost:8080/"};
    gw_config *cfg;
    colony_config_error err;
    assert_int_equal(colony__gw_config_quick(routes, 2, &cfg, &err), 0);
    assert_int_equal(cfg->nroutes, 2);
    gw_match m;
    assert_true(colony__gw_match(cfg->table, 2, "GET", NULL, "/api/x", NULL, NULL, &m));
    const gw_route_conf *r = m.route->target;
    assert_string_equal(cfg->upstreams[r->splits[0].upstream].targets[0].url,
                        "http://127.0.0.1:3000");
    assert_true(colony__gw_match(cfg->table, 2, "GET", NULL, "/other", NULL, NULL, &m));
    colony__gw_config_unref(cfg);

    const char *bad[] = {"/api"};
    assert_int_equal(colony__gw_config_quick(bad, 1, &cfg, &err), COLONY_EINVAL);
    assert_string_equal(err.file, "command line");
    assert_non_null(strstr(err.reason, "PATH=URL"));
    const char *bad_url[] = {"/api=ftp://x:1"};
    assert_int_equal(colony__gw_config_quick(bad_url, 1, &cfg, &err), COLONY_EINVAL);
    assert_int_equal(err.line, 0);
    assert_non_null(strstr(err.reason, "http://host:port"));
}

/* Every allocation failure while building is refused cleanly (LeakSanitizer
 * checks nothing is left behind). */
static void allocation_failures(void **state)
{
    (void)state;
    assert_true(gw_test_allocation_failures(good) > 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_full_file_builds),  cmocka_unit_test(mistakes_name_their_line),
        cmocka_unit_test(loading_a_file),      cmocka_unit_test(quick_routes),
        cmocka_unit_test(allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
