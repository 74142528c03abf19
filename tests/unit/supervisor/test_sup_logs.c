/* Log file names (PM2's: -<i> per instance unless merge_logs; out_file and
 * error_file relative to the ecosystem file's folder) and log_date_format's
 * moment.js tokens. */
#include "test_support.h"
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "colony/error.h"
#include "supervisor/runtime.h"

static void paths(void **state)
{
    (void)state;
    sup s;
    memset(&s, 0, sizeof(s));
    s.state_dir = "/run/st";
    s.eco.dir = "/srv/app";
    sup_app app;
    memset(&app, 0, sizeof(app));
    app.name = "api";
    app.instances = 1;
    char buf[256];
    assert_int_equal(colony__sup_log_path(&s, &app, 0, 0, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/run/st/logs/api-out.log");
    assert_int_equal(colony__sup_log_path(&s, &app, 0, 1, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/run/st/logs/api-error.log");
    app.instances = 3;
    assert_int_equal(colony__sup_log_path(&s, &app, 2, 0, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/run/st/logs/api-out-2.log");
    app.merge_logs = 1;
    assert_int_equal(colony__sup_log_path(&s, &app, 2, 1, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/run/st/logs/api-error.log");
    app.merge_logs = 0;
    app.out_file = "logs/api.log";
    app.error_file = "/var/log/api-err";
    assert_int_equal(colony__sup_log_path(&s, &app, 1, 0, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/srv/app/logs/api-1.log");
    assert_int_equal(colony__sup_log_path(&s, &app, 1, 1, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/var/log/api-err-1");
    /* Too long for the buffer: refused, not cut. */
    assert_int_equal(colony__sup_log_path(&s, &app, 1, 1, buf, 8), COLONY_EINVAL);
}

static void matches(const char *text, const char *pattern)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, text, 0, NULL, 0);
    regfree(&re);
    if (rc != 0) fail_msg("'%s' does not match %s", text, pattern);
}

static void date_formats(void **state)
{
    (void)state;
    char buf[128];
    colony__sup_format_time(NULL, buf, sizeof(buf));
    matches(buf, "^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$");
    colony__sup_format_time("YYYY-MM-DD HH:mm:ss.SSS Z", buf, sizeof(buf));
    matches(buf, "^20[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} "
                 "[+-][0-9]{2}:[0-9]{2}$");
    colony__sup_format_time("DD/MM/YY ZZ [x]", buf, sizeof(buf));
    matches(buf, "^[0-9]{2}/[0-9]{2}/[0-9]{2} [+-][0-9]{4} \\[x\\]$");
    /* A small buffer is never overrun. */
    size_t n = colony__sup_format_time("YYYY-MM-DD HH:mm:ss", buf, 12);
    assert_true(n < 12);
    assert_int_equal(strlen(buf), n);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Rotation: a line that would pass max_size goes to a fresh file, path.1 ..
 * path.retain keep the newest, older ones are replaced; no file is over
 * max_size and the kept lines are the last ones, whole. */
static void rotation(void **state)
{
    (void)state;
    char dir[] = "/tmp/colony-sup-logs-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char logs[64], path[96], rotated[112];
    snprintf(logs, sizeof(logs), "%s/logs", dir);
    assert_int_equal(mkdir(logs, 0700), 0);
    sup_app app;
    memset(&app, 0, sizeof(app));
    app.name = "a";
    app.log_max_size = 100;
    app.log_retain = 2;
    sup s;
    memset(&s, 0, sizeof(s));
    s.state_dir = dir;
    s.eco.apps = &app;
    s.eco.napps = 1;
    assert_int_equal(colony__sup_logs_init(&s), 0);
    for (int i = 0; i < 20; i++) { /* 30 bytes each: 3 to a file */
        char line[64];
        int n = snprintf(line, sizeof(line), "line %02d 0123456789abcdefghijk\n", i);
        assert_int_equal(n, 30);
        colony__sup_logfile_write(s.combined, line, (size_t)n);
    }
    colony__sup_logs_shutdown(&s);
    snprintf(path, sizeof(path), "%s/colony.log", logs);
    /* 20 lines: files of 3 lines; the current one holds 20 - 18 = 2 (18, 19). */
    assert_int_equal(file_size(path), 60);
    int first[3] = {18, 15, 12};
    for (int k = 0; k <= 2; k++) {
        if (k)
            snprintf(rotated, sizeof(rotated), "%s.%d", path, k);
        else
            snprintf(rotated, sizeof(rotated), "%s", path);
        FILE *f = fopen(rotated, "r");
        assert_non_null(f);
        int got;
        assert_int_equal(fscanf(f, "line %d", &got), 1);
        assert_int_equal(got, first[k]);
        fclose(f);
        assert_true(file_size(rotated) <= 100);
        unlink(rotated);
    }
    snprintf(rotated, sizeof(rotated), "%s.3", path);
    assert_int_equal(file_size(rotated), -1); /* retain 2 */
    rmdir(logs);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(paths),
        cmocka_unit_test(date_formats),
        cmocka_unit_test(rotation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
