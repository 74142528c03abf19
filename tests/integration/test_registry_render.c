/* colony registry: /v1/health/service and /v1/catalog/service answers come from
 * a per-name index and a cache of rendered bodies. These tests check that
 * every change a body shows reaches it (status, output-only TTL notes, tags,
 * deregistration, renames), that variants (passing, tags) do not share a
 * cached body, that several ?tag= must all match, and that the index is
 * rebuilt after a restart. */
#include <jansson.h>
#include "registry_test_util.h"

static json_t *get_json(const char *path)
{
    rt_resp r;
    assert_int_equal(rt_get(reg.port, path, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = json_loads(r.body, 0, NULL);
    assert_non_null(j);
    return j;
}

static void put_ok(const char *path, const char *body)
{
    rt_resp r;
    assert_int_equal(rt_put(reg.port, path, body, &r), 0);
    assert_int_equal(r.status, 200);
}

/* IDs of the entries of a health (Service.ID) or catalog (ServiceID) answer, comma-joined. */
static void ids_of(const char *path, char *out, size_t size)
{
    json_t *arr = get_json(path);
    size_t i, k = 0;
    json_t *e;
    out[0] = '\0';
    json_array_foreach(arr, i, e)
    {
        json_t *id = json_object_get(e, "ServiceID");
        if (!id) id = json_object_get(json_object_get(e, "Service"), "ID");
        k += (size_t)snprintf(out + k, size - k, "%s%s", i ? "," : "", json_string_value(id));
    }
    json_decref(arr);
}

/* Output of the check_index-th check of the first health entry. */
static char *first_check_output(const char *path, size_t check_index)
{
    json_t *arr = get_json(path);
    json_t *chk = json_array_get(json_object_get(json_array_get(arr, 0), "Checks"), check_index);
    char *out = strdup(json_string_value(json_object_get(chk, "Output")));
    json_decref(arr);
    return out;
}

static void register_three(void)
{
    put_ok("/v1/agent/service/register",
           "{\"Name\":\"api\",\"ID\":\"api-1\",\"Port\":1,\"Tags\":[\"v1\",\"blue\"],"
           "\"Check\":{\"TTL\":\"60s\",\"Status\":\"passing\"}}");
    put_ok("/v1/agent/service/register",
           "{\"Name\":\"api\",\"ID\":\"api-2\",\"Port\":2,\"Tags\":[\"v1\",\"green\"],"
           "\"Check\":{\"TTL\":\"60s\",\"Status\":\"passing\"}}");
    put_ok("/v1/agent/service/register",
           "{\"Name\":\"api\",\"ID\":\"api-3\",\"Port\":3,\"Tags\":[\"v2\",\"blue\"],"
           "\"Check\":{\"TTL\":\"60s\",\"Status\":\"passing\"}}");
    put_ok("/v1/agent/service/register",
           "{\"Name\":\"other\",\"ID\":\"other-1\",\"Port\":4,\"Tags\":[\"v1\"],"
           "\"Check\":{\"TTL\":\"60s\",\"Status\":\"passing\"}}");
}

static void test_changes_reach_cached_answers(void **state)
{
    (void)state;
    char ids[256];
    register_three();
    /* warm every variant, then change things and read again */
    ids_of("/v1/health/service/api?passing", ids, sizeof(ids));
    assert_string_equal(ids, "api-1,api-2,api-3");
    ids_of("/v1/catalog/service/api", ids, sizeof(ids));
    assert_string_equal(ids, "api-1,api-2,api-3");

    put_ok("/v1/agent/check/fail/service:api-2?note=down", "");
    ids_of("/v1/health/service/api?passing", ids, sizeof(ids));
    assert_string_equal(ids, "api-1,api-3");
    ids_of("/v1/health/service/api", ids, sizeof(ids));
    assert_string_equal(ids, "api-1,api-2,api-3");

    /* output-only change: no index move, but the body shows it */
    put_ok("/v1/agent/check/pass/service:api-1?note=first", "");
    char *out = first_check_output("/v1/health/service/api", 1);
    assert_string_equal(out, "first");
    free(out);
    put_ok("/v1/agent/check/pass/service:api-1?note=second", "");
    out = first_check_output("/v1/health/service/api", 1);
    assert_string_equal(out, "second");
    free(out);

    /* re-registration with new tags and port */
    put_ok("/v1/agent/service/register",
           "{\"Name\":\"api\",\"ID\":\"api-1\",\"Port\":11,\"Tags\":[\"v3\"]}");
    json_t *cat = get_json("/v1/catalog/service/api");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(cat, 0), "ServicePort")),
                     11);
    json_decref(cat);
    ids_of("/v1/catalog/service/api?tag=v3", ids, sizeof(ids));
    assert_string_equal(ids, "api-1");
    json_t *health = get_json("/v1/health/service/api?tag=v3");
    json_t *checks = json_object_get(json_array_get(health, 0), "Checks");
    json_t *tags = json_object_get(json_array_get(checks, 1), "ServiceTags");
    assert_string_equal(json_string_value(json_array_get(tags, 0)), "v3");
    json_decref(health);

    /* rename: api-3 moves to "other" */
    put_ok("/v1/agent/service/register", "{\"Name\":\"other\",\"ID\":\"api-3\",\"Port\":3}");
    ids_of("/v1/catalog/service/api", ids, sizeof(ids));
    assert_string_equal(ids, "api-1,api-2");
    ids_of("/v1/catalog/service/other", ids, sizeof(ids));
    assert_string_equal(ids, "api-3,other-1");

    /* deregistration and an unknown name */
    put_ok("/v1/agent/service/deregister/api-1", "");
    ids_of("/v1/health/service/api", ids, sizeof(ids));
    assert_string_equal(ids, "api-2");
    ids_of("/v1/health/service/nothing?passing", ids, sizeof(ids));
    assert_string_equal(ids, "");
}

static void test_several_tags_all_match(void **state)
{
    (void)state;
    char ids[256];
    register_three();
    ids_of("/v1/catalog/service/api?tag=v1", ids, sizeof(ids));
    assert_string_equal(ids, "api-1,api-2");
    ids_of("/v1/catalog/service/api?tag=v1&tag=blue", ids, sizeof(ids));
    assert_string_equal(ids, "api-1");
    ids_of("/v1/catalog/service/api?tag=blue&tag=v1", ids, sizeof(ids));
    assert_string_equal(ids, "api-1");
    ids_of("/v1/health/service/api?tag=blue&passing&tag=v2", ids, sizeof(ids));
    assert_string_equal(ids, "api-3");
    ids_of("/v1/health/service/api?tag=blue&tag=green", ids, sizeof(ids));
    assert_string_equal(ids, "");
    /* percent-encoded values, and a tag with the separator the cache key uses */
    put_ok("/v1/agent/service/register",
           "{\"Name\":\"api\",\"ID\":\"api-4\",\"Port\":4,\"Tags\":[\"a b\",\"x|1:y\"]}");
    ids_of("/v1/catalog/service/api?tag=a%20b", ids, sizeof(ids));
    assert_string_equal(ids, "api-4");
    ids_of("/v1/catalog/service/api?tag=a+b&tag=x%7C1%3Ay", ids, sizeof(ids));
    assert_string_equal(ids, "api-4");
    ids_of("/v1/catalog/service/api?tag=x&tag=y", ids, sizeof(ids));
    assert_string_equal(ids, "");
}

static void test_checks_sorted_and_restart(void **state)
{
    (void)state;
    put_ok("/v1/agent/service/register",
           "{\"Name\":\"db\",\"ID\":\"db-1\",\"Port\":5432,"
           "\"Checks\":[{\"CheckID\":\"zeta\",\"TTL\":\"60s\",\"Status\":\"passing\"},"
           "{\"CheckID\":\"alpha\",\"TTL\":\"60s\",\"Status\":\"passing\"}]}");
    put_ok("/v1/agent/service/register",
           "{\"Name\":\"db\",\"ID\":\"db-0\",\"Port\":5433,"
           "\"Check\":{\"CheckID\":\"mid\",\"TTL\":\"60s\",\"Status\":\"passing\"}}");
    rt_resp before;
    assert_int_equal(rt_get(reg.port, "/v1/health/service/db", &before), 0);
    json_t *arr = json_loads(before.body, 0, NULL);
    assert_int_equal(json_array_size(arr), 2);
    json_t *db1 = json_object_get(json_array_get(arr, 1), "Checks");
    assert_int_equal(json_array_size(db1), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(db1, 0), "CheckID")),
                        "serfHealth");
    assert_string_equal(json_string_value(json_object_get(json_array_get(db1, 1), "CheckID")),
                        "alpha");
    assert_string_equal(json_string_value(json_object_get(json_array_get(db1, 2), "CheckID")),
                        "zeta");
    json_decref(arr);

    rt_stop(&reg, SIGKILL);
    rt_start(&reg, NULL);
    rt_resp after;
    assert_int_equal(rt_get(reg.port, "/v1/health/service/db", &after), 0);
    assert_int_equal(after.status, 200);
    assert_true(after.index >= before.index);
    assert_string_equal(after.body, before.body);
    put_ok("/v1/agent/check/fail/mid", "");
    char ids[64];
    ids_of("/v1/health/service/db?passing", ids, sizeof(ids));
    assert_string_equal(ids, "db-1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_changes_reach_cached_answers, rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(test_several_tags_all_match, rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(test_checks_sorted_and_restart, rt_setup, rt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
