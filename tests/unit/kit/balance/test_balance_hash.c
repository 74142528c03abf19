/* Consistent hashing (ring with virtual nodes): removing an endpoint moves
 * only its keys (about 1/N), adding one moves about 1/(N+1), only to it;
 * weights, ejection and spec order behave. Also the 64-bit hash itself. */
#include "test_support.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "colony/balance.h"
#include "colony/error.h"
#include "kit/balance/balance_internal.h"

#define KEYS    10000
#define MAX_EPS 32

typedef struct fixture {
    colony_endpoint_spec specs[MAX_EPS];
    char ids[MAX_EPS][16];
    char addrs[MAX_EPS][32];
} fixture;

/* Endpoints "svc-<first>" .. "svc-<first+n-1>". */
static void fill(fixture *f, size_t first, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(f->ids[i], sizeof f->ids[i], "svc-%zu", first + i);
        snprintf(f->addrs[i], sizeof f->addrs[i], "10.0.1.%zu:8080", first + i);
        f->specs[i] = (colony_endpoint_spec){f->ids[i], f->addrs[i], 1, NULL};
    }
}

static colony_balancer *ring_balancer(fixture *f, size_t n)
{
    colony_balancer *b;
    assert_int_equal(colony_balancer_new(COLONY_BALANCE_RING_HASH, &b), 0);
    colony_balancer_set_seed(b, 1);
    assert_int_equal(colony_balancer_set_endpoints(b, f->specs, n), 0);
    return b;
}

/* Maps each of KEYS keys to its endpoint id (copied into out[k]). */
static void map_keys(colony_balancer *b, char out[][16], uint64_t now)
{
    char key[32];
    for (int k = 0; k < KEYS; k++) {
        int len = snprintf(key, sizeof key, "user-%d", k);
        colony_endpoint *ep;
        assert_int_equal(colony_balancer_pick(b, key, (size_t)len, now, &ep), 0);
        snprintf(out[k], 16, "%s", colony_endpoint_id(ep));
        assert_int_equal(colony_balancer_release(b, ep, 1, 1, now), 0);
    }
}

static char before[KEYS][16], after[KEYS][16];

static void removing_one_moves_only_its_keys(void **state)
{
    (void)state;
    const size_t n = 10;
    fixture f;
    fill(&f, 0, n);
    colony_balancer *b = ring_balancer(&f, n);
    map_keys(b, before, 0);
    int per[10] = {0};
    for (int k = 0; k < KEYS; k++)
        per[atoi(before[k] + 4)]++;
    for (size_t i = 0; i < n; i++) /* spread: 1000 each, generous band */
        assert_in_range(per[i], 600, 1400);

    /* Drop svc-3 (keep order of the rest). */
    memmove(&f.specs[3], &f.specs[4], (n - 4) * sizeof f.specs[0]);
    assert_int_equal(colony_balancer_set_endpoints(b, f.specs, n - 1), 0);
    map_keys(b, after, 0);
    int moved = 0;
    for (int k = 0; k < KEYS; k++) {
        int was_removed = strcmp(before[k], "svc-3") == 0;
        int did_move = strcmp(before[k], after[k]) != 0;
        assert_int_equal(was_removed, did_move); /* exactly svc-3's keys move */
        moved += did_move;
    }
    assert_true(moved > 0);
    assert_true(moved * 10 <= KEYS * 13 / 10); /* <= 1.3 / N */
    colony_balancer_free(b);
}

static void adding_one_moves_about_one_in_n_plus_one(void **state)
{
    (void)state;
    const size_t n = 10;
    fixture f;
    fill(&f, 0, n + 1);
    colony_balancer *b = ring_balancer(&f, n);
    map_keys(b, before, 0);
    assert_int_equal(colony_balancer_set_endpoints(b, f.specs, n + 1), 0);
    map_keys(b, after, 0);
    int moved = 0;
    for (int k = 0; k < KEYS; k++) {
        if (strcmp(before[k], after[k]) == 0) continue;
        assert_string_equal(after[k], "svc-10"); /* keys move only to the new one */
        moved++;
    }
    assert_true(moved * 11 >= KEYS * 6 / 10);  /* >= 0.6 / (N+1) */
    assert_true(moved * 11 <= KEYS * 13 / 10); /* <= 1.3 / (N+1) */
    colony_balancer_free(b);
}

static void order_does_not_matter_and_weights_do(void **state)
{
    (void)state;
    fixture f, g;
    fill(&f, 0, 5);
    fill(&g, 0, 5);
    colony_endpoint_spec tmp = g.specs[0];
    g.specs[0] = g.specs[4];
    g.specs[4] = tmp;
    colony_balancer *b1 = ring_balancer(&f, 5), *b2 = ring_balancer(&g, 5);
    map_keys(b1, before, 0);
    map_keys(b2, after, 0);
    for (int k = 0; k < KEYS; k++)
        assert_string_equal(before[k], after[k]);
    colony_balancer_free(b2);

    /* svc-0 at weight 4 of 8 in all gets about half the keys. */
    f.specs[0].weight = 4;
    assert_int_equal(colony_balancer_set_endpoints(b1, f.specs, 5), 0);
    map_keys(b1, after, 0);
    int heavy = 0;
    for (int k = 0; k < KEYS; k++)
        heavy += strcmp(after[k], "svc-0") == 0;
    assert_in_range(heavy, KEYS * 40 / 100, KEYS * 60 / 100);
    colony_balancer_free(b1);
}

static void ejected_keys_move_and_come_back(void **state)
{
    (void)state;
    fixture f;
    fill(&f, 0, 5);
    colony_balancer *b = ring_balancer(&f, 5);
    colony_balancer_set_outlier(b, 1, 1000, 1000, 100);
    map_keys(b, before, 0);
    colony_endpoint *victim = colony_balancer_find(b, "svc-2"), *ep;
    assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &ep), 0); /* no key: random */
    while (ep != victim) {
        colony_balancer_release(b, ep, 1, 1, 0);
        assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &ep), 0);
    }
    colony_balancer_release(b, ep, 0, 1, 0);
    assert_true(colony_endpoint_ejected(victim, 10));
    map_keys(b, after, 10);
    for (int k = 0; k < KEYS; k++) {
        if (strcmp(before[k], "svc-2") == 0)
            assert_string_not_equal(after[k], "svc-2");
        else
            assert_string_equal(after[k], before[k]);
    }
    map_keys(b, after, 1000);
    for (int k = 0; k < KEYS; k++)
        assert_string_equal(after[k], before[k]);
    colony_balancer_free(b);
}

static void ring_is_capped_for_large_weights(void **state)
{
    (void)state;
    fixture f;
    fill(&f, 0, 30);
    for (int i = 0; i < 30; i++)
        f.specs[i].weight = COLONY_BALANCE_MAX_WEIGHT;
    colony_balancer *b = ring_balancer(&f, 30);
    assert_true(b->ring.len <= (1u << 18) + 30);
    assert_true(b->ring.len >= (1u << 18) - 30);
    map_keys(b, before, 0);
    colony_balancer_free(b);
    assert_int_equal(colony_balancer_set_ring_points(NULL, 10), COLONY_EINVAL);
}

static void hash_is_deterministic_and_mixes(void **state)
{
    (void)state;
    assert_true(colony__hash64("abc", 3) == colony__hash64("abc", 3));
    assert_true(colony__hash64("abc", 3) != colony__hash64("abd", 3));
    assert_true(colony__hash64("", 0) != colony__hash64("\0", 1));
    /* Flipping one input bit flips about half of the output bits. */
    int total = 0;
    for (int bit = 0; bit < 64; bit++) {
        uint64_t x = 0x0123456789ABCDEFull;
        uint64_t y = x ^ (1ull << bit);
        total += __builtin_popcountll(colony__hash64(&x, 8) ^ colony__hash64(&y, 8));
    }
    assert_in_range(total / 64, 24, 40);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(removing_one_moves_only_its_keys),
        cmocka_unit_test(adding_one_moves_about_one_in_n_plus_one),
        cmocka_unit_test(order_does_not_matter_and_weights_do),
        cmocka_unit_test(ejected_keys_move_and_come_back),
        cmocka_unit_test(ring_is_capped_for_large_weights),
        cmocka_unit_test(hash_is_deterministic_and_mixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
