/* Stream id parsing (src/broker/stream_id.c) as redis-server 7 parses ids:
 * forms, defaults for a missing seq, strict mode, "ms-*", exclusive bounds
 * and their ends, the edges of 64 bits, and formatting.
 * (tests/integration/test_broker_streams.sh compares the replies with
 * redis-server's.) */
#include "test_support.h"
#include <string.h>
#include "colony/error.h"
#include "broker/stream_id.h"

static int parse(const char *s, uint64_t missing, int strict, int *seq_auto, colony__bid *id)
{
    return colony__xid_parse(s, strlen(s), missing, strict, seq_auto, id);
}

static void forms(void **state)
{
    (void)state;
    colony__bid id;
    int autoseq = -1;
    assert_int_equal(parse("12-34", 0, 1, &autoseq, &id), 0);
    assert_true(id.ms == 12 && id.seq == 34 && autoseq == 0);
    assert_int_equal(parse("12", 7, 1, NULL, &id), 0);
    assert_true(id.ms == 12 && id.seq == 7); /* the seq the command gives */
    assert_int_equal(parse("12-*", 0, 1, &autoseq, &id), 0);
    assert_true(id.ms == 12 && id.seq == 0 && autoseq == 1);
    assert_int_equal(parse("12-*", 0, 1, NULL, &id), COLONY_EINVAL); /* only XADD takes it */
    assert_int_equal(parse("-", 0, 0, NULL, &id), 0);
    assert_true(id.ms == 0 && id.seq == 0);
    assert_int_equal(parse("+", 0, 0, NULL, &id), 0);
    assert_true(id.ms == UINT64_MAX && id.seq == UINT64_MAX);
    assert_int_equal(parse("-", 0, 1, NULL, &id), COLONY_EINVAL);
    assert_int_equal(parse("+", 0, 1, NULL, &id), COLONY_EINVAL);
    /* string2ull's strtoull fallback: "+5" and leading zeros pass, as in Redis */
    assert_int_equal(parse("007-+5", 0, 1, NULL, &id), 0);
    assert_true(id.ms == 7 && id.seq == 5);
}

static void invalid(void **state)
{
    (void)state;
    colony__bid id;
    int autoseq;
    const char *bad[] = {"",
                         "x",
                         "1-x",
                         "-1",
                         "1--1",
                         "1-2-3",
                         "*-1",
                         "1-**",
                         "1-",
                         "-1-1",
                         "1.5",
                         "18446744073709551616",
                         "1-18446744073709551616"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse(bad[i], 0, 1, &autoseq, &id), COLONY_EINVAL);
    char longid[200];
    memset(longid, '1', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    assert_int_equal(parse(longid, 0, 1, NULL, &id), COLONY_EINVAL);     /* over 127 bytes */
    assert_int_equal(colony__xid_parse("1\0-2", 4, 9, 1, NULL, &id), 0); /* ends at the NUL */
    assert_true(id.ms == 1 && id.seq == 9);
    assert_int_equal(parse("18446744073709551615-18446744073709551615", 0, 1, NULL, &id), 0);
    assert_true(id.ms == UINT64_MAX && id.seq == UINT64_MAX);
}

static void bounds(void **state)
{
    (void)state;
    colony__bid id;
    assert_int_equal(colony__xid_parse_bound("(5-3", 4, 0, 0, &id), 0);
    assert_true(id.ms == 5 && id.seq == 4);
    assert_int_equal(colony__xid_parse_bound("(5-0", 4, UINT64_MAX, 1, &id), 0);
    assert_true(id.ms == 4 && id.seq == UINT64_MAX);
    assert_int_equal(colony__xid_parse_bound("(5", 2, UINT64_MAX, 1, &id), 0);
    assert_true(id.ms == 5 && id.seq == UINT64_MAX - 1);
    assert_int_equal(colony__xid_parse_bound("5", 1, UINT64_MAX, 1, &id), 0);
    assert_true(id.ms == 5 && id.seq == UINT64_MAX);
    assert_int_equal(colony__xid_parse_bound("(", 1, 0, 0, &id), COLONY_EINVAL);
    assert_int_equal(colony__xid_parse_bound("(-", 2, 0, 0, &id), COLONY_EINVAL);
    assert_int_equal(colony__xid_parse_bound("(0-0", 4, 0, 1, &id), COLONY_ERANGE);
    const char *top = "(18446744073709551615-18446744073709551615";
    assert_int_equal(colony__xid_parse_bound(top, strlen(top), 0, 0, &id), COLONY_ERANGE);
}

static void incr_decr_format(void **state)
{
    (void)state;
    colony__bid id = {1, UINT64_MAX};
    assert_int_equal(colony__xid_incr(&id), 0);
    assert_true(id.ms == 2 && id.seq == 0);
    assert_int_equal(colony__xid_decr(&id), 0);
    assert_true(id.ms == 1 && id.seq == UINT64_MAX);
    colony__bid zero = {0, 0};
    assert_int_equal(colony__xid_decr(&zero), COLONY_ERANGE);
    char text[COLONY__XID_MAX_TEXT];
    colony__bid max = {UINT64_MAX, UINT64_MAX};
    assert_int_equal(colony__xid_format(max, text), 41);
    assert_string_equal(text, "18446744073709551615-18446744073709551615");
    assert_int_equal(colony__xid_format((colony__bid){1526919030474, 55}, text), 16);
    assert_string_equal(text, "1526919030474-55");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(forms),
        cmocka_unit_test(invalid),
        cmocka_unit_test(bounds),
        cmocka_unit_test(incr_decr_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
