/* Circuit breaker: trips only past the minimum count, slow calls trip it,
 * OPEN rejects until open_ms, HALF_OPEN admits exactly N trials, and both
 * windows forget old outcomes. Driven by a fake clock. */
#include "test_support.h"
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "colony/resilience.h"
#include "core/alloc.h"

typedef struct transitions {
    int count;
    colony_breaker_state old_states[16];
    colony_breaker_state new_states[16];
} transitions;

static void on_change(colony_breaker *b, colony_breaker_state old_state,
                      colony_breaker_state new_state, void *ud)
{
    (void)b;
    transitions *t = ud;
    if (t->count < 16) {
        t->old_states[t->count] = old_state;
        t->new_states[t->count] = new_state;
    }
    t->count++;
}

static colony_fake_clock fake;
static transitions seen;

static colony_breaker *make(unsigned window_calls, uint64_t window_ms)
{
    colony_fake_clock_init(&fake, 1000000);
    memset(&seen, 0, sizeof(seen));
    colony_breaker_options o;
    colony_breaker_options_init(&o);
    o.name = "payments";
    o.failure_rate_percent = 50;
    o.minimum_calls = 10;
    o.window_calls = window_calls;
    o.window_ms = window_ms;
    o.slow_call_ms = 1000;
    o.slow_rate_percent = 60;
    o.open_ms = 5000;
    o.half_open_calls = 3;
    o.clock = colony_clock_fake(&fake);
    o.on_state_change = on_change;
    o.ud = &seen;
    colony_breaker *b = colony_breaker_new(&o);
    assert_non_null(b);
    return b;
}

static void call(colony_breaker *b, int ok, uint64_t duration)
{
    assert_int_equal(colony_breaker_allow(b), 0);
    colony_breaker_record(b, ok, duration);
}

static void trips_only_after_minimum_calls(void **state)
{
    (void)state;
    colony_breaker *b = make(100, 60000);
    for (int i = 0; i < 9; i++)
        call(b, 0, 10); /* 100% failures, but only 9 calls */
    assert_int_equal(colony_breaker_get_state(b), COLONY_BREAKER_CLOSED);
    assert_int_equal(seen.count, 0);
    call(b, 0, 10); /* the 10th reaches minimum_calls */
    assert_int_equal(colony_breaker_get_state(b), COLONY_BREAKER_OPEN);
    assert_int_equal(seen.count, 1);
    assert_int_equal(seen.old_states[0], COLONY_BREAKER_CLOSED);
    assert_int_equal(seen.new_states[0], COLONY_BREAKER_OPEN);
    colony_breaker_free(b);
}

static void trips_at_threshold_not_below(void **state)
{
    (void)state;
    colony_breaker *b = make(100, 60000);
    /* 6 ok + 4 failures = 40%: stays closed. */
    for (int i = 0; i < 6; i++)
        call(b, 1, 10);
    for (int i = 0; i < 4; i++)
        call(b, 0, 10);
    assert_int_equal(colony_breaker_get_state(b), COLONY_BREAKER_CLOSED);
    /* 11 calls, 5 failures = 45%: closed; 12 calls, 6 failures = 50%: open. */
    call(b, 0, 10);
    assert_int_equal(colony_breaker_get_state(b), COLONY_BREAKER_CLOSED);
    call(b, 0, 10);
    assert_int_equal(colony_breaker_get_state(b), COLONY_BREAKER_OPEN);
    colony_breaker_stats st;
    colony_breaker_get_stats(b, &st);
    assert_int_equal(st.calls, 12);
    assert_int_equal(st.failures, 6);
    assert_int_equal(st.transitions, 1);
    assert_int_equal(st.state, COLONY_BREAKER_OPEN);
    colony_breaker_free(b);
}

static void slow_calls_trip(void **state)
{
    (void)state;
    colony_breaker *b = make(100, 60000);
    /* All succeed; 6 of 10 are slower than 1000 ms: 60% slow trips it. */
    for (int i = 0; i < 4; i++)
        call(b, 1, 1000); /* exactly the threshold is not slow */
    for (int i = 0; i < 5; i++)
        call(b, 1, 1001);
    call(b, 1, 1); /* 10 calls, 5 slow = 50%: below 60% */
    assert_int_equal(colony_breaker_get_state(b), COLONY_BREAKER_CLOSED);
    call(b, 1, 5000); /* 6/11 */
    call(b, 1, 5000); /* 7/12 = 58% */
    assert_int_equal(colony_breaker_get_state(b), COLONY_BREAKER_CLOSED);
    colony_breaker_stats st;
    colony_breaker_get_stats(b, &st);
    assert_int_equal(st.window_slow, 7);
    assert_int_equal(st.failures, 0);
    call(b, 1, 5000); /* 8/13 = 61.5% */
    assert_int_equal(colony_breaker_get_state(b), COLONY_BREAKER_OPEN);
    colony_breaker_get_stats(b, &st);
    assert_int_equal(st.slow, 8);
    colony_breaker_free(b);
}

static void open_rejects_until_duration_then_half_open(void **state)
{
    (void)state;
    colony_breaker *b = make(100, 60000);
    for (int i = 0; i < 10; i++)
        call(b, 0, 1);
    assert_int_equal(colony_breaker_allow(b), COLONY_EBUSY);
    colony_fake_clock_advance(&fake, 4999);
    assert_int_equal(colony_breaker_allow(b), COLONY_EBUSY);
    colony_breaker_stats st;
    colony_breaker_get_stats(b, &st);
    assert_int_equal(st.rejected, 2);
    colony_fake_clock_advance(&fake, 1);
    assert_int_equal(colony_breaker_allow(b), 0); /* trial 1 */
    assert_int_equal(colony_breaker_get_state(b), COLONY_BREAKER_HALF_OPEN);
    assert_int_equal(colony_breaker_allow(b), 0); /* trial 2 */
    assert_int_equal(colony_breaker_allow(b), 0); /* trial 3 */
    assert_int_equal(colony_breaker_allow(b), COLONY_EBUSY);
    assert_int_equal(colony_breaker_allow(b), COLONY_EBUSY);
    /* All three succeed: closed, with a clean window. */
    colony_breaker_record(b, 1, 5);
    colony_breaker_record(b, 1, 5);
    assert_int_equal(colony_breaker_get_state(b), COLONY_BREAKER_HALF_OPEN);
    colony_breaker_record(b, 1, 5);
    assert_int_equal(colony_breaker_get_state(b), COLONY_BREAKER_CLOSED);
    colony_breaker_get_stats(b, &st);
    assert_int_equal(st.window_calls, 0);
    assert_int_equal(st.rejected, 4);
    assert_int_equal(seen.count, 3);
    assert_int_equal(seen.old_states[1], COLONY_BREAKER_OPEN);
    assert_int_equal(seen.new_states[1], COLONY_BREAKER_HALF_OPEN);
    assert_int_equal(seen.old_states[2], COLONY_BREAKER_HALF_OPEN);
    assert_int_equal(seen.new_states[2], COLONY_BREAKER_CLOSED);
    assert_int_equal(colony_breaker_allow(b), 0);
    colony_breaker_free(b);
}

static void trial_failure_reopens(void **state)
{
    (void)state;
    colony_breaker *b = make(100, 60000);
    for (int i = 0; i < 10; i++)
        call(b, 0, 1);
    colony_fake_clock_advance(&fake, 5000);
    assert_int_equal(colony_breaker_allow(b), 0);
    assert_int_equal(colony_breaker_allow(b), 0);
    colony_breaker_record(b, 1, 5);
    colony_breaker_record(b, 0, 5); /* one failed trial is enough */
    assert_int_equal(colony_breaker_get_state(b), COLONY_BREAKER_OPEN);
    assert_int_equal(seen.count, 3);
    assert_int_equal(seen.old_states[2], COLONY_BREAKER_HALF_OPEN);
    assert_int_equal(seen.new_states[2], COLONY_BREAKER_OPEN);
    /* The open period restarts from the re-open. */
    colony_fake_clock_advance(&fake, 4999);
    assert_int_equal(colony_breaker_allow(b), COLONY_EBUSY);
    colony_fake_clock_advance(&fake, 1);
    assert_int_equal(colony_breaker_allow(b), 0);
    /* One trial is out: its success counts, later unmatched ones do not
     * (without that, 3 successes would close the breaker). */
    for (int i = 0; i < 3; i++)
        colony_breaker_record(b, 1, 5);
    assert_int_equal(colony_breaker_get_state(b), COLONY_BREAKER_HALF_OPEN);
    /* A slow trial re-opens too. */
    colony_breaker_record(b, 1, 2000);
    assert_int_equal(colony_breaker_get_state(b), COLONY_BREAKER_OPEN);
    colony_breaker_free(b);
}

static void count_window_forgets_old_failures_by_time(void **state)
{
    (void)state;
    colony_breaker *b = make(100, 10000);
    for (int i = 0; i < 9; i++)
        call(b, 0, 1);
    colony_fake_clock_advance(&fake, 10000); /* those 9 are now out of the window */
    for (int i = 0; i < 9; i++)
        call(b, 0, 1);
    assert_int_equal(colony_breaker_get_state(b), COLONY_BREAKER_CLOSED);
    colony_breaker_stats st;
    colony_breaker_get_stats(b, &st);
    assert_int_equal(st.window_calls, 9);
    assert_int_equal(st.failures, 18);
    colony_fake_clock_advance(&fake, 9999);
    call(b, 0, 1);
    assert_int_equal(colony_breaker_get_state(b), COLONY_BREAKER_OPEN);
    colony_breaker_free(b);
}

static void count_window_keeps_last_n(void **state)
{
    (void)state;
    colony_breaker *b = make(10, 0); /* count only: last 10 calls */
    for (int i = 0; i < 4; i++)
        call(b, 0, 1);
    for (int i = 0; i < 20; i++)
        call(b, 1, 1); /* pushes the failures out */
    for (int i = 0; i < 4; i++)
        call(b, 0, 1); /* 4/10 in the window */
    assert_int_equal(colony_breaker_get_state(b), COLONY_BREAKER_CLOSED);
    call(b, 0, 1); /* 5/10 */
    assert_int_equal(colony_breaker_get_state(b), COLONY_BREAKER_OPEN);
    colony_breaker_free(b);
}

static void time_only_window_forgets(void **state)
{
    (void)state;
    colony_breaker *b = make(0, 10000); /* 10 buckets of 1000 ms */
    for (int i = 0; i < 9; i++)
        call(b, 0, 1);
    colony_breaker_stats st;
    colony_breaker_get_stats(b, &st);
    assert_int_equal(st.window_calls, 9);
    colony_fake_clock_advance(&fake, 10000);
    colony_breaker_get_stats(b, &st);
    assert_int_equal(st.window_calls, 0);
    for (int i = 0; i < 9; i++)
        call(b, 0, 1);
    assert_int_equal(colony_breaker_get_state(b), COLONY_BREAKER_CLOSED);
    colony_fake_clock_advance(&fake, 5000);
    call(b, 0, 1);
    assert_int_equal(colony_breaker_get_state(b), COLONY_BREAKER_OPEN);
    colony_breaker_free(b);
}

static void bad_options_and_alloc_failures(void **state)
{
    (void)state;
    colony_breaker_options o;
    colony_breaker_options_init(&o);
    o.window_calls = 0;
    o.window_ms = 0;
    assert_null(colony_breaker_new(&o));
    colony_breaker_options_init(&o);
    o.half_open_calls = 0;
    assert_null(colony_breaker_new(&o));
    colony_breaker_options_init(&o);
    o.failure_rate_percent = 101;
    assert_null(colony_breaker_new(&o));
    /* Each of the three allocations (struct, name, window) may fail. */
    for (long n = 0; n < 3; n++) {
        colony__alloc_fail_after(n);
        assert_null(colony_breaker_new(NULL));
        colony__alloc_fail_reset();
    }
    o.window_calls = 0; /* bucketed window allocation too */
    o.failure_rate_percent = 50;
    o.half_open_calls = 1;
    colony__alloc_fail_after(2);
    assert_null(colony_breaker_new(&o));
    colony__alloc_fail_reset();
    colony_breaker *b = colony_breaker_new(NULL);
    assert_non_null(b);
    assert_string_equal(colony_breaker_state_name(COLONY_BREAKER_HALF_OPEN), "half_open");
    colony_breaker_free(b);
    colony_breaker_free(NULL);
}

int main(void)
{
    colony_log_set_level(COLONY_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(trips_only_after_minimum_calls),
        cmocka_unit_test(trips_at_threshold_not_below),
        cmocka_unit_test(slow_calls_trip),
        cmocka_unit_test(open_rejects_until_duration_then_half_open),
        cmocka_unit_test(trial_failure_reopens),
        cmocka_unit_test(count_window_forgets_old_failures_by_time),
        cmocka_unit_test(count_window_keeps_last_n),
        cmocka_unit_test(time_only_window_forgets),
        cmocka_unit_test(bad_options_and_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
