/* Core containers: the string map, the intrusive list and the closer. */
#include "test_support.h"
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "core/closer.h"
#include "core/list.h"
#include "core/map.h"

static void map_put_get_remove_many(void **state)
{
    (void)state;
    colony__map m = {0};
    static int values[5000];
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        assert_int_equal(colony__map_put(&m, key, &values[i]), 0);
    }
    assert_int_equal(m.count, 5000);
    /* remove every third key: backward shift must keep the others reachable */
    for (int i = 0; i < 5000; i += 3) {
        snprintf(key, sizeof(key), "key-%d", i);
        assert_ptr_equal(colony__map_remove(&m, key), &values[i]);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        if (i % 3 == 0)
            assert_null(colony__map_get(&m, key));
        else
            assert_ptr_equal(colony__map_get(&m, key), &values[i]);
    }
    assert_null(colony__map_remove(&m, "absent"));
    size_t pos = 0, seen = 0;
    for (colony__map_slot *s; (s = colony__map_next(&m, &pos));)
        seen++;
    assert_int_equal(seen, m.count);
    colony__map_free(&m);
    assert_int_equal(m.count, 0);
    assert_null(colony__map_get(&m, "key-1"));
}

static void map_replace_keeps_one_entry(void **state)
{
    (void)state;
    colony__map m = {0};
    int a, b;
    assert_int_equal(colony__map_put(&m, "x", &a), 0);
    assert_int_equal(colony__map_put(&m, "x", &b), 0);
    assert_int_equal(m.count, 1);
    assert_ptr_equal(colony__map_get(&m, "x"), &b);
    colony__map_free(&m);
}

/* A failed insert leaves the map as it was, whether the key copy or the growth
 * of the table fails. */
static void map_allocation_failure_changes_nothing(void **state)
{
    (void)state;
    colony__map m = {0};
    int v;
    char key[16];
    long injected = 0;
    for (long n = 0; n < 4; n++) {
        colony__alloc_fail_after(n);
        int rc = colony__map_put(&m, "first", &v);
        injected += colony__alloc_failures();
        colony__alloc_fail_reset();
        if (rc == 0) break;
        assert_int_equal(rc, COLONY_ENOMEM);
        assert_int_equal(m.count, 0);
    }
    assert_true(injected >= 1);
    /* fill to just below the growth point, then fail the growth */
    for (int i = 0; (m.count + 1) * 4 < m.cap * 3; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(colony__map_put(&m, key, &v), 0);
    }
    size_t count = m.count, cap = m.cap;
    colony__alloc_fail_after(1); /* the key copy succeeds, the new table fails */
    assert_int_equal(colony__map_put(&m, "grows", &v), COLONY_ENOMEM);
    assert_int_equal(colony__alloc_failures(), 1);
    colony__alloc_fail_reset();
    assert_int_equal(m.count, count);
    assert_int_equal(m.cap, cap);
    assert_null(colony__map_get(&m, "grows"));
    colony__map_free(&m);
}

static void keyed_hash_is_stable_and_spreads(void **state)
{
    (void)state;
    assert_true(colony__hash_keyed("abc", 3) == colony__hash_keyed("abc", 3));
    assert_true(colony__hash_keyed("abc", 3) != colony__hash_keyed("abd", 3));
    assert_true(colony__hash_keyed("", 0) != colony__hash_keyed("\0", 1));
    /* every length up to two blocks takes a distinct path through the tail */
    char buf[17] = "0123456789abcdef";
    uint64_t seen[17];
    for (size_t n = 0; n <= 16; n++) {
        seen[n] = colony__hash_keyed(buf, n);
        for (size_t j = 0; j < n; j++)
            assert_true(seen[j] != seen[n]);
    }
}

typedef struct item {
    int value;
    colony__list node;
} item;

static void list_is_a_queue(void **state)
{
    (void)state;
    colony__list head;
    colony__list_init(&head);
    assert_true(colony__list_empty(&head));
    assert_null(colony__list_first(&head));
    item items[4];
    for (int i = 0; i < 4; i++) {
        items[i].value = i;
        colony__list_init(&items[i].node);
        assert_false(colony__list_linked(&items[i].node));
        colony__list_push_back(&head, &items[i].node);
    }
    colony__list_remove(&items[2].node);
    colony__list_remove(&items[2].node); /* twice is harmless */
    assert_false(colony__list_linked(&items[2].node));
    colony__list_push_front(&head, &items[2].node);
    int order[4], n = 0;
    colony__list *node, *tmp;
    COLONY__LIST_FOREACH_SAFE(node, tmp, &head)
    {
        order[n++] = COLONY__CONTAINER_OF(node, item, node)->value;
        if (order[n - 1] == 1) colony__list_remove(node);
    }
    assert_int_equal(n, 4);
    assert_int_equal(order[0], 2);
    assert_int_equal(order[1], 0);
    assert_int_equal(order[2], 1);
    assert_int_equal(order[3], 3);
    assert_ptr_equal(colony__list_pop_front(&head), &items[2].node);
    assert_ptr_equal(colony__list_pop_front(&head), &items[0].node);
    assert_ptr_equal(colony__list_pop_front(&head), &items[3].node);
    assert_null(colony__list_pop_front(&head));
}

static int done_calls;
static void closer_done(void *ud)
{
    done_calls++;
    *(int *)ud = 1;
}

/* done runs once, after finish and every child, and never inside finish. */
static void closer_calls_once_after_all_children(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_timer_t t1, t2;
    uv_timer_init(&loop, &t1);
    uv_timer_init(&loop, &t2);
    colony__closer c;
    int finished = 0;
    done_calls = 0;
    colony__closer_init(&c, closer_done, &finished);
    colony__closer_close(&c, (uv_handle_t *)&t1);
    colony__closer_close(&c, (uv_handle_t *)&t1); /* already closing: ignored */
    colony__closer_close(&c, (uv_handle_t *)&t2);
    colony__closer_hold(&c); /* a non-handle child */
    colony__closer_finish(&c, &loop);
    assert_int_equal(done_calls, 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(done_calls, 0); /* the held child is still closing */
    colony__closer_release(&c);
    assert_int_equal(done_calls, 1);
    assert_true(finished);
    colony_test_loop_close(&loop);

    /* no children at all: still deferred to the loop */
    uv_loop_init(&loop);
    done_calls = 0;
    colony__closer_init(&c, closer_done, &finished);
    colony__closer_finish(&c, &loop);
    assert_int_equal(done_calls, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(done_calls, 1);
    colony_test_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(map_put_get_remove_many),
        cmocka_unit_test(map_replace_keeps_one_entry),
        cmocka_unit_test(map_allocation_failure_changes_nothing),
        cmocka_unit_test(keyed_hash_is_stable_and_spreads),
        cmocka_unit_test(list_is_a_queue),
        cmocka_unit_test(closer_calls_once_after_all_children),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
