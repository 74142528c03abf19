/* Path normalization: dot segments, merged slashes, escapes; never longer than
 * its input and never reads past it. */
#include "test_support.h"
#include <string.h>
#include "colony/error.h"
#include "colony/http_parser.h"

static void expect(const char *in, const char *want)
{
    char out[256];
    int n = colony_http_path_normalize(in, strlen(in), out);
    if (!want) {
        if (n != COLONY_EINVAL) fail_msg("%s: expected an error, got \"%s\"", in, out);
        return;
    }
    if (n < 0) fail_msg("%s: unexpected error %d", in, n);
    assert_string_equal(out, want);
    assert_int_equal((size_t)n, strlen(want));
}

static void dot_segments_and_slashes(void **state)
{
    (void)state;
    expect("/", "/");
    expect("/a/b", "/a/b");
    expect("/a/b/", "/a/b/");
    expect("/a//b///c", "/a/b/c");
    expect("/a/./b", "/a/b");
    expect("/a/.", "/a/");
    expect("/a/b/..", "/a/");
    expect("/a/b/../c", "/a/c");
    expect("/public/../admin", "/admin");
    expect("/a/..", "/");
    expect("/a/../../b", NULL); /* above the root */
    expect("/..", NULL);
    expect("/.../a", "/.../a"); /* three dots are a name */
    expect("/a..b/c", "/a..b/c");
    expect("", NULL);
    expect("a/b", NULL);
}

static void escapes(void **state)
{
    (void)state;
    expect("/%61dmin", "/admin");             /* unreserved: decoded */
    expect("/public/%2e%2E/admin", "/admin"); /* encoded dots are dots */
    expect("/a%2fb/../c", "/c");              /* %2F is not a separator */
    expect("/a%2fb", "/a%2Fb");               /* other escapes: uppercased */
    expect("/%7e%5F%2D", "/~_-");
    expect("/a%20b", "/a%20b"); /* digits only: unchanged */
    expect("/a%3a", "/a%3A");
    expect("/%zz", NULL);
    expect("/%4", NULL);
    expect("/%", NULL);
    expect("/a%00b", NULL);
}

static void never_reads_past_the_end(void **state)
{
    (void)state;
    const char *inputs[] = {"/a/b/../%2e%2", "/%", "/a//..", "/./../x", "/x/%4"};
    char out[64];
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        size_t len = strlen(inputs[i]);
        for (size_t cut = 1; cut <= len; cut++) {
            char *g = colony_test_guarded_copy(inputs[i], cut);
            int n = colony_http_path_normalize(g, cut, out);
            assert_true(n == COLONY_EINVAL || (n >= 1 && (size_t)n <= cut));
            colony_test_guarded_free(g, cut);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dot_segments_and_slashes),
        cmocka_unit_test(escapes),
        cmocka_unit_test(never_reads_past_the_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
