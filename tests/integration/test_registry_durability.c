/* A write is answered 2xx only when all of it is durable, also when its
 * changes land in two group-commit batches and the first one fails: a
 * registration with a check queues the service in one batch (the store was
 * idle) and the check in the next. SQLite errors are injected with a trigger
 * that aborts inserts into one table of the running registry's database. */
#include <sqlite3.h>
#include "registry_test_util.h"

static rt_registry reg;

static int setup(void **state)
{
    (void)state;
    memset(&reg, 0, sizeof(reg));
    rt_start(&reg, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rt_cleanup(&reg);
    return 0;
}

static void sql(const char *stmt)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/data/registry.db", reg.dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *err = NULL;
    int rc = sqlite3_exec(db, stmt, NULL, NULL, &err);
    if (rc != SQLITE_OK) fail_msg("%s: %s", stmt, err ? err : "?");
    sqlite3_close(db);
}

static void test_split_write_with_failed_first_batch_is_not_acknowledged(void **state)
{
    (void)state;
    rt_resp r;
    /* Settle: the store is idle after an acknowledged write. */
    assert_int_equal(rt_put(reg.port, "/v1/kv/warmup", "1", &r), 0);
    assert_int_equal(r.status, 200);
    sql("CREATE TRIGGER fail_services BEFORE INSERT ON services"
        " BEGIN SELECT RAISE(ABORT, 'injected'); END;");
    assert_int_equal(rt_put(reg.port, "/v1/agent/service/register",
                            "{\"ID\":\"web-1\",\"Name\":\"web\","
                            "\"Check\":{\"CheckID\":\"web-ttl\",\"TTL\":\"30s\"}}",
                            &r),
                     0);
    assert_int_equal(r.status, 500); /* the service itself never reached the disk */
    sql("DROP TRIGGER fail_services;");

    /* Writes after the failure are acknowledged again. */
    assert_int_equal(rt_put(reg.port, "/v1/kv/after", "2", &r), 0);
    assert_int_equal(r.status, 200);
    rt_stop(&reg, SIGKILL);
    rt_start(&reg, NULL);
    assert_int_equal(rt_get(reg.port, "/v1/kv/after", &r), 0);
    assert_int_equal(r.status, 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_split_write_with_failed_first_batch_is_not_acknowledged, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
