/* Balancer: strategy sequences and proportions, request accounting, outlier
 * ejection, set updates while requests are in flight, allocation failures. */
#include "test_support.h"
#include <stdio.h>
#include <string.h>
#include "colony/balance.h"
#include "colony/error.h"
#include "core/alloc.h"

#define MAX_EPS 16

/* Builds specs with ids "a", "b", ... and the given weights (0 ends). */
static size_t make_specs(colony_endpoint_spec *specs, const uint32_t *weights, size_t n)
{
    static const char *ids[MAX_EPS] = {"a", "b", "c", "d", "e", "f", "g", "h",
                                       "i", "j", "k", "l", "m", "n", "o", "p"};
    static char addrs[MAX_EPS][32];
    for (size_t i = 0; i < n; i++) {
        snprintf(addrs[i], sizeof addrs[i], "10.0.0.%zu:80", i + 1);
        specs[i] = (colony_endpoint_spec){ids[i], addrs[i], weights ? weights[i] : 1, NULL};
    }
    return n;
}

static colony_balancer *new_balancer(colony_balance_strategy s, const uint32_t *weights, size_t n)
{
    colony_balancer *b;
    assert_int_equal(colony_balancer_new(s, &b), 0);
    colony_balancer_set_seed(b, 42);
    colony_endpoint_spec specs[MAX_EPS];
    make_specs(specs, weights, n);
    assert_int_equal(colony_balancer_set_endpoints(b, specs, n), 0);
    return b;
}

/* Picks and releases at once (ok), returning the id's first letter. */
static char pick_release(colony_balancer *b, uint64_t now)
{
    colony_endpoint *ep;
    assert_int_equal(colony_balancer_pick(b, NULL, 0, now, &ep), 0);
    char c = colony_endpoint_id(ep)[0];
    assert_int_equal(colony_balancer_release(b, ep, 1, 1, now), 0);
    return c;
}

static void sequence_of(colony_balancer *b, char *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = pick_release(b, 0);
    out[n] = '\0';
}

static void round_robin_full_cycle(void **state)
{
    (void)state;
    uint32_t w[] = {5, 1, 1};
    colony_balancer *b = new_balancer(COLONY_BALANCE_ROUND_ROBIN, w, 3);
    char seq[16];
    sequence_of(b, seq, 7);
    assert_string_equal(seq, "abcabca"); /* weights ignored */
    colony_balancer_free(b);
}

static void smooth_wrr_nginx_sequence(void **state)
{
    (void)state;
    uint32_t w[] = {5, 1, 1};
    colony_balancer *b = new_balancer(COLONY_BALANCE_WEIGHTED_RR, w, 3);
    char seq[16];
    sequence_of(b, seq, 14);
    assert_string_equal(seq, "aabacaaaabacaa"); /* two full cycles */
    colony_balancer_free(b);
}

static void smooth_wrr_cycle_counts(void **state)
{
    (void)state;
    uint32_t w[] = {4, 3, 2, 1};
    colony_balancer *b = new_balancer(COLONY_BALANCE_WEIGHTED_RR, w, 4);
    char seq[128];
    sequence_of(b, seq, 10);
    assert_string_equal(seq, "abcabdacba"); /* from an independent reference */
    sequence_of(b, seq, 100);
    int counts[4] = {0};
    for (int i = 0; i < 100; i++)
        counts[seq[i] - 'a']++;
    assert_int_equal(counts[0], 40);
    assert_int_equal(counts[1], 30);
    assert_int_equal(counts[2], 20);
    assert_int_equal(counts[3], 10);
    colony_balancer_free(b);
}

static void random_weighted_proportions(void **state)
{
    (void)state;
    uint32_t w[] = {1, 2, 7};
    colony_balancer *b = new_balancer(COLONY_BALANCE_RANDOM, w, 3);
    int counts[3] = {0};
    const int picks = 100000;
    for (int i = 0; i < picks; i++)
        counts[pick_release(b, 0) - 'a']++;
    assert_in_range(counts[0], picks * 8 / 100, picks * 12 / 100);
    assert_in_range(counts[1], picks * 18 / 100, picks * 22 / 100);
    assert_in_range(counts[2], picks * 68 / 100, picks * 72 / 100);

    /* Same seed, same picks. */
    colony_balancer *b2 = new_balancer(COLONY_BALANCE_RANDOM, w, 3);
    colony_balancer_set_seed(b, 7);
    colony_balancer_set_seed(b2, 7);
    char s1[65], s2[65];
    sequence_of(b, s1, 64);
    sequence_of(b2, s2, 64);
    assert_string_equal(s1, s2);
    colony_balancer_free(b);
    colony_balancer_free(b2);
}

static void least_conn_considers_weight(void **state)
{
    (void)state;
    /* Equal weights: ties rotate, and a released slot is refilled first. */
    colony_balancer *b = new_balancer(COLONY_BALANCE_LEAST_CONN, NULL, 3);
    colony_endpoint *held[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &held[i]), 0);
    assert_ptr_not_equal(held[0], held[1]);
    assert_ptr_not_equal(held[1], held[2]);
    assert_ptr_not_equal(held[0], held[2]);
    colony_endpoint *busy_b = colony_balancer_find(b, "b");
    assert_int_equal(colony_balancer_release(b, busy_b, 1, 1, 0), 0);
    for (int i = 0; i < 5; i++) { /* b is the only one with 0 active */
        colony_endpoint *ep;
        assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &ep), 0);
        assert_string_equal(colony_endpoint_id(ep), "b");
        assert_int_equal(colony_balancer_release(b, ep, 1, 1, 0), 0);
    }
    for (int i = 0; i < 3; i++)
        if (held[i] != busy_b) colony_balancer_release(b, held[i], 1, 1, 0);
    colony_balancer_free(b);

    /* Weights 1 and 3: held requests end up in proportion. */
    uint32_t w[] = {1, 3};
    b = new_balancer(COLONY_BALANCE_LEAST_CONN, w, 2);
    colony_endpoint *eps[40];
    for (int i = 0; i < 40; i++)
        assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &eps[i]), 0);
    assert_in_range(colony_endpoint_active(colony_balancer_find(b, "a")), 9, 11);
    assert_in_range(colony_endpoint_active(colony_balancer_find(b, "b")), 29, 31);
    for (int i = 0; i < 40; i++)
        colony_balancer_release(b, eps[i], 1, 1, 0);
    colony_endpoint *a1, *b1, *b2, *next;
    a1 = colony_balancer_find(b, "a");
    assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &b1), 0);
    assert_string_equal(colony_endpoint_id(b1), "b"); /* idle: 1/3 < 1/1 */
    assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &b2), 0);
    assert_string_equal(colony_endpoint_id(b2), "b"); /* 2/3 < 1/1 */
    assert_int_equal(colony_endpoint_active(a1), 0);
    assert_int_equal(colony_balancer_release(b, b1, 1, 1, 0), 0);
    assert_int_equal(colony_balancer_release(b, b2, 1, 1, 0), 0);
    assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &next), 0);
    assert_string_equal(colony_endpoint_id(next), "b");
    colony_balancer_release(b, next, 1, 1, 0);
    colony_balancer_free(b);
}

static void p2c_prefers_less_loaded(void **state)
{
    (void)state;
    colony_balancer *b = new_balancer(COLONY_BALANCE_P2C, NULL, 3);
    colony_endpoint *held[20];
    int n_held = 0;
    /* Load a and b with 10 requests each. */
    while (n_held < 20) {
        colony_endpoint *ep;
        assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &ep), 0);
        if (colony_endpoint_id(ep)[0] == 'c' ||
            colony_endpoint_active(ep) > 10) { /* keep c idle, a and b at 10 */
            colony_balancer_release(b, ep, 1, 1, 0);
            continue;
        }
        held[n_held++] = ep;
    }
    assert_int_equal(colony_endpoint_active(colony_balancer_find(b, "a")), 10);
    int counts[3] = {0};
    for (int i = 0; i < 3000; i++)
        counts[pick_release(b, 0) - 'a']++;
    /* c is one of the two choices 2/3 of the time and then always wins. */
    assert_in_range(counts[2], 1800, 2200);
    for (int i = 0; i < n_held; i++)
        colony_balancer_release(b, held[i], 1, 1, 0);
    colony_balancer_free(b);

    /* Weight-aware: with 1 and 4, held requests split about 1:4. */
    uint32_t w[] = {1, 4};
    b = new_balancer(COLONY_BALANCE_P2C, w, 2);
    colony_endpoint *eps[50];
    for (int i = 0; i < 50; i++)
        assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &eps[i]), 0);
    assert_in_range(colony_endpoint_active(colony_balancer_find(b, "a")), 8, 12);
    for (int i = 0; i < 50; i++)
        colony_balancer_release(b, eps[i], 1, 1, 0);
    colony_balancer_free(b);
}

static char pick_key(colony_balancer *b, const char *key, uint64_t now)
{
    colony_endpoint *ep;
    assert_int_equal(colony_balancer_pick(b, key, strlen(key), now, &ep), 0);
    char c = colony_endpoint_id(ep)[0];
    colony_balancer_release(b, ep, 1, 1, now);
    return c;
}

static void ip_hash_stable_and_spread(void **state)
{
    (void)state;
    colony_balancer *b = new_balancer(COLONY_BALANCE_IP_HASH, NULL, 5);
    colony_balancer_set_outlier(b, 1, 1000, 1000, 100);
    char owner[1000];
    int counts[5] = {0};
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "10.1.%d.%d", i / 256, i % 256);
        owner[i] = pick_key(b, key, 0);
        assert_int_equal(pick_key(b, key, 0), owner[i]);
        assert_int_equal(pick_key(b, key, 0), owner[i]);
        counts[owner[i] - 'a']++;
    }
    for (int i = 0; i < 5; i++)
        assert_in_range(counts[i], 130, 270);

    /* Eject c: only c's keys move; after the ejection ends they come back. */
    colony_endpoint *c = colony_balancer_find(b, "c");
    colony_endpoint *ep;
    while (colony_balancer_pick(b, NULL, 0, 0, &ep) == 0 && ep != c)
        colony_balancer_release(b, ep, 1, 1, 0);
    colony_balancer_release(b, ep, 0, 1, 0);
    assert_true(colony_endpoint_ejected(c, 0));
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "10.1.%d.%d", i / 256, i % 256);
        char now_owner = pick_key(b, key, 10);
        if (owner[i] == 'c')
            assert_int_not_equal(now_owner, 'c');
        else
            assert_int_equal(now_owner, owner[i]);
    }
    for (int i = 0; i < 1000; i++) { /* c is back at 1000 */
        snprintf(key, sizeof key, "10.1.%d.%d", i / 256, i % 256);
        assert_int_equal(pick_key(b, key, 1000), owner[i]);
    }
    /* No key: a random endpoint, still a valid pick. */
    assert_int_equal(colony_balancer_pick(b, NULL, 0, 1000, &ep), 0);
    colony_balancer_release(b, ep, 1, 1, 1000);
    colony_balancer_free(b);
}

/* Fails `n` requests in a row on the balancer's only endpoint. */
static void fail_times(colony_balancer *b, int n, uint64_t now)
{
    for (int i = 0; i < n; i++) {
        colony_endpoint *ep;
        assert_int_equal(colony_balancer_pick(b, NULL, 0, now, &ep), 0);
        assert_int_equal(colony_balancer_release(b, ep, 0, 1, now), 0);
    }
}

static void ejection_grows_caps_and_returns(void **state)
{
    (void)state;
    colony_balancer *b = new_balancer(COLONY_BALANCE_ROUND_ROBIN, NULL, 1);
    assert_int_equal(colony_balancer_set_outlier(b, 3, 1000, 3500, 10), 0);
    colony_balancer_set_outlier_decay(b, 0);
    colony_endpoint *a = colony_balancer_find(b, "a"), *ep;

    /* A success resets the streak. */
    fail_times(b, 2, 0);
    assert_int_equal(colony_endpoint_consecutive_failures(a), 2);
    assert_int_equal(pick_release(b, 0), 'a');
    assert_int_equal(colony_endpoint_consecutive_failures(a), 0);
    fail_times(b, 2, 0);
    assert_false(colony_endpoint_ejected(a, 0));

    /* The third failure in a row ejects for base x 1; all ejected: ENOENT. */
    uint64_t now = 100;
    fail_times(b, 1, now);
    assert_true(colony_endpoint_ejected(a, now));
    assert_int_equal(colony_endpoint_times_ejected(a), 1);
    assert_int_equal(colony_balancer_pick(b, NULL, 0, now + 999, &ep), COLONY_ENOENT);
    assert_null(ep);
    assert_int_equal(colony_balancer_available(b, now + 999), 0);
    assert_int_equal(colony_balancer_pick(b, NULL, 0, now + 1000, &ep), 0);
    assert_int_equal(colony_balancer_release(b, ep, 1, 1, now + 1000), 0);

    /* Durations 2000, 3000, then capped at 3500. */
    uint64_t expected[] = {2000, 3000, 3500, 3500};
    for (int round = 0; round < 4; round++) {
        now += 10000;
        fail_times(b, 3, now);
        assert_int_equal(colony_endpoint_times_ejected(a), round + 2);
        assert_int_equal(colony_balancer_pick(b, NULL, 0, now + expected[round] - 1, &ep),
                         COLONY_ENOENT);
        assert_int_equal(colony_balancer_pick(b, NULL, 0, now + expected[round], &ep), 0);
        colony_balancer_release(b, ep, 1, 1, now + expected[round]);
    }
    colony_balancer_free(b);
}

static void ejection_decays_and_ignores_in_flight(void **state)
{
    (void)state;
    colony_balancer *b = new_balancer(COLONY_BALANCE_ROUND_ROBIN, NULL, 1);
    colony_balancer_set_outlier(b, 2, 1000, 60000, 10);
    colony_balancer_set_outlier_decay(b, 5000);
    colony_endpoint *a = colony_balancer_find(b, "a"), *late, *ep;
    assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &late), 0); /* in flight */
    fail_times(b, 2, 0);
    assert_true(colony_endpoint_ejected(a, 0));
    /* The in-flight failure lands while ejected: not a new streak. */
    assert_int_equal(colony_balancer_release(b, late, 0, 1, 10), 0);
    assert_int_equal(colony_endpoint_consecutive_failures(a), 0);
    /* Back at 1000; failing again at 2000 doubles (no full interval passed). */
    fail_times(b, 2, 2000);
    assert_int_equal(colony_endpoint_times_ejected(a), 2);
    assert_int_equal(colony_balancer_pick(b, NULL, 0, 3999, &ep), COLONY_ENOENT);
    /* Back at 4000; two full intervals later both are forgiven: 1 x base. */
    fail_times(b, 2, 4000 + 10000);
    assert_int_equal(colony_endpoint_times_ejected(a), 1);
    assert_int_equal(colony_balancer_pick(b, NULL, 0, 15000, &ep), 0);
    colony_balancer_release(b, ep, 1, 1, 15000);
    colony_balancer_free(b);
}

static void max_ejection_percent_respected(void **state)
{
    (void)state;
    colony_balancer *b = new_balancer(COLONY_BALANCE_ROUND_ROBIN, NULL, 10);
    colony_balancer_set_outlier(b, 3, 1000, 1000, 20); /* at most 2 of 10 */
    colony_endpoint *eps[10];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 10; i++)
            assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &eps[i]), 0);
        for (int i = 0; i < 10; i++) /* a, b, c fail */
            colony_balancer_release(b, eps[i], colony_endpoint_id(eps[i])[0] > 'c', 1, 0);
    }
    assert_true(colony_endpoint_ejected(colony_balancer_find(b, "a"), 0));
    assert_true(colony_endpoint_ejected(colony_balancer_find(b, "b"), 0));
    colony_endpoint *c = colony_balancer_find(b, "c");
    assert_false(colony_endpoint_ejected(c, 0));
    assert_int_equal(colony_endpoint_consecutive_failures(c), 3); /* refused, streak kept */
    assert_int_equal(colony_balancer_available(b, 0), 8);
    colony_endpoint *ep;
    for (int i = 0; i < 16; i++) { /* ejected ones are skipped; c keeps failing, refused */
        assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &ep), 0);
        assert_true(colony_endpoint_id(ep)[0] > 'b');
        colony_balancer_release(b, ep, ep != c, 1, 0);
    }
    assert_false(colony_endpoint_ejected(c, 0));
    assert_int_equal(colony_endpoint_consecutive_failures(c), 5);
    /* Once a and b are back, c's next failure ejects it. */
    do {
        assert_int_equal(colony_balancer_pick(b, NULL, 0, 1000, &ep), 0);
        colony_balancer_release(b, ep, ep != c, 1, 1000);
    } while (ep != c);
    assert_true(colony_endpoint_ejected(c, 1000));
    colony_balancer_free(b);

    /* Default 10% of 3: the first ejection is allowed (none out), a second not. */
    b = new_balancer(COLONY_BALANCE_ROUND_ROBIN, NULL, 3);
    colony_balancer_set_outlier(b, 1, 1000, 1000, 10);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &ep), 0);
        colony_balancer_release(b, ep, 0, 1, 0);
    }
    assert_int_equal(colony_balancer_available(b, 0), 2);
    colony_balancer_free(b);
}

static void set_update_keeps_state(void **state)
{
    (void)state;
    uint32_t w[] = {5, 1, 1};
    colony_endpoint_spec specs[MAX_EPS];
    colony_balancer *b = new_balancer(COLONY_BALANCE_WEIGHTED_RR, w, 3);
    char seq[16];
    sequence_of(b, seq, 3);
    assert_string_equal(seq, "aab");
    colony_endpoint *a = colony_balancer_find(b, "a"), *held_b, *ep;
    int user_tag;
    make_specs(specs, w, 3);
    specs[0].user = &user_tag;
    assert_int_equal(colony_balancer_set_endpoints(b, specs, 3), 0);
    assert_ptr_equal(colony_balancer_find(b, "a"), a);
    assert_ptr_equal(colony_endpoint_user(a), &user_tag);
    sequence_of(b, seq, 4); /* the cycle continues where it was */
    assert_string_equal(seq, "acaa");

    /* Remove b while a request on it is in flight. */
    do {
        assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &held_b), 0);
        if (colony_endpoint_id(held_b)[0] != 'b') colony_balancer_release(b, held_b, 1, 1, 0);
    } while (colony_endpoint_id(held_b)[0] != 'b');
    colony_endpoint_spec without_b[2] = {specs[0], specs[2]};
    without_b[0].weight = 2;
    assert_int_equal(colony_balancer_set_endpoints(b, without_b, 2), 0);
    assert_int_equal(colony_balancer_count(b), 2);
    assert_null(colony_balancer_find(b, "b"));
    assert_false(colony_endpoint_in_set(held_b));
    assert_int_equal(colony_endpoint_weight(a), 2);
    for (int i = 0; i < 30; i++)
        assert_int_not_equal(pick_release(b, 0), 'b');
    /* Releasing the removed endpoint is safe, feeds nothing, frees it. */
    assert_int_equal(colony_balancer_release(b, held_b, 0, 1, 0), 0);

    /* Active counts and ejection survive; a changed address is a new endpoint. */
    colony_balancer_set_outlier(b, 1, 5000, 5000, 100);
    assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &ep), 0);
    colony_endpoint *c = colony_balancer_find(b, "c");
    while (ep != c) {
        colony_balancer_release(b, ep, 1, 1, 0);
        assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &ep), 0);
    }
    colony_balancer_release(b, ep, 0, 1, 0); /* c ejected */
    colony_endpoint *held_a;
    do {
        assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &held_a), 0);
    } while (held_a != a);
    assert_int_equal(colony_balancer_set_endpoints(b, without_b, 2), 0);
    assert_int_equal(colony_endpoint_active(a), 1);
    assert_true(colony_endpoint_ejected(c, 0));
    assert_int_equal(colony_balancer_available(b, 0), 1);
    without_b[0].address = "10.9.9.9:81";
    assert_int_equal(colony_balancer_set_endpoints(b, without_b, 2), 0);
    colony_endpoint *a2 = colony_balancer_find(b, "a");
    assert_ptr_not_equal(a2, a);
    assert_string_equal(colony_endpoint_address(a2), "10.9.9.9:81");
    assert_int_equal(colony_endpoint_active(a2), 0);
    assert_int_equal(colony_balancer_release(b, held_a, 1, 1, 0), 0);

    /* Bad input changes nothing. */
    colony_endpoint_spec dup[2] = {specs[0], specs[0]};
    assert_int_equal(colony_balancer_set_endpoints(b, dup, 2), COLONY_EINVAL);
    colony_endpoint_spec bad = specs[0];
    bad.weight = COLONY_BALANCE_MAX_WEIGHT + 1;
    assert_int_equal(colony_balancer_set_endpoints(b, &bad, 1), COLONY_EINVAL);
    bad = specs[0];
    bad.id = "";
    assert_int_equal(colony_balancer_set_endpoints(b, &bad, 1), COLONY_EINVAL);
    bad = specs[0];
    bad.address = NULL;
    assert_int_equal(colony_balancer_set_endpoints(b, &bad, 1), COLONY_EINVAL);
    assert_int_equal(colony_balancer_count(b), 2);
    assert_ptr_equal(colony_balancer_find(b, "a"), a2);
    colony_balancer_free(b);
}

static void empty_and_all_ejected(void **state)
{
    (void)state;
    colony_balancer *b;
    colony_endpoint *ep = (colony_endpoint *)&ep;
    assert_int_equal(colony_balancer_new(COLONY_BALANCE_P2C, &b), 0);
    assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &ep), COLONY_ENOENT);
    assert_null(ep);
    colony_endpoint_spec specs[2];
    make_specs(specs, NULL, 2);
    assert_int_equal(colony_balancer_set_endpoints(b, specs, 2), 0);
    colony_balancer_set_outlier(b, 1, 1000, 1000, 100);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &ep), 0);
        colony_balancer_release(b, ep, 0, 1, 0);
    }
    assert_int_equal(colony_balancer_pick(b, NULL, 0, 500, &ep), COLONY_ENOENT);
    assert_null(ep);
    assert_int_equal(colony_balancer_set_endpoints(b, NULL, 0), 0);
    assert_int_equal(colony_balancer_pick(b, NULL, 0, 5000, &ep), COLONY_ENOENT);
    colony_balancer_free(b);
    assert_int_equal(colony_balancer_new((colony_balance_strategy)99, &b), COLONY_EINVAL);
    assert_null(b);
}

static void release_after_free_and_misuse(void **state)
{
    (void)state;
    colony_balancer *b = new_balancer(COLONY_BALANCE_ROUND_ROBIN, NULL, 2);
    colony_endpoint *ep, *idle;
    assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &ep), 0);
    idle = colony_balancer_find(b, "b");
    assert_int_equal(colony_balancer_release(b, idle, 1, 1, 0), COLONY_EINVAL); /* not picked */
    assert_int_equal(colony_balancer_release(b, NULL, 1, 1, 0), COLONY_EINVAL);
    assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, NULL), COLONY_EINVAL);
    colony_balancer_free(b);
    assert_false(colony_endpoint_in_set(ep));
    assert_string_equal(colony_endpoint_id(ep), "a");                /* still valid while picked */
    assert_int_equal(colony_balancer_release(NULL, ep, 1, 1, 0), 0); /* frees it (LSan) */
}

/* Every allocation in new and set_endpoints may fail; on failure the old set
 * is intact and usable. */
static void allocation_failures(void **state)
{
    (void)state;
    colony_balancer *b = NULL;
    colony__alloc_fail_after(0);
    assert_int_equal(colony_balancer_new(COLONY_BALANCE_RING_HASH, &b), COLONY_ENOMEM);
    colony__alloc_fail_reset();
    assert_null(b);

    colony_balance_strategy strategies[] = {COLONY_BALANCE_WEIGHTED_RR, COLONY_BALANCE_RING_HASH};
    for (size_t s = 0; s < 2; s++) {
        colony_balancer *bal = new_balancer(strategies[s], NULL, 4);
        colony_endpoint *a = colony_balancer_find(bal, "a");
        colony_endpoint_spec specs[MAX_EPS];
        make_specs(specs, NULL, 8);
        specs[0].weight = 3;
        int failed = 0;
        for (long k = 0; k < 100; k++) {
            colony__alloc_fail_after(k);
            int rc = colony_balancer_set_endpoints(bal, specs, 8);
            colony__alloc_fail_reset();
            if (rc == 0) break;
            failed++;
            assert_int_equal(rc, COLONY_ENOMEM);
            assert_int_equal(colony_balancer_count(bal), 4);
            assert_ptr_equal(colony_balancer_find(bal, "a"), a);
            assert_int_equal(colony_endpoint_weight(a), 1);
            assert_int_equal(pick_key(bal, "k", 0) >= 'a', 1);
        }
        assert_true(failed >= 2);
        assert_int_equal(colony_balancer_count(bal), 8);
        assert_ptr_equal(colony_balancer_find(bal, "a"), a);
        assert_int_equal(colony_endpoint_weight(a), 3);
        colony_balancer_free(bal);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_robin_full_cycle),
        cmocka_unit_test(smooth_wrr_nginx_sequence),
        cmocka_unit_test(smooth_wrr_cycle_counts),
        cmocka_unit_test(random_weighted_proportions),
        cmocka_unit_test(least_conn_considers_weight),
        cmocka_unit_test(p2c_prefers_less_loaded),
        cmocka_unit_test(ip_hash_stable_and_spread),
        cmocka_unit_test(ejection_grows_caps_and_returns),
        cmocka_unit_test(ejection_decays_and_ignores_in_flight),
        cmocka_unit_test(max_ejection_percent_respected),
        cmocka_unit_test(set_update_keeps_state),
        cmocka_unit_test(empty_and_all_ejected),
        cmocka_unit_test(release_after_free_and_misuse),
        cmocka_unit_test(allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
