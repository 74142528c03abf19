/* colony registry KV over HTTP: put/get/delete, recurse, keys with
 * separator, raw, flags, CAS (including N racing writers), 404 with an index,
 * the 512 KB limit, durability across kill -9 and index monotonicity across
 * restarts. */
#include <jansson.h>
#include "registry_test_util.h"

static void test_put_get_delete(void **state)
{
    (void)state;
    rt_resp r;
    assert_int_equal(rt_get(reg.port, "/v1/kv/app/missing", &r), 0);
    assert_int_equal(r.status, 404);
    assert_true(r.index > 0);
    assert_int_equal(rt_put(reg.port, "/v1/kv/app/config/db?flags=42", "postgres://x", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "true");
    unsigned long long put_index = r.index;
    assert_int_equal(rt_get(reg.port, "/v1/kv/app/config/db", &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.index, put_index);
    json_t *j = json_loads(r.body, 0, NULL);
    json_t *e = json_array_get(j, 0);
    assert_string_equal(json_string_value(json_object_get(e, "Key")), "app/config/db");
    assert_string_equal(json_string_value(json_object_get(e, "Value")), "cG9zdGdyZXM6Ly94");
    assert_int_equal(json_integer_value(json_object_get(e, "Flags")), 42);
    assert_int_equal(json_integer_value(json_object_get(e, "ModifyIndex")), (json_int_t)put_index);
    assert_int_equal(json_integer_value(json_object_get(e, "LockIndex")), 0);
    json_decref(j);
    assert_int_equal(rt_get(reg.port, "/v1/kv/app/config/db?raw", &r), 0);
    assert_string_equal(r.body, "postgres://x");

    assert_int_equal(rt_put(reg.port, "/v1/kv/app/config/cache", "redis", &r), 0);
    assert_int_equal(rt_put(reg.port, "/v1/kv/app/name", "shop", &r), 0);
    assert_int_equal(rt_put(reg.port, "/v1/kv/other", "x", &r), 0);
    assert_int_equal(rt_get(reg.port, "/v1/kv/app/?recurse", &r), 0);
    j = json_loads(r.body, 0, NULL);
    assert_int_equal(json_array_size(j), 3);
    json_decref(j);
    assert_int_equal(rt_get(reg.port, "/v1/kv/app/?keys&separator=/", &r), 0);
    assert_string_equal(r.body, "[\"app/config/\",\"app/name\"]");
    assert_int_equal(rt_get(reg.port, "/v1/kv/?keys", &r), 0);
    assert_string_equal(r.body, "[\"app/config/cache\",\"app/config/db\",\"app/name\",\"other\"]");

    assert_int_equal(rt_http(reg.port, "DELETE", "/v1/kv/app/name", NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(rt_get(reg.port, "/v1/kv/app/name", &r), 0);
    assert_int_equal(r.status, 404);
    unsigned long long deleted_at = r.index;
    assert_true(deleted_at > put_index); /* a tombstone keeps the index moving forward */
    assert_int_equal(rt_http(reg.port, "DELETE", "/v1/kv/app?recurse", NULL, 0, NULL, &r), 0);
    assert_int_equal(rt_get(reg.port, "/v1/kv/app?recurse", &r), 0);
    assert_int_equal(r.status, 404);
    assert_true(r.index > deleted_at);
    assert_int_equal(rt_get(reg.port, "/v1/kv/other", &r), 0);
    assert_int_equal(r.status, 200);
}

static void test_limits_and_errors(void **state)
{
    (void)state;
    rt_resp r;
    size_t big = 512 * 1024 + 1;
    char *value = malloc(big);
    memset(value, 'v', big);
    assert_int_equal(rt_http(reg.port, "PUT", "/v1/kv/big", value, big, NULL, &r), 0);
    assert_int_equal(r.status, 413);
    assert_int_equal(rt_http(reg.port, "PUT", "/v1/kv/big", value, big - 1, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    free(value);
    assert_int_equal(rt_put(reg.port, "/v1/kv/x?cas=abc", "1", &r), 0);
    assert_int_equal(r.status, 400);
    assert_int_equal(rt_put(reg.port, "/v1/kv/", "1", &r), 0);
    assert_int_equal(r.status, 400);
    assert_int_equal(rt_put(reg.port, "/v1/kv/x?acquire=abc", "1", &r), 0);
    assert_int_equal(r.status, 400);
}

static void test_cas(void **state)
{
    (void)state;
    rt_resp r;
    assert_int_equal(rt_put(reg.port, "/v1/kv/lock?cas=0", "a", &r), 0);
    assert_string_equal(r.body, "true");
    unsigned long long idx = r.index;
    assert_int_equal(rt_put(reg.port, "/v1/kv/lock?cas=0", "b", &r), 0);
    assert_string_equal(r.body, "false");
    char path[64];
    snprintf(path, sizeof(path), "/v1/kv/lock?cas=%llu", idx + 1000);
    assert_int_equal(rt_put(reg.port, path, "c", &r), 0);
    assert_string_equal(r.body, "false");
    snprintf(path, sizeof(path), "/v1/kv/lock?cas=%llu", idx);
    assert_int_equal(rt_put(reg.port, path, "d", &r), 0);
    assert_string_equal(r.body, "true");
    assert_int_equal(rt_http(reg.port, "DELETE", path, NULL, 0, NULL, &r), 0);
    assert_string_equal(r.body, "false"); /* modified since idx */
}

typedef struct racer {
    int port;
    char path[64];
    int won;
} racer;

static void *race(void *arg)
{
    racer *x = arg;
    rt_resp *r = malloc(sizeof(*r));
    if (rt_put(x->port, x->path, "mine", r) == 0 && r->status == 200)
        x->won = strcmp(r->body, "true") == 0;
    free(r);
    return NULL;
}

static void test_cas_race(void **state)
{
    (void)state;
    rt_resp r;
    assert_int_equal(rt_put(reg.port, "/v1/kv/leader", "none", &r), 0);
    unsigned long long idx = r.index;
    for (int round = 0; round < 5; round++) {
        enum { N = 16 };
        racer racers[N];
        pthread_t th[N];
        for (int i = 0; i < N; i++) {
            racers[i] = (racer){.port = reg.port};
            snprintf(racers[i].path, sizeof(racers[i].path), "/v1/kv/leader?cas=%llu", idx);
            pthread_create(&th[i], NULL, race, &racers[i]);
        }
        int winners = 0;
        for (int i = 0; i < N; i++) {
            pthread_join(th[i], NULL);
            winners += racers[i].won;
        }
        assert_int_equal(winners, 1);
        assert_int_equal(rt_get(reg.port, "/v1/kv/leader", &r), 0);
        assert_true(r.index > idx);
        idx = r.index;
    }
}

static void test_durable_across_kill9(void **state)
{
    (void)state;
    rt_resp r;
    char path[64];
    for (int i = 0; i < 50; i++) {
        snprintf(path, sizeof(path), "/v1/kv/durable/k%02d", i);
        assert_int_equal(rt_put(reg.port, path, "acknowledged", &r), 0);
        assert_int_equal(r.status, 200);
    }
    assert_int_equal(rt_put(reg.port, "/v1/agent/service/register",
                            "{\"Name\":\"api\",\"Port\":9000,\"Check\":{\"TTL\":\"1h\","
                            "\"Status\":\"passing\"}}",
                            &r),
                     0);
    assert_int_equal(r.status, 200);
    unsigned long long last = r.index;
    rt_stop(&reg, SIGKILL);
    rt_start(&reg, NULL);
    assert_int_equal(rt_get(reg.port, "/v1/kv/durable/?keys", &r), 0);
    json_t *keys = json_loads(r.body, 0, NULL);
    assert_int_equal(json_array_size(keys), 50);
    json_decref(keys);
    assert_true(r.index > 0);
    assert_int_equal(rt_get(reg.port, "/v1/health/service/api?passing", &r), 0);
    assert_non_null(strstr(r.body, "\"Port\":9000"));
    assert_true(r.index >= last);
    /* new writes continue after the stored maximum */
    assert_int_equal(rt_put(reg.port, "/v1/kv/after-restart", "1", &r), 0);
    assert_true(r.index > last);
    last = r.index;
    rt_stop(&reg, SIGTERM);
    rt_start(&reg, NULL);
    assert_int_equal(rt_get(reg.port, "/v1/kv/after-restart", &r), 0);
    assert_int_equal(r.index, last);
    assert_int_equal(rt_put(reg.port, "/v1/kv/again", "1", &r), 0);
    assert_true(r.index > last);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_delete, rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(test_limits_and_errors, rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(test_cas, rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(test_cas_race, rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(test_durable_across_kill9, rt_setup, rt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
