/* A write is answered 2xx only when all of it is durable, also when its
 * changes land in two group-commit batches and the first one fails: a
 * registration with a check queues the service in one batch (the store was
 * idle) and the check in the next. SQLite errors are injected with a trigger
 * that aborts inserts into one table of the running registry's database. */
#include <sqlite3.h>
#include "registry_test_util.h"

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

/* True when a GET on path gets no answer within ms (the registry holds it). */
static int read_is_held(const char *path, int ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)reg.port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    assert_int_equal(write(fd, req, (size_t)n), n);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int ready = poll(&pfd, 1, ms);
    close(fd);
    return ready == 0;
}

/* A failed batch is not committed: readers are not served it (nor its index)
 * while the disk refuses it, it is retried until it commits, and what readers
 * then see survives kill -9. */
static void test_failed_batch_is_retried_and_never_served_before_durable(void **state)
{
    (void)state;
    rt_resp r;
    assert_int_equal(rt_put(reg.port, "/v1/kv/warmup", "1", &r), 0);
    assert_int_equal(r.status, 200);
    sql("CREATE TRIGGER fail_kv BEFORE INSERT ON kv BEGIN SELECT RAISE(ABORT, 'injected'); END;");
    assert_int_equal(rt_put(reg.port, "/v1/kv/pending", "x", &r), 0);
    assert_int_equal(r.status, 500);
    assert_non_null(strstr(r.body, "commit_failed"));
    assert_true(read_is_held("/v1/kv/pending", 400));
    /* Keys already durable are still served meanwhile. */
    assert_int_equal(rt_get(reg.port, "/v1/kv/warmup", &r), 0);
    assert_int_equal(r.status, 200);
    sql("DROP TRIGGER fail_kv;");

    /* The retry commits it (the client was told 500: the outcome was unknown). */
    assert_int_equal(rt_get(reg.port, "/v1/kv/pending", &r), 0);
    assert_int_equal(r.status, 200);
    unsigned long long seen = r.index;
    assert_true(seen > 0);
    rt_stop(&reg, SIGKILL);
    rt_start(&reg, NULL);
    assert_int_equal(rt_get(reg.port, "/v1/kv/pending", &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.index, seen);
}

/* A per-service index a watcher saw never goes backwards across a crash, also
 * when the batch carrying it failed once. */
static void test_service_index_survives_failed_batch(void **state)
{
    (void)state;
    rt_resp r;
    assert_int_equal(
        rt_put(reg.port, "/v1/agent/service/register", "{\"ID\":\"web-1\",\"Name\":\"web\"}", &r),
        0);
    assert_int_equal(r.status, 200);
    assert_int_equal(rt_get(reg.port, "/v1/health/service/web", &r), 0);
    unsigned long long before = r.index;
    sql("CREATE TRIGGER fail_services BEFORE INSERT ON services"
        " BEGIN SELECT RAISE(ABORT, 'injected'); END;");
    assert_int_equal(
        rt_put(reg.port, "/v1/agent/service/register", "{\"ID\":\"web-2\",\"Name\":\"web\"}", &r),
        0);
    assert_int_equal(r.status, 500);
    sql("DROP TRIGGER fail_services;");
    assert_int_equal(rt_get(reg.port, "/v1/health/service/web", &r), 0);
    unsigned long long seen = r.index;
    assert_true(seen > before);
    assert_non_null(strstr(r.body, "web-2"));
    rt_stop(&reg, SIGKILL);
    rt_start(&reg, NULL);
    assert_int_equal(rt_get(reg.port, "/v1/health/service/web", &r), 0);
    assert_true(r.index >= seen);
    assert_non_null(strstr(r.body, "web-2"));
}

/* A graceful stop while a batch keeps failing ends (it does not retry
 * forever), logs that the change was not saved, and the change is not there
 * after a restart: it was never acknowledged nor served. */
static void test_shutdown_gives_up_a_failing_batch(void **state)
{
    (void)state;
    rt_resp r;
    assert_int_equal(rt_put(reg.port, "/v1/kv/warmup", "1", &r), 0);
    sql("CREATE TRIGGER fail_kv BEFORE INSERT ON kv BEGIN SELECT RAISE(ABORT, 'injected'); END;");
    assert_int_equal(rt_put(reg.port, "/v1/kv/pending", "x", &r), 0);
    assert_int_equal(r.status, 500);
    int st = rt_stop(&reg, SIGTERM);
    assert_true(WIFEXITED(st));
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "grep -q 'changes not saved' '%s'", reg.log);
    assert_int_equal(system(cmd), 0);
    sql("DROP TRIGGER fail_kv;");
    rt_start(&reg, NULL);
    assert_int_equal(rt_get(reg.port, "/v1/kv/pending", &r), 0);
    assert_int_equal(r.status, 404);
    assert_int_equal(rt_get(reg.port, "/v1/kv/warmup", &r), 0);
    assert_int_equal(r.status, 200);
}

/* Readiness follows the store: 503 with a reason while commits fail (a disk
 * that refuses writes), 200 again once a commit succeeds. */
static void test_ready_follows_the_store(void **state)
{
    (void)state;
    rt_resp r;
    assert_int_equal(rt_put(reg.port, "/v1/kv/warmup", "1", &r), 0);
    assert_int_equal(rt_get(reg.port, "/ready", &r), 0);
    assert_int_equal(r.status, 200);
    sql("CREATE TRIGGER fail_kv BEFORE INSERT ON kv BEGIN SELECT RAISE(ABORT, 'injected'); END;");
    assert_int_equal(rt_put(reg.port, "/v1/kv/pending", "x", &r), 0);
    assert_int_equal(r.status, 500);
    assert_int_equal(rt_get(reg.port, "/ready", &r), 0);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "\"store\""));
    assert_non_null(strstr(r.body, "registry.db are failing"));
    assert_int_equal(rt_get(reg.port, "/health", &r), 0);
    assert_int_equal(r.status, 200); /* alive, only not ready */
    sql("DROP TRIGGER fail_kv;");
    int ready = 0;
    uint64_t end = colony_test_now_ms() + 5000;
    while (!ready && colony_test_now_ms() < end) {
        assert_int_equal(rt_get(reg.port, "/ready", &r), 0);
        ready = r.status == 200;
        if (!ready) usleep(20000);
    }
    assert_true(ready);
    assert_int_equal(rt_get(reg.port, "/v1/kv/pending", &r), 0);
    assert_int_equal(r.status, 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_split_write_with_failed_first_batch_is_not_acknowledged, rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(
            test_failed_batch_is_retried_and_never_served_before_durable, rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(test_service_index_survives_failed_batch, rt_setup,
                                        rt_teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_gives_up_a_failing_batch, rt_setup,
                                        rt_teardown),
        cmocka_unit_test_setup_teardown(test_ready_follows_the_store, rt_setup, rt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
