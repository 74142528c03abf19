/* Pure registry logic: Go duration strings, the string map, ACL prefix
 * rules, and registration validation messages. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "registry/registry_internal.h"
#include "registry/parse.h"
#include "test_support.h"

static void test_durations(void **state)
{
    (void)state;
    uint64_t ms;
    assert_int_equal(colony__reg_parse_duration("5s", &ms), 0);
    assert_int_equal(ms, 5000);
    assert_int_equal(colony__reg_parse_duration("1m30s", &ms), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(colony__reg_parse_duration("1.5h", &ms), 0);
    assert_int_equal(ms, 5400000);
    assert_int_equal(colony__reg_parse_duration("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(colony__reg_parse_duration("1500us", &ms), 0);
    assert_int_equal(ms, 2); /* rounded up */
    assert_int_equal(colony__reg_parse_duration("0", &ms), 0);
    assert_int_equal(ms, 0);
    const char *bad[] = {"", "5", "s", "5x", "-1s", "1..5s", "1s5", "abc", ".s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(colony__reg_parse_duration(bad[i], &ms), COLONY_EINVAL);
}

static void test_map(void **state)
{
    (void)state;
    colony__map m = {0};
    static int values[2000];
    char key[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(colony__map_put(&m, key, &values[i]), 0);
    }
    assert_int_equal(m.count, 2000);
    for (int i = 0; i < 2000; i += 2) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_ptr_equal(colony__map_remove(&m, key), &values[i]);
    }
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_ptr_equal(colony__map_get(&m, key), i % 2 ? &values[i] : NULL);
    }
    assert_null(colony__map_remove(&m, "absent"));
    colony__map_free(&m);
}

static void test_acl_rules(void **state)
{
    (void)state;
    reg_acl acl;
    char msg[256];
    json_t *doc = json_loads("{\"anonymous\":\"deny\",\"tokens\":["
                             "{\"token\":\"t\",\"service_prefix\":{\"\":\"read\",\"web\":\"write\","
                             "\"web-admin\":\"deny\"},\"key_prefix\":{\"app/\":\"write\"}},"
                             "{\"token\":\"m\",\"management\":true}]}",
                             0, NULL);
    assert_int_equal(colony__reg_acl_parse(&acl, doc, msg, sizeof(msg)), 0);
    json_decref(doc);
    assert_int_equal(colony__reg_acl_service(&acl, "t", "web-1"), REG_ACL_WRITE);
    assert_int_equal(colony__reg_acl_service(&acl, "t", "web-admin"), REG_ACL_NONE);
    assert_int_equal(colony__reg_acl_service(&acl, "t", "db"), REG_ACL_READ);
    assert_int_equal(colony__reg_acl_key(&acl, "t", "app/x"), REG_ACL_WRITE);
    assert_int_equal(colony__reg_acl_key(&acl, "t", "other"), REG_ACL_NONE);
    assert_int_equal(colony__reg_acl_key(&acl, "m", "other"), REG_ACL_WRITE);
    assert_int_equal(colony__reg_acl_service(&acl, NULL, "web"), REG_ACL_NONE);
    assert_int_equal(colony__reg_acl_service(&acl, "unknown", "web"), REG_ACL_NONE);
    colony__reg_acl_free(&acl);

    doc = json_loads("{\"tokens\":[{\"token\":\"t\",\"key_prefix\":{\"a\":\"admin\"}}]}", 0, NULL);
    assert_int_equal(colony__reg_acl_parse(&acl, doc, msg, sizeof(msg)), COLONY_EINVAL);
    assert_non_null(strstr(msg, "tokens[0].key_prefix"));
    colony__reg_acl_free(&acl);
    json_decref(doc);
}

static void expect_invalid(const char *body, const char *needle)
{
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    reg_service *svc = NULL;
    reg_check **checks = NULL;
    char msg[512];
    assert_int_equal(colony__reg_parse_service(j, &svc, &checks, msg, sizeof(msg)), COLONY_EINVAL);
    if (!strstr(msg, needle)) fail_msg("'%s' not in '%s'", needle, msg);
    json_decref(j);
}

static void test_parse_service(void **state)
{
    (void)state;
    json_t *j = json_loads("{\"name\":\"web\",\"port\":80,\"tags\":[\"a\"],"
                           "\"check\":{\"http\":\"http://127.0.0.1/h\",\"interval\":\"10s\","
                           "\"deregister_critical_service_after\":\"1m\"},"
                           "\"Checks\":[{\"TTL\":\"5s\",\"Status\":\"passing\"}]}",
                           0, NULL);
    reg_service *svc;
    reg_check **checks;
    char msg[512];
    assert_int_equal(colony__reg_parse_service(j, &svc, &checks, msg, sizeof(msg)), 0);
    assert_string_equal(svc->id, "web");
    assert_int_equal(svc->port, 80);
    assert_string_equal(checks[0]->id, "service:web");
    assert_int_equal(checks[0]->type, REG_CHECK_HTTP);
    assert_int_equal(checks[0]->interval_ms, 10000);
    assert_int_equal(checks[0]->timeout_ms, 10000);
    assert_int_equal(checks[0]->deregister_after_ms, 60000);
    assert_int_equal(checks[0]->status, REG_CRITICAL);
    assert_string_equal(checks[1]->id, "service:web:1");
    assert_int_equal(checks[1]->status, REG_PASSING);
    assert_null(checks[2]);
    for (size_t i = 0; checks[i]; i++)
        colony__reg_check_free(checks[i]);
    colony__free(checks);
    colony__reg_service_free(svc);
    json_decref(j);

    expect_invalid("[]", "JSON object");
    expect_invalid("{\"Name\":\"\"}", "Missing service name");
    expect_invalid("{\"Name\":\"a\",\"Port\":-1}", "Invalid Port");
    expect_invalid("{\"Name\":\"a\",\"Meta\":{\"k\":1}}", "Meta");
    expect_invalid("{\"Name\":\"a\",\"Weights\":{\"Passing\":0}}", "Passing");
    expect_invalid("{\"Name\":\"a\",\"Check\":{\"TTL\":\"5s\",\"TCP\":\"h:1\"}}", "exactly one");
    expect_invalid("{\"Name\":\"a\",\"Check\":{\"GRPC\":\"h:1\",\"Interval\":\"1s\"}}",
                   "unsupported check type GRPC");
    expect_invalid("{\"Name\":\"a\",\"Check\":{\"TCP\":\"nohostport\",\"Interval\":\"1s\"}}",
                   "host:port");
    expect_invalid("{\"Name\":\"a\",\"Checks\":[{\"TTL\":\"1s\",\"CheckID\":\"x\"},"
                   "{\"TTL\":\"1s\",\"CheckID\":\"x\"}]}",
                   "duplicate check ID");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_map),
        cmocka_unit_test(test_acl_rules),
        cmocka_unit_test(test_parse_service),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
