/* Rate limiters: token bucket refill (fractional, exact), burst and
 * retry-after; sliding window weighting across the window boundary. */
#include "test_support.h"
#include "colony/error.h"
#include "colony/ratelimit.h"
#include "core/alloc.h"

static colony_fake_clock fake;

static colony_token_bucket *bucket(double rate, unsigned burst)
{
    colony_fake_clock_init(&fake, 12345);
    colony_token_bucket_options o = {
        .rate_per_sec = rate, .burst = burst, .clock = colony_clock_fake(&fake)};
    colony_token_bucket *tb = colony_token_bucket_new(&o);
    assert_non_null(tb);
    return tb;
}

static void bucket_burst_then_refill(void **state)
{
    (void)state;
    colony_token_bucket *tb = bucket(10, 5);
    uint64_t after = 99;
    for (int i = 0; i < 5; i++)
        assert_int_equal(colony_token_bucket_take(tb, 1, &after), 0);
    assert_int_equal(after, 0);
    assert_int_equal(colony_token_bucket_take(tb, 1, &after), COLONY_EBUSY);
    assert_int_equal(after, 100); /* 10/s: one token per 100 ms */
    colony_fake_clock_advance(&fake, 99);
    assert_int_equal(colony_token_bucket_take(tb, 1, &after), COLONY_EBUSY);
    assert_int_equal(after, 1);
    colony_fake_clock_advance(&fake, 1);
    assert_int_equal(colony_token_bucket_take(tb, 1, NULL), 0);
    /* Refill stops at the burst. */
    colony_fake_clock_advance(&fake, 60000);
    assert_int_equal(colony_token_bucket_available(tb), 5);
    assert_int_equal(colony_token_bucket_take(tb, 5, NULL), 0);
    assert_int_equal(colony_token_bucket_take(tb, 3, &after), COLONY_EBUSY);
    assert_int_equal(after, 300);
    /* More than the burst can never be taken. */
    assert_int_equal(colony_token_bucket_take(tb, 6, &after), COLONY_EBUSY);
    assert_true(after == UINT64_MAX);
    colony_token_bucket_free(tb);
}

static void bucket_fractional_refill_is_exact(void **state)
{
    (void)state;
    colony_token_bucket *tb = bucket(1.5, 3);
    assert_int_equal(colony_token_bucket_take(tb, 3, NULL), 0);
    uint64_t after;
    assert_int_equal(colony_token_bucket_take(tb, 1, &after), COLONY_EBUSY);
    assert_int_equal(after, 667); /* 1/1.5 s, rounded up */
    /* 2 s in many small steps must give exactly 3 tokens: no lost fractions. */
    for (int i = 0; i < 2000; i++) {
        colony_fake_clock_advance(&fake, 1);
        assert_true(colony_token_bucket_available(tb) <= 3);
    }
    assert_int_equal(colony_token_bucket_available(tb), 3);
    assert_int_equal(colony_token_bucket_take(tb, 3, NULL), 0);
    /* 0.5 s gives 0.75 tokens: not one yet; 0.2 s more completes it. */
    colony_fake_clock_advance(&fake, 500);
    assert_int_equal(colony_token_bucket_take(tb, 1, &after), COLONY_EBUSY);
    assert_int_equal(after, 167); /* 0.25 token at 1.5/s = 166.67 ms */
    colony_fake_clock_advance(&fake, 167);
    assert_int_equal(colony_token_bucket_take(tb, 1, NULL), 0);
    colony_token_bucket_free(tb);
}

static void bucket_rate_changes_and_bad_options(void **state)
{
    (void)state;
    colony_token_bucket *tb = bucket(0, 2); /* never refills */
    uint64_t after;
    assert_int_equal(colony_token_bucket_take(tb, 2, NULL), 0);
    colony_fake_clock_advance(&fake, 100000);
    assert_int_equal(colony_token_bucket_take(tb, 1, &after), COLONY_EBUSY);
    assert_true(after == UINT64_MAX);
    assert_int_equal(colony_token_bucket_set_rate(tb, 1000, 10), 0);
    colony_fake_clock_advance(&fake, 5);
    assert_int_equal(colony_token_bucket_available(tb), 5);
    assert_int_equal(colony_token_bucket_set_rate(tb, 1000, 2), 0); /* capped at new burst */
    assert_int_equal(colony_token_bucket_available(tb), 2);
    assert_int_equal(colony_token_bucket_set_rate(tb, -1, 2), COLONY_EINVAL);
    assert_int_equal(colony_token_bucket_set_rate(tb, 1, 0), COLONY_EINVAL);
    colony_token_bucket_free(tb);

    colony_token_bucket_options o = {.rate_per_sec = 1, .burst = 0};
    assert_null(colony_token_bucket_new(&o));
    o.burst = 1;
    o.rate_per_sec = 1e12;
    assert_null(colony_token_bucket_new(&o));
    assert_null(colony_token_bucket_new(NULL));
    o.rate_per_sec = 1;
    colony__alloc_fail_after(0);
    assert_null(colony_token_bucket_new(&o));
    colony__alloc_fail_reset();
    /* A huge gap in time does not overflow the refill. */
    tb = bucket(1e9, 4000000000u);
    assert_int_equal(colony_token_bucket_take(tb, 4000000000u, NULL), 0);
    colony_fake_clock_advance(&fake, UINT64_MAX / 4);
    assert_int_equal(colony_token_bucket_available(tb), 4000000000u);
    colony_token_bucket_free(tb);
}

static colony_sliding_window *window(unsigned limit, uint64_t window_ms, uint64_t start)
{
    colony_fake_clock_init(&fake, start);
    colony_sliding_window_options o = {
        .limit = limit, .window_ms = window_ms, .clock = colony_clock_fake(&fake)};
    colony_sliding_window *sw = colony_sliding_window_new(&o);
    assert_non_null(sw);
    return sw;
}

static void window_limit_within_one_window(void **state)
{
    (void)state;
    colony_sliding_window *sw = window(10, 1000, 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(colony_sliding_window_take(sw, 1, NULL), 0);
    uint64_t after;
    assert_int_equal(colony_sliding_window_take(sw, 1, &after), COLONY_EBUSY);
    assert_int_equal(colony_sliding_window_count(sw), 10);
    /* At 1000 the 10 become "previous" at full weight; each 100 ms frees one. */
    assert_int_equal(after, 1100);
    colony_fake_clock_advance(&fake, 1099);
    assert_int_equal(colony_sliding_window_take(sw, 1, NULL), COLONY_EBUSY);
    colony_fake_clock_advance(&fake, 1);
    assert_int_equal(colony_sliding_window_take(sw, 1, NULL), 0);
    assert_int_equal(colony_sliding_window_take(sw, 1, &after), COLONY_EBUSY);
    assert_int_equal(after, 100);
    assert_int_equal(colony_sliding_window_take(sw, 11, &after), COLONY_EBUSY);
    assert_true(after == UINT64_MAX);
    colony_sliding_window_free(sw);
}

static void window_counts_across_boundary(void **state)
{
    (void)state;
    colony_sliding_window *sw = window(10, 1000, 500);
    for (int i = 0; i < 10; i++)
        assert_int_equal(colony_sliding_window_take(sw, 1, NULL), 0);
    /* Halfway into the next window, previous counts half: 5 of 10 are used. */
    colony_fake_clock_set(&fake, 1500);
    assert_int_equal(colony_sliding_window_count(sw), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(colony_sliding_window_take(sw, 1, NULL), 0);
    uint64_t after;
    assert_int_equal(colony_sliding_window_take(sw, 1, &after), COLONY_EBUSY);
    assert_int_equal(after, 100); /* previous loses one unit of weight per 100 ms */
    /* Predicted wait is exact: refused 1 ms early, admitted on time. */
    colony_fake_clock_advance(&fake, 99);
    assert_int_equal(colony_sliding_window_take(sw, 1, NULL), COLONY_EBUSY);
    colony_fake_clock_advance(&fake, 1);
    assert_int_equal(colony_sliding_window_take(sw, 1, NULL), 0);
    /* Two windows later nothing is left. */
    colony_fake_clock_set(&fake, 3000);
    assert_int_equal(colony_sliding_window_count(sw), 0);
    assert_int_equal(colony_sliding_window_take(sw, 10, NULL), 0);
    colony_sliding_window_free(sw);
}

static void window_bad_options_and_alloc_failure(void **state)
{
    (void)state;
    colony_sliding_window_options o = {.limit = 0, .window_ms = 1000};
    assert_null(colony_sliding_window_new(&o));
    o.limit = 1;
    o.window_ms = 0;
    assert_null(colony_sliding_window_new(&o));
    o.window_ms = 1000;
    colony__alloc_fail_after(0);
    assert_null(colony_sliding_window_new(&o));
    colony__alloc_fail_reset();
    colony_sliding_window *sw = colony_sliding_window_new(&o); /* system clock */
    assert_non_null(sw);
    assert_int_equal(colony_sliding_window_take(sw, 1, NULL), 0);
    colony_sliding_window_free(sw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bucket_burst_then_refill),
        cmocka_unit_test(bucket_fractional_refill_is_exact),
        cmocka_unit_test(bucket_rate_changes_and_bad_options),
        cmocka_unit_test(window_limit_within_one_window),
        cmocka_unit_test(window_counts_across_boundary),
        cmocka_unit_test(window_bad_options_and_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
