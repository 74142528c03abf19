/* colony registry over HTTP: service registration and discovery endpoints in
 * Consul's shapes, their error answers, status endpoints and ACLs. */
#include <jansson.h>
#include "registry_test_util.h"

static json_t *get_json(const char *path, int expect_status)
{
    rt_resp r;
    assert_int_equal(rt_get(reg.port, path, &r), 0);
    assert_int_equal(r.status, expect_status);
    assert_true(r.index > 0);
    json_t *j = json_loads(r.body, 0, NULL);
    assert_non_null(j);
    return j;
}

static void test_register_and_discover(void **state)
{
    (void)state;
    rt_resp r;
    assert_int_equal(rt_put(reg.port, "/v1/agent/service/register",
                            "{\"Name\":\"web\",\"ID\":\"web-1\",\"Address\":\"10.0.0.1\","
                            "\"Port\":8080,\"Tags\":[\"v1\",\"blue\"],\"Meta\":{\"version\":\"1\"},"
                            "\"Weights\":{\"Passing\":10,\"Warning\":2},"
                            "\"Check\":{\"TTL\":\"30s\",\"Status\":\"passing\"}}",
                            &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_true(r.index > 1);
    assert_int_equal(
        rt_put(reg.port, "/v1/agent/service/register",
               "{\"Name\":\"web\",\"ID\":\"web-2\",\"Port\":8081,\"Tags\":[\"v2\"],"
               "\"Checks\":[{\"TTL\":\"30s\"},{\"CheckID\":\"web2-extra\",\"TTL\":\"30s\"}]}",
               &r),
        0);
    assert_int_equal(r.status, 200);

    json_t *svcs = get_json("/v1/agent/services", 200);
    json_t *w1 = json_object_get(svcs, "web-1");
    assert_string_equal(json_string_value(json_object_get(w1, "Service")), "web");
    assert_int_equal(json_integer_value(json_object_get(w1, "Port")), 8080);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(w1, "Weights"), "Passing")),
                     10);
    assert_non_null(json_object_get(svcs, "web-2"));
    json_decref(svcs);

    json_t *cat = get_json("/v1/catalog/services", 200);
    assert_int_equal(json_array_size(json_object_get(cat, "web")), 3);
    json_decref(cat);

    json_t *entries = get_json("/v1/catalog/service/web", 200);
    assert_int_equal(json_array_size(entries), 2);
    json_t *e = json_array_get(entries, 0);
    assert_string_equal(json_string_value(json_object_get(e, "ServiceID")), "web-1");
    assert_string_equal(json_string_value(json_object_get(e, "ServiceAddress")), "10.0.0.1");
    assert_int_equal(json_integer_value(json_object_get(e, "ServicePort")), 8080);
    assert_string_equal(json_string_value(json_object_get(e, "Node")), "colony");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(e, "ServiceMeta"), "version")), "1");
    assert_true(json_integer_value(json_object_get(e, "CreateIndex")) > 0);
    json_decref(entries);

    json_t *tagged = get_json("/v1/catalog/service/web?tag=v2", 200);
    assert_int_equal(json_array_size(tagged), 1);
    json_decref(tagged);

    /* health: web-1 passing, web-2's checks start critical */
    json_t *health = get_json("/v1/health/service/web", 200);
    assert_int_equal(json_array_size(health), 2);
    json_t *h1 = json_array_get(health, 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(h1, "Node"), "Node")),
                        "colony");
    assert_string_equal(json_string_value(json_object_get(json_object_get(h1, "Service"), "ID")),
                        "web-1");
    json_t *checks = json_object_get(h1, "Checks");
    assert_int_equal(json_array_size(checks), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(checks, 0), "CheckID")),
                        "serfHealth");
    assert_string_equal(json_string_value(json_object_get(json_array_get(checks, 1), "CheckID")),
                        "service:web-1");
    json_decref(health);
    json_t *passing = get_json("/v1/health/service/web?passing", 200);
    assert_int_equal(json_array_size(passing), 1);
    json_decref(passing);

    /* TTL updates make web-2 pass */
    assert_int_equal(rt_put(reg.port, "/v1/agent/check/pass/service:web-2:1?note=ok", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(rt_put(reg.port, "/v1/agent/check/pass/web2-extra", NULL, &r), 0);
    passing = get_json("/v1/health/service/web?passing=true", 200);
    assert_int_equal(json_array_size(passing), 2);
    json_decref(passing);
    assert_int_equal(rt_put(reg.port, "/v1/agent/check/warn/web2-extra?note=slow", NULL, &r), 0);
    passing = get_json("/v1/health/service/web?passing", 200);
    assert_int_equal(json_array_size(passing), 1);
    json_decref(passing);

    json_t *agent_checks = get_json("/v1/agent/checks", 200);
    json_t *extra = json_object_get(agent_checks, "web2-extra");
    assert_string_equal(json_string_value(json_object_get(extra, "Status")), "warning");
    assert_string_equal(json_string_value(json_object_get(extra, "Output")), "slow");
    assert_string_equal(json_string_value(json_object_get(extra, "ServiceID")), "web-2");
    json_decref(agent_checks);

    /* deregister removes the instance and its checks; unknown IDs are fine */
    assert_int_equal(rt_put(reg.port, "/v1/agent/service/deregister/web-2", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(rt_put(reg.port, "/v1/agent/service/deregister/nope", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    agent_checks = get_json("/v1/agent/checks", 200);
    assert_null(json_object_get(agent_checks, "web2-extra"));
    json_decref(agent_checks);
    entries = get_json("/v1/catalog/service/web", 200);
    assert_int_equal(json_array_size(entries), 1);
    json_decref(entries);
    json_t *none = get_json("/v1/health/service/nothing-here", 200);
    assert_int_equal(json_array_size(none), 0);
    json_decref(none);
}

static void expect_400(const char *body, const char *needle)
{
    rt_resp r;
    assert_int_equal(rt_put(reg.port, "/v1/agent/service/register", body, &r), 0);
    assert_int_equal(r.status, 400);
    if (!strstr(r.body, needle)) fail_msg("expected '%s' in %s", needle, r.body);
}

static void test_bad_input(void **state)
{
    (void)state;
    expect_400("{\"Name\":", "invalid JSON");
    expect_400("{\"Port\":80}", "Missing service name");
    expect_400("{\"Name\":\"x\",\"Port\":70000}", "Invalid Port");
    expect_400("{\"Name\":\"x\",\"Port\":\"80\"}", "Invalid Port");
    expect_400("{\"Name\":\"x\",\"Tags\":[1]}", "Tags");
    expect_400("{\"Name\":\"x\",\"Check\":{\"Interval\":\"10s\"}}", "unknown check type");
    expect_400("{\"Name\":\"x\",\"Check\":{\"Args\":[\"/bin/true\"],\"Interval\":\"10s\"}}",
               "unsupported check type");
    expect_400(
        "{\"Name\":\"x\",\"Check\":{\"HTTP\":\"http://127.0.0.1:1/\",\"Interval\":\"soon\"}}",
        "invalid duration");
    expect_400("{\"Name\":\"x\",\"Check\":{\"HTTP\":\"http://127.0.0.1:1/\"}}", "Interval");
    expect_400("{\"Name\":\"x\",\"Check\":{\"TTL\":\"10s\",\"Status\":\"great\"}}", "Status");
    rt_resp r;
    assert_int_equal(rt_get(reg.port, "/v1/health/service/web?index=1&wait=forever", &r), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "invalid wait"));
    assert_int_equal(rt_put(reg.port, "/v1/agent/check/pass/unknown-check", NULL, &r), 0);
    assert_int_equal(r.status, 404);
    assert_int_equal(rt_get(reg.port, "/v1/agent/service/deregister/x", &r), 0);
    assert_int_equal(r.status, 405);
}

static void test_status(void **state)
{
    (void)state;
    char expect[64];
    snprintf(expect, sizeof(expect), "\"127.0.0.1:%d\"", reg.port);
    rt_resp r;
    assert_int_equal(rt_get(reg.port, "/v1/status/leader", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, expect);
    assert_int_equal(rt_get(reg.port, "/v1/status/peers", &r), 0);
    assert_non_null(strstr(r.body, expect));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_register_and_discover, rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(test_status, rt_setup, rt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
