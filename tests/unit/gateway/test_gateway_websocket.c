/* The "websocket" route key (off by default, a boolean, refused otherwise with
 * file, line, key and reason) and the upstream headers of an upgrade: headers
 * added in two batches (the upgrade's, then an API key's consumer) all reach
 * the upstream. */
#include "test_support.h"
#include <string.h>
#include "colony/colony.h"
#include "gateway/forward.h"
#include "gateway/websocket.h"
#include "gateway_config_fixture.h"

static const char *const base =
    "{\n"
    "  \"upstreams\": {\"up\": {\"targets\": [\"http://127.0.0.1:1\"]}},\n"
    "  \"routes\": [\n"
    "    {\"prefix\": \"/ws\", \"upstream\": \"up\",\n"
    "     \"websocket\": true},\n"
    "    {\"prefix\": \"/plain\", \"upstream\": \"up\"}\n"
    "  ]\n"
    "}\n";

static void websocket_key(void **state)
{
    (void)state;
    gw_config *cfg = NULL;
    colony_config_error err;
    assert_int_equal(gw_test_build(base, &cfg, &err), 0);
    assert_int_equal(cfg->routes[0].websocket, 1);
    assert_int_equal(cfg->routes[1].websocket, 0); /* off unless asked for */
    colony__gw_config_unref(cfg);
    gw_test_refused_in(base, "\"websocket\": true", "\"websocket\": \"yes\"", 5,
                       "routes.0.websocket", "\"websocket\" must be true or false");
    gw_test_refused_in(base, "\"websocket\": true", "\"websocket\": 1", 5, "routes.0.websocket",
                       "must be true or false");
    gw_test_refused_in(base, "\"websocket\": true", "\"web_socket\": true", 5,
                       "routes.0.web_socket", "unknown key");
    assert_true(gw_test_allocation_failures(base) > 0);
}

static size_t count(const char *const *h, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; h[i]; i += 2)
        n += strcasecmp(h[i], name) == 0;
    return n;
}

static void added_headers_accumulate(void **state)
{
    (void)state;
    colony_arena *a = colony_arena_new(4096, 1 << 20);
    assert_non_null(a);
    const char *before[] = {"Accept", "*/*", "Host", NULL, NULL};
    gw_forward f = {.headers = before, .host_slot = 2, .arena = a, .path_query = "/ws"};
    const char *upgrade[] = {"Connection", "Upgrade", "Upgrade", "websocket"};
    const char *consumer[] = {"X-Consumer-ID", "alice"};
    assert_int_equal(colony__gw_forward_add_headers(&f, upgrade, 2), 0);
    assert_int_equal(colony__gw_forward_add_headers(&f, consumer, 1), 0);
    f.headers[f.host_slot + 1] = "127.0.0.1:1"; /* as an attempt sets it */
    assert_int_equal(count(f.headers, "Upgrade"), 1);
    assert_int_equal(count(f.headers, "Connection"), 1);
    assert_int_equal(count(f.headers, "X-Consumer-ID"), 1);
    assert_int_equal(count(f.headers, "Accept"), 1);
    assert_string_equal(f.headers[f.host_slot], "Host");
    colony_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(websocket_key),
        cmocka_unit_test(added_headers_accumulate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
