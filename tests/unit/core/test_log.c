/* Logger: JSON shape, escaping, context ids, level filtering before evaluation. */
#include "test_support.h"
#include <jansson.h>
#include <string.h>
#include <unistd.h>
#include "colony/colony.h"

static int evaluated;
static const char *count_eval(void)
{
    evaluated++;
    return "v";
}

static void json_line_has_fields_and_escapes(void **state)
{
    (void)state;
    colony_log_set_service("orders");
    colony_log_context ctx = {.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
                              .span_id = "00f067aa0ba902b7"};
    colony_log_set_context(&ctx);
    colony_log_field f[] = {COLONY_LF_STR("path", "/a\"b\n\\\x01"), COLONY_LF_INT("n", -5),
                            COLONY_LF_BOOL("ok", 1), COLONY_LF_STR("nothing", NULL)};
    char out[1024];
    size_t n = colony_log_format_json(out, sizeof(out), COLONY_LOG_WARN, "tab\there", f, 4);
    assert_true(n < sizeof(out));
    json_error_t err;
    json_t *j = json_loads(out, 0, &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(j, "service")), "orders");
    assert_string_equal(json_string_value(json_object_get(j, "msg")), "tab\there");
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/a\"b\n\\\x01");
    assert_non_null(strstr(out, "\"/a\\\"b\\n\\\\\\u0001\""));
    assert_int_equal(json_integer_value(json_object_get(j, "n")), -5);
    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_true(json_is_null(json_object_get(j, "nothing")));
    assert_string_equal(json_string_value(json_object_get(j, "trace_id")), ctx.trace_id);
    assert_string_equal(json_string_value(json_object_get(j, "span_id")), ctx.span_id);
    assert_non_null(json_object_get(j, "ts"));
    json_decref(j);
    colony_log_set_context(NULL);
    colony_log_set_service(NULL);
}

static void level_checked_before_arguments(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    colony_log_set_output(fds[1], 0);
    colony_log_set_level(COLONY_LOG_WARN);
    assert_false(colony_log_enabled(COLONY_LOG_DEBUG));
    assert_false(colony_log_enabled(COLONY_LOG_INFO));
    assert_true(colony_log_enabled(COLONY_LOG_WARN));
    assert_true(colony_log_enabled(COLONY_LOG_ERROR));
    evaluated = 0;
    COLONY_LOG_INFO("hidden", COLONY_LF_STR("k", count_eval()));
    assert_int_equal(evaluated, 0);
    COLONY_LOG_ERROR("shown", COLONY_LF_STR("k", count_eval()));
    assert_int_equal(evaluated, 1);
    char buf[4096];
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "\"msg\":\"shown\""));
    assert_null(strstr(buf, "hidden"));
    assert_int_equal(buf[n - 1], '\n');
    colony_log_set_output(2, -1);
    colony_log_set_level(COLONY_LOG_INFO);
    close(fds[0]);
    close(fds[1]);
}

static void level_names_parse(void **state)
{
    (void)state;
    colony_log_level l;
    assert_int_equal(colony_log_level_parse("WARNING", &l), 0);
    assert_int_equal(l, COLONY_LOG_WARN);
    assert_int_equal(colony_log_level_parse("debug", &l), 0);
    assert_int_equal(l, COLONY_LOG_DEBUG);
    assert_int_equal(colony_log_level_parse("loud", &l), COLONY_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_line_has_fields_and_escapes),
        cmocka_unit_test(level_checked_before_arguments),
        cmocka_unit_test(level_names_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
