/* colony registry: deleted KV keys (tombstones) are forgotten after
 * kv.tombstone-ttl, in memory and on disk, without any key or prefix index
 * going backwards, also across a restart. */
#include "registry_test_util.h"

static const char *const short_ttl[] = {"--kv.tombstone-ttl=300ms", NULL};

static int setup(void **state)
{
    (void)state;
    memset(&reg, 0, sizeof(reg));
    rt_start(&reg, short_ttl);
    return 0;
}

/* Value of a metric without labels from /metrics, -1 if absent. */
static long metric(const char *name)
{
    rt_resp r;
    if (rt_get(reg.port, "/metrics", &r) != 0) return -1;
    char needle[128];
    snprintf(needle, sizeof(needle), "\n%s ", name);
    const char *p = strstr(r.body, needle);
    return p ? strtol(p + strlen(needle), NULL, 10) : -1;
}

static unsigned long long index_of(const char *path, int expect_status)
{
    rt_resp r;
    assert_int_equal(rt_get(reg.port, path, &r), 0);
    assert_int_equal(r.status, expect_status);
    assert_true(r.index > 0);
    return r.index;
}

static void test_tombstones_reaped_indexes_monotonic(void **state)
{
    (void)state;
    rt_resp r;
    char path[64];
    for (int i = 0; i < 50; i++) {
        snprintf(path, sizeof(path), "/v1/kv/cfg/k%d", i);
        assert_int_equal(rt_put(reg.port, path, "v", &r), 0);
        assert_int_equal(r.status, 200);
    }
    assert_int_equal(rt_put(reg.port, "/v1/kv/other/x", "v", &r), 0);
    unsigned long long other_before = index_of("/v1/kv/other/?recurse", 200);
    for (int i = 0; i < 49; i++) { /* k49 stays */
        snprintf(path, sizeof(path), "/v1/kv/cfg/k%d", i);
        assert_int_equal(rt_http(reg.port, "DELETE", path, NULL, 0, NULL, &r), 0);
        assert_int_equal(r.status, 200);
    }
    unsigned long long deleted_at = r.index;
    assert_true(index_of("/v1/kv/cfg/?recurse", 200) >= deleted_at);
    assert_true(metric("colony_registry_kv_tombstones") >= 0);

    /* reaped within a few reaper rounds */
    uint64_t end = colony_test_now_ms() + 10000;
    while (metric("colony_registry_kv_tombstones") != 0 && colony_test_now_ms() < end)
        usleep(50000);
    assert_int_equal(metric("colony_registry_kv_tombstones"), 0);
    assert_int_equal(metric("colony_registry_kv_keys"), 2);

    /* no index went backwards: the prefix, a deleted key (404), an unrelated prefix */
    assert_true(index_of("/v1/kv/cfg/?recurse", 200) >= deleted_at);
    assert_true(index_of("/v1/kv/cfg/k3", 404) >= deleted_at);
    assert_true(index_of("/v1/kv/other/?recurse", 200) >= other_before);
    assert_true(index_of("/v1/kv/cfg/k49", 200) > 0);

    /* a blocking query with the current index waits (not woken by the reaping) */
    unsigned long long now = index_of("/v1/kv/cfg/?recurse", 200);
    snprintf(path, sizeof(path), "/v1/kv/cfg/?recurse&index=%llu&wait=300ms", now);
    assert_int_equal(index_of(path, 200), now);

    /* gone from disk too, and still monotonic after a crash and restart */
    rt_stop(&reg, SIGKILL);
    rt_start(&reg, short_ttl);
    assert_int_equal(metric("colony_registry_kv_tombstones"), 0);
    assert_int_equal(metric("colony_registry_kv_keys"), 2);
    assert_true(index_of("/v1/kv/cfg/?recurse", 200) >= now);
    assert_true(index_of("/v1/kv/cfg/k3", 404) >= deleted_at);
    assert_int_equal(rt_get(reg.port, "/v1/kv/cfg/k49?raw", &r), 0);
    assert_string_equal(r.body, "v");

    /* a key can be created again after its tombstone is gone */
    assert_int_equal(rt_put(reg.port, "/v1/kv/cfg/k3?cas=0", "again", &r), 0);
    assert_string_equal(r.body, "true");
    assert_true(r.index > now);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tombstones_reaped_indexes_monotonic, setup,
                                        rt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
