/* The store's start and its index ceiling.
 * Loading under allocation failures: each allocation of
 * the load is failed once (a transient failure, as a real out-of-memory is);
 * the load either brings back everything or fails with COLONY_ENOMEM, never
 * returns 0 with a service or key missing (a stored row skipped because jansson
 * ran out of memory parsing it used to be taken for an unreadable row). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

#define NSERVICES 3
#define NKEYS     4

static uv_loop_t loop;
static char dir[64];

static void on_committed(registry *r, int err, uint64_t index, const colony__list *ops)
{
    (void)ops;
    if (!err && index > r->committed) r->committed = index;
}

static void open_registry(registry *reg)
{
    memset(reg, 0, sizeof(*reg));
    reg->loop = &loop;
    colony__reg_waiters_init(reg);
    char msg[512];
    assert_int_equal(colony__reg_store_open(&reg->store, &loop, dir, msg, sizeof(msg)), 0);
    colony__reg_store_set_callback(reg->store, reg, on_committed);
}

static void close_registry(registry *reg)
{
    reg_fixture_drain(reg, &loop);
    reg_fixture_close(reg);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void populate(void)
{
    registry reg;
    open_registry(&reg);
    reg.index = reg.committed = 1;
    for (int i = 0; i < NSERVICES; i++) {
        char text[128];
        snprintf(text, sizeof(text), "{\"ID\":\"web-%d\",\"Name\":\"web\",\"Port\":%d}", i,
                 8000 + i);
        json_t *doc = json_loads(text, 0, NULL);
        reg_service *svc = NULL;
        reg_check **checks = NULL;
        char msg[256];
        assert_int_equal(colony__reg_parse_service(doc, &svc, &checks, msg, sizeof(msg)), 0);
        colony__free(checks);
        json_decref(doc);
        assert_int_equal(colony__reg_service_put(&reg, svc), 0);
    }
    for (int i = 0; i < NKEYS; i++) {
        char key[32];
        snprintf(key, sizeof(key), "app/k%d", i);
        assert_int_equal(colony__reg_kv_write(&reg, key, "v", 1, 0), 0);
    }
    close_registry(&reg);
}

static void test_load_is_whole_or_fails(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    snprintf(dir, sizeof(dir), "/tmp/colony-load-XXXXXX");
    assert_non_null(mkdtemp(dir));
    populate();
    int whole = 0, failed = 0;
    for (long n = 0; n < 2000 && !whole; n++) {
        registry reg;
        open_registry(&reg);
        char msg[512] = "";
        colony__alloc_fail_once_after(n);
        int rc = colony__reg_store_load(reg.store, &reg, msg, sizeof(msg));
        long injected = colony__alloc_failures();
        colony__alloc_fail_reset();
        if (rc == 0) {
            assert_int_equal(reg.services.count, NSERVICES);
            assert_int_equal(reg.nkv, NKEYS);
            whole = injected == 0;
        } else {
            assert_int_equal(rc, COLONY_ENOMEM);
            assert_non_null(strstr(msg, "registry.db"));
            failed++;
        }
        close_registry(&reg);
    }
    assert_true(whole);
    assert_true(failed > 0);
    colony_test_loop_close(&loop);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
}

/* The index ceiling is written before the first batch that passes it: when it
 * cannot be, the batch does not commit (nothing acknowledged, the store
 * reports failing) and commits once it can; registry.index then holds a
 * number above every committed index. */
static void test_commit_waits_for_the_index_ceiling(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    snprintf(dir, sizeof(dir), "/tmp/colony-ceiling-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char blocker[128], ceiling[128];
    snprintf(blocker, sizeof(blocker), "%s/registry.index.tmp", dir);
    snprintf(ceiling, sizeof(ceiling), "%s/registry.index", dir);
    assert_int_equal(mkdir(blocker, 0755), 0); /* the temp file cannot be created */
    registry reg;
    open_registry(&reg);
    reg.index = reg.committed = 1;
    assert_int_equal(colony__reg_kv_write(&reg, "app/a", "v", 1, 0), 0);
    for (int i = 0; i < 1000 && !colony__reg_store_failing(reg.store); i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(colony__reg_store_failing(reg.store));
    assert_int_equal(reg.committed, 1);
    assert_int_equal(access(ceiling, F_OK), -1);
    assert_int_equal(rmdir(blocker), 0);
    for (int i = 0; i < 10000 && !colony__reg_store_idle(reg.store); i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_false(colony__reg_store_failing(reg.store));
    assert_int_equal(reg.committed, reg.index);
    FILE *f = fopen(ceiling, "r");
    assert_non_null(f);
    unsigned long long value = 0;
    assert_int_equal(fscanf(f, "%llu", &value), 1);
    fclose(f);
    assert_true(value > reg.index);
    close_registry(&reg);
    colony_test_loop_close(&loop);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_is_whole_or_fails),
        cmocka_unit_test(test_commit_waits_for_the_index_ceiling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
