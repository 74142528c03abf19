/* The gateway's rate limits on a fake clock: "N per window" refills at
 * N/window (100 per 15 minutes is one every 9 s), the RateLimit-* numbers and
 * Retry-After, burst, keys kept apart, the key map's cap dropping the least
 * recently used, a reload's new rate applying to a live bucket; and the
 * "rate_limit" objects of the routes file, every mistake refused with its line. */
#include "gateway_config_fixture.h"
#include "test_support.h"
#include <string.h>
#include "colony/colony.h"
#include "core/alloc.h"
#include "gateway/config.h"
#include "gateway/ratelimit.h"

static colony_fake_clock fake;

static gw_ratelimit_conf conf(uint32_t limit, uint64_t window_ms, uint32_t burst)
{
    return (gw_ratelimit_conf){.limit = limit, .window_ms = window_ms, .burst = burst};
}

static void setup_rl(gw_ratelimit *rl)
{
    colony_fake_clock_init(&fake, 1000000);
    assert_int_equal(colony__gw_ratelimit_init(rl, NULL, NULL, colony_clock_fake(&fake)), 0);
}

static gw_rl_result take(gw_ratelimit *rl, const char *scope, const gw_ratelimit_conf *c,
                         const char *key)
{
    gw_rl_result r;
    assert_int_equal(colony__gw_ratelimit_take_local(rl, scope, c, key, &r), 0);
    return r;
}

static void limit_per_window_refills_evenly(void **state)
{
    (void)state;
    gw_ratelimit rl;
    setup_rl(&rl);
    gw_ratelimit_conf c = conf(100, 15 * 60 * 1000, 100);
    gw_rl_result r = take(&rl, "api", &c, "1.2.3.4");
    assert_int_equal(r.outcome, GW_RL_ALLOW);
    assert_int_equal(r.limit, 100);
    assert_int_equal(r.remaining, 99);
    assert_int_equal(r.reset_s, 9); /* one token missing: 15 min / 100 */
    for (int i = 0; i < 99; i++)
        assert_int_equal(take(&rl, "api", &c, "1.2.3.4").outcome, GW_RL_ALLOW);
    r = take(&rl, "api", &c, "1.2.3.4");
    assert_int_equal(r.outcome, GW_RL_LIMITED);
    assert_int_equal(r.remaining, 0);
    assert_int_equal(r.retry_s, 9);
    assert_int_equal(r.reset_s, 900);
    /* 8.999 s later: still nothing; at 9 s (within a millisecond) one request */
    colony_fake_clock_advance(&fake, 8999);
    assert_int_equal(take(&rl, "api", &c, "1.2.3.4").outcome, GW_RL_LIMITED);
    colony_fake_clock_advance(&fake, 2);
    r = take(&rl, "api", &c, "1.2.3.4");
    assert_int_equal(r.outcome, GW_RL_ALLOW);
    assert_int_equal(r.remaining, 0);
    assert_int_equal(take(&rl, "api", &c, "1.2.3.4").outcome, GW_RL_LIMITED);
    /* a whole window later the bucket is whole (and no fuller) */
    colony_fake_clock_advance(&fake, 60 * 60 * 1000);
    r = take(&rl, "api", &c, "1.2.3.4");
    assert_int_equal(r.remaining, 99);
    colony__gw_ratelimit_close(&rl, NULL, NULL);
}

static void slow_rates_stay_exact(void **state)
{
    (void)state;
    gw_ratelimit rl;
    setup_rl(&rl);
    gw_ratelimit_conf c = conf(2, 60000, 2); /* 2 a minute: one every 30 s */
    take(&rl, "r", &c, "k");
    take(&rl, "r", &c, "k");
    gw_rl_result r = take(&rl, "r", &c, "k");
    assert_int_equal(r.outcome, GW_RL_LIMITED);
    assert_int_equal(r.retry_s, 30);
    colony_fake_clock_advance(&fake, 29998);
    assert_int_equal(take(&rl, "r", &c, "k").outcome, GW_RL_LIMITED);
    colony_fake_clock_advance(&fake, 3);
    assert_int_equal(take(&rl, "r", &c, "k").outcome, GW_RL_ALLOW);
    /* one a day, the slowest a routes file allows */
    gw_ratelimit_conf day = conf(1, 86400000, 1);
    take(&rl, "d", &day, "k");
    r = take(&rl, "d", &day, "k");
    assert_int_equal(r.outcome, GW_RL_LIMITED);
    assert_in_range(r.retry_s, 86400 - 1, 86400 + 1);
    /* the largest burst still fits the kit's bucket */
    gw_ratelimit_conf big = conf(1000000, 1, 1000000);
    assert_int_equal(take(&rl, "big", &big, "k").outcome, GW_RL_ALLOW);
    colony__gw_ratelimit_close(&rl, NULL, NULL);
}

static void burst_above_the_limit(void **state)
{
    (void)state;
    gw_ratelimit rl;
    setup_rl(&rl);
    gw_ratelimit_conf c = conf(10, 1000, 25); /* 10/s sustained, 25 at once */
    for (int i = 0; i < 25; i++)
        assert_int_equal(take(&rl, "r", &c, "k").outcome, GW_RL_ALLOW);
    gw_rl_result r = take(&rl, "r", &c, "k");
    assert_int_equal(r.outcome, GW_RL_LIMITED);
    assert_int_equal(r.limit, 25);
    assert_int_equal(r.reset_s, 3); /* 25 tokens at 10/s */
    colony_fake_clock_advance(&fake, 100);
    assert_int_equal(take(&rl, "r", &c, "k").outcome, GW_RL_ALLOW);
    colony__gw_ratelimit_close(&rl, NULL, NULL);
}

static void keys_and_scopes_are_apart(void **state)
{
    (void)state;
    gw_ratelimit rl;
    setup_rl(&rl);
    gw_ratelimit_conf c = conf(1, 60000, 1);
    assert_int_equal(take(&rl, "a", &c, "alice").outcome, GW_RL_ALLOW);
    assert_int_equal(take(&rl, "a", &c, "alice").outcome, GW_RL_LIMITED);
    assert_int_equal(take(&rl, "a", &c, "bob").outcome, GW_RL_ALLOW);
    assert_int_equal(take(&rl, "b", &c, "alice").outcome, GW_RL_ALLOW);
    assert_int_equal(colony__gw_ratelimit_keys(&rl), 3);
    /* route names too long for the key buffer stay apart (hashed) */
    char long1[400], long2[400];
    memset(long1, 'x', sizeof(long1) - 1);
    long1[sizeof(long1) - 1] = '\0';
    memcpy(long2, long1, sizeof(long2));
    long2[sizeof(long2) - 2] = 'y';
    assert_int_equal(take(&rl, long1, &c, "alice").outcome, GW_RL_ALLOW);
    assert_int_equal(take(&rl, long2, &c, "alice").outcome, GW_RL_ALLOW);
    assert_int_equal(take(&rl, long1, &c, "alice").outcome, GW_RL_LIMITED);
    assert_int_equal(colony__gw_ratelimit_keys(&rl), 5);
    colony__gw_ratelimit_close(&rl, NULL, NULL);
}

static void the_key_map_is_capped(void **state)
{
    (void)state;
    gw_ratelimit rl;
    setup_rl(&rl);
    rl.max_keys = 3;
    rl.nstripes = 1; /* one stripe: its LRU is the whole map's */
    colony__map *buckets = &rl.stripes[0].buckets;
    gw_ratelimit_conf c = conf(2, 60000, 2);
    take(&rl, "r", &c, "a");
    take(&rl, "r", &c, "b");
    take(&rl, "r", &c, "c");
    take(&rl, "r", &c, "a"); /* a used last: b is the least recently used */
    take(&rl, "r", &c, "d");
    assert_int_equal(colony__gw_ratelimit_keys(&rl), 3);
    assert_null(colony__map_get(buckets, "r\nb"));
    assert_non_null(colony__map_get(buckets, "r\na"));
    /* a kept its count; b starts afresh */
    assert_int_equal(take(&rl, "r", &c, "a").outcome, GW_RL_LIMITED);
    assert_int_equal(take(&rl, "r", &c, "b").remaining, 1);
    assert_int_equal(colony__gw_ratelimit_keys(&rl), 3);
    for (int i = 0; i < 1000; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        take(&rl, "r", &c, key);
    }
    assert_int_equal(colony__gw_ratelimit_keys(&rl), 3);
    colony__gw_ratelimit_close(&rl, NULL, NULL);
}

static void a_reload_changes_a_live_bucket(void **state)
{
    (void)state;
    gw_ratelimit rl;
    setup_rl(&rl);
    gw_ratelimit_conf c = conf(5, 1000, 5);
    for (int i = 0; i < 5; i++)
        take(&rl, "r", &c, "k");
    gw_ratelimit_conf bigger = conf(100, 1000, 100);
    /* the tokens used stay used; the new rate refills 100/s */
    assert_int_equal(take(&rl, "r", &bigger, "k").outcome, GW_RL_LIMITED);
    colony_fake_clock_advance(&fake, 100);
    gw_rl_result r = take(&rl, "r", &bigger, "k");
    assert_int_equal(r.outcome, GW_RL_ALLOW);
    assert_int_equal(r.limit, 100);
    assert_int_equal(r.remaining, 9);
    /* a limit so large the bucket counts requests more coarsely: still 9 left */
    gw_ratelimit_conf huge = conf(1000000, 1000, 1000000);
    r = take(&rl, "r", &huge, "k");
    assert_int_equal(r.outcome, GW_RL_ALLOW);
    assert_int_equal(r.remaining, 8);
    colony__gw_ratelimit_close(&rl, NULL, NULL);
}

/* ---- the routes file -------------------------------------------------- */

static const char *good =
    "{\n"
    "  \"rate_limit\": {\"limit\": 1000, \"window\": \"1s\", \"key\": \"header:X-Client\"},\n"
    "  \"upstreams\": {\"a\": {\"targets\": [\"http://127.0.0.1:3001\"]}},\n"
    "  \"routes\": [\n"
    "    {\"name\": \"api\", \"prefix\": \"/api\", \"upstream\": \"a\",\n"
    "     \"rate_limit\": {\"limit\": 100, \"window\": \"15m\", \"burst\": 120,\n"
    "                    \"redis\": \"redis://127.0.0.1:6380\", \"redis_failure\": \"closed\"}},\n"
    "    {\"name\": \"b\", \"prefix\": \"/b\", \"upstream\": \"a\",\n"
    "     \"rate_limit\": {\"limit\": 5, \"window\": 60000, \"key\": \"ip\"}}\n"
    "  ]\n"
    "}\n";

static int build(const char *text, gw_config **out, colony_config_error *err)
{
    return gw_test_build(text, out, err);
}

static void limits_in_the_routes_file(void **state)
{
    (void)state;
    gw_config *cfg;
    colony_config_error err;
    int rc = build(good, &cfg, &err);
    if (rc) fail_msg("%s:%d: %s: %s", err.file, err.line, err.key, err.reason);
    const gw_ratelimit_conf *g = cfg->rate_limit;
    assert_non_null(g);
    assert_int_equal(g->limit, 1000);
    assert_int_equal(g->window_ms, 1000);
    assert_int_equal(g->burst, 1000);
    assert_int_equal(g->key, GW_RL_KEY_HEADER);
    assert_string_equal(g->key_header, "X-Client");
    assert_null(g->redis);
    const gw_ratelimit_conf *a = cfg->routes[0].rate_limit;
    assert_int_equal(a->limit, 100);
    assert_int_equal(a->window_ms, 900000);
    assert_int_equal(a->burst, 120);
    assert_int_equal(a->key, GW_RL_KEY_IP);
    assert_string_equal(a->redis_host, "127.0.0.1");
    assert_int_equal(a->redis_port, 6380);
    assert_true(a->fail_closed);
    assert_string_equal(cfg->ratelimit_redis, "redis://127.0.0.1:6380");
    assert_int_equal(cfg->routes[1].rate_limit->window_ms, 60000);
    assert_false(cfg->routes[1].rate_limit->fail_closed);
    colony__gw_config_unref(cfg);
}

/* "jwt:sub" keys a route's limit by the subject its JWT check verified. */
static void jwt_subject_keys_a_route_with_jwt(void **state)
{
    (void)state;
    const char *text =
        "{\"upstreams\": {\"a\": {\"targets\": [\"http://127.0.0.1:3001\"]}},\n"
        " \"routes\": [{\"prefix\": \"/\", \"upstream\": \"a\",\n"
        "   \"jwt\": {\"keys\": [{\"alg\": \"HS256\", \"secret\": "
        "\"0123456789abcdef0123456789abcdef\"}]},\n"
        "   \"rate_limit\": {\"limit\": 5, \"window\": \"1m\", \"key\": \"jwt:sub\"}}]}\n";
    gw_config *cfg;
    colony_config_error err;
    int rc = build(text, &cfg, &err);
    if (rc) fail_msg("%s:%d: %s: %s", err.file, err.line, err.key, err.reason);
    assert_int_equal(cfg->routes[0].rate_limit->key, GW_RL_KEY_JWT_SUB);
    colony__gw_config_unref(cfg);
}

static void refused(const char *from, const char *to, int line, const char *key, const char *reason)
{
    gw_test_refused_in(good, from, to, line, key, reason);
}

static void mistakes_name_their_line(void **state)
{
    (void)state;
    refused("\"limit\": 100,", "\"limit\": 0,", 6, "routes.0.rate_limit.limit", "from 1 to");
    refused("\"limit\": 100,", "\"limit\": \"100\",", 6, "routes.0.rate_limit.limit", "an integer");
    refused("\"limit\": 100,", "", 6, "routes.0.rate_limit", "\"limit\" is required");
    refused("\"window\": \"15m\",", "", 6, "routes.0.rate_limit", "\"window\" is required");
    refused("\"window\": \"15m\"", "\"window\": \"25h\"", 6, "routes.0.rate_limit.window",
            "1ms to 24h");
    refused("\"burst\": 120", "\"burst\": -1", 6, "routes.0.rate_limit.burst", "from 1 to");
    refused("\"burst\": 120", "\"brust\": 120", 6, "routes.0.rate_limit.brust", "unknown key");
    refused("\"redis\": \"redis://127.0.0.1:6380\"", "\"redis\": \"redis://:pw@h:1/0\"", 7,
            "routes.0.rate_limit.redis", "redis://host:port");
    refused("\"redis\": \"redis://127.0.0.1:6380\"", "\"redis\": \"redis://h:99999\"", 7,
            "routes.0.rate_limit.redis", "redis://host:port");
    refused("\"redis_failure\": \"closed\"", "\"redis_failure\": \"maybe\"", 7,
            "routes.0.rate_limit.redis_failure", "\"open\"");
    refused("\"key\": \"ip\"", "\"key\": \"jwt:sub\"", 9, "routes.1.rate_limit.key",
            "needs the route's \"jwt\"");
    refused("\"key\": \"header:X-Client\"", "\"key\": \"jwt:sub\"", 2, "rate_limit.key",
            "cannot key the global limit");
    refused("\"key\": \"ip\"", "\"key\": \"header:\"", 9, "routes.1.rate_limit.key",
            "\"header:NAME\"");
    refused("\"key\": \"ip\"", "\"key\": \"header:X Y\"", 9, "routes.1.rate_limit.key",
            "bad character");
    refused("\"key\": \"ip\"", "\"key\": \"ip\", \"redis_failure\": \"open\"", 9,
            "routes.1.rate_limit.redis_failure", "needs \"redis\"");
    refused("\"key\": \"ip\"", "\"key\": \"ip\", \"redis\": \"redis://127.0.0.1:6381\"", 9,
            "routes.1.rate_limit.redis", "one Redis");
    refused("\"rate_limit\": {\"limit\": 1000, \"window\": \"1s\", \"key\": \"header:X-Client\"}",
            "\"rate_limit\": 5", 2, "rate_limit", "must be an object");
    refused("\"key\": \"header:X-Client\"", "\"key\": \"cookie\"", 2, "rate_limit.key",
            "\"header:NAME\" or \"jwt:sub\"");
}

static void allocation_failures(void **state)
{
    (void)state;
    assert_true(gw_test_allocation_failures(good) > 10);
    /* and a bucket that cannot be made lets the request through */
    gw_ratelimit rl;
    setup_rl(&rl);
    gw_ratelimit_conf c = conf(1, 1000, 1);
    gw_rl_result r;
    colony__alloc_fail_after(0);
    int rc = colony__gw_ratelimit_take_local(&rl, "r", &c, "k", &r);
    colony__alloc_fail_reset();
    assert_int_equal(rc, COLONY_ENOMEM);
    assert_int_equal(r.outcome, GW_RL_ALLOW);
    assert_int_equal(colony__gw_ratelimit_keys(&rl), 0);
    colony__gw_ratelimit_close(&rl, NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(limit_per_window_refills_evenly),
        cmocka_unit_test(slow_rates_stay_exact),
        cmocka_unit_test(burst_above_the_limit),
        cmocka_unit_test(keys_and_scopes_are_apart),
        cmocka_unit_test(the_key_map_is_capped),
        cmocka_unit_test(a_reload_changes_a_live_bucket),
        cmocka_unit_test(jwt_subject_keys_a_route_with_jwt),
        cmocka_unit_test(limits_in_the_routes_file),
        cmocka_unit_test(mistakes_name_their_line),
        cmocka_unit_test(allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
