/* Config layering: defaults < default.json < <env>.json < local.json <
 * environment < flags, value sources, flags in both forms, help output. */
#include "test_support.h"
#include "config_fixture.h"
#include "core/alloc.h"
#include "core/config_internal.h"

static colony_config *new_fixture(void)
{
    colony_config *cfg = colony_config_new(fixture_table, FIXTURE_N);
    assert_non_null(cfg);
    return cfg;
}

static void defaults_are_parsed(void **state)
{
    (void)state;
    colony_config *cfg = new_fixture();
    assert_int_equal(colony_config_get_int(cfg, "http.port"), 8080);
    assert_string_equal(colony_config_get_string(cfg, "http.host"), "127.0.0.1");
    assert_int_equal(colony_config_get_int(cfg, "http.max_body_bytes"), 1024 * 1024);
    assert_int_equal(colony_config_get_int(cfg, "http.timeout"), 5000);
    assert_false(colony_config_get_bool(cfg, "log.verbose"));
    assert_true(colony_config_get_double(cfg, "sampling.ratio") == 0.5);
    assert_null(colony_config_get_string(cfg, "name"));
    assert_string_equal(colony_config_source(cfg, "http.port"), "default");
    /* Wrong type or unknown key: a programming error, answered with 0/NULL. */
    assert_null(colony_config_get_string(cfg, "http.port"));
    assert_int_equal(colony_config_get_int(cfg, "http.host"), 0);
    assert_int_equal(colony_config_get_int(cfg, "nope"), 0);
    assert_false(colony_config_get_bool(cfg, "http.port"));
    assert_true(colony_config_get_double(cfg, "http.port") == 0);
    assert_null(colony_config_source(cfg, "nope"));
    colony_config_free(cfg);
}

static void files_override_in_order(void **state)
{
    (void)state;
    char dir[64];
    fixture_mkdir(dir, sizeof dir);
    fixture_write(dir, "default.json",
                  "{\"http\": {\"port\": 1000, \"host\": \"0.0.0.0\"}, \"name\": \"a\"}");
    fixture_write(dir, "development.json", "{\"http\": {\"port\": 2000}, \"name\": \"b\"}");
    fixture_write(dir, "staging.json", "{\"http\": {\"port\": 2500}}");
    fixture_write(dir, "local.json", "{\"http\": {\"port\": 3000}}");
    colony_config *cfg = new_fixture();
    colony_config_options o = fixture_options(dir);
    colony_config_error err;
    assert_int_equal(colony_config_load(cfg, &o, &err), 0);
    char path[128];
    assert_int_equal(colony_config_get_int(cfg, "http.port"), 3000);
    snprintf(path, sizeof path, "%s/local.json", dir);
    assert_string_equal(colony_config_source(cfg, "http.port"), path);
    assert_string_equal(colony_config_get_string(cfg, "name"), "b");
    snprintf(path, sizeof path, "%s/development.json", dir);
    assert_string_equal(colony_config_source(cfg, "name"), path);
    assert_string_equal(colony_config_get_string(cfg, "http.host"), "0.0.0.0");
    snprintf(path, sizeof path, "%s/default.json", dir);
    assert_string_equal(colony_config_source(cfg, "http.host"), path);
    assert_string_equal(colony_config_source(cfg, "http.timeout"), "default");

    /* Without local.json the environment's file wins; the name comes from
     * $COLONY_ENV when the options leave it out. */
    char local[128];
    snprintf(local, sizeof local, "%s/local.json", dir);
    unlink(local);
    setenv("COLONY_ENV", "staging", 1);
    o.env = NULL;
    assert_int_equal(colony_config_load(cfg, &o, &err), 0);
    assert_int_equal(colony_config_get_int(cfg, "http.port"), 2500);
    assert_string_equal(colony_config_get_string(cfg, "name"), "a");
    unsetenv("COLONY_ENV");
    assert_int_equal(colony_config_load(cfg, &o, &err), 0);
    assert_int_equal(colony_config_get_int(cfg, "http.port"), 2000);

    /* A folder with no files at all leaves the defaults. */
    o.dir = "/nonexistent/colony-config";
    assert_int_equal(colony_config_load(cfg, &o, &err), 0);
    assert_int_equal(colony_config_get_int(cfg, "http.port"), 8080);
    colony_config_free(cfg);
    fixture_rmdir(dir);
}

static void environment_overrides_files(void **state)
{
    (void)state;
    char dir[64];
    fixture_mkdir(dir, sizeof dir);
    fixture_write(dir, "local.json", "{\"http\": {\"port\": 3000}}");
    colony_config *cfg = new_fixture();
    colony_config_options o = fixture_options(dir);
    colony_config_error err;
    setenv("TESTCFG_HTTP_PORT", "4000", 1);
    setenv("TESTCFG_GATEWAY_RATE_LIMIT", "7", 1);
    setenv("TESTCFG_LOG_VERBOSE", "yes", 1);
    setenv("COLONY_HTTP_PORT", "4100", 1);

    o.use_environment = 0; /* ignored unless asked for */
    assert_int_equal(colony_config_load(cfg, &o, &err), 0);
    assert_int_equal(colony_config_get_int(cfg, "http.port"), 3000);

    o.use_environment = 1;
    o.env_prefix = "TESTCFG_";
    assert_int_equal(colony_config_load(cfg, &o, &err), 0);
    assert_int_equal(colony_config_get_int(cfg, "http.port"), 4000);
    assert_int_equal(colony_config_get_int(cfg, "gateway.rate-limit"), 7);
    assert_true(colony_config_get_bool(cfg, "log.verbose"));
    assert_string_equal(colony_config_source(cfg, "http.port"), "environment");

    o.env_prefix = NULL; /* COLONY_ by default */
    assert_int_equal(colony_config_load(cfg, &o, &err), 0);
    assert_int_equal(colony_config_get_int(cfg, "http.port"), 4100);
    assert_int_equal(colony_config_get_int(cfg, "gateway.rate-limit"), 100);

    unsetenv("TESTCFG_HTTP_PORT");
    unsetenv("TESTCFG_GATEWAY_RATE_LIMIT");
    unsetenv("TESTCFG_LOG_VERBOSE");
    unsetenv("COLONY_HTTP_PORT");
    colony_config_free(cfg);
    fixture_rmdir(dir);
}

static void flags_override_everything(void **state)
{
    (void)state;
    colony_config *cfg = new_fixture();
    colony_config_options o = fixture_options("/nonexistent");
    colony_config_error err;
    setenv("COLONY_HTTP_PORT", "4100", 1);
    o.use_environment = 1;
    char *argv[] = {"--http.port=5000", "--http.host",    "::1",  "--log.verbose",
                    "--name=",          "--http.timeout", "250ms"};
    o.argc = 7;
    o.argv = argv;
    assert_int_equal(colony_config_load(cfg, &o, &err), 0);
    assert_int_equal(colony_config_get_int(cfg, "http.port"), 5000);
    assert_string_equal(colony_config_get_string(cfg, "http.host"), "::1");
    assert_true(colony_config_get_bool(cfg, "log.verbose"));
    assert_string_equal(colony_config_get_string(cfg, "name"), "");
    assert_int_equal(colony_config_get_int(cfg, "http.timeout"), 250);
    assert_string_equal(colony_config_source(cfg, "http.port"), "command line");

    /* A bool flag followed by a value takes it; alone at the end it is true. */
    char *argv2[] = {"--log.verbose", "off", "--sampling.ratio", "0.25"};
    o.argc = 4;
    o.argv = argv2;
    assert_int_equal(colony_config_load(cfg, &o, &err), 0);
    assert_false(colony_config_get_bool(cfg, "log.verbose"));
    assert_true(colony_config_get_double(cfg, "sampling.ratio") == 0.25);
    assert_int_equal(colony_config_get_int(cfg, "http.port"), 4100);
    unsetenv("COLONY_HTTP_PORT");
    colony_config_free(cfg);
}

static void help_lists_every_setting(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    colony_config_print_help(fixture_table, FIXTURE_N, f);
    fclose(f);
    assert_non_null(strstr(text, "  --http.port=<int>  "));
    assert_non_null(strstr(text, "TCP port to listen on (default: 8080)\n"));
    assert_non_null(strstr(text, "  --http.timeout=<duration>"));
    assert_non_null(strstr(text, "request timeout (default: 5s) [reloadable]\n"));
    assert_non_null(strstr(text, "instance name (default: none) [reloadable]\n"));
    int lines = 0;
    for (char *p = text; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, FIXTURE_N);
    free(text);
    colony_config_print_help(NULL, 3, stdout); /* ignored, no crash */
}

static void bad_tables_and_null_arguments(void **state)
{
    (void)state;
    static const colony_config_setting bad_default[] = {{"a", COLONY_CONFIG_INT, "x", 0, "", 0, 0}};
    static const colony_config_setting out_of_bounds[] = {
        {"a", COLONY_CONFIG_INT, "0", 0, "", 1, 10}};
    static const colony_config_setting dup[] = {{"a", COLONY_CONFIG_INT, "1", 0, "", 0, 0},
                                                {"a", COLONY_CONFIG_INT, "1", 0, "", 0, 0}};
    static const colony_config_setting bad_key[] = {{"a..b", COLONY_CONFIG_INT, "1", 0, "", 0, 0}};
    static const colony_config_setting no_default[] = {{"a", COLONY_CONFIG_INT, NULL, 0, "", 0, 0}};
    assert_null(colony_config_new(bad_default, 1));
    assert_null(colony_config_new(out_of_bounds, 1));
    assert_null(colony_config_new(dup, 2));
    assert_null(colony_config_new(bad_key, 1));
    assert_null(colony_config_new(no_default, 1));
    assert_null(colony_config_new(NULL, 1));
    colony_config *empty = colony_config_new(NULL, 0);
    assert_non_null(empty);
    colony_config_free(empty);
    colony_config_free(NULL);
    colony_config_error err;
    assert_int_equal(colony_config_load(NULL, NULL, &err), COLONY_EINVAL);
    assert_null(colony_config_get_string(NULL, "x"));
    assert_int_equal(colony_config_get_int(NULL, NULL), 0);
    assert_null(colony_config_source(NULL, "x"));
    assert_int_equal(colony_config_reload(NULL, NULL, NULL, NULL), COLONY_EINVAL);
    colony_config *cfg = new_fixture();
    assert_null(colony_config_get_string(cfg, NULL));
    assert_int_equal(colony_config_reload(cfg, &err, NULL, NULL), COLONY_EINVAL); /* not loaded */
    colony_config_options o = fixture_options("/nonexistent");
    assert_int_equal(colony_config_load(cfg, &o, NULL), 0); /* err may be NULL */
    colony_config_free(cfg);
    char out[8];
    assert_string_equal(colony_config_error_format(NULL, out, sizeof out), "unknown");
}

/* Fails the Nth allocation for every N until the load succeeds: each failure
 * must return an error, leak nothing and leave the config as it was. */
static void allocation_failures_leave_config_unchanged(void **state)
{
    (void)state;
    char dir[64];
    fixture_mkdir(dir, sizeof dir);
    fixture_write(dir, "default.json", "{\"http\": {\"port\": 1000, \"timeout\": \"2s\"}}");
    fixture_write(dir, "local.json", "{\"name\": \"local\", \"log\": {\"verbose\": true}}");
    setenv("ALLOCTEST_HTTP_HOST", "10.0.0.1", 1);
    char *argv[] = {"--sampling.ratio=0.75", "--gateway.rate-limit", "9"};
    colony_config_options o = fixture_options(dir);
    o.use_environment = 1;
    o.env_prefix = "ALLOCTEST_";
    o.argc = 3;
    o.argv = argv;
    colony_config *cfg = new_fixture();
    int done = 0;
    for (long n = 0; n < 10000 && !done; n++) {
        colony_config_error err;
        colony__alloc_fail_after(n);
        int rc = colony_config_load(cfg, &o, &err);
        colony__alloc_fail_reset();
        if (rc == 0) {
            done = 1;
            assert_true(n > 5);
            break;
        }
        assert_int_equal(rc, COLONY_ENOMEM);
        assert_true(colony__alloc_failures() > 0);
        assert_int_equal(colony_config_get_int(cfg, "http.port"), 8080);
        assert_null(colony_config_get_string(cfg, "name"));
        assert_string_equal(colony_config_get_string(cfg, "http.host"), "127.0.0.1");
        assert_string_equal(colony_config_source(cfg, "http.port"), "default");
    }
    assert_true(done);
    assert_int_equal(colony_config_get_int(cfg, "http.port"), 1000);
    assert_int_equal(colony_config_get_int(cfg, "http.timeout"), 2000);
    assert_string_equal(colony_config_get_string(cfg, "name"), "local");
    assert_string_equal(colony_config_get_string(cfg, "http.host"), "10.0.0.1");
    assert_int_equal(colony_config_get_int(cfg, "gateway.rate-limit"), 9);
    colony_config_free(cfg);

    /* colony_config_new under the same torture. */
    for (long n = 0; n < 1000; n++) {
        colony__alloc_fail_after(n);
        colony_config *c = colony_config_new(fixture_table, FIXTURE_N);
        colony__alloc_fail_reset();
        if (c) {
            colony_config_free(c);
            break;
        }
    }
    unsetenv("ALLOCTEST_HTTP_HOST");
    fixture_rmdir(dir);
}

static void load_buffer_names_the_source(void **state)
{
    (void)state;
    colony_config *cfg = new_fixture();
    colony_config_error err;
    const char *text = "{\"http.port\": 81, \"http\": {\"host\": \"h\"}}";
    assert_int_equal(colony__config_load_buffer(cfg, "mem.json", text, strlen(text), &err), 0);
    assert_int_equal(colony_config_get_int(cfg, "http.port"), 81); /* flat dotted keys work */
    assert_string_equal(colony_config_source(cfg, "http.host"), "mem.json");
    assert_int_equal(colony_config_reload(cfg, &err, NULL, NULL), COLONY_EINVAL);
    assert_int_equal(colony__config_load_buffer(cfg, "mem.json", NULL, 0, &err), COLONY_EINVAL);
    assert_int_equal(colony_config_get_int(cfg, "http.port"), 81);
    colony_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_parsed),
        cmocka_unit_test(files_override_in_order),
        cmocka_unit_test(environment_overrides_files),
        cmocka_unit_test(flags_override_everything),
        cmocka_unit_test(help_lists_every_setting),
        cmocka_unit_test(bad_tables_and_null_arguments),
        cmocka_unit_test(allocation_failures_leave_config_unchanged),
        cmocka_unit_test(load_buffer_names_the_source),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
