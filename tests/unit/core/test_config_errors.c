/* Config values and errors: every type's parsing and bounds, and errors that
 * name the file, line and key (JSON syntax, wrong type, unknown key, range,
 * environment, flags), with the old config kept after a failed load. */
#include "test_support.h"
#include "config_fixture.h"
#include <sys/stat.h>
#include "core/config_internal.h"

typedef struct load_result {
    int rc;
    colony_config_error err;
    char formatted[1024];
} load_result;

/* Loads text as <dir>/default.json into cfg. */
static load_result load_text(colony_config *cfg, const char *dir, const char *text)
{
    load_result r;
    memset(&r, 0, sizeof r);
    fixture_write(dir, "default.json", text);
    colony_config_options o = fixture_options(dir);
    r.rc = colony_config_load(cfg, &o, &r.err);
    colony_config_error_format(&r.err, r.formatted, sizeof r.formatted);
    return r;
}

static void durations_and_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t ms; /* -1: rejected */
    } durations[] = {
        {"250ms", 250},
        {"1.5s", 1500},
        {"2m", 120000},
        {"1h", 3600000},
        {"0", 0},
        {"10", 10},
        {"1.5ms", 1},
        {"0.001s", 1},
        {"2S", 2000},
        {".5s", 500},
        {"9223372036854775807ms", INT64_MAX},
        {"9223372036854775808", -1},
        {"2562047788015216h", -1},
        {"-1s", -1},
        {"5x", -1},
        {"5 s", -1},
        {"s", -1},
        {"", -1},
        {".", -1},
        {"1.2.3s", -1},
        {"1e3ms", -1},
    };
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        int64_t ms = -7;
        int rc = colony_config_parse_duration(durations[i].text, &ms);
        if (durations[i].ms < 0) {
            assert_int_equal(rc, COLONY_EINVAL);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(ms, durations[i].ms);
        }
    }
    static const struct {
        const char *text;
        int64_t bytes;
    } sizes[] = {
        {"512", 512},       {"512b", 512},   {"64kb", 65536}, {"8MB", 8 << 20},
        {"1gb", 1 << 30},   {"1.5kb", 1536}, {"0", 0},        {"8589934592gb", -1},
        {"1tb", -1},        {"-1", -1},      {"1k", -1},      {"kb", -1},
        {"8Gb", 8LL << 30}, {"0.5b", 0},     {"", -1},        {"+5", -1},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int64_t bytes = -7;
        int rc = colony_config_parse_size(sizes[i].text, &bytes);
        if (sizes[i].bytes < 0) {
            assert_int_equal(rc, COLONY_EINVAL);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(bytes, sizes[i].bytes);
        }
    }
    assert_int_equal(colony_config_parse_size(NULL, &(int64_t){0}), COLONY_EINVAL);
}

static void json_values_of_every_type(void **state)
{
    (void)state;
    char dir[64];
    fixture_mkdir(dir, sizeof dir);
    colony_config *cfg = colony_config_new(fixture_table, FIXTURE_N);
    load_result r = load_text(cfg, dir,
                              "{\"http\": {\"port\": 65535, \"host\": \"example.org\",\n"
                              " \"max_body_bytes\": \"64KB\", \"timeout\": 1500},\n"
                              " \"log\": {\"verbose\": true}, \"sampling\": {\"ratio\": 1},\n"
                              " \"name\": \"n\\u00e9\", \"gateway\": {\"rate-limit\": -3}}");
    assert_int_equal(r.rc, 0);
    assert_int_equal(colony_config_get_int(cfg, "http.port"), 65535);
    assert_string_equal(colony_config_get_string(cfg, "http.host"), "example.org");
    assert_int_equal(colony_config_get_int(cfg, "http.max_body_bytes"), 65536);
    assert_int_equal(colony_config_get_int(cfg, "http.timeout"), 1500);
    assert_true(colony_config_get_bool(cfg, "log.verbose"));
    assert_true(colony_config_get_double(cfg, "sampling.ratio") == 1.0);
    assert_string_equal(colony_config_get_string(cfg, "name"), "n\xc3\xa9");
    assert_int_equal(colony_config_get_int(cfg, "gateway.rate-limit"), -3);

    r = load_text(cfg, dir,
                  "{\"http\": {\"max_body_bytes\": 100, \"timeout\": \"2m\"}, \"name\": null}");
    assert_int_equal(r.rc, 0);
    assert_int_equal(colony_config_get_int(cfg, "http.max_body_bytes"), 100);
    assert_int_equal(colony_config_get_int(cfg, "http.timeout"), 120000);
    assert_null(colony_config_get_string(cfg, "name"));

    /* Rejected: each with the reason naming what was expected and what came. */
    static const struct {
        const char *text;
        const char *key;
        const char *reason;
    } bad[] = {
        {"{\"http\": {\"port\": \"80\"}}", "http.port",
         "expected an integer between 1 and 65535, got \"80\""},
        {"{\"http\": {\"port\": 80.0}}", "http.port", "got 80.0"},
        {"{\"http\": {\"port\": 0}}", "http.port", "between 1 and 65535, got 0"},
        {"{\"http\": {\"port\": 65536}}", "http.port", "got 65536"},
        {"{\"http\": {\"host\": 5}}", "http.host", "expected a string, got 5"},
        {"{\"log\": {\"verbose\": \"true\"}}", "log.verbose", "expected true or false"},
        {"{\"log\": {\"verbose\": 1}}", "log.verbose", "got 1"},
        {"{\"sampling\": {\"ratio\": 1.5}}", "sampling.ratio", "between 0 and 1, got 1.5"},
        {"{\"sampling\": {\"ratio\": \"0.5\"}}", "sampling.ratio", "expected a number"},
        {"{\"http\": {\"timeout\": 5}}", "http.timeout", "between 10 and 600000, got 5"},
        {"{\"http\": {\"timeout\": \"11m\"}}", "http.timeout", "got \"11m\""},
        {"{\"http\": {\"timeout\": -20}}", "http.timeout", "got -20"},
        {"{\"http\": {\"timeout\": \"5 minutes\"}}", "http.timeout", "expected a duration"},
        {"{\"http\": {\"max_body_bytes\": -1}}", "http.max_body_bytes", "expected a size"},
        {"{\"http\": {\"max_body_bytes\": \"1pb\"}}", "http.max_body_bytes", "got \"1pb\""},
        {"{\"http\": {\"port\": [1]}}", "http.port", "got an array"},
        {"{\"http\": {\"port\": {\"x\": 1}}}", "http.port", "got an object"},
        {"{\"http\": 5}", "http", "unknown setting"},
        {"{\"http.port\": 1, \"http\": {\"port\": 2}}", "http.port", "set twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = load_text(cfg, dir, bad[i].text);
        assert_int_equal(r.rc, COLONY_EINVAL);
        assert_string_equal(r.err.key, bad[i].key);
        assert_int_equal(r.err.line, 1);
        if (!strstr(r.err.reason, bad[i].reason))
            fail_msg("%s: reason \"%s\" lacks \"%s\"", bad[i].text, r.err.reason, bad[i].reason);
        /* the previous good load is still in effect */
        assert_int_equal(colony_config_get_int(cfg, "http.timeout"), 120000);
    }
    colony_config_free(cfg);
    fixture_rmdir(dir);
}

static void file_errors_name_file_line_and_key(void **state)
{
    (void)state;
    char dir[64], path[128];
    fixture_mkdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/default.json", dir);
    colony_config *cfg = colony_config_new(fixture_table, FIXTURE_N);

    /* Wrong type deep in a multi-line file: the exact message of the docs. */
    load_result r = load_text(cfg, dir,
                              "{\n"
                              "  \"name\": \"svc\",\n"
                              "  \"log\": {\"verbose\": false},\n"
                              "  \"http\": {\n"
                              "    \"host\": \"0.0.0.0\",\n"
                              "    \"timeout\": \"1s\",\n"
                              "    \"port\": \"abc\"\n"
                              "  }\n"
                              "}\n");
    assert_int_equal(r.rc, COLONY_EINVAL);
    char expected[256];
    snprintf(expected, sizeof expected,
             "%s:7: http.port: expected an integer between 1 and 65535, got \"abc\"", path);
    assert_string_equal(r.formatted, expected);
    assert_string_equal(r.err.file, path);

    /* Invalid JSON: jansson's line and text, no key. */
    r = load_text(cfg, dir, "{\n  \"name\": \"svc\",\n  \"http\": {\"port\": 80,}\n}\n");
    assert_int_equal(r.rc, COLONY_EINVAL);
    assert_int_equal(r.err.line, 3);
    assert_string_equal(r.err.key, "");
    assert_true(strlen(r.err.reason) > 0);
    snprintf(expected, sizeof expected, "%s:3: ", path);
    assert_memory_equal(r.formatted, expected, strlen(expected));

    r = load_text(cfg, dir, "{\n\"name\": \"x\"\n");
    assert_int_equal(r.rc, COLONY_EINVAL);
    assert_true(r.err.line >= 2);

    /* Unknown keys, at their own line, inside a known section or not. A key
     * spelled with escapes is still found. */
    r = load_text(cfg, dir, "{\n  \"http\": {\n    \"host\": \"a\",\n    \"prot\": 80\n  }\n}");
    assert_int_equal(r.rc, COLONY_EINVAL);
    assert_string_equal(r.err.key, "http.prot");
    assert_int_equal(r.err.line, 4);
    assert_non_null(strstr(r.err.reason, "unknown"));
    r = load_text(cfg, dir, "{\n\n  \"htp\": {\n    \"port\": 80\n  }\n}");
    assert_string_equal(r.err.key, "htp");
    assert_int_equal(r.err.line, 3);
    r = load_text(cfg, dir,
                  "{\"log\": {\"verbose\": true},\n\"sampling\":\n\n {\"ratio\": 1},\n"
                  "\"ht\\u0074p\": {\"host\": \"h\",\n\n\"port\": 0}}");
    assert_string_equal(r.err.key, "http.port");
    assert_int_equal(r.err.line, 7);

    /* Duplicates are refused by the parser with their line. */
    r = load_text(cfg, dir, "{\"name\": \"a\",\n\"name\": \"b\"}");
    assert_int_equal(r.rc, COLONY_EINVAL);
    assert_int_equal(r.err.line, 2);

    /* The top level must be an object. */
    r = load_text(cfg, dir, "\n\n[1, 2]");
    assert_int_equal(r.rc, COLONY_EINVAL);
    assert_int_equal(r.err.line, 3);

    /* A file we cannot read is an error, not a skipped layer. */
    char sub[128];
    snprintf(sub, sizeof sub, "%s/local.json", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    fixture_write(dir, "default.json", "{}");
    colony_config_options o = fixture_options(dir);
    colony_config_error err;
    assert_int_equal(colony_config_load(cfg, &o, &err), COLONY_EINVAL);
    assert_string_equal(err.file, sub);
    assert_non_null(strstr(err.reason, "cannot read"));
    rmdir(sub);

    assert_int_equal(colony_config_get_int(cfg, "http.port"), 8080); /* nothing applied */
    assert_string_equal(colony_config_source(cfg, "http.port"), "default");
    colony_config_free(cfg);
    fixture_rmdir(dir);
}

static void environment_and_flag_errors(void **state)
{
    (void)state;
    colony_config *cfg = colony_config_new(fixture_table, FIXTURE_N);
    colony_config_options o = fixture_options("/nonexistent");
    colony_config_error err;
    char *good[] = {"--http.port=90"};
    o.argc = 1;
    o.argv = good;
    assert_int_equal(colony_config_load(cfg, &o, &err), 0);

    o.use_environment = 1;
    o.env_prefix = "ERRTEST_";
    static const struct {
        const char *var, *value, *key;
    } bad_env[] = {
        {"ERRTEST_HTTP_PORT", "abc", "http.port"},
        {"ERRTEST_HTTP_PORT", "70000", "http.port"},
        {"ERRTEST_HTTP_PORT", " 80", "http.port"},
        {"ERRTEST_LOG_VERBOSE", "maybe", "log.verbose"},
        {"ERRTEST_SAMPLING_RATIO", "nan", "sampling.ratio"},
        {"ERRTEST_SAMPLING_RATIO", "0.5x", "sampling.ratio"},
        {"ERRTEST_HTTP_TIMEOUT", "1d", "http.timeout"},
        {"ERRTEST_HTTP_MAX_BODY_BYTES", "-5kb", "http.max_body_bytes"},
        {"ERRTEST_GATEWAY_RATE_LIMIT", "99999999999999999999", "gateway.rate-limit"},
    };
    for (size_t i = 0; i < sizeof bad_env / sizeof bad_env[0]; i++) {
        setenv(bad_env[i].var, bad_env[i].value, 1);
        assert_int_equal(colony_config_load(cfg, &o, &err), COLONY_EINVAL);
        unsetenv(bad_env[i].var);
        assert_string_equal(err.file, "environment");
        assert_int_equal(err.line, 0);
        assert_string_equal(err.key, bad_env[i].key);
        assert_non_null(strstr(err.reason, bad_env[i].var));
        assert_int_equal(colony_config_get_int(cfg, "http.port"), 90);
    }
    static const char *ok_bools[] = {"1", "0", "yes", "no", "on", "off", "TRUE", "False"};
    for (size_t i = 0; i < 8; i++) {
        setenv("ERRTEST_LOG_VERBOSE", ok_bools[i], 1);
        assert_int_equal(colony_config_load(cfg, &o, &err), 0);
        assert_int_equal(colony_config_get_bool(cfg, "log.verbose"), (int)(i % 2 == 0));
    }
    unsetenv("ERRTEST_LOG_VERBOSE");
    assert_int_equal(colony_config_load(cfg, &o, &err), 0);

    static const struct {
        char *argv[3];
        int argc;
        const char *key, *reason;
    } bad_flags[] = {
        {{"--nope=1"}, 1, "nope", "unknown flag --nope"},
        {{"--http.port=x"}, 1, "http.port", "--http.port: expected an integer"},
        {{"--http.port"}, 1, "http.port", "needs a value"},
        {{"--http.timeout", "1s", "positional"}, 3, "", "unexpected argument \"positional\""},
        {{"-http.port=1"}, 1, "", "unexpected argument"},
        {{"--"}, 1, "", "unexpected argument"},
        {{"--log.verbose", "maybe"}, 2, "log.verbose", "expected true/false"},
    };
    for (size_t i = 0; i < sizeof bad_flags / sizeof bad_flags[0]; i++) {
        o.argc = bad_flags[i].argc;
        o.argv = (char **)bad_flags[i].argv;
        assert_int_equal(colony_config_load(cfg, &o, &err), COLONY_EINVAL);
        assert_string_equal(err.file, "command line");
        assert_int_equal(err.line, 0);
        assert_string_equal(err.key, bad_flags[i].key);
        if (!strstr(err.reason, bad_flags[i].reason))
            fail_msg("reason \"%s\" lacks \"%s\"", err.reason, bad_flags[i].reason);
        assert_int_equal(colony_config_get_int(cfg, "http.port"), 90);
        assert_string_equal(colony_config_source(cfg, "http.port"), "command line");
    }
    char out[600];
    assert_int_equal(colony_config_load(cfg, &o, &err), COLONY_EINVAL);
    assert_string_equal(colony_config_error_format(&err, out, sizeof out),
                        "command line: log.verbose: --log.verbose: expected true/false, 1/0, "
                        "yes/no or on/off, got \"maybe\"");
    colony_config_free(cfg);
}

/* The scanner alone: nested paths, escapes, strings holding braces. */
static void key_lines(void **state)
{
    (void)state;
    const char *text = "{\"a\": {\"s\": \"}{\\\"\\n\", \"b\":\n[1, {\"c\": 2}\n],\n"
                       "\"c\": {\"d\"\n: 1}}, \"a.x\": 3,\n\"\\ud83d\\ude00\": 1}";
    size_t len = strlen(text);
    assert_int_equal(colony_config_json_line(text, len, "a"), 1);
    assert_int_equal(colony_config_json_line(text, len, "a.b"), 1);
    assert_int_equal(colony_config_json_line(text, len, "a.c"), 4);
    assert_int_equal(colony_config_json_line(text, len, "a.c.d"), 4);
    assert_int_equal(colony_config_json_line(text, len, "a.x"), 5);
    assert_int_equal(colony_config_json_line(text, len, "\xf0\x9f\x98\x80"), 6);
    assert_int_equal(colony_config_json_line(text, len, "a.b.c"), 0);   /* not an index */
    assert_int_equal(colony_config_json_line(text, len, "a.b.1"), 2);   /* array element */
    assert_int_equal(colony_config_json_line(text, len, "a.b.1.c"), 2); /* key inside it */
    assert_int_equal(colony_config_json_line(text, len, "a.b.2"), 0);   /* past the end */
    const char *list = "{\"r\": [\n{\"p\": 1},\n{\"p\": 2,\n \"q\": [[0], [1,\n 5]]}]}";
    assert_int_equal(colony_config_json_line(list, strlen(list), "r.0.p"), 2);
    assert_int_equal(colony_config_json_line(list, strlen(list), "r.1.p"), 3);
    assert_int_equal(colony_config_json_line(list, strlen(list), "r.1.q"), 4);
    assert_int_equal(colony_config_json_line(list, strlen(list), "r.1.q.1.1"), 5);
    assert_int_equal(colony_config_json_line("[}", 2, "1"), 0); /* stray brace: no loop */
    assert_int_equal(colony_config_json_line("[\n7]", 4, "0"), 2);
    assert_int_equal(colony_config_json_line("{\"a\":[}", 7, "a.1"), 0);
    assert_int_equal(colony_config_json_line(text, len, "a.s"), 1);
    assert_int_equal(colony_config_json_line(text, len, "z"), 0);
    assert_int_equal(colony_config_json_line(text, 10, "a.c"), 0); /* cut short: no crash */
    assert_int_equal(colony_config_json_line(NULL, 0, "a"), 0);
    char *guarded = colony_test_guarded_copy(text, len);
    assert_int_equal(colony_config_json_line(guarded, len, "a.c.d"), 4);
    for (size_t cut = 0; cut < len; cut++)
        colony_config_json_line(guarded + len - cut, cut, "a.c.d");
    colony_test_guarded_free(guarded, len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(durations_and_sizes),
        cmocka_unit_test(json_values_of_every_type),
        cmocka_unit_test(file_errors_name_file_line_and_key),
        cmocka_unit_test(environment_and_flag_errors),
        cmocka_unit_test(key_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
