/* The RESP2 reply writer (src/broker/resp/reply.c): every type byte for byte,
 * CR/LF in error texts turned into spaces as Redis does, and a full buffer
 * left unchanged. */
#include "test_support.h"
#include <limits.h>
#include <string.h>
#include "colony/error.h"
#include "broker/resp/resp.h"

static void every_type(void **state)
{
    (void)state;
    colony_buf b;
    colony_buf_init(&b, 4096);
    assert_int_equal(colony__resp_simple(&b, "OK"), 0);
    assert_int_equal(colony__resp_error(&b, "ERR bad"), 0);
    assert_int_equal(colony__resp_int(&b, -42), 0);
    assert_int_equal(colony__resp_int(&b, 0), 0);
    assert_int_equal(colony__resp_int(&b, LLONG_MIN), 0);
    assert_int_equal(colony__resp_int(&b, LLONG_MAX), 0);
    assert_int_equal(colony__resp_bulk(&b, "a\r\n\0b", 5), 0);
    assert_int_equal(colony__resp_bulk_str(&b, ""), 0);
    assert_int_equal(colony__resp_null_bulk(&b), 0);
    assert_int_equal(colony__resp_array(&b, 2), 0);
    assert_int_equal(colony__resp_array(&b, 0), 0);
    assert_int_equal(colony__resp_null_array(&b), 0);
    static const char want[] = "+OK\r\n-ERR bad\r\n:-42\r\n:0\r\n:-9223372036854775808\r\n"
                               ":9223372036854775807\r\n$5\r\na\r\n\0b\r\n$0\r\n\r\n"
                               "$-1\r\n*2\r\n*0\r\n*-1\r\n";
    assert_int_equal(b.len, sizeof(want) - 1);
    assert_memory_equal(b.data, want, sizeof(want) - 1);
    colony_buf_free(&b);
}

static void error_text_has_no_newlines(void **state)
{
    (void)state;
    colony_buf b;
    colony_buf_init(&b, 4096);
    assert_int_equal(colony__resp_errorf(&b, "ERR unknown command '%s'", "a\r\nb"), 0);
    assert_string_equal(b.data, "-ERR unknown command 'a  b'\r\n");
    colony_buf_free(&b);
}

static void full_buffer_is_unchanged(void **state)
{
    (void)state;
    colony_buf b;
    colony_buf_init(&b, 16);
    assert_int_equal(colony__resp_simple(&b, "PONG"), 0);
    assert_int_equal(colony__resp_bulk(&b, "0123456789", 10), COLONY_E2BIG);
    assert_int_equal(colony__resp_error(&b, "ERR 0123456789"), COLONY_E2BIG);
    assert_int_equal(b.len, 7);
    assert_string_equal(b.data, "+PONG\r\n");
    colony_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_type),
        cmocka_unit_test(error_text_has_no_newlines),
        cmocka_unit_test(full_buffer_is_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
