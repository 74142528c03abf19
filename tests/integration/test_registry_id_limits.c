/* Service IDs, service names and check IDs longer than REG_MAX_ID_LEN (512
 * bytes) are refused with 400 JSON: a longer one could be registered but never
 * deregistered (its URL would get 414). One at the limit round-trips. */
#include "registry_test_util.h"

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void register_expect(const char *id, const char *name, const char *check_id, int status,
                            const char *needle)
{
    size_t size = strlen(id) + strlen(name) + strlen(check_id) + 200;
    char *body = malloc(size);
    assert_non_null(body);
    snprintf(body, size,
             "{\"ID\":\"%s\",\"Name\":\"%s\",\"Check\":{\"CheckID\":\"%s\",\"TTL\":\"30s\"}}", id,
             name, check_id);
    rt_resp r;
    assert_int_equal(rt_put(reg.port, "/v1/agent/service/register", body, &r), 0);
    free(body);
    if (r.status != status) fail_msg("status %d, body %s", r.status, r.body);
    if (needle && !strstr(r.body, needle)) fail_msg("\"%s\" not in %s", needle, r.body);
}

static void test_long_ids_and_names_are_refused(void **state)
{
    (void)state;
    char *huge = repeat('a', 100 * 1024), *over = repeat('b', 513);
    register_expect(huge, "web", "c1", 400, "service ID is 102400 bytes long; the limit is 512");
    register_expect(over, "web", "c1", 400, "\"bad_request\"");
    register_expect("web-1", over, "c1", 400, "service Name is 513 bytes long");
    register_expect("web-1", "web", over, 400, "CheckID is 513 bytes long");
    rt_resp r;
    assert_int_equal(rt_get(reg.port, "/v1/agent/services", &r), 0);
    assert_null(strstr(r.body, "bbbb"));
    free(huge);
    free(over);
}

static void test_an_id_at_the_limit_can_be_deregistered(void **state)
{
    (void)state;
    char *id = repeat('i', 512), *name = repeat('n', 512), *check = repeat('c', 512);
    register_expect(id, name, check, 200, NULL);
    char path[1200];
    rt_resp r;
    snprintf(path, sizeof(path), "/v1/agent/check/pass/%s", check);
    assert_int_equal(rt_put(reg.port, path, "", &r), 0);
    assert_int_equal(r.status, 200);
    snprintf(path, sizeof(path), "/v1/health/service/%s", name);
    assert_int_equal(rt_get(reg.port, path, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, id));
    snprintf(path, sizeof(path), "/v1/agent/service/deregister/%s", id);
    assert_int_equal(rt_put(reg.port, path, "", &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(rt_get(reg.port, "/v1/agent/services", &r), 0);
    assert_null(strstr(r.body, id));
    free(id);
    free(name);
    free(check);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_long_ids_and_names_are_refused, rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(test_an_id_at_the_limit_can_be_deregistered, rt_setup,
                                        rt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
