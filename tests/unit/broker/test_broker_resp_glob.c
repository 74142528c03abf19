/* The glob matcher of PSUBSCRIBE and PUBSUB CHANNELS (src/broker/glob.c),
 * a port of Redis's stringmatchlen: its syntax, binary names, and a bound
 * on abusive patterns. (tests/integration/test_broker_resp.sh compares it
 * with redis-server on 43 patterns.) */
#include "test_support.h"
#include <string.h>
#include <uv.h>
#include "broker/pubsub.h"

static int m(const char *p, const char *s)
{
    return colony__broker_glob_match(p, strlen(p), s, strlen(s));
}

static void syntax(void **state)
{
    (void)state;
    assert_false(m("*", "")); /* as in Redis: the loop needs a byte to start */
    assert_true(m("", ""));
    assert_true(m("*", "anything"));
    assert_true(m("news.*", "news.sport"));
    assert_false(m("news.*", "news"));
    assert_true(m("h?llo", "hello"));
    assert_false(m("h?llo", "hllo"));
    assert_true(m("h[ae]llo", "hallo"));
    assert_false(m("h[ae]llo", "hillo"));
    assert_true(m("h[^e]llo", "hallo"));
    assert_false(m("h[^e]llo", "hello"));
    assert_true(m("h[a-b]llo", "hbllo"));
    assert_true(m("h[b-a]llo", "hbllo")); /* bounds in either order */
    assert_true(m("\\*", "*"));
    assert_false(m("\\*", "a"));
    assert_true(m("[\\]]", "]"));
    assert_false(m("[]]", "]"));  /* ] right after [ closes an empty set */
    assert_true(m("[a", "a"));    /* an unclosed [ ends at the pattern's end */
    assert_true(m("a\\", "a\\")); /* a trailing backslash is itself */
    assert_true(m("*a*b*", "xaxbx"));
    assert_false(m("*a*b*", "xbxax"));
}

static void binary_names(void **state)
{
    (void)state;
    assert_true(colony__broker_glob_match("a?c", 3, "a\0c", 3));
    assert_true(colony__broker_glob_match("*\0", 2, "xy\0", 3));
    assert_false(colony__broker_glob_match("a", 1, "a\0", 2));
}

static void abusive_pattern_is_bounded(void **state)
{
    (void)state;
    /* Redis's CVE-2022-36021 shape: many stars against a long miss, which
     * without the early stop takes exponential time */
    char pattern[2002], string[1001];
    for (int i = 0; i < 2000; i++)
        pattern[i] = i % 2 ? 'a' : '*';
    pattern[2000] = 'b';
    pattern[2001] = '\0';
    memset(string, 'a', 1000);
    string[1000] = '\0';
    uint64_t t0 = uv_hrtime();
    assert_false(m(pattern, string));
    pattern[2000] = '\0';
    assert_true(m(pattern, string)); /* 1000 stars: within the nesting cap */
    assert_true((uv_hrtime() - t0) / 1000000 < 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(syntax),
        cmocka_unit_test(binary_names),
        cmocka_unit_test(abusive_pattern_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
