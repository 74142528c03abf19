/* The registry's check runner (registry/checks.c) against a real store and
 * loop: a check that cannot be armed (every allocation of its registration
 * failed in turn) is refused with nothing changed, never stored as a check
 * that will not run; a loaded check that cannot be armed is shown critical
 * with the reason; disarming frees a check with a probe in flight. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "colony/error.h"
#include "colony/log.h"
#include "colony/probe.h"
#include "core/alloc.h"
#include "registry/checks.h"
#include "registry_state_fixture.h"
#include "registry/registry_internal.h"
#include "registry/store.h"
#include "registry/names.h"
#include "registry/parse.h"
#include "test_support.h"

static uv_loop_t loop;
static registry reg;
static char dir[64];

static void drain(void)
{
    reg_fixture_drain(&reg, &loop);
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    reg_fixture_open(&reg, &loop, dir, "checks");
    reg.min_interval_ms = 10;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    drain();
    colony__reg_checks_stop(&reg); /* disarms and frees every check */
    reg_fixture_close(&reg);
    colony_test_loop_close(&loop);
    reg_fixture_remove_dir(dir);
    return 0;
}

static reg_check *parse_check(const char *text)
{
    json_t *def = json_loads(text, 0, NULL);
    assert_non_null(def);
    char msg[256];
    reg_check *c = colony__reg_parse_check(def, NULL, NULL, 0, msg, sizeof(msg));
    json_decref(def);
    if (!c) fail_msg("parse: %s", msg);
    return c;
}

/* Each allocation of an HTTP check's registration (including its probe's)
 * fails in turn: ENOMEM, no index taken, nothing stored or queued. */
static void registration_refused_when_check_cannot_arm(void **state)
{
    (void)state;
    assert_int_equal(colony__reg_checks_start(&reg, NULL, NULL), 0);
    const char *def = "{\"CheckID\":\"web-http\",\"HTTP\":\"http://127.0.0.1:9/\","
                      "\"Interval\":\"10s\",\"Header\":{\"X-A\":[\"1\",\"2\"]}}";
    int done = 0, failed_in_arm = 0;
    for (long n = 0; n < 500 && !done; n++) {
        reg_check *chk = parse_check(def);
        uint64_t index_before = reg.index;
        colony_prober_stats before;
        colony_prober_get_stats(reg.prober, &before);
        colony__alloc_fail_after(n);
        int rc = colony__reg_check_put(&reg, chk);
        long failures = colony__alloc_failures();
        colony__alloc_fail_reset();
        if (rc == 0) {
            assert_int_equal(failures, 0);
            done = 1;
            break;
        }
        assert_int_equal(rc, COLONY_ENOMEM);
        assert_true(failures > 0);
        assert_int_equal(reg.index, index_before);
        assert_null(colony__map_get(&reg.checks, "web-http"));
        assert_true(colony__reg_store_idle(reg.store));
        for (int i = 0; i < 5; i++) /* a probe that did start is closed and freed */
            uv_run(&loop, UV_RUN_NOWAIT);
        colony_prober_stats after;
        colony_prober_get_stats(reg.prober, &after);
        assert_int_equal(after.probes, before.probes);
        if (n > 0) failed_in_arm++;
    }
    assert_true(done);
    assert_true(failed_in_arm > 3); /* the probe's own allocations were reached */
    reg_check *chk = colony__map_get(&reg.checks, "web-http");
    assert_non_null(chk);
    assert_true(chk->probe_open);
    colony_prober_stats st;
    colony_prober_get_stats(reg.prober, &st);
    assert_int_equal(st.probes, 1);
    drain();
}

/* A stored check whose target the probe refuses (saved by an older version
 * that took any port) cannot run: it is shown critical with why. */
static void loaded_check_that_cannot_arm_is_critical(void **state)
{
    (void)state;
    reg_check *chk = parse_check("{\"CheckID\":\"old-tcp\",\"TCP\":\"127.0.0.1:1\","
                                 "\"Interval\":\"1s\",\"Status\":\"passing\"}");
    colony__free(chk->target);
    chk->target = colony__strdup("127.0.0.1:99999");
    assert_non_null(chk->target);
    assert_int_equal(colony__map_put(&reg.checks, chk->id, chk), 0);
    assert_int_equal(colony__reg_checks_start(&reg, NULL, NULL), 0);
    assert_int_equal(chk->status, REG_CRITICAL);
    assert_non_null(strstr(chk->output, "check not running"));
    assert_false(chk->probe_open);
    drain();
}

/* A TTL check is armed at registration; a heartbeat pushes its expiry back
 * and it expires to critical. */
static void ttl_check_expires(void **state)
{
    (void)state;
    assert_int_equal(colony__reg_checks_start(&reg, NULL, NULL), 0);
    reg_check *chk = parse_check("{\"CheckID\":\"beat\",\"TTL\":\"30ms\",\"Status\":\"passing\"}");
    assert_int_equal(colony__reg_check_put(&reg, chk), 0);
    assert_true(chk->timer_open);
    assert_int_equal(colony__reg_check_ttl_update(&reg, chk, REG_PASSING, "ok"), 0);
    int expired = 0;
    for (int i = 0; i < 500 && !expired; i++) {
        uv_run(&loop, UV_RUN_ONCE);
        expired = chk->status == REG_CRITICAL;
    }
    assert_true(expired);
    assert_string_equal(chk->output, "TTL expired");
    drain();
}

int main(void)
{
    colony_log_set_level(COLONY_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(registration_refused_when_check_cannot_arm, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(loaded_check_that_cannot_arm_is_critical, setup, teardown),
        cmocka_unit_test_setup_teardown(ttl_check_expires, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
