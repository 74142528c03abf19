/* URL parsing for the HTTP client: accepted forms, origin keys, Host header
 * values, and everything that must be refused. */
#include "test_support.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "colony/colony.h"
#include "http/client_internal.h"

static void check_url(const char *url, const char *origin, const char *host_header,
                      const char *target)
{
    colony__client_url u;
    char buf[512], want_target[512];
    assert_int_equal(colony__client_url_parse(url, &u), 0);
    assert_true(colony__client_url_origin(&u, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, origin);
    assert_true(colony__client_url_host_header(&u, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, host_header);
    snprintf(want_target, sizeof(want_target), "%s%.*s", u.target_needs_slash ? "/" : "",
             (int)u.target_len, u.target);
    assert_string_equal(want_target, target);
}

static void valid_forms(void **state)
{
    (void)state;
    check_url("http://example.com", "http://example.com:80", "example.com", "/");
    check_url("http://example.com/", "http://example.com:80", "example.com", "/");
    check_url("HTTP://Example.COM:8080/a/b?c=d&e", "http://example.com:8080", "example.com:8080",
              "/a/b?c=d&e");
    check_url("http://127.0.0.1:1/x", "http://127.0.0.1:1", "127.0.0.1:1", "/x");
    check_url("http://svc_1.internal:65535", "http://svc_1.internal:65535", "svc_1.internal:65535",
              "/");
    check_url("http://h?q=1", "http://h:80", "h", "/?q=1");
    check_url("http://h/p#frag", "http://h:80", "h", "/p");
    check_url("http://h:80/p", "http://h:80", "h", "/p");
    check_url("http://h/%7Euser/a%20b", "http://h:80", "h", "/%7Euser/a%20b");
}

static void ipv6_literals(void **state)
{
    (void)state;
    check_url("http://[::1]:8080/x", "http://[::1]:8080", "[::1]:8080", "/x");
    check_url("http://[::1]/", "http://[::1]:80", "[::1]", "/");
    check_url("http://[2001:db8::7]", "http://[2001:db8::7]:80", "[2001:db8::7]", "/");
    /* https: default port 443, its own origin key (apart from http's) */
    check_url("https://Example.com/a", "https://example.com:443", "example.com", "/a");
    check_url("HTTPS://h:443/", "https://h:443", "h", "/");
    check_url("https://h:80/", "https://h:80", "h:80", "/");
    check_url("https://[::1]:8443/x", "https://[::1]:8443", "[::1]:8443", "/x");
    colony__client_url u;
    assert_int_equal(colony__client_url_parse("http://[::1]:9/", &u), 0);
    assert_true(u.is_ipv6_literal);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 9);
}

static void unix_form(void **state)
{
    (void)state;
    check_url("http+unix://%2Ftmp%2Fapp.sock/v1/x?y", "/tmp/app.sock", "localhost", "/v1/x?y");
    check_url("http+unix://%2Fvar%2frun%2Fa.sock", "/var/run/a.sock", "localhost", "/");
    colony__client_url u;
    assert_int_equal(colony__client_url_parse("http+unix://rel.sock/", &u), 0);
    assert_true(u.is_unix);
    assert_string_equal(u.host, "rel.sock");
    assert_int_equal(u.port, 0);
}

static void refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        NULL,
        "",
        "example.com/x",
        "https://user@example.com/",
        "https://",
        "ftp://example.com/",
        "http://",
        "http:///path",
        "http://:80/",
        "http://h:/",
        "http://h:0/",
        "http://h:65536/",
        "http://h:123456/",
        "http://h:8a/",
        "http://h:-1/",
        "http://user@h/",
        "http://h h/",
        "http://h/pa th",
        "http://h/p\r\nX: y",
        "http://h/\x7f",
        "http://h/\xc3\xa9",
        "http://[::1/",
        "http://[]/",
        "http://[zz::1]/",
        "http://[::1]x/",
        "http://[::1]:0/",
        "http+unix:///path",
        "http+unix://%2/x",
        "http+unix://%zz/x",
        "http+unix://%00/x",
        "http+unix://a b/x",
    };
    colony__client_url u;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (colony__client_url_parse(bad[i], &u) != COLONY_EINVAL)
            fail_msg("accepted bad URL #%zu: %s", i, bad[i] ? bad[i] : "(null)");
    }
}

static void too_long(void **state)
{
    (void)state;
    colony__client_url u;
    char host[300];
    memset(host, 'a', 256);
    host[256] = '\0';
    char url[400];
    snprintf(url, sizeof(url), "http://%s/", host);
    assert_int_equal(colony__client_url_parse(url, &u), COLONY_EINVAL); /* host over 255 */
    host[255] = '\0';
    snprintf(url, sizeof(url), "http://%s/", host);
    assert_int_equal(colony__client_url_parse(url, &u), 0);

    char path[200];
    memset(path, 'p', 120);
    path[120] = '\0';
    snprintf(url, sizeof(url), "http+unix://%%2F%s/x", path);
    assert_int_equal(colony__client_url_parse(url, &u), COLONY_EINVAL); /* over sun_path */

    size_t n = 9000;
    char *big = malloc(n + 1);
    memcpy(big, "http://h/", 9);
    memset(big + 9, 'x', n - 9);
    big[n] = '\0';
    assert_int_equal(colony__client_url_parse(big, &u), COLONY_EINVAL);
    big[8000] = '\0';
    assert_int_equal(colony__client_url_parse(big, &u), 0);
    free(big);
}

static void small_output_buffers(void **state)
{
    (void)state;
    colony__client_url u;
    char tiny[8];
    assert_int_equal(colony__client_url_parse("http://example.com:8080/", &u), 0);
    assert_int_equal(colony__client_url_origin(&u, tiny, sizeof(tiny)), COLONY_E2BIG);
    assert_int_equal(colony__client_url_host_header(&u, tiny, sizeof(tiny)), COLONY_E2BIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_forms), cmocka_unit_test(ipv6_literals),
        cmocka_unit_test(unix_form),   cmocka_unit_test(refused),
        cmocka_unit_test(too_long),    cmocka_unit_test(small_output_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
