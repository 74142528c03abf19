/* https upstreams in the routes file (gateway/config_upstream.c): https://
 * targets and "tls": {"ca_file", "server_name"} build; each mistake is refused
 * with file, line, key and reason (mixed schemes, tls on http targets, a CA
 * file that is not there, unknown keys, active health over https); the
 * attempt's request goes to https:// with the upstream's TLS settings; every
 * allocation failure of a build is handled. */
#include "gateway_config_fixture.h"
#include "test_support.h"
#include <stdlib.h>
#include <string.h>
#include "colony/colony.h"
#include "gateway/config.h"
#include "gateway/forward.h"

static char dir[64];
static char good[2048];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/colony_gwup_XXXXXX");
    if (!mkdtemp(dir)) return -1;
    char p[128];
    snprintf(p, sizeof(p), "%s/ca.pem", dir);
    FILE *f = fopen(p, "w"); /* read by the client at connect time, only opened here */
    fputs("-----BEGIN CERTIFICATE-----\n", f);
    fclose(f);
    snprintf(
        good, sizeof(good),
        "{\n"
        "  \"upstreams\": {\n"
        "    \"secure\": {\"targets\": [\"https://127.0.0.1:3443\", \"https://h.test:443\"],\n"
        "               \"tls\": {\"ca_file\": \"%s/ca.pem\", \"server_name\": \"api.test\"}},\n"
        "    \"plain\": {\"targets\": [\"http://127.0.0.1:3001\"]},\n"
        "    \"system\": {\"targets\": [\"https://127.0.0.1:3444\"]},\n"
        "    \"svc\": {\"service\": \"users\", \"tls\": {}}\n"
        "  },\n"
        "  \"routes\": [{\"prefix\": \"/\", \"upstream\": \"secure\"}]\n"
        "}\n",
        dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void https_upstreams_build(void **state)
{
    (void)state;
    gw_config *cfg;
    colony_config_error err;
    assert_int_equal(gw_test_build(good, &cfg, &err), 0);
    const gw_upstream *secure = colony__gw_config_upstream(cfg, "secure");
    assert_true(secure->https);
    assert_string_equal(secure->targets[0].url, "https://127.0.0.1:3443");
    assert_string_equal(secure->targets[0].address, "127.0.0.1:3443");
    assert_string_equal(secure->targets[1].address, "h.test:443");
    char ca[128];
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    assert_string_equal(secure->tls_ca_file, ca);
    assert_string_equal(secure->tls_server_name, "api.test");
    const gw_upstream *plain = colony__gw_config_upstream(cfg, "plain");
    assert_false(plain->https);
    const gw_upstream *sys = colony__gw_config_upstream(cfg, "system");
    assert_true(sys->https);
    assert_null(sys->tls_ca_file);
    assert_true(colony__gw_config_upstream(cfg, "svc")->https); /* "tls" on a service */

    /* An attempt: https:// with the upstream's CA file and server name;
     * an http upstream's has neither. */
    gw_forward f;
    memset(&f, 0, sizeof(f));
    colony_arena *a = colony_arena_new(4096, 1 << 20);
    const char *headers[] = {"Host", NULL, NULL};
    f.arena = a;
    char pq[] = "/x?y=1";
    f.path_query = pq;
    f.headers = headers;
    f.host_slot = 0;
    f.method = "GET";
    colony_client_request out;
    assert_int_equal(colony__gw_forward_target(&f, "127.0.0.1:3443", secure->https, secure, &out),
                     0);
    assert_string_equal(out.url, "https://127.0.0.1:3443/x?y=1");
    assert_string_equal(out.tls_ca_file, ca);
    assert_string_equal(out.tls_server_name, "api.test");
    assert_int_equal(colony__gw_forward_target(&f, "127.0.0.1:3001", plain->https, plain, &out), 0);
    assert_string_equal(out.url, "http://127.0.0.1:3001/x?y=1");
    assert_null(out.tls_ca_file);
    assert_null(out.tls_server_name);
    colony_arena_free(a);
    colony__gw_config_unref(cfg);
}

static void refused(const char *from, const char *to, int line, const char *key, const char *reason)
{
    gw_test_refused_in(good, from, to, line, key, reason);
}

static void mistakes_name_their_line(void **state)
{
    (void)state;
    refused("\"https://h.test:443\"", "\"http://h.test:80\"", 3, "upstreams.secure.targets.1",
            "all http:// or all https://");
    refused("\"http://127.0.0.1:3001\"", "\"ftp://127.0.0.1:3001\"", 5, "upstreams.plain.targets.0",
            "http://host:port or https://host:port");
    refused("\"http://127.0.0.1:3001\"", "\"https://127.0.0.1:3001/p\"", 5,
            "upstreams.plain.targets.0", "without a path");
    refused("\"http://127.0.0.1:3001\"]}", "\"http://127.0.0.1:3001\"], \"tls\": {}}", 5,
            "upstreams.plain.tls", "needs https:// targets");
    refused("/ca.pem\"", "/nope.pem\"", 4, "upstreams.secure.tls.ca_file", "nope.pem");
    refused("\"server_name\": \"api.test\"", "\"server_name\": \"\"", 4,
            "upstreams.secure.tls.server_name", "non-empty string");
    refused("\"server_name\": \"api.test\"", "\"sni\": \"api.test\"", 4, "upstreams.secure.tls.sni",
            "unknown key");
    refused("\"tls\": {}", "\"tls\": true", 7, "upstreams.svc.tls", "must be an object");
    refused("\"server_name\": \"api.test\"", "\"server_name\": \"api.test\", \"cert\": \"c.pem\"",
            4, "upstreams.secure.tls.cert", "needs both \"cert\" and \"key\"");
    refused("\"server_name\": \"api.test\"", "\"server_name\": \"api.test\", \"key\": \"k.pem\"", 4,
            "upstreams.secure.tls.key", "needs both \"cert\" and \"key\"");
    refused("\"server_name\": \"api.test\"",
            "\"server_name\": \"api.test\", \"cert\": \"/nonexistent/c.pem\", \"key\": \"k\"", 4,
            "upstreams.secure.tls.cert", "client certificate '/nonexistent/c.pem': No such file");
    refused("\"tls\": {}", "\"tls\": {\"instances\": \"some\"}", 7, "upstreams.svc.tls.instances",
            "\"all\" (every instance is https) or \"marked\"");
    refused("\"server_name\": \"api.test\"", "\"instances\": \"marked\"", 4,
            "upstreams.secure.tls.instances", "for a \"service\" upstream");
}

/* Active checks of an https upstream build (the prober speaks TLS); a
 * service upstream with "instances": "marked" is not https as a whole: only
 * the instances the registry marks are (GW_ENDPOINT_TLS). */
static void https_checks_and_marked_instances(void **state)
{
    (void)state;
    char text[2048];
    const char *from = "\"https://127.0.0.1:3444\"]}";
    const char *to =
        "\"https://127.0.0.1:3444\"], \"health\": {\"active\": {\"path\": \"/health\"}}}";
    char *at = strstr(good, from);
    assert_non_null(at);
    snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - good), good, to, at + strlen(from));
    char *svc = strstr(text, "\"tls\": {}");
    assert_non_null(svc);
    memmove(svc + strlen("\"tls\": {\"instances\": \"marked\"}"), svc + strlen("\"tls\": {}"),
            strlen(svc + strlen("\"tls\": {}")) + 1);
    memcpy(svc, "\"tls\": {\"instances\": \"marked\"}",
           strlen("\"tls\": {\"instances\": \"marked\"}"));
    gw_config *cfg;
    colony_config_error err;
    assert_int_equal(gw_test_build(text, &cfg, &err), 0);
    const gw_upstream *sys = colony__gw_config_upstream(cfg, "system");
    assert_non_null(sys->active.path);
    assert_true(sys->https);
    const gw_upstream *marked = colony__gw_config_upstream(cfg, "svc");
    assert_false(marked->https);
    assert_true(marked->https_marked);
    assert_false(colony__gw_endpoint_https(marked, NULL));
    colony__gw_config_unref(cfg);
}

static void allocation_failures(void **state)
{
    (void)state;
    assert_true(gw_test_allocation_failures(good) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(https_upstreams_build),
        cmocka_unit_test(mistakes_name_their_line),
        cmocka_unit_test(https_checks_and_marked_instances),
        cmocka_unit_test(allocation_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
