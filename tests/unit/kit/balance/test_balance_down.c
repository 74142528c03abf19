/* Balancer: the active-health "down" flag. A down endpoint is never picked by
 * any strategy until set up again, beyond max_ejection_percent and with no
 * timer; the flag survives set updates and leaves with its endpoint. */
#include "test_support.h"
#include <string.h>
#include "colony/balance.h"
#include "colony/error.h"

static colony_balancer *three(colony_balance_strategy s)
{
    colony_balancer *b;
    assert_int_equal(colony_balancer_new(s, &b), 0);
    colony_balancer_set_seed(b, 7);
    colony_endpoint_spec specs[] = {{"a", "10.0.0.1:80", 1, NULL},
                                    {"b", "10.0.0.2:80", 1, NULL},
                                    {"c", "10.0.0.3:80", 1, NULL}};
    assert_int_equal(colony_balancer_set_endpoints(b, specs, 3), 0);
    return b;
}

static void down_is_never_picked_by_any_strategy(void **state)
{
    (void)state;
    for (int s = COLONY_BALANCE_ROUND_ROBIN; s <= COLONY_BALANCE_RING_HASH; s++) {
        colony_balancer *b = three((colony_balance_strategy)s);
        assert_int_equal(colony_endpoint_set_down(colony_balancer_find(b, "b"), 1), 0);
        assert_int_equal(colony_endpoint_down(colony_balancer_find(b, "b")), 1);
        assert_int_equal(colony_balancer_available(b, 0), 2);
        for (int i = 0; i < 200; i++) {
            char key[16];
            snprintf(key, sizeof(key), "k%d", i);
            colony_endpoint *ep;
            assert_int_equal(colony_balancer_pick(b, key, strlen(key), 0, &ep), 0);
            assert_string_not_equal(colony_endpoint_id(ep), "b");
            assert_int_equal(colony_balancer_release(b, ep, 1, 1, 0), 0);
        }
        colony_balancer_free(b);
    }
}

static void all_down_then_back_up(void **state)
{
    (void)state;
    colony_balancer *b = three(COLONY_BALANCE_ROUND_ROBIN);
    /* No percent cap: every endpoint may be down at once. */
    const char *ids[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(colony_endpoint_set_down(colony_balancer_find(b, ids[i]), 1), 0);
    colony_endpoint *ep;
    assert_int_equal(colony_balancer_pick(b, NULL, 0, 1000000, &ep), COLONY_ENOENT);
    assert_null(ep);
    assert_int_equal(colony_endpoint_set_down(colony_balancer_find(b, "c"), 0), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &ep), 0);
        assert_string_equal(colony_endpoint_id(ep), "c");
        colony_balancer_release(b, ep, 1, 1, 0);
    }
    colony_balancer_free(b);
}

static void flag_survives_updates_and_leaves_with_endpoint(void **state)
{
    (void)state;
    colony_balancer *b = three(COLONY_BALANCE_ROUND_ROBIN);
    colony_endpoint *a = colony_balancer_find(b, "a");
    assert_int_equal(colony_endpoint_set_down(a, 1), 0);
    assert_int_equal(colony_endpoint_set_down(a, 1), 0); /* idempotent */
    colony_endpoint_spec two[] = {{"a", "10.0.0.1:80", 1, NULL}, {"b", "10.0.0.2:80", 1, NULL}};
    assert_int_equal(colony_balancer_set_endpoints(b, two, 2), 0);
    assert_int_equal(colony_endpoint_down(colony_balancer_find(b, "a")), 1);
    assert_int_equal(colony_balancer_available(b, 0), 1);
    /* "a" at a new address is a new endpoint: up. */
    colony_endpoint_spec moved[] = {{"a", "10.0.0.9:80", 1, NULL}, {"b", "10.0.0.2:80", 1, NULL}};
    assert_int_equal(colony_balancer_set_endpoints(b, moved, 2), 0);
    assert_int_equal(colony_endpoint_down(colony_balancer_find(b, "a")), 0);
    assert_int_equal(colony_balancer_available(b, 0), 2);
    /* Only "b" down, then removed: nothing is down any more. */
    assert_int_equal(colony_endpoint_set_down(colony_balancer_find(b, "b"), 1), 0);
    colony_endpoint_spec one[] = {{"a", "10.0.0.9:80", 1, NULL}};
    assert_int_equal(colony_balancer_set_endpoints(b, one, 1), 0);
    colony_endpoint *ep;
    assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &ep), 0);
    assert_string_equal(colony_endpoint_id(ep), "a");
    /* A picked endpoint that leaves the set cannot be marked any more. */
    assert_int_equal(colony_balancer_set_endpoints(b, NULL, 0), 0);
    assert_int_equal(colony_endpoint_set_down(ep, 1), COLONY_EINVAL);
    assert_int_equal(colony_balancer_release(b, ep, 1, 1, 0), 0);
    colony_balancer_free(b);
}

static void down_and_ejected_together(void **state)
{
    (void)state;
    colony_balancer *b = three(COLONY_BALANCE_ROUND_ROBIN);
    assert_int_equal(colony_balancer_set_outlier(b, 1, 1000, 1000, 100), 0);
    colony_endpoint *ep;
    /* Eject "a" passively, mark "b" and "c" down: nothing left. */
    assert_int_equal(colony_balancer_pick(b, NULL, 0, 0, &ep), 0);
    assert_string_equal(colony_endpoint_id(ep), "a");
    colony_balancer_release(b, ep, 0, 1, 0);
    colony_endpoint_set_down(colony_balancer_find(b, "b"), 1);
    colony_endpoint_set_down(colony_balancer_find(b, "c"), 1);
    assert_int_equal(colony_balancer_pick(b, NULL, 0, 10, &ep), COLONY_ENOENT);
    /* The ejection ends on its own; down stays down. */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(colony_balancer_pick(b, NULL, 0, 2000, &ep), 0);
        assert_string_equal(colony_endpoint_id(ep), "a");
        colony_balancer_release(b, ep, 1, 1, 2000);
    }
    colony_balancer_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(down_is_never_picked_by_any_strategy),
        cmocka_unit_test(all_down_then_back_up),
        cmocka_unit_test(flag_survives_updates_and_leaves_with_endpoint),
        cmocka_unit_test(down_and_ejected_together),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
