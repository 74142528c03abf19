/* The RESP2 request parser (src/broker/resp/parse.c): multibulk and inline
 * commands, fed whole, split at every byte and one byte at a time, each
 * prefix in a buffer that ends at an inaccessible page; the limits; and the
 * protocol errors with redis-server's exact text (checked against
 * redis-server 7.0 by tests/integration/test_broker_resp.sh). */
#include "test_support.h"
#include <stdio.h>
#include <string.h>
#include <uv.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "broker/resp/resp.h"

static colony__resp_limits limits = {.max_bulk = 1024, .max_args = 100};

/* Feeds in[0..len) as growing prefixes: every prefix shorter than `used`
 * must be incomplete, then the whole input gives the result. Returns it;
 * the parser keeps the command's arguments (valid while `keep` lives). */
static long feed(colony__resp_parser *p, const char *in, size_t len, size_t step, char **keep,
                 size_t *keep_len)
{
    long rc = 0;
    for (size_t n = step; n < len; n += step) {
        char *g = colony_test_guarded_copy(in, n);
        rc = colony__resp_parse(p, g, n);
        if (rc != 0) { /* completed early or failed: the caller checks */
            *keep = g;
            *keep_len = n;
            return rc;
        }
        colony_test_guarded_free(g, n);
    }
    *keep = colony_test_guarded_copy(in, len);
    *keep_len = len;
    return colony__resp_parse(p, *keep, len);
}

/* Parses `in` whole, then split at every byte, then byte by byte; each way
 * must use `used` bytes and give the arguments in want (NULL-terminated,
 * lengths from want_len or strlen). */
static void expect_cmd(const char *in, size_t len, long used, const char *const *want,
                       const size_t *want_len)
{
    for (size_t step = len; step >= 1; step = step > 1 ? step / 2 : 0) {
        colony__resp_parser p;
        colony__resp_parser_init(&p, &limits);
        char *keep = NULL;
        size_t keep_len = 0;
        long rc = feed(&p, in, len, step, &keep, &keep_len);
        assert_int_equal(rc, used);
        size_t n = 0;
        while (want[n])
            n++;
        assert_int_equal(p.nargs, n);
        for (size_t i = 0; i < n; i++) {
            size_t wl = want_len ? want_len[i] : strlen(want[i]);
            assert_int_equal(p.args[i].len, wl);
            assert_memory_equal(p.args[i].ptr, want[i], wl);
        }
        colony__resp_parser_next(&p);
        colony__resp_parser_free(&p);
        colony_test_guarded_free(keep, keep_len);
        if (step == 1) break;
    }
}

static void expect_error_step(const char *in, size_t len, const char *text, int unauth, size_t step)
{
    colony__resp_parser p;
    colony__resp_parser_init(&p, &limits);
    p.unauthenticated = unauth;
    char *keep = NULL;
    size_t keep_len = 0;
    long rc = feed(&p, in, len, step, &keep, &keep_len);
    if (rc != COLONY_EPROTO) print_message("input %.*s\n", (int)(len > 40 ? 40 : len), in);
    assert_int_equal(rc, COLONY_EPROTO);
    assert_string_equal(p.error, text);
    colony__resp_parser_free(&p);
    if (keep) colony_test_guarded_free(keep, keep_len);
}

static void expect_error(const char *in, size_t len, const char *text, int unauth)
{
    expect_error_step(in, len, text, unauth, 1);
}

#define S(lit) lit, sizeof(lit) - 1

static void multibulk_commands(void **state)
{
    (void)state;
    expect_cmd(S("*1\r\n$4\r\nPING\r\n"), 14, (const char *[]){"PING", NULL}, NULL);
    expect_cmd(S("*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$0\r\n\r\n"), 31,
               (const char *[]){"PUBLISH", "ch", "", NULL}, NULL);
    /* binary data: CR, LF and NUL inside a bulk string */
    expect_cmd(S("*2\r\n$4\r\nECHO\r\n$5\r\na\r\n\0b\r\n"), 25,
               (const char *[]){"ECHO", "a\r\n\0b", NULL}, (const size_t[]){4, 5});
    /* Redis skips the two bytes after a bulk string without looking at them */
    expect_cmd(S("*1\r\n$4\r\nPINGxx"), 14, (const char *[]){"PING", NULL}, NULL);
    /* *0 and *-1 are empty commands (skipped by the caller) */
    expect_cmd(S("*0\r\n"), 4, (const char *[]){NULL}, NULL);
    expect_cmd(S("*-1\r\n"), 5, (const char *[]){NULL}, NULL);
    /* only the first command of a pipeline is used */
    expect_cmd(S("*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n"), 14, (const char *[]){"PING", NULL},
               NULL);
}

static void inline_commands(void **state)
{
    (void)state;
    expect_cmd(S("PING\r\n"), 6, (const char *[]){"PING", NULL}, NULL);
    expect_cmd(S("ping\n"), 5, (const char *[]){"ping", NULL}, NULL);
    expect_cmd(S("  ping   hi  \r\n"), 15, (const char *[]){"ping", "hi", NULL}, NULL);
    expect_cmd(S("\r\n"), 2, (const char *[]){NULL}, NULL);
    expect_cmd(S("echo \"\\x41\\n\\t\\q\"\r\n"), 19, (const char *[]){"echo", "A\n\tq", NULL},
               NULL);
    expect_cmd(S("echo \"\\xzz\"\r\n"), 13, (const char *[]){"echo", "xzz", NULL}, NULL);
    expect_cmd(S("echo 'a\\'b' \"\" ''\r\n"), 19, (const char *[]){"echo", "a'b", "", "", NULL},
               NULL);
    /* a quote inside a word opens a quoted part of the same word */
    expect_cmd(S("set a\"b c\"\r\n"), 12, (const char *[]){"set", "ab c", NULL}, NULL);
    expect_cmd(S("PING a\\x\r\n"), 10, (const char *[]){"PING", "a\\x", NULL}, NULL);
    /* "$4" is an inline command, not a bulk string */
    expect_cmd(S("$4\r\n"), 4, (const char *[]){"$4", NULL}, NULL);
}

static void inline_nul_hides_newline(void **state)
{
    (void)state;
    /* Redis looks for the newline with strchr: a NUL before it hides it */
    colony__resp_parser p;
    colony__resp_parser_init(&p, &limits);
    assert_int_equal(colony__resp_parse(&p, "foo\0bar\r\n", 9), 0);
    /* and so does one at the start of a bulk header, which Redis reads with
     * strchr too: it waits instead of saying "expected '$'" */
    colony__resp_parser_next(&p);
    assert_int_equal(colony__resp_parse(&p, "*1\r\n\0\r\n", 7), 0);
    colony__resp_parser_free(&p);
}

static void protocol_errors(void **state)
{
    (void)state;
    expect_error(S("*x\r\n"), "Protocol error: invalid multibulk length", 0);
    expect_error(S("*101\r\n"), "Protocol error: invalid multibulk length", 0);
    expect_error(S("*01\r\n"), "Protocol error: invalid multibulk length", 0);
    expect_error(S("*1\r\nx\r\n"), "Protocol error: expected '$', got 'x'", 0);
    expect_error(S("*1\r\n$-1\r\n"), "Protocol error: invalid bulk length", 0);
    expect_error(S("*1\r\n$x\r\n"), "Protocol error: invalid bulk length", 0);
    expect_error(S("*1\r\n$1025\r\n"), "Protocol error: invalid bulk length", 0);
    expect_error(S("*1\r\n$+4\r\n"), "Protocol error: invalid bulk length", 0);
    expect_error(S("PING \"a\r\n"), "Protocol error: unbalanced quotes in request", 0);
    expect_error(S("PING 'a\r\n"), "Protocol error: unbalanced quotes in request", 0);
    expect_error(S("PING \"a\"b\r\n"), "Protocol error: unbalanced quotes in request", 0);
    expect_error(S("*11\r\n"), "Protocol error: unauthenticated multibulk length", 1);
    limits.max_bulk = 1 << 20;
    expect_error(S("*1\r\n$16385\r\n"), "Protocol error: unauthenticated bulk length", 1);
    limits.max_bulk = 1024;
}

static void limits_apply(void **state)
{
    (void)state;
    /* at the limits: accepted */
    char big[1100 + 64];
    int h = snprintf(big, sizeof(big), "*1\r\n$1024\r\n");
    memset(big + h, 'x', 1024);
    memcpy(big + h + 1024, "\r\n", 2);
    colony__resp_parser p;
    colony__resp_parser_init(&p, &limits);
    assert_int_equal(colony__resp_parse(&p, big, (size_t)h + 1026), h + 1026);
    assert_int_equal(p.args[0].len, 1024);
    colony__resp_parser_next(&p);
    assert_int_equal(colony__resp_parse(&p, "*100\r\n", 6), 0);
    colony__resp_parser_free(&p);
    /* lines without their CR: Redis gives up after 64 KiB */
    size_t n = COLONY__RESP_INLINE_MAX + 8;
    char *line = colony__malloc(n);
    assert_non_null(line);
    memset(line, 'x', n);
    expect_error_step(line, n, "Protocol error: too big inline request", 0, 4096);
    memset(line, '1', n);
    line[0] = '*';
    expect_error_step(line, n, "Protocol error: too big mbulk count string", 0, 4096);
    memcpy(line, "*1\r\n$", 5);
    expect_error_step(line, n, "Protocol error: too big bulk count string", 0, 4096);
    colony__free(line);
}

/* A 60 KiB line arriving a byte at a time: each call resumes the search for
 * its end (rescanning would be 1.8 G byte compares, seconds; this is 60 K). */
static void slow_lines_are_scanned_once(void **state)
{
    (void)state;
    size_t n = 60 * 1024;
    char *line = colony__malloc(n + 2);
    assert_non_null(line);
    memset(line, 'x', n);
    memcpy(line + n, "\r\n", 2);
    for (int kind = 0; kind < 2; kind++) {
        if (kind == 1) memcpy(line, "*1\r\n$", 5); /* a bulk header line */
        colony__resp_parser p;
        colony__resp_parser_init(&p, &limits);
        uint64_t t0 = uv_hrtime();
        long rc = 0;
        for (size_t k = 1; k <= n + 2 && rc == 0; k++)
            rc = colony__resp_parse(&p, line, k);
        uint64_t ms = (uv_hrtime() - t0) / 1000000;
        if (kind == 0) {
            assert_int_equal(rc, (long)n + 2);
        } else {
            assert_int_equal(rc, COLONY_EPROTO); /* x is not a digit */
            assert_string_equal(p.error, "Protocol error: invalid bulk length");
        }
        assert_true(ms < 500);
        colony__resp_parser_free(&p);
    }
    colony__free(line);
}

static void string2ll_is_strict(void **state)
{
    (void)state;
    long long v;
    assert_true(colony__resp_parse_ll("0", 1, &v) && v == 0);
    assert_true(colony__resp_parse_ll("-12", 3, &v) && v == -12);
    assert_true(colony__resp_parse_ll("9223372036854775807", 19, &v) && v == LLONG_MAX);
    assert_true(colony__resp_parse_ll("-9223372036854775808", 20, &v) && v == LLONG_MIN);
    assert_false(colony__resp_parse_ll("9223372036854775808", 19, &v));
    assert_false(colony__resp_parse_ll("", 0, &v));
    assert_false(colony__resp_parse_ll("-0", 2, &v));
    assert_false(colony__resp_parse_ll("01", 2, &v));
    assert_false(colony__resp_parse_ll("+1", 2, &v));
    assert_false(colony__resp_parse_ll(" 1", 2, &v));
    assert_false(colony__resp_parse_ll("-", 1, &v));
}

static void allocation_failures_are_reported(void **state)
{
    (void)state;
    static const char in[] = "*9\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n$1\r\ne\r\n"
                             "$1\r\nf\r\n$1\r\ng\r\n$1\r\nh\r\n$1\r\ni\r\n";
    int failed = 0;
    for (long k = 0; k < 10; k++) {
        colony__resp_parser p;
        colony__resp_parser_init(&p, &limits);
        colony__alloc_fail_after(k);
        long rc = colony__resp_parse(&p, in, sizeof(in) - 1);
        colony__alloc_fail_reset();
        if (rc == COLONY_ENOMEM)
            failed++;
        else
            assert_int_equal(rc, (long)sizeof(in) - 1);
        colony__resp_parser_free(&p);
    }
    assert_true(failed > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(multibulk_commands),
        cmocka_unit_test(inline_commands),
        cmocka_unit_test(inline_nul_hides_newline),
        cmocka_unit_test(protocol_errors),
        cmocka_unit_test(limits_apply),
        cmocka_unit_test(slow_lines_are_scanned_once),
        cmocka_unit_test(string2ll_is_strict),
        cmocka_unit_test(allocation_failures_are_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
