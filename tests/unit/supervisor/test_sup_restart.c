/* The restart decision on a fake clock: fixed delays, PM2's exponential
 * backoff (x1.5, capped at 15 s, reset after 30 s up), a crash loop ending as
 * errored after max_restarts unstable runs, stop_exit_codes and autorestart. */
#include "test_support.h"
#include "colony/clock.h"
#include "supervisor/restart.h"

static sup_restart_policy policy(void)
{
    sup_restart_policy p = {.autorestart = 1, .max_restarts = 16, .min_uptime_ms = 1000};
    return p;
}

/* Runs for up_ms, exits with code; returns the decision and the delay waited. */
static sup_next run(const sup_restart_policy *p, sup_restart_state *st, colony_fake_clock *clk,
                    uint64_t up_ms, int code, uint64_t *delay)
{
    colony_clock c = colony_clock_fake(clk);
    colony__sup_restart_started(st, colony_clock_now(&c));
    colony_fake_clock_advance(clk, up_ms);
    sup_next next = colony__sup_restart_on_exit(p, st, colony_clock_now(&c), code, delay);
    if (next == SUP_NEXT_RESTART) colony_fake_clock_advance(clk, *delay);
    return next;
}

static void fixed_delay(void **state)
{
    (void)state;
    sup_restart_policy p = policy();
    p.restart_delay_ms = 250;
    sup_restart_state st = {0};
    colony_fake_clock clk;
    colony_fake_clock_init(&clk, 5000);
    uint64_t d;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(run(&p, &st, &clk, 2000, 1, &d), SUP_NEXT_RESTART);
        assert_int_equal(d, 250);
    }
    assert_int_equal(st.restarts, 5);
    assert_int_equal(st.unstable, 0);
    /* Killed by a signal: restarted too. */
    assert_int_equal(run(&p, &st, &clk, 2000, -1, &d), SUP_NEXT_RESTART);
}

static void exponential_backoff_schedule(void **state)
{
    (void)state;
    sup_restart_policy p = policy();
    p.exp_backoff_ms = 100;
    p.max_restarts = 1000;
    sup_restart_state st = {0};
    colony_fake_clock clk;
    colony_fake_clock_init(&clk, 0);
    /* PM2: 100, 150, 225, 337, 505, 757, 1135, 1702, 2553, 3829, 5743, 8614,
     * 12921, then 15000 for good. */
    static const uint64_t want[] = {100,  150,  225,  337,  505,   757,   1135, 1702,
                                    2553, 3829, 5743, 8614, 12921, 15000, 15000};
    uint64_t d;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(run(&p, &st, &clk, 10, 1, &d), SUP_NEXT_RESTART);
        assert_int_equal(d, want[i]);
    }
    /* A run of 29.999 s keeps the backoff; one of 30 s starts it over. */
    assert_int_equal(run(&p, &st, &clk, 29999, 1, &d), SUP_NEXT_RESTART);
    assert_int_equal(d, 15000);
    assert_int_equal(run(&p, &st, &clk, 30000, 1, &d), SUP_NEXT_RESTART);
    assert_int_equal(d, 100);
    assert_int_equal(run(&p, &st, &clk, 10, 1, &d), SUP_NEXT_RESTART);
    assert_int_equal(d, 150);
}

static void crash_loop_ends_errored(void **state)
{
    (void)state;
    sup_restart_policy p = policy();
    p.max_restarts = 3;
    p.min_uptime_ms = 500;
    sup_restart_state st = {0};
    colony_fake_clock clk;
    colony_fake_clock_init(&clk, 0);
    uint64_t d;
    assert_int_equal(run(&p, &st, &clk, 100, 1, &d), SUP_NEXT_RESTART);
    assert_int_equal(run(&p, &st, &clk, 499, 1, &d), SUP_NEXT_RESTART);
    /* A stable run (>= min_uptime) forgives the unstable ones before it. */
    assert_int_equal(run(&p, &st, &clk, 500, 1, &d), SUP_NEXT_RESTART);
    assert_int_equal(st.unstable, 0);
    assert_int_equal(run(&p, &st, &clk, 1, 1, &d), SUP_NEXT_RESTART);
    assert_int_equal(run(&p, &st, &clk, 1, 1, &d), SUP_NEXT_RESTART);
    assert_int_equal(run(&p, &st, &clk, 1, 1, &d), SUP_NEXT_ERRORED);
    assert_int_equal(st.restarts, 5);
    /* A user's start begins a fresh count. */
    colony__sup_restart_reset(&st);
    assert_int_equal(run(&p, &st, &clk, 1, 1, &d), SUP_NEXT_RESTART);
    /* max_restarts 0: the first unstable exit is final. */
    p.max_restarts = 0;
    sup_restart_state fresh = {0};
    assert_int_equal(run(&p, &fresh, &clk, 1, 1, &d), SUP_NEXT_ERRORED);
    assert_int_equal(run(&p, &fresh, &clk, 5000, 1, &d), SUP_NEXT_RESTART);
}

static void stop_exit_codes_and_autorestart(void **state)
{
    (void)state;
    static const int codes[] = {0, 3};
    sup_restart_policy p = policy();
    p.stop_exit_codes = codes;
    p.nstop_exit_codes = 2;
    sup_restart_state st = {0};
    colony_fake_clock clk;
    colony_fake_clock_init(&clk, 0);
    uint64_t d;
    assert_int_equal(run(&p, &st, &clk, 5000, 0, &d), SUP_NEXT_STOPPED);
    assert_int_equal(run(&p, &st, &clk, 5000, 3, &d), SUP_NEXT_STOPPED);
    assert_int_equal(run(&p, &st, &clk, 5000, 2, &d), SUP_NEXT_RESTART);
    assert_int_equal(run(&p, &st, &clk, 5000, -1, &d), SUP_NEXT_RESTART);
    p.autorestart = 0;
    assert_int_equal(run(&p, &st, &clk, 5000, 2, &d), SUP_NEXT_STOPPED);
    assert_int_equal(st.restarts, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fixed_delay),
        cmocka_unit_test(exponential_backoff_schedule),
        cmocka_unit_test(crash_loop_ends_errored),
        cmocka_unit_test(stop_exit_codes_and_autorestart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
