/* Retries: full-jitter bounds per attempt, determinism with a seeded source,
 * what is and is not retried, the retry budget and its floor; fallback. */
#include "test_support.h"
#include <string.h>
#include "colony/error.h"
#include "colony/resilience.h"
#include "core/alloc.h"

static void ceiling_doubles_then_caps(void **state)
{
    (void)state;
    assert_int_equal(colony_backoff_ceiling(100, 10000, 0), 100);
    assert_int_equal(colony_backoff_ceiling(100, 10000, 1), 200);
    assert_int_equal(colony_backoff_ceiling(100, 10000, 6), 6400);
    assert_int_equal(colony_backoff_ceiling(100, 10000, 7), 10000);
    assert_int_equal(colony_backoff_ceiling(100, 10000, 63), 10000);
    assert_int_equal(colony_backoff_ceiling(100, 10000, 200), 10000); /* no shift overflow */
    assert_true(colony_backoff_ceiling(3, UINT64_MAX, 62) == 3ull << 62);
    assert_true(colony_backoff_ceiling(3, UINT64_MAX, 63) == UINT64_MAX);
    assert_int_equal(colony_backoff_ceiling(0, 10000, 5), 0);
}

static void full_jitter_within_bounds_and_spread(void **state)
{
    (void)state;
    uint64_t seed = 42;
    for (unsigned attempt = 0; attempt < 12; attempt++) {
        uint64_t ceiling = colony_backoff_ceiling(50, 3000, attempt);
        uint64_t lo = UINT64_MAX, hi = 0;
        for (int i = 0; i < 2000; i++) {
            uint64_t d =
                colony_backoff_full_jitter(50, 3000, attempt, colony_random_splitmix64(&seed));
            assert_true(d <= ceiling);
            if (d < lo) lo = d;
            if (d > hi) hi = d;
        }
        /* Full jitter spreads over the whole range, not just near the top. */
        assert_true(lo <= ceiling / 10);
        assert_true(hi >= ceiling - ceiling / 10);
    }
    assert_int_equal(colony_backoff_full_jitter(50, 3000, 3, 400), 400);
    assert_int_equal(colony_backoff_full_jitter(50, 3000, 3, 401), 0); /* mod (400 + 1) */
}

static void policy_is_deterministic_with_seed(void **state)
{
    (void)state;
    uint64_t delays[2][4];
    for (int run = 0; run < 2; run++) {
        uint64_t seed = 7;
        colony_retry_policy p;
        colony_retry_policy_init(&p);
        p.max_attempts = 5;
        p.random = colony_random_splitmix64;
        p.random_ud = &seed;
        for (unsigned a = 1; a <= 4; a++) {
            assert_int_equal(
                colony_retry_next(&p, "GET", a, COLONY_ECONNREFUSED, 0, NULL, &delays[run][a - 1]),
                COLONY_RETRY_GO);
            assert_true(delays[run][a - 1] <= colony_backoff_ceiling(100, 10000, a - 1));
        }
        uint64_t d;
        assert_int_equal(colony_retry_next(&p, "GET", 5, COLONY_ECONNREFUSED, 0, NULL, &d),
                         COLONY_RETRY_EXHAUSTED);
    }
    assert_memory_equal(delays[0], delays[1], sizeof(delays[0]));
}

static void what_is_retried(void **state)
{
    (void)state;
    colony_retry_policy p;
    colony_retry_policy_init(&p);
    uint64_t d;
    assert_int_equal(colony_retry_next(&p, "GET", 1, 0, 200, NULL, &d), COLONY_RETRY_SUCCESS);
    assert_int_equal(colony_retry_next(&p, "GET", 1, 0, 0, NULL, &d), COLONY_RETRY_SUCCESS);
    assert_int_equal(colony_retry_next(&p, "GET", 1, 0, 503, NULL, &d), COLONY_RETRY_GO);
    assert_int_equal(colony_retry_next(&p, "GET", 1, 0, 502, NULL, &d), COLONY_RETRY_GO);
    assert_int_equal(colony_retry_next(&p, "GET", 1, 0, 504, NULL, &d), COLONY_RETRY_GO);
    assert_int_equal(colony_retry_next(&p, "GET", 1, COLONY_ETIMEDOUT, 0, NULL, &d),
                     COLONY_RETRY_GO);
    assert_int_equal(colony_retry_next(&p, "GET", 1, COLONY_ECONNRESET, 0, NULL, &d),
                     COLONY_RETRY_GO);
    assert_int_equal(colony_retry_next(&p, "GET", 1, 0, 500, NULL, &d), COLONY_RETRY_NOT_RETRYABLE);
    assert_int_equal(colony_retry_next(&p, "GET", 1, 0, 404, NULL, &d), COLONY_RETRY_NOT_RETRYABLE);
    assert_int_equal(colony_retry_next(&p, "GET", 1, 0, 429, NULL, &d), COLONY_RETRY_NOT_RETRYABLE);
    assert_int_equal(colony_retry_next(&p, "GET", 1, COLONY_EINVAL, 0, NULL, &d),
                     COLONY_RETRY_NOT_RETRYABLE);
    assert_int_equal(colony_retry_next(&p, "GET", 1, COLONY_ECANCELED, 0, NULL, &d),
                     COLONY_RETRY_NOT_RETRYABLE);
    p.retry_on = COLONY_RETRY_ON_429;
    assert_int_equal(colony_retry_next(&p, "GET", 1, 0, 429, NULL, &d), COLONY_RETRY_GO);
    assert_int_equal(colony_retry_next(&p, "GET", 1, COLONY_ETIMEDOUT, 0, NULL, &d),
                     COLONY_RETRY_NOT_RETRYABLE);
    colony_retry_policy_init(&p);
    /* Methods: only idempotent ones unless allowed. */
    static const char *const yes[] = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(colony_retry_next(&p, yes[i], 1, 0, 503, NULL, &d), COLONY_RETRY_GO);
    assert_int_equal(colony_retry_next(&p, NULL, 1, 0, 503, NULL, &d), COLONY_RETRY_GO);
    assert_int_equal(colony_retry_next(&p, "POST", 1, 0, 503, NULL, &d),
                     COLONY_RETRY_NOT_IDEMPOTENT);
    assert_int_equal(colony_retry_next(&p, "PATCH", 1, COLONY_ECONNREFUSED, 0, NULL, &d),
                     COLONY_RETRY_NOT_IDEMPOTENT);
    assert_int_equal(colony_retry_next(&p, "get", 1, 0, 503, NULL, &d),
                     COLONY_RETRY_NOT_IDEMPOTENT);
    p.allow_non_idempotent = 1;
    assert_int_equal(colony_retry_next(&p, "POST", 1, 0, 503, NULL, &d), COLONY_RETRY_GO);
    /* max_attempts 1: never retried. */
    p.max_attempts = 1;
    assert_int_equal(colony_retry_next(&p, "GET", 1, 0, 503, NULL, &d), COLONY_RETRY_EXHAUSTED);
    assert_string_equal(colony_retry_verdict_name(COLONY_RETRY_NO_BUDGET), "NO_BUDGET");
}

static void deadline_stops_retries(void **state)
{
    (void)state;
    colony_fake_clock fake;
    colony_fake_clock_init(&fake, 0);
    colony_clock clock = colony_clock_fake(&fake);
    uint64_t seed = 1;
    colony_retry_policy p;
    colony_retry_policy_init(&p);
    p.base_ms = 1000;
    p.cap_ms = 1000;
    p.random = colony_random_splitmix64;
    p.random_ud = &seed;
    colony_deadline none = colony_deadline_none(&clock);
    colony_deadline near = colony_deadline_in(&clock, 0);
    uint64_t d;
    assert_int_equal(colony_retry_next(&p, "GET", 1, 0, 503, &none, &d), COLONY_RETRY_GO);
    assert_int_equal(colony_retry_next(&p, "GET", 1, 0, 503, &near, &d), COLONY_RETRY_DEADLINE);
    colony_deadline far = colony_deadline_in(&clock, 1001); /* longer than any delay */
    assert_int_equal(colony_retry_next(&p, "GET", 1, 0, 503, &far, &d), COLONY_RETRY_GO);
}

static colony_fake_clock fake;

static colony_retry_budget *budget(unsigned percent, unsigned floor_per_sec)
{
    colony_fake_clock_init(&fake, 5000);
    colony_retry_budget_options o;
    colony_retry_budget_options_init(&o);
    o.percent = percent;
    o.min_retries_per_sec = floor_per_sec;
    o.window_ms = 10000;
    o.clock = colony_clock_fake(&fake);
    colony_retry_budget *b = colony_retry_budget_new(&o);
    assert_non_null(b);
    return b;
}

static void budget_caps_retries_at_percent(void **state)
{
    (void)state;
    colony_retry_budget *b = budget(20, 0);
    for (int i = 0; i < 100; i++)
        colony_retry_budget_record_request(b);
    for (int i = 0; i < 20; i++)
        assert_int_equal(colony_retry_budget_allow(b), 0);
    assert_int_equal(colony_retry_budget_allow(b), COLONY_EBUSY); /* the 21st */
    uint64_t req, ret;
    colony_retry_budget_counts(b, &req, &ret);
    assert_int_equal(req, 100);
    assert_int_equal(ret, 20);
    /* Five more requests earn one more retry. */
    for (int i = 0; i < 5; i++)
        colony_retry_budget_record_request(b);
    assert_int_equal(colony_retry_budget_allow(b), 0);
    assert_int_equal(colony_retry_budget_allow(b), COLONY_EBUSY);
    /* Once the window has passed everything is forgotten: no requests, no retries. */
    colony_fake_clock_advance(&fake, 10000);
    colony_retry_budget_counts(b, &req, &ret);
    assert_int_equal(req, 0);
    assert_int_equal(ret, 0);
    assert_int_equal(colony_retry_budget_allow(b), COLONY_EBUSY);
    colony_retry_budget_free(b);
}

static void budget_floor_allows_minimum(void **state)
{
    (void)state;
    colony_retry_budget *b = budget(20, 1); /* 1/s over 10 s: 10 retries with no traffic */
    for (int i = 0; i < 10; i++)
        assert_int_equal(colony_retry_budget_allow(b), 0);
    assert_int_equal(colony_retry_budget_allow(b), COLONY_EBUSY);
    for (int i = 0; i < 10; i++)
        colony_retry_budget_record_request(b);
    assert_int_equal(colony_retry_budget_allow(b), 0); /* 20% of 10 = 2 on top of the floor */
    assert_int_equal(colony_retry_budget_allow(b), 0);
    assert_int_equal(colony_retry_budget_allow(b), COLONY_EBUSY);
    colony_retry_budget_free(b);
}

static void policy_consults_budget(void **state)
{
    (void)state;
    colony_retry_budget *b = budget(50, 0);
    colony_retry_policy p;
    colony_retry_policy_init(&p);
    p.budget = b;
    colony_retry_budget_record_request(b);
    colony_retry_budget_record_request(b);
    uint64_t d;
    assert_int_equal(colony_retry_next(&p, "GET", 1, 0, 503, NULL, &d), COLONY_RETRY_GO);
    assert_int_equal(colony_retry_next(&p, "GET", 1, 0, 503, NULL, &d), COLONY_RETRY_NO_BUDGET);
    /* A non-retryable outcome does not spend budget. */
    colony_retry_budget_record_request(b);
    colony_retry_budget_record_request(b);
    assert_int_equal(colony_retry_next(&p, "POST", 1, 0, 503, NULL, &d),
                     COLONY_RETRY_NOT_IDEMPOTENT);
    assert_int_equal(colony_retry_next(&p, "GET", 1, 0, 503, NULL, &d), COLONY_RETRY_GO);
    colony_retry_budget_free(b);
}

static void budget_alloc_failures(void **state)
{
    (void)state;
    for (long n = 0; n < 2; n++) {
        colony__alloc_fail_after(n);
        assert_null(colony_retry_budget_new(NULL));
        colony__alloc_fail_reset();
    }
    colony_retry_budget_options o;
    colony_retry_budget_options_init(&o);
    o.window_ms = 0;
    assert_null(colony_retry_budget_new(&o));
    colony_retry_budget *b = colony_retry_budget_new(NULL); /* system clock */
    assert_non_null(b);
    colony_retry_budget_record_request(b);
    assert_int_equal(colony_retry_budget_allow(b), 0);
    colony_retry_budget_free(b);
    colony_retry_budget_free(NULL);
}

static int substitute(void *ud, int err)
{
    int *out = ud;
    *out = err;
    return 0;
}

static void fallback_filters_errors(void **state)
{
    (void)state;
    int got = 0;
    colony_fallback f = {.fn = substitute, .ud = &got, .on = COLONY_FALLBACK_ON_REJECT};
    assert_int_equal(colony_fallback_apply(&f, 0), 0);
    assert_int_equal(got, 0);
    assert_int_equal(colony_fallback_apply(&f, COLONY_ETIMEDOUT), COLONY_ETIMEDOUT);
    assert_int_equal(got, 0);
    assert_int_equal(colony_fallback_apply(&f, COLONY_EBUSY), 0);
    assert_int_equal(got, COLONY_EBUSY);
    f.on = 0; /* both */
    assert_int_equal(colony_fallback_apply(&f, COLONY_ETIMEDOUT), 0);
    assert_int_equal(got, COLONY_ETIMEDOUT);
    assert_int_equal(colony_fallback_apply(NULL, COLONY_EIO), COLONY_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ceiling_doubles_then_caps),
        cmocka_unit_test(full_jitter_within_bounds_and_spread),
        cmocka_unit_test(policy_is_deterministic_with_seed),
        cmocka_unit_test(what_is_retried),
        cmocka_unit_test(deadline_stops_retries),
        cmocka_unit_test(budget_caps_retries_at_percent),
        cmocka_unit_test(budget_floor_allows_minimum),
        cmocka_unit_test(policy_consults_budget),
        cmocka_unit_test(budget_alloc_failures),
        cmocka_unit_test(fallback_filters_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
