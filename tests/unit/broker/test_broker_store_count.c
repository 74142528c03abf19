/* colony__bstream_count_after (store/count.c): the lag /metrics shows, counted
 * from segment counts, the sparse index and the tombstones instead of a
 * read. Checked against a plain count by colony__bstream_range at every id
 * and between ids, over several segments and a small index step, after
 * XDELs, exact trims, retention and a reopen. */
#include "broker_store_fixture.h"
#include "colony/log.h"

static int count_one(void *ud, const colony__bentry *e)
{
    (void)e;
    (*(int64_t *)ud)++;
    return 0;
}

static int64_t plain_after(colony__bstream *st, colony__bid id)
{
    colony__bid start =
        id.seq == UINT64_MAX ? (colony__bid){id.ms + 1, 0} : (colony__bid){id.ms, id.seq + 1};
    int64_t n = 0;
    colony__bstream_range(st, start, (colony__bid){UINT64_MAX, UINT64_MAX}, 0, 0, count_one, &n);
    return n;
}

/* Every id from 0-0 to past the last, and the points between ids. */
static void check_all(colony__bstream *st, uint64_t top)
{
    for (uint64_t ms = 0; ms <= top + 1; ms++) {
        colony__bid at = {ms, 0}, between = {ms, 5};
        assert_int_equal(colony__bstream_count_after(st, at), plain_after(st, at));
        assert_int_equal(colony__bstream_count_after(st, between), plain_after(st, between));
    }
    colony__bid max = {UINT64_MAX, UINT64_MAX};
    assert_int_equal(colony__bstream_count_after(st, max), 0);
    colony__bstream_info info;
    colony__bstream_info_get(st, &info);
    assert_int_equal(colony__bstream_added(st), info.entries_added);
}

static void test_count_after_matches_a_read(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(bs_dir);
    o.segment_bytes = 600; /* a handful of entries per segment */
    o.index_every = 3;
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st;
    assert_int_equal(colony__bstore_create(s, "s", &st), 0);
    assert_int_equal(colony__bstream_count_after(st, (colony__bid){0, 0}), 0);
    for (uint64_t i = 1; i <= 200; i++)
        bs_add(st, i);
    colony__bstream_info info;
    colony__bstream_info_get(st, &info);
    assert_true(info.segments >= 5);
    check_all(st, 200);
    assert_int_equal(colony__bstream_count_after(st, (colony__bid){0, 0}), 200);
    assert_int_equal(colony__bstream_count_after(st, (colony__bid){150, 0}), 50);

    /* tombstones, in and across segments */
    for (uint64_t i = 7; i <= 200; i += 13)
        assert_int_equal(colony__bstream_delete(st, (colony__bid){i, 0}), 1);
    check_all(st, 200);

    /* exact trims (a first-id marker inside a segment), then retention */
    assert_true(colony__bstream_trim_minid(st, (colony__bid){41, 0}) > 0);
    check_all(st, 200);
    assert_true(colony__bstream_trim_maxlen(st, 90) > 0);
    check_all(st, 200);
    colony__bretention r = {.max_entries = 60};
    assert_true(colony__bstream_retain(st, &r) > 0);
    check_all(st, 200);

    /* the index is rebuilt from the files on open */
    colony__bstore_close(s);
    s = bs_open_with(&o);
    st = colony__bstore_get(s, "s");
    assert_non_null(st);
    check_all(st, 200);
    for (uint64_t i = 201; i <= 260; i++)
        bs_add(st, i);
    check_all(st, 260);
    colony__bstore_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_count_after_matches_a_read, bs_setup, bs_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
