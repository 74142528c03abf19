/* Every public options struct has an _init that fills the documented defaults,
 * and objects created from those options work: a field added later gets its
 * default in callers that use _init. */
#include "test_support.h"
#include <string.h>
#include "colony/colony.h"

static void inits_fill_the_documented_defaults(void **state)
{
    (void)state;
    colony_config_options co;
    memset(&co, 0xab, sizeof(co)); /* garbage must not survive _init */
    colony_config_options_init(&co);
    assert_string_equal(co.dir, "config");
    assert_string_equal(co.env_prefix, "COLONY_");
    assert_int_equal(co.use_environment, 1);
    assert_null(co.env);
    assert_null(co.argv);

    colony_registry_client_options ro;
    memset(&ro, 0xab, sizeof(ro));
    colony_registry_client_options_init(&ro);
    assert_null(ro.url);
    assert_int_equal(ro.wait_ms, 60000);
    assert_int_equal(ro.retry_min_ms, 250);
    assert_int_equal(ro.retry_max_ms, 30000);
    assert_int_equal(ro.timeout_ms, 5000);

    colony_discovery_options dopt;
    memset(&dopt, 0xab, sizeof(dopt));
    colony_discovery_options_init(&dopt);
    assert_null(dopt.service);
    assert_null(dopt.balancer);
    assert_int_equal(dopt.all_instances, 0);

    colony_policy_set_options po;
    memset(&po, 0xab, sizeof(po));
    colony_policy_set_options_init(&po);
    assert_null(po.loop);
    assert_null(po.defaults);
    assert_int_equal(po.max_origins, 1024);

    colony_service_options so;
    memset(&so, 0xab, sizeof(so));
    colony_service_options_init(&so);
    assert_string_equal(so.config_dir, "config");
    assert_string_equal(so.listen, "127.0.0.1:8080");
    assert_int_equal(so.workers, 0);

    colony_tracer_options to;
    memset(&to, 0xab, sizeof(to));
    colony_tracer_options_init(&to);
    assert_true(to.sample_ratio == 1.0);
    assert_int_equal(to.max_queue, 2048);
    assert_int_equal(to.max_batch, 512);
    assert_int_equal(to.flush_interval_ms, 5000);
    assert_null(to.endpoint);
}

static void objects_start_from_init_options(void **state)
{
    (void)state;
    colony_token_bucket_options tbo;
    colony_token_bucket_options_init(&tbo);
    assert_true(tbo.rate_per_sec == 100.0);
    assert_int_equal(tbo.burst, 100);
    colony_token_bucket *tb = colony_token_bucket_new(&tbo);
    assert_non_null(tb);
    assert_int_equal(colony_token_bucket_available(tb), 100);
    colony_token_bucket_free(tb);

    colony_sliding_window_options swo;
    colony_sliding_window_options_init(&swo);
    assert_int_equal(swo.limit, 100);
    assert_int_equal(swo.window_ms, 1000);
    colony_sliding_window *sw = colony_sliding_window_new(&swo);
    assert_non_null(sw);
    colony_sliding_window_free(sw);

    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_policy_set_options po;
    colony_policy_set_options_init(&po);
    po.loop = &loop;
    colony_policy_set *ps = colony_policy_set_new(&po);
    assert_non_null(ps);
    colony_policy_set_close(ps, NULL, NULL);
    colony_tracer_options to;
    colony_tracer_options_init(&to);
    colony_tracer *t = colony_tracer_new(&to);
    assert_non_null(t);
    colony_tracer_free(t, 100);
    colony_test_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(inits_fill_the_documented_defaults),
        cmocka_unit_test(objects_start_from_init_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
