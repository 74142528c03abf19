/* The routes file keys of active health checks, the circuit breaker, the retry
 * budget and header transforms: a full file builds with every value where it
 * belongs, defaults apply, and each mistake is refused with its file, line,
 * key and reason. */
#include "gateway_config_fixture.h"
#include "test_support.h"
#include <string.h>
#include "colony/colony.h"
#include "core/alloc.h"
#include "gateway/config.h"

static const char *good =
    "{\n"
    "  \"upstreams\": {\n"
    "    \"api\": {\"targets\": [\"http://127.0.0.1:3001\"],\n"
    "            \"health\": {\"consecutive_failures\": 3,\n"
    "                       \"active\": {\"path\": \"/health\", \"interval\": \"2s\",\n"
    "                                  \"timeout\": \"1s\", \"healthy_threshold\": 3,\n"
    "                                  \"unhealthy_threshold\": 4}},\n"
    "            \"breaker\": {\"failure_ratio\": 0.25, \"min_calls\": 10, \"open_for\": \"10s\",\n"
    "                        \"window\": \"30s\", \"window_calls\": 50, \"half_open_calls\": 2}},\n"
    "    \"plain\": {\"service\": \"plain\"}\n"
    "  },\n"
    "  \"routes\": [\n"
    "    {\"prefix\": \"/api\", \"upstream\": \"api\", \"retries\": {\"attempts\": 1},\n"
    "     \"retry_budget\": {\"percent\": 10, \"min_per_sec\": 2, \"window\": \"5s\"},\n"
    "     \"request_headers\": {\"set\": {\"X-Env\": \"prod\"}, \"add\": {\"X-Via\": \"gw\"},\n"
    "                         \"remove\": [\"Cookie\", \"X-User-Id\"]},\n"
    "     \"response_headers\": {\"set\": {\"Cache-Control\": \"no-store\"},\n"
    "                          \"remove\": [\"Server\"]}},\n"
    "    {\"prefix\": \"/plain\", \"upstream\": \"plain\"}\n"
    "  ]\n"
    "}\n";

static int build(const char *text, gw_config **out, colony_config_error *err)
{
    return gw_test_build(text, out, err);
}

static void every_key_lands(void **state)
{
    (void)state;
    gw_config *cfg;
    colony_config_error err;
    int rc = build(good, &cfg, &err);
    if (rc) fail_msg("%s:%d: %s: %s", err.file, err.line, err.key, err.reason);
    const gw_upstream *api = colony__gw_config_upstream(cfg, "api");
    assert_int_equal(api->consecutive_failures, 3);
    assert_string_equal(api->active.path, "/health");
    assert_int_equal(api->active.interval_ms, 2000);
    assert_int_equal(api->active.timeout_ms, 1000);
    assert_int_equal(api->active.healthy_threshold, 3);
    assert_int_equal(api->active.unhealthy_threshold, 4);
    assert_true(api->breaker.enabled);
    assert_int_equal(api->breaker.failure_percent, 25);
    assert_int_equal(api->breaker.min_calls, 10);
    assert_int_equal(api->breaker.open_ms, 10000);
    assert_int_equal(api->breaker.window_ms, 30000);
    assert_int_equal(api->breaker.window_calls, 50);
    assert_int_equal(api->breaker.half_open_calls, 2);
    const gw_upstream *plain = colony__gw_config_upstream(cfg, "plain");
    assert_null(plain->active.path); /* off unless asked for */
    assert_false(plain->breaker.enabled);
    const gw_route_conf *r = &cfg->routes[0];
    assert_int_equal(r->retry_budget.percent, 10);
    assert_int_equal(r->retry_budget.min_per_sec, 2);
    assert_int_equal(r->retry_budget.window_ms, 5000);
    assert_int_equal(r->request_headers.nset, 1);
    assert_string_equal(r->request_headers.set[0], "X-Env");
    assert_string_equal(r->request_headers.set[1], "prod");
    assert_int_equal(r->request_headers.nadd, 1);
    assert_string_equal(r->request_headers.add[1], "gw");
    assert_int_equal(r->request_headers.nremove, 2);
    assert_string_equal(r->request_headers.remove[1], "X-User-Id"); /* removing is allowed */
    assert_int_equal(r->response_headers.nset, 1);
    assert_string_equal(r->response_headers.remove[0], "Server");
    /* defaults: Envoy's retry budget */
    assert_int_equal(cfg->routes[1].retry_budget.percent, 20);
    assert_int_equal(cfg->routes[1].retry_budget.min_per_sec, 10);
    assert_int_equal(cfg->routes[1].request_headers.nset, 0);
    colony__gw_config_unref(cfg);
}

/* Replaces from with to in base, builds it and checks the refusal. */

static void refused(const char *from, const char *to, int line, const char *key, const char *reason)
{
    gw_test_refused_in(good, from, to, line, key, reason);
}

static const char *small = "{\"upstreams\": {\"u\": {\"targets\": [\"http://a:1\"],\n"
                           "  \"health\": {\"active\": {\"path\": \"/h\"}}, \"breaker\": {}}},\n"
                           "\"routes\": [{\"prefix\": \"/\", \"upstream\": \"u\",\n"
                           "  \"request_headers\": {}}]}\n";

static void not_objects(void **state)
{
    (void)state;
    gw_test_refused_in(small, "\"active\": {\"path\": \"/h\"}", "\"active\": []", 2,
                       "upstreams.u.health.active", "must be an object");
    gw_test_refused_in(small, "\"breaker\": {}", "\"breaker\": true", 2, "upstreams.u.breaker",
                       "must be an object");
    gw_test_refused_in(small, "\"request_headers\": {}", "\"request_headers\": \"x\"", 4,
                       "routes.0.request_headers", "must be an object");
    gw_test_refused_in(small, "\"breaker\": {}", "\"retry_budget\": {}", 2,
                       "upstreams.u.retry_budget", "unknown key");
}

static void health_mistakes(void **state)
{
    (void)state;
    const char *h = "upstreams.api.health.active";
    char key[128];
    snprintf(key, sizeof(key), "%s.paht", h);
    refused("\"path\": \"/health\", \"interval\"", "\"paht\": \"/health\", \"interval\"", 5, key,
            "unknown key \"paht\"");
    snprintf(key, sizeof(key), "%s.path", h);
    refused("\"path\": \"/health\"", "\"path\": \"health\"", 5, key, "starting with \"/\"");
    refused("\"path\": \"/health\", ", "", 5, h, "is required");
    snprintf(key, sizeof(key), "%s.interval", h);
    refused("\"interval\": \"2s\"", "\"interval\": \"often\"", 5, key, "duration");
    snprintf(key, sizeof(key), "%s.timeout", h);
    refused("\"timeout\": \"1s\"", "\"timeout\": \"3s\"", 6, key, "not be longer than");
    snprintf(key, sizeof(key), "%s.healthy_threshold", h);
    refused("\"healthy_threshold\": 3", "\"healthy_threshold\": 0", 6, key, "from 1 to 100");
    snprintf(key, sizeof(key), "%s.unhealthy_threshold", h);
    refused("\"unhealthy_threshold\": 4", "\"unhealthy_threshold\": \"4\"", 7, key, "integer");
}

static void breaker_mistakes(void **state)
{
    (void)state;
    refused("\"failure_ratio\": 0.25", "\"failure_ratio\": 1.5", 8,
            "upstreams.api.breaker.failure_ratio", "at most 1");
    refused("\"failure_ratio\": 0.25", "\"failure_ratio\": \"half\"", 8,
            "upstreams.api.breaker.failure_ratio", "number");
    refused("\"min_calls\": 10", "\"min_calls\": 0", 8, "upstreams.api.breaker.min_calls",
            "from 1");
    refused("\"min_calls\": 10", "\"min_calls\": 60", 8, "upstreams.api.breaker.min_calls",
            "cannot exceed \"window_calls\"");
    refused("\"open_for\": \"10s\"", "\"open_for\": \"-1s\"", 8, "upstreams.api.breaker.open_for",
            "duration");
    refused("\"half_open_calls\": 2", "\"half_open\": 2", 9, "upstreams.api.breaker.half_open",
            "unknown key");
}

static void budget_and_header_mistakes(void **state)
{
    (void)state;
    refused("\"percent\": 10", "\"percent\": -1", 14, "routes.0.retry_budget.percent",
            "integer from 0");
    refused("\"window\": \"5s\"", "\"window\": \"5ms\"", 14, "routes.0.retry_budget.window",
            "at least 10ms");
    refused("\"min_per_sec\": 2", "\"floor\": 2", 14, "routes.0.retry_budget.floor", "unknown key");
    refused("\"X-Env\": \"prod\"", "\"X-User-Id\": \"7\"", 15,
            "routes.0.request_headers.set.X-User-Id", "identity header");
    refused("\"X-Via\": \"gw\"", "\"X-User-Role\": \"admin\"", 15,
            "routes.0.request_headers.add.X-User-Role", "identity header");
    refused("\"X-Env\": \"prod\"", "\"Connection\": \"close\"", 15,
            "routes.0.request_headers.set.Connection", "hop-by-hop");
    refused("\"X-Env\": \"prod\"", "\"X-Colony-Deadline-Ms\": \"5\"", 15,
            "routes.0.request_headers.set.X-Colony-Deadline-Ms", "timeouts");
    refused("\"X-Env\": \"prod\"", "\"X-Env\": 5", 15, "routes.0.request_headers.set.X-Env",
            "string on one line");
    refused("\"X-Env\": \"prod\"", "\"X Env\": \"prod\"", 15, "routes.0.request_headers.set.X Env",
            "not a valid header name");
    refused("\"remove\": [\"Cookie\"", "\"remove\": [\"Transfer-Encoding\"", 16,
            "routes.0.request_headers.remove.0", "hop-by-hop");
    refused("\"remove\": [\"Cookie\", \"X-User-Id\"]", "\"remove\": []", 16,
            "routes.0.request_headers.remove", "array of 1 to");
    refused("\"Cache-Control\": \"no-store\"", "\"Content-Length\": \"0\"", 17,
            "routes.0.response_headers.set.Content-Length", "set by the gateway");
    refused("\"remove\": [\"Server\"]", "\"delete\": [\"Server\"]", 18,
            "routes.0.response_headers.delete", "unknown key");
}

/* Every allocation failure while building the new keys is refused cleanly
 * (LeakSanitizer checks nothing is left behind). */
static void allocation_failures(void **state)
{
    (void)state;
    assert_true(gw_test_allocation_failures(good) > 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_key_lands),  cmocka_unit_test(health_mistakes),
        cmocka_unit_test(breaker_mistakes), cmocka_unit_test(budget_and_header_mistakes),
        cmocka_unit_test(not_objects),      cmocka_unit_test(allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
