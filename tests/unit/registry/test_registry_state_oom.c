/* Out of memory in a registry state change: the change is refused
 * (COLONY_ENOMEM, the API answers 500) and memory is left as it was, never
 * changed in memory while its durable op could not be queued. Every
 * allocation of each change is failed in turn against a real store. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "registry/registry_internal.h"
#include "registry/store.h"
#include "registry/waiters.h"
#include "registry/names.h"
#include "registry/parse.h"
#include "registry_state_fixture.h"
#include "test_support.h"

static uv_loop_t loop;
static registry reg;
static char dir[64];

static void drain(void)
{
    reg_fixture_drain(&reg, &loop);
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    reg_fixture_open(&reg, &loop, dir, "oom");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    drain();
    reg_fixture_close(&reg);
    colony_test_loop_close(&loop);
    reg_fixture_remove_dir(dir);
    return 0;
}

/* Fails allocation n, n+1, ... of attempt() until it succeeds; every failed
 * attempt must change nothing: no index taken, no op queued. */
#define EACH_ALLOCATION_FAILURE(attempt, unchanged)                                                \
    do {                                                                                           \
        int done_ = 0;                                                                             \
        for (long n = 0; n < 500 && !done_; n++) {                                                 \
            uint64_t index_before = reg.index;                                                     \
            colony__alloc_fail_after(n);                                                           \
            int rc_ = (attempt);                                                                   \
            long failures_ = colony__alloc_failures();                                             \
            colony__alloc_fail_reset();                                                            \
            if (rc_ >= 0 && failures_ == 0) {                                                      \
                done_ = 1;                                                                         \
                break;                                                                             \
            }                                                                                      \
            if (rc_ >= 0) {                                                                        \
                /* Only best-effort allocations failed (a kept check output): still whole */       \
                done_ = 1;                                                                         \
                break;                                                                             \
            }                                                                                      \
            assert_int_equal(rc_, COLONY_ENOMEM);                                                  \
            assert_int_equal(reg.index, index_before);                                             \
            assert_true(colony__reg_store_idle(reg.store));                                        \
            assert_true(unchanged);                                                                \
        }                                                                                          \
        assert_true(done_);                                                                        \
        assert_false(colony__reg_store_idle(reg.store));                                           \
        drain();                                                                                   \
    } while (0)

static void test_kv_write_and_delete(void **state)
{
    (void)state;
    EACH_ALLOCATION_FAILURE(colony__reg_kv_write(&reg, "app/a", "v1", 2, 0),
                            colony__reg_kv_find(&reg, "app/a") == NULL);
    assert_int_equal(colony__reg_kv_write(&reg, "app/b", "v2", 2, 0), 0);
    drain();
    /* An update keeps the old value when it fails. */
    EACH_ALLOCATION_FAILURE(colony__reg_kv_write(&reg, "app/a", "new", 3, 0),
                            colony__reg_kv_find(&reg, "app/a")->len == 2);
    uint64_t before = reg.index;
    EACH_ALLOCATION_FAILURE(colony__reg_kv_delete(&reg, "app/", 1),
                            !colony__reg_kv_find(&reg, "app/a")->deleted &&
                                !colony__reg_kv_find(&reg, "app/b")->deleted);
    assert_int_equal(reg.index, before + 1); /* one index for the whole tree */
    assert_true(colony__reg_kv_find(&reg, "app/a")->deleted);
    assert_true(colony__reg_kv_find(&reg, "app/b")->deleted);
}

static reg_service *parse(const char *text)
{
    json_t *doc = json_loads(text, 0, NULL);
    reg_service *svc = NULL;
    reg_check **checks = NULL;
    char msg[256];
    assert_int_equal(colony__reg_parse_service(doc, &svc, &checks, msg, sizeof(msg)), 0);
    assert_null(checks[0]);
    colony__free(checks);
    json_decref(doc);
    return svc;
}

static int service_put_attempt(const char *text, long n)
{
    reg_service *svc = parse(text); /* allocations here must not fail */
    colony__alloc_fail_after(n);
    return colony__reg_service_put(&reg, svc);
}

static void test_service_put_and_remove(void **state)
{
    (void)state;
    const char *web = "{\"ID\":\"web-1\",\"Name\":\"web\",\"Port\":80}";
    int done = 0;
    for (long n = 0; n < 500 && !done; n++) {
        uint64_t index_before = reg.index;
        int rc = service_put_attempt(web, n);
        long failures = colony__alloc_failures();
        colony__alloc_fail_reset();
        if (rc == 0) {
            assert_int_equal(failures, 0);
            done = 1;
            break;
        }
        assert_int_equal(rc, COLONY_ENOMEM);
        assert_int_equal(reg.index, index_before);
        assert_null(colony__map_get(&reg.services, "web-1"));
        assert_true(colony__reg_store_idle(reg.store));
    }
    assert_true(done);
    drain();
    EACH_ALLOCATION_FAILURE(colony__reg_service_remove(&reg, "web-1"),
                            colony__map_get(&reg.services, "web-1") != NULL);
    assert_null(colony__map_get(&reg.services, "web-1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kv_write_and_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_put_and_remove, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
