/* Policy sets without the network: origin normalisation, option validation,
 * per-origin configuration and closing an idle set. */
#include "test_support.h"
#include <string.h>
#include "colony/error.h"
#include "colony/policy.h"
#include "kit/resilience/policy_internal.h"

static void origins_are_normalised(void **state)
{
    (void)state;
    char out[256];
    assert_int_equal(colony__policy_origin_of("http://Svc.Local:8080/a/b?x", out, sizeof(out)), 0);
    assert_string_equal(out, "http://svc.local:8080");
    assert_int_equal(colony__policy_origin_of("HTTP://host/path", out, sizeof(out)), 0);
    assert_string_equal(out, "http://host:80");
    assert_int_equal(colony__policy_origin_of("https://host?q", out, sizeof(out)), 0);
    assert_string_equal(out, "https://host:443");
    assert_int_equal(colony__policy_origin_of("http://[::1]/x", out, sizeof(out)), 0);
    assert_string_equal(out, "http://[::1]:80");
    assert_int_equal(colony__policy_origin_of("http://[::1]:9000", out, sizeof(out)), 0);
    assert_string_equal(out, "http://[::1]:9000");
    assert_int_equal(colony__policy_origin_of("no-scheme", out, sizeof(out)), COLONY_EINVAL);
    assert_int_equal(colony__policy_origin_of("http:///path", out, sizeof(out)), COLONY_EINVAL);
    assert_int_equal(colony__policy_origin_of("http://a:1", out, 8), COLONY_EINVAL);
}

static void set_closed(void *ud)
{
    (*(int *)ud)++;
}

static void options_are_validated(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    assert_null(colony_policy_set_new(&(colony_policy_set_options){0})); /* no loop */
    colony_policy_options bad;
    colony_policy_options_init(&bad);
    bad.breaker.half_open_calls = 0;
    assert_null(
        colony_policy_set_new(&(colony_policy_set_options){.loop = &loop, .defaults = &bad}));
    colony_policy_set *ps = colony_policy_set_new(&(colony_policy_set_options){.loop = &loop});
    assert_non_null(ps);
    colony_policy_options o;
    colony_policy_options_init(&o);
    assert_int_equal(colony_policy_set_add(ps, "http://a:1", &o), 0);
    assert_int_equal(colony_policy_set_add(ps, "http://a:1", &o), 0); /* replaced before use */
    assert_int_equal(colony_policy_set_add(ps, "http://a:1/path", &o), COLONY_EINVAL);
    assert_int_equal(colony_policy_set_add(ps, "a:1", &o), COLONY_EINVAL);
    assert_int_equal(colony_policy_set_add(ps, "http://b:1", &bad), COLONY_EINVAL);
    o.retry.max_attempts = 0;
    assert_int_equal(colony_policy_set_add(ps, "http://c:1", &o), COLONY_EINVAL);
    assert_int_equal(colony_policy_breaker_state(ps, "http://a:1"), -1); /* no state yet */
    assert_int_equal(colony_policy_set_active(ps), 0);
    int closed = 0;
    colony_policy_set_close(ps, set_closed, &closed);
    assert_int_equal(closed, 0); /* idle, yet the callback waits for the loop */
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(closed, 1);
    colony_test_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(origins_are_normalised),
        cmocka_unit_test(options_are_validated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
