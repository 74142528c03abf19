/* Deadlines: remaining time on a fake clock, the header round trip, what a
 * downstream call is given, and malformed header values rejected. */
#include "test_support.h"
#include <string.h>
#include "colony/clock.h"
#include "colony/error.h"
#include "colony/resilience.h"

static void remaining_counts_down(void **state)
{
    (void)state;
    colony_fake_clock fake;
    colony_fake_clock_init(&fake, 1000);
    colony_clock clock = colony_clock_fake(&fake);
    colony_deadline d = colony_deadline_in(&clock, 2000);
    assert_int_equal(colony_deadline_remaining(&d), 2000);
    assert_false(colony_deadline_expired(&d));
    colony_fake_clock_advance(&fake, 1500);
    assert_int_equal(colony_deadline_remaining(&d), 500);
    assert_int_equal(colony_deadline_timeout_ms(&d, 300), 300); /* own timeout is shorter */
    assert_int_equal(colony_deadline_timeout_ms(&d, 900), 500); /* deadline is shorter */
    assert_int_equal(colony_deadline_timeout_ms(&d, 0), 500);
    colony_fake_clock_advance(&fake, 500);
    assert_int_equal(colony_deadline_remaining(&d), 0);
    assert_true(colony_deadline_expired(&d));
    colony_fake_clock_advance(&fake, 500);
    assert_int_equal(colony_deadline_remaining(&d), 0);

    colony_deadline none = colony_deadline_none(&clock);
    assert_true(colony_deadline_remaining(&none) == UINT64_MAX);
    assert_false(colony_deadline_expired(&none));
    assert_int_equal(colony_deadline_timeout_ms(&none, 700), 700);
    /* A huge timeout saturates but stays a real deadline. */
    colony_deadline huge = colony_deadline_in(&clock, UINT64_MAX);
    assert_true(colony_deadline_remaining(&huge) < UINT64_MAX);
    /* The system clock is used when none is given and moves forward. */
    colony_deadline sys = colony_deadline_in(NULL, 60000);
    uint64_t left = colony_deadline_remaining(&sys);
    assert_true(left <= 60000 && left > 50000);
    uint64_t t0 = colony_clock_now(NULL);
    assert_true(colony_clock_now(NULL) >= t0);
}

static void header_round_trip_passes_on_what_is_left(void **state)
{
    (void)state;
    colony_fake_clock upstream_fake, downstream_fake;
    colony_fake_clock_init(&upstream_fake, 50);
    colony_fake_clock_init(&downstream_fake, 987654); /* clocks need not agree */
    colony_clock up = colony_clock_fake(&upstream_fake);
    colony_clock down = colony_clock_fake(&downstream_fake);
    colony_deadline d = colony_deadline_in(&up, 2000);
    colony_fake_clock_advance(&upstream_fake, 150);
    char value[21];
    assert_int_equal(colony_deadline_to_header(&d, value, sizeof(value)), 4);
    assert_string_equal(value, "1850");
    colony_deadline received;
    assert_int_equal(colony_deadline_from_header(&down, value, strlen(value), 0, &received), 0);
    assert_int_equal(colony_deadline_remaining(&received), 1850);
    assert_string_equal(COLONY_DEADLINE_HEADER, "X-Colony-Deadline-Ms");
    /* Surrounding whitespace is allowed; a cap clamps long deadlines. */
    assert_int_equal(colony_deadline_from_header(&down, " \t90000 ", 8, 30000, &received), 0);
    assert_int_equal(colony_deadline_remaining(&received), 30000);
    assert_int_equal(colony_deadline_from_header(&down, "0", 1, 0, &received), 0);
    assert_true(colony_deadline_expired(&received));
    /* No deadline: no header. Expired: do not call. Too small a buffer: E2BIG. */
    colony_deadline none = colony_deadline_none(&up);
    assert_int_equal(colony_deadline_to_header(&none, value, sizeof(value)), COLONY_ENOENT);
    assert_int_equal(colony_deadline_to_header(&d, value, 4), COLONY_E2BIG);
    assert_string_equal(value, "");
    colony_fake_clock_advance(&upstream_fake, 1850);
    assert_int_equal(colony_deadline_to_header(&d, value, sizeof(value)), COLONY_ETIMEDOUT);
}

static void bad_header_values_rejected(void **state)
{
    (void)state;
    colony_fake_clock fake;
    colony_fake_clock_init(&fake, 0);
    colony_clock clock = colony_clock_fake(&fake);
    static const char *const bad[] = {
        "", " ", "-5", "+5", "5s", "1.5", "0x10", "1 2", "abc", "1234567890123", "\0005"};
    colony_deadline d;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len = i == 10 ? 2 : strlen(bad[i]);
        assert_int_equal(colony_deadline_from_header(&clock, bad[i], len, 0, &d), COLONY_EINVAL);
    }
    assert_int_equal(colony_deadline_from_header(&clock, NULL, 0, 0, &d), COLONY_EINVAL);
    /* Reads exactly len bytes: the value ends at an inaccessible page. */
    char *guarded = colony_test_guarded_copy("123456789012", 12);
    assert_int_equal(colony_deadline_from_header(&clock, guarded, 12, 0, &d), 0);
    assert_true(colony_deadline_remaining(&d) == 123456789012ull);
    colony_test_guarded_free(guarded, 12);
}

static void grpc_timeout_units(void **state)
{
    (void)state;
    colony_fake_clock fake;
    colony_fake_clock_init(&fake, 0);
    colony_clock clock = colony_clock_fake(&fake);
    static const struct {
        const char *value;
        uint64_t ms;
    } good[] = {{"2H", 7200000}, {"3M", 180000}, {"4S", 4000},           {"250m", 250},
                {"1500u", 2},    {"1n", 1},      {"99999999m", 99999999}};
    colony_deadline d;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(
            colony_deadline_from_grpc_timeout(&clock, good[i].value, strlen(good[i].value), 0, &d),
            0);
        assert_true(colony_deadline_remaining(&d) == good[i].ms);
    }
    static const char *const bad[] = {"", "S", "10", "10x", "123456789S", "-1S", "1.5S"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(colony_deadline_from_grpc_timeout(&clock, bad[i], strlen(bad[i]), 0, &d),
                         COLONY_EINVAL);
    assert_int_equal(colony_deadline_from_grpc_timeout(&clock, "2H", 2, 1000, &d), 0);
    assert_int_equal(colony_deadline_remaining(&d), 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(remaining_counts_down),
        cmocka_unit_test(header_round_trip_passes_on_what_is_left),
        cmocka_unit_test(bad_header_values_rejected),
        cmocka_unit_test(grpc_timeout_units),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
