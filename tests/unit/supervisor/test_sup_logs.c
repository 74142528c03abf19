/* Log file names (PM2's: -<i> per instance unless merge_logs; out_file and
 * error_file relative to the ecosystem file's folder) and log_date_format's
 * moment.js tokens. */
#include "test_support.h"
#include <regex.h>
#include <string.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(paths),
        cmocka_unit_test(date_formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
