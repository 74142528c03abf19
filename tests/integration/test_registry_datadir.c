/* The registry's data dir: a database that cannot be read whole, lost its
 * data or a table refuses the start (exit 1, naming the file) instead of
 * starting with partial state or an index back at 1; and a second registry on
 * the same dir exits 1 naming the pid that holds it. */
#include <sqlite3.h>
#include "registry/registry.h"
#include "registry_test_util.h"

static void db_path(char *out, size_t size)
{
    snprintf(out, size, "%s/data/registry.db", reg.dir);
}

static void sql(const char *stmt)
{
    char path[400];
    db_path(path, sizeof(path));
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *err = NULL;
    if (sqlite3_exec(db, stmt, NULL, NULL, &err) != SQLITE_OK) fail_msg("%s: %s", stmt, err);
    sqlite3_close(db);
}

/* Runs the registry on reg's data dir expecting it to refuse to start:
 * returns its exit status (bounded: killed after 10 s) with its log in log. */
static int start_refused(char *log, size_t log_size)
{
    char data[300], logpath[320];
    snprintf(data, sizeof(data), "%s/data", reg.dir);
    snprintf(logpath, sizeof(logpath), "%s/refused.log", reg.dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(COLONY_BIN_DIR "/colony", COLONY_BIN_DIR "/colony", "registry", "--listen",
              "127.0.0.1:0", "--data-dir", data, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    uint64_t end = colony_test_now_ms() + 10000;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (colony_test_now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fail_msg("the registry did not refuse to start");
        }
        usleep(10000);
    }
    FILE *f = fopen(logpath, "r");
    assert_non_null(f);
    size_t n = fread(log, 1, log_size - 1, f);
    log[n] = '\0';
    fclose(f);
    return st;
}

static void assert_refused_naming(const char *needle)
{
    char log[8192];
    int st = start_refused(log, sizeof(log));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 1) fail_msg("exit status %d, log:\n%s", st, log);
    if (!strstr(log, needle)) fail_msg("\"%s\" not in the log:\n%s", needle, log);
}

/* One acknowledged write (so registry.index exists), then a graceful stop. */
static void write_and_stop(void)
{
    rt_resp r;
    assert_int_equal(rt_put(reg.port, "/v1/kv/first", "1", &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(WIFEXITED(rt_stop(&reg, SIGTERM)));
}

static void test_random_pages_overwritten_refuse_naming_the_file(void **state)
{
    (void)state;
    /* 50,000 keys in one transaction: a database of a few MB */
    write_and_stop();
    sql("BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000)"
        " INSERT INTO kv SELECT printf('bulk/key-%06d', i), randomblob(60), 0, i + 10, i + 10, 0,"
        " 0 FROM n; COMMIT;");
    char path[400];
    db_path(path, sizeof(path));
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    off_t size = lseek(fd, 0, SEEK_END);
    assert_true(size > 1 << 20);
    /* 8 pages in the middle, overwritten with noise */
    unsigned seed = 7;
    char page[4096];
    for (int p = 0; p < 8; p++) {
        for (size_t i = 0; i < sizeof(page); i++)
            page[i] = (char)rand_r(&seed);
        off_t at = (size / 2 / 4096 + p * 37) * 4096;
        assert_int_equal(pwrite(fd, page, sizeof(page), at), (ssize_t)sizeof(page));
    }
    close(fd);
    assert_refused_naming("registry.db");
}

static void test_empty_file_with_index_ceiling_refuses(void **state)
{
    (void)state;
    write_and_stop();
    char path[400], side[420];
    db_path(path, sizeof(path));
    snprintf(side, sizeof(side), "%s/data/registry.index", reg.dir);
    assert_int_equal(access(side, F_OK), 0);
    assert_int_equal(truncate(path, 0), 0);
    snprintf(side, sizeof(side), "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", path);
    unlink(side);
    assert_refused_naming("registry.index");
    assert_refused_naming("registry.db");
}

static void test_emptied_tables_with_index_ceiling_refuse(void **state)
{
    (void)state;
    write_and_stop();
    sql("DELETE FROM kv; DELETE FROM indexes; DELETE FROM services; DELETE FROM checks;");
    assert_refused_naming("holds no registry data");
}

static void test_dropped_table_refuses(void **state)
{
    (void)state;
    write_and_stop();
    sql("DROP TABLE kv;");
    assert_refused_naming("registry.db has no table \"kv\"");
}

static void test_intact_database_starts_with_its_index(void **state)
{
    (void)state;
    rt_resp r;
    assert_int_equal(rt_put(reg.port, "/v1/kv/a", "1", &r), 0);
    unsigned long long index = r.index;
    rt_stop(&reg, SIGTERM);
    rt_start(&reg, NULL);
    assert_int_equal(rt_get(reg.port, "/v1/kv/a", &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.index, index);
}

static void test_second_registry_on_the_same_dir_exits_naming_the_holder(void **state)
{
    (void)state;
    char pid[32];
    snprintf(pid, sizeof(pid), "pid %ld", (long)reg.pid);
    assert_refused_naming(pid);
    /* the first one is unharmed */
    rt_resp r;
    assert_int_equal(rt_put(reg.port, "/v1/kv/still", "1", &r), 0);
    assert_int_equal(r.status, 200);
}

/* Setup errors return from colony_registry_main (the CLI turns them into the
 * exit code) after releasing what was built: this process goes on, and
 * LeakSanitizer checks nothing was left. */
static void test_main_returns_its_errors(void **state)
{
    (void)state;
    char data[300], arg[320];
    snprintf(data, sizeof(data), "%s/data", reg.dir);
    snprintf(arg, sizeof(arg), "--data-dir=%s", data);
    char *locked[] = {"registry", "--listen=127.0.0.1:0", arg, NULL};
    assert_int_equal(colony_registry_main(3, locked), 1); /* reg holds the lock */
    char *bad_acl[] = {"registry", "--listen=127.0.0.1:0", arg,
                       "--acl-file=/nonexistent/colony-acl.json", NULL};
    assert_int_equal(colony_registry_main(4, bad_acl), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_random_pages_overwritten_refuse_naming_the_file,
                                        rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(test_empty_file_with_index_ceiling_refuses, rt_setup,
                                        rt_teardown),
        cmocka_unit_test_setup_teardown(test_emptied_tables_with_index_ceiling_refuse, rt_setup,
                                        rt_teardown),
        cmocka_unit_test_setup_teardown(test_dropped_table_refuses, rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(test_intact_database_starts_with_its_index, rt_setup,
                                        rt_teardown),
        cmocka_unit_test_setup_teardown(
            test_second_registry_on_the_same_dir_exits_naming_the_holder, rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(test_main_returns_its_errors, rt_setup, rt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
