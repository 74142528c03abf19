/* The routes file's "listeners" (gateway/listeners.c): TLS listeners load
 * their certificates while the file is validated, every mistake (a file that
 * is missing, not PEM or a key that does not match) is refused with file,
 * line, key and reason, allocation failures are handled, and a reload hands
 * new certificates to the running listener. Certificates are made by the
 * openssl CLI in a temporary folder. */
#include "gateway_config_fixture.h"
#include "test_support.h"
#include <stdlib.h>
#include <string.h>
#include "colony/colony.h"
#include "gateway/config.h"
#include "gateway/listeners.h"

static char dir[64];
static char good[2048];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/colony_gwtls_XXXXXX");
    if (!mkdtemp(dir)) return -1;
    const char *names[] = {"a.test", "b.test"};
    for (int i = 0; i < 2; i++) {
        char cmd[1024];
        snprintf(cmd, sizeof(cmd),
                 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                 "-keyout %s/%s.key -out %s/%s.pem -days 2 -subj /CN=%s >/dev/null 2>&1",
                 dir, names[i], dir, names[i], names[i]);
        if (system(cmd) != 0) return -1;
    }
    char p[128];
    snprintf(p, sizeof(p), "%s/garbage.pem", dir);
    FILE *f = fopen(p, "w");
    fputs("not PEM\n", f);
    fclose(f);
    snprintf(good, sizeof(good),
             "{\n"
             "  \"upstreams\": {\"up\": {\"targets\": [\"http://127.0.0.1:3001\"]}},\n"
             "  \"routes\": [{\"prefix\": \"/\", \"upstream\": \"up\"}],\n"
             "  \"listeners\": [\n"
             "    {\"listen\": \"127.0.0.1:8443\",\n"
             "     \"tls\": {\"certificates\": [\n"
             "       {\"cert\": \"%s/a.test.pem\", \"key\": \"%s/a.test.key\"},\n"
             "       {\"cert\": \"%s/b.test.pem\", \"key\": \"%s/b.test.key\"}]}},\n"
             "    {\"listen\": \"127.0.0.1:8081\"}\n"
             "  ]\n"
             "}\n",
             dir, dir, dir, dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void listeners_build(void **state)
{
    (void)state;
    gw_config *cfg;
    colony_config_error err;
    assert_int_equal(gw_test_build(good, &cfg, &err), 0);
    assert_int_equal(cfg->listeners.count, 2);
    assert_string_equal(cfg->listeners.list[0].listen, "127.0.0.1:8443");
    assert_int_equal(colony_tls_ctx_count(cfg->listeners.list[0].tls), 2);
    assert_string_equal(cfg->listeners.list[1].listen, "127.0.0.1:8081");
    assert_null(cfg->listeners.list[1].tls);

    /* A reload: the TLS listener at the same address takes the new set. */
    gw_config *fresh;
    assert_int_equal(gw_test_build(good, &fresh, &err), 0);
    assert_int_equal(colony__gw_listeners_update(&cfg->listeners, &fresh->listeners), 1);
    colony__gw_config_unref(fresh); /* the running set keeps what it took */
    colony__gw_config_unref(cfg);

    /* No "listeners": none. */
    const char *plain = "{\"upstreams\": {\"up\": {\"targets\": [\"http://127.0.0.1:1\"]}},"
                        " \"routes\": [{\"prefix\": \"/\", \"upstream\": \"up\"}]}";
    assert_int_equal(gw_test_build(plain, &cfg, &err), 0);
    assert_int_equal(cfg->listeners.count, 0);
    colony__gw_config_unref(cfg);
}

static void mistakes_are_refused_with_line_and_key(void **state)
{
    (void)state;
    char from[256], to[256];
    const char *none = "{\"upstreams\": {\"up\": {\"targets\": [\"http://127.0.0.1:1\"]}},\n"
                       " \"routes\": [{\"prefix\": \"/\", \"upstream\": \"up\"}],\n"
                       " \"listeners\": []}";
    gw_test_refused_in(none, "[]", "[]", 3, "listeners", "must be an array of 1 to 16");
    gw_test_refused_in(none, "[]", "{}", 3, "listeners", "must be an array of 1 to 16");
    gw_test_refused_in(good, "\"listeners\": [", "\"listeners\": [7, ", 4, "listeners.0",
                       "a listener is {");
    gw_test_refused_in(good, "{\"listen\": \"127.0.0.1:8081\"}", "{\"listen\": \"127.0.0.1:8443\"}",
                       9, "listeners.1.listen", "\"127.0.0.1:8443\" is listed twice");
    gw_test_refused_in(good, "{\"listen\": \"127.0.0.1:8081\"}", "{\"listen\": 8081}", 9,
                       "listeners.1.listen", "must be a non-empty string");
    gw_test_refused_in(good, "{\"listen\": \"127.0.0.1:8081\"}",
                       "{\"listen\": \"127.0.0.1:8081\", \"tsl\": {}}", 9, "listeners.1.tsl",
                       "unknown key \"tsl\"");
    gw_test_refused_in(good, "{\"listen\": \"127.0.0.1:8081\"}",
                       "{\"listen\": \"127.0.0.1:8081\", \"tls\": true}", 9, "listeners.1.tls",
                       "\"tls\" is an object");
    gw_test_refused_in(good, "\"certificates\": [", "\"certificates\": [7, ", 6,
                       "listeners.0.tls.certificates.0", "a certificate is {");
    gw_test_refused_in(good, "{\"listen\": \"127.0.0.1:8081\"}",
                       "{\"listen\": \"127.0.0.1:8081\", \"tls\": {\"certificates\": []}}", 9,
                       "listeners.1.tls.certificates", "must be an array of 1 to 64");
    snprintf(from, sizeof(from), "{\"cert\": \"%s/b.test.pem\", ", dir);
    gw_test_refused_in(good, from, "{", 8, "listeners.0.tls.certificates.1",
                       "\"cert\" is required");
    /* files that do not load: the key names the file and why */
    snprintf(to, sizeof(to), "{\"cert\": \"%s/missing.pem\", ", dir);
    char why[256];
    snprintf(why, sizeof(why), "certificate file '%s/missing.pem': No such file or directory", dir);
    gw_test_refused_in(good, from, to, 8, "listeners.0.tls.certificates.1.cert", why);
    snprintf(to, sizeof(to), "{\"cert\": \"%s/garbage.pem\", ", dir);
    snprintf(why, sizeof(why), "certificate file '%s/garbage.pem': not a PEM certificate", dir);
    gw_test_refused_in(good, from, to, 8, "listeners.0.tls.certificates.1.cert", why);
    snprintf(from, sizeof(from), "\"key\": \"%s/b.test.key\"", dir);
    snprintf(to, sizeof(to), "\"key\": \"%s/a.test.key\"", dir);
    snprintf(why, sizeof(why), "key file '%s/a.test.key': does not match the certificate", dir);
    gw_test_refused_in(good, from, to, 8, "listeners.0.tls.certificates.1.key", why);
    snprintf(to, sizeof(to), "\"key\": \"%s/garbage.pem\"", dir);
    snprintf(why, sizeof(why), "key file '%s/garbage.pem': not a PEM private key", dir);
    gw_test_refused_in(good, from, to, 8, "listeners.0.tls.certificates.1.key", why);
}

static void allocation_failures(void **state)
{
    (void)state;
    assert_true(gw_test_allocation_failures(good) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(listeners_build),
        cmocka_unit_test(mistakes_are_refused_with_line_and_key),
        cmocka_unit_test(allocation_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
