/* Capped buffer and arena: limits hold, allocation failures are reported. */
#include "test_support.h"
#include <string.h>
#include "colony/colony.h"
#include "core/alloc.h"

static void buf_append_and_cap(void **state)
{
    (void)state;
    colony_buf b;
    colony_buf_init(&b, 10);
    assert_int_equal(colony_buf_append_str(&b, "hello"), 0);
    assert_int_equal(colony_buf_appendf(&b, "%d", 1234), 0);
    assert_string_equal(b.data, "hello1234");
    assert_int_equal(colony_buf_append_str(&b, "xy"), COLONY_E2BIG);
    assert_string_equal(b.data, "hello1234"); /* unchanged after a refused append */
    assert_int_equal(colony_buf_append_str(&b, "!"), 0);
    assert_int_equal(b.len, 10);
    colony_buf_consume(&b, 5);
    assert_string_equal(b.data, "1234!");
    colony_buf_consume(&b, 100);
    assert_int_equal(b.len, 0);
    assert_int_equal(colony_buf_reserve(&b, 11), COLONY_E2BIG);
    assert_int_equal(colony_buf_reserve(&b, SIZE_MAX), COLONY_E2BIG);
    colony_buf_free(&b);
    assert_null(b.data);
}

static void buf_alloc_failure(void **state)
{
    (void)state;
    colony_buf b;
    colony_buf_init(&b, 1 << 20);
    colony__alloc_fail_after(0);
    assert_int_equal(colony_buf_append_str(&b, "x"), COLONY_ENOMEM);
    colony__alloc_fail_reset();
    assert_int_equal(colony__alloc_failures(), 1);
    assert_int_equal(b.len, 0);
    assert_int_equal(colony_buf_append_str(&b, "x"), 0);
    size_t len;
    char *p = colony_buf_detach(&b, &len);
    assert_int_equal(len, 1);
    assert_string_equal(p, "x");
    free(p);
}

static void arena_allocates_aligned_and_caps(void **state)
{
    (void)state;
    colony_arena *a = colony_arena_new(256, 4096);
    assert_non_null(a);
    for (int i = 0; i < 10; i++) {
        void *p = colony_arena_alloc(a, 7);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
    }
    char *big = colony_arena_alloc(a, 1000); /* dedicated block */
    assert_non_null(big);
    memset(big, 'x', 1000);
    char *s = colony_arena_sprintf(a, "%s-%d", "id", 42);
    assert_string_equal(s, "id-42");
    assert_null(colony_arena_alloc(a, 5000)); /* past max_total */
    assert_true(colony_arena_used(a) <= 4096);
    colony_arena_reset(a);
    assert_int_equal(colony_arena_used(a), 0);
    assert_string_equal(colony_arena_strndup(a, "abcdef", 3), "abc");
    colony_arena_free(a);
}

static void arena_alloc_failure_is_null(void **state)
{
    (void)state;
    colony__alloc_fail_after(0);
    assert_null(colony_arena_new(0, 0));
    colony__alloc_fail_reset();
    colony_arena *a = colony_arena_new(64, 0);
    colony__alloc_fail_after(0);
    assert_null(colony_arena_alloc(a, 1000)); /* needs a new block */
    colony__alloc_fail_reset();
    colony_arena_free(a);
}

static void errors_have_names(void **state)
{
    (void)state;
    assert_string_equal(colony_errname(COLONY_ETIMEDOUT), "ETIMEDOUT");
    assert_string_equal(colony_strerror(0), "success");
    assert_true(strlen(colony_strerror(COLONY_E2BIG)) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buf_append_and_cap),
        cmocka_unit_test(buf_alloc_failure),
        cmocka_unit_test(arena_allocates_aligned_and_caps),
        cmocka_unit_test(arena_alloc_failure_is_null),
        cmocka_unit_test(errors_have_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
