/* ACL checks of colony registry that a token must not be able to get around:
 * a recursive KV delete over keys it may not write, re-registering another
 * service's instance or check under a name it owns, and blocking queries on
 * a service or key it may not read (denied at once, not after the wait). */
#include <jansson.h>
#include "registry_test_util.h"

static const char *const acl_doc =
    "{\"anonymous\":\"deny\",\"tokens\":["
    "{\"token\":\"root\",\"management\":true},"
    "{\"token\":\"web-team\",\"service_prefix\":{\"web\":\"write\",\"db\":\"deny\"},"
    "\"key_prefix\":{\"\":\"write\",\"config/secret\":\"deny\"}}]}";

static int setup(void **state)
{
    (void)state;
    memset(&reg, 0, sizeof(reg));
    snprintf(reg.dir, sizeof(reg.dir), "/tmp/colony-registry-acl-XXXXXX");
    assert_non_null(mkdtemp(reg.dir));
    char acl_path[300];
    snprintf(acl_path, sizeof(acl_path), "%s/acl.json", reg.dir);
    FILE *f = fopen(acl_path, "w");
    assert_non_null(f);
    fputs(acl_doc, f);
    fclose(f);
    char flag[320];
    snprintf(flag, sizeof(flag), "--acl-file=%s", acl_path);
    const char *extra[] = {flag, NULL};
    rt_start(&reg, extra);
    return 0;
}

static int as_web(const char *method, const char *path, const char *body, rt_resp *r)
{
    return rt_http(reg.port, method, path, body, 0, "X-Consul-Token: web-team\r\n", r);
}

static void test_recursive_delete_needs_write_on_every_key(void **state)
{
    (void)state;
    rt_resp r;
    assert_int_equal(rt_put(reg.port, "/v1/kv/config/secret/pw?token=root", "hunter2", &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(as_web("PUT", "/v1/kv/config/web/port", "80", &r), 0);
    assert_int_equal(r.status, 200);

    assert_int_equal(as_web("DELETE", "/v1/kv/config/?recurse", NULL, &r), 0);
    assert_int_equal(r.status, 403);
    assert_non_null(strstr(r.body, "config/secret/pw"));
    /* Nothing was deleted: the request is refused as a whole. */
    assert_int_equal(rt_get(reg.port, "/v1/kv/config/secret/pw?token=root", &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(rt_get(reg.port, "/v1/kv/config/web/port?token=root", &r), 0);
    assert_int_equal(r.status, 200);

    /* A prefix the token may write entirely still works. */
    assert_int_equal(as_web("DELETE", "/v1/kv/config/web/?recurse", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(rt_get(reg.port, "/v1/kv/config/web/port?token=root", &r), 0);
    assert_int_equal(r.status, 404);
}

static void test_reregister_under_other_name_is_denied(void **state)
{
    (void)state;
    rt_resp r;
    const char *db = "{\"ID\":\"db-1\",\"Name\":\"db\",\"Port\":5432,"
                     "\"Check\":{\"CheckID\":\"db-ttl\",\"TTL\":\"30s\"}}";
    assert_int_equal(rt_put(reg.port, "/v1/agent/service/register?token=root", db, &r), 0);
    assert_int_equal(r.status, 200);

    /* Taking over db-1 by registering it as "web" needs write on "db" too. */
    assert_int_equal(
        as_web("PUT", "/v1/agent/service/register", "{\"ID\":\"db-1\",\"Name\":\"web\"}", &r), 0);
    assert_int_equal(r.status, 403);
    assert_non_null(strstr(r.body, "on \\\"db\\\"")); /* names the owner, JSON-escaped */
    /* So does replacing db's check through a web registration. */
    assert_int_equal(as_web("PUT", "/v1/agent/service/register",
                            "{\"ID\":\"web-1\",\"Name\":\"web\","
                            "\"Check\":{\"CheckID\":\"db-ttl\",\"TTL\":\"30s\"}}",
                            &r),
                     0);
    assert_int_equal(r.status, 403);

    assert_int_equal(rt_get(reg.port, "/v1/catalog/service/db?token=root", &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"db-1\""));
    assert_int_equal(rt_get(reg.port, "/v1/agent/checks?token=root", &r), 0);
    assert_non_null(strstr(r.body, "\"ServiceName\":\"db\""));
    assert_int_equal(rt_get(reg.port, "/v1/catalog/service/web?token=root", &r), 0);
    assert_string_equal(r.body, "[]");

    /* web-team's own registrations still work. */
    assert_int_equal(as_web("PUT", "/v1/agent/service/register",
                            "{\"ID\":\"web-1\",\"Name\":\"web\","
                            "\"Check\":{\"CheckID\":\"web-ttl\",\"TTL\":\"30s\"}}",
                            &r),
                     0);
    assert_int_equal(r.status, 200);
}

/* A denied blocking query is answered 403 at once, without the index: it
 * must neither park (a waiter per unauthorised client) nor reveal when the
 * service or key changes. */
static void test_denied_blocking_query_answers_at_once(void **state)
{
    (void)state;
    rt_resp r;
    assert_int_equal(
        rt_put(reg.port, "/v1/agent/service/register?token=root", "{\"Name\":\"db\"}", &r), 0);
    assert_int_equal(rt_put(reg.port, "/v1/kv/config/secret/pw?token=root", "x", &r), 0);
    unsigned long long idx = r.index;
    assert_true(idx > 0);

    const char *paths[] = {"/v1/health/service/db", "/v1/catalog/service/db",
                           "/v1/kv/config/secret/pw"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char path[200];
        snprintf(path, sizeof(path), "%s?index=%llu&wait=20s", paths[i], idx + 1000);
        uint64_t start = colony_test_now_ms();
        assert_int_equal(as_web("GET", path, NULL, &r), 0);
        assert_int_equal(r.status, 403);
        assert_true(colony_test_now_ms() - start < 10000); /* not after the 20 s wait */
        assert_int_equal(r.index, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_recursive_delete_needs_write_on_every_key, setup,
                                        rt_teardown),
        cmocka_unit_test_setup_teardown(test_reregister_under_other_name_is_denied, setup,
                                        rt_teardown),
        cmocka_unit_test_setup_teardown(test_denied_blocking_query_answers_at_once, setup,
                                        rt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
