/* Redis 7's stream and group counters in the store (read.c, journal.c,
 * group.c): entries-added and max-deleted-entry-id outlive the segments
 * that held the entries and tombstones (trim, retention), a group's
 * entries-read and lag follow t_stream.c (valid, then unknown once an XDEL
 * lies ahead of the cursor, estimated again at the last entry), and all of
 * it comes back after a reopen and after a journal compaction. */
#include "broker_store_fixture.h"
#include <unistd.h>
#include "colony/log.h"

static int ignore(void *ud, const colony__bentry *e)
{
    (void)ud;
    (void)e;
    return 0;
}

static void check_counters(colony__bstream *st, uint64_t added, uint64_t max_deleted, int64_t read,
                           int lag_known, int64_t lag)
{
    colony__bstream_info info;
    colony__bstream_info_get(st, &info);
    assert_int_equal(info.entries_added, added);
    assert_int_equal(info.max_deleted.ms, max_deleted);
    colony__bgroup *g = colony__bgroup_get(st, "g");
    assert_non_null(g);
    colony__bgroup_info gi;
    colony__bgroup_info_get(g, &gi);
    assert_int_equal(gi.entries_read, read);
    int64_t got = -1;
    assert_int_equal(colony__bgroup_lag(g, &got), lag_known);
    if (lag_known) assert_int_equal(got, lag);
}

static colony__bstore *reopen(colony__bstore *s, const colony__bstore_options *o,
                              colony__bstream **st)
{
    colony__bstore_close(s);
    s = bs_open_with(o);
    *st = colony__bstore_get(s, "s");
    assert_non_null(*st);
    return s;
}

static void counters_survive(uint64_t compact_bytes)
{
    colony__bstore_options o = bs_options(bs_dir);
    o.segment_bytes = 600; /* a few entries per segment: trims remove whole files */
    o.journal_compact_bytes = compact_bytes;
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st;
    assert_int_equal(colony__bstore_create(s, "s", &st), 0);
    for (uint64_t i = 1; i <= 100; i++)
        bs_add(st, i);
    colony__bgroup *g;
    colony__bid zero = {0, 0};
    assert_int_equal(colony__bgroup_create(st, "g", zero, &g), 0);
    check_counters(st, 100, 0, -1, 1, 100); /* entries-read unknown, lag estimated */
    assert_int_equal(colony__bgroup_read_new(g, "c", 10, UINT64_MAX, ignore, NULL), 10);
    check_counters(st, 100, 0, 10, 1, 90);
    assert_int_equal(colony__bstream_delete(st, (colony__bid){3, 0}), 1);
    assert_int_equal(colony__bstream_delete(st, (colony__bid){5, 0}), 1);
    check_counters(st, 100, 5, 10, 1, 90); /* tombstones behind the cursor */
    assert_int_equal(colony__bstream_delete(st, (colony__bid){50, 0}), 1);
    check_counters(st, 100, 50, 10, 0, 0); /* one ahead: lag unknown, as Redis */
    s = reopen(s, &o, &st);
    check_counters(st, 100, 50, 10, 0, 0);
    /* trims remove the segments that held entries 1..80 and the tombstones */
    assert_true(colony__bstream_trim_maxlen(st, 20) > 0);
    colony__bstream_info info;
    colony__bstream_info_get(st, &info);
    assert_true(info.segments < 10);
    check_counters(st, 100, 50, 10, 1, 90); /* the tombstone is before the first entry now */
    colony__bretention r = {0};
    r.max_entries = 5;
    assert_true(colony__bstream_retain(st, &r) > 0);
    check_counters(st, 100, 50, 10, 1, 90);
    bs_add(st, 101);
    check_counters(st, 101, 50, 10, 1, 91);
    s = reopen(s, &o, &st);
    check_counters(st, 101, 50, 10, 1, 91);
    /* SETID with ENTRIESREAD, NOACK-style advance, the cursor at the end */
    g = colony__bgroup_get(st, "g");
    assert_int_equal(colony__bgroup_setid_read(g, (colony__bid){100, 0}, 100), 0);
    check_counters(st, 101, 50, 100, 1, 1);
    assert_int_equal(colony__bgroup_advance(g, (colony__bid){101, 0}), 0);
    check_counters(st, 101, 50, 101, 1, 0);
    s = reopen(s, &o, &st);
    check_counters(st, 101, 50, 101, 1, 0);
    colony__bstore_close(s);
}

static void counters_survive_reopen(void **state)
{
    (void)state;
    counters_survive(0); /* 4 MiB: no compaction */
}

static void counters_survive_compaction(void **state)
{
    (void)state;
    counters_survive(1); /* every change compacts the journal */
}

typedef struct deliver_in_cb {
    colony__bgroup *g;
    size_t n;
    int bad;
} deliver_in_cb;

/* Records each entry as delivered from inside the range callback (store.h
 * allows it), then checks the entry it was given is still intact. */
static int deliver_then_check(void *ud, const colony__bentry *e)
{
    deliver_in_cb *d = ud;
    char want[32];
    snprintf(want, sizeof(want), "v%llu", (unsigned long long)e->id.ms);
    assert_int_equal(colony__bgroup_deliver(d->g, "c", e->id, UINT64_MAX), 0);
    if (e->n != 2 || e->strs[1].len != strlen(want) ||
        memcmp(e->strs[1].data, want, e->strs[1].len) != 0)
        d->bad = 1;
    d->n++;
    return 0;
}

/* A delivery recorded from inside a range callback with an XDEL in the
 * stream needs the first entry; it must not read it there (the entry being
 * given would be overwritten): the counter goes unknown instead. */
static void deliver_inside_a_range(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(bs_dir);
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st;
    assert_int_equal(colony__bstore_create(s, "s", &st), 0);
    for (uint64_t i = 1; i <= 10; i++)
        bs_add(st, i);
    assert_int_equal(colony__bstream_delete(st, (colony__bid){8, 0}), 1);
    colony__bgroup *g;
    colony__bid zero = {0, 0};
    assert_int_equal(colony__bgroup_create(st, "g", zero, &g), 0);
    assert_int_equal(colony__bgroup_setid_read(g, zero, 0), 0);
    deliver_in_cb d = {g, 0, 0};
    assert_int_equal(colony__bstream_range(st, zero, bs_max, 0, 5, deliver_then_check, &d), 5);
    assert_int_equal(d.n, 5);
    assert_false(d.bad);
    colony__bgroup_info gi;
    colony__bgroup_info_get(g, &gi);
    assert_int_equal(gi.cursor.ms, 5);
    assert_int_equal(gi.pending, 5);
    assert_int_equal(gi.entries_read, -1); /* an XDEL ahead: unknown, as Redis */
    /* read_new reads what it needs first: the same answer, entries intact */
    bs_ids got;
    memset(&got, 0, sizeof(got));
    assert_int_equal(colony__bgroup_read_new(g, "c", 0, UINT64_MAX, bs_collect, &got), 4);
    assert_false(got.bad_value);
    colony__bgroup_info_get(g, &gi);
    assert_int_equal(gi.cursor.ms, 10);
    assert_int_equal(gi.entries_read, 10); /* the last entry: entries-added, exactly */
    int64_t lag = -1;
    assert_int_equal(colony__bgroup_lag(g, &lag), 1);
    assert_int_equal(lag, 0);
    colony__bstore_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(counters_survive_reopen, bs_setup, bs_teardown),
        cmocka_unit_test_setup_teardown(counters_survive_compaction, bs_setup, bs_teardown),
        cmocka_unit_test_setup_teardown(deliver_inside_a_range, bs_setup, bs_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
