/* Consumer groups in the stream's journal (src/broker/store/group.c): the
 * cursor, pending entries with owner, delivery count, last-delivery and due
 * times, and consumers come back after reopen, after a compaction, and after
 * a torn journal tail; every allocation failure of a whole store script is
 * handled. */
#include "broker_store_fixture.h"
#include <sys/stat.h>
#include <unistd.h>
#include "broker/store/stream.h"
#include "colony/log.h"
#include "core/alloc.h"

static colony__bid id_of(uint64_t ms)
{
    return (colony__bid){ms, 0};
}

typedef struct pend_list {
    colony__bpending p[64];
    char owner[64][16];
    size_t n;
} pend_list;

static int collect_pending(void *ud, const colony__bpending *p)
{
    pend_list *l = ud;
    l->p[l->n] = *p;
    snprintf(l->owner[l->n], sizeof(l->owner[0]), "%s", p->consumer);
    l->n++;
    return 0;
}

/* The state every check below expects (built by build_state). */
static void check_state(colony__bstream *st)
{
    colony__bgroup *g = colony__bgroup_get(st, "workers");
    assert_non_null(g);
    assert_null(colony__bgroup_get(st, "gone"));
    colony__bgroup_info info;
    colony__bgroup_info_get(g, &info);
    assert_int_equal(info.cursor.ms, 6);
    assert_int_equal(info.pending, 3);
    assert_int_equal(info.consumers, 3); /* alice, bob, idle */
    pend_list l = {0};
    assert_int_equal(
        colony__bgroup_pending_range(g, id_of(0), bs_max, NULL, 0, collect_pending, &l), 3);
    assert_int_equal(l.p[0].id.ms, 2); /* redelivered to bob: count 2 */
    assert_string_equal(l.owner[0], "bob");
    assert_int_equal(l.p[0].count, 2);
    assert_int_equal(l.p[0].last_ms, 5100);
    assert_int_equal(l.p[0].due_ms, 35100);
    assert_int_equal(l.p[1].id.ms, 4); /* claimed by alice with count 7, nack due later */
    assert_string_equal(l.owner[1], "alice");
    assert_int_equal(l.p[1].count, 7);
    assert_int_equal(l.p[1].due_ms, 99999);
    assert_int_equal(l.p[2].id.ms, 6);
    assert_string_equal(l.owner[2], "bob");
    assert_int_equal(l.p[2].count, 1);
    memset(&l, 0, sizeof(l));
    assert_int_equal(
        colony__bgroup_pending_range(g, id_of(0), bs_max, "bob", 0, collect_pending, &l), 2);
    size_t pos = 0, held, seen = 0;
    const char *name;
    while ((name = colony__bgroup_consumer_next(g, &pos, &held))) {
        seen++;
        if (!strcmp(name, "bob"))
            assert_int_equal(held, 2);
        else if (!strcmp(name, "alice"))
            assert_int_equal(held, 1);
        else
            assert_string_equal(name, "idle"), assert_int_equal(held, 0);
    }
    assert_int_equal(seen, 3);
    colony__bgroup *other = colony__bgroup_get(st, "audit");
    assert_non_null(other);
    colony__bgroup_info_get(other, &info);
    assert_int_equal(info.cursor.ms, 3); /* SETID */
    assert_int_equal(info.pending, 0);
}

static void build_state(colony__bstream *st)
{
    for (uint64_t i = 1; i <= 6; i++)
        bs_add(st, i);
    colony__bgroup *g, *audit, *gone;
    assert_int_equal(colony__bgroup_create(st, "workers", id_of(0), &g), 0);
    assert_int_equal(colony__bgroup_create(st, "workers", id_of(0), NULL), COLONY_EEXIST);
    assert_int_equal(colony__bgroup_create(st, "audit", id_of(0), &audit), 0);
    assert_int_equal(colony__bgroup_create(st, "gone", id_of(0), &gone), 0);
    assert_int_equal(colony__bgroup_destroy(st, "gone"), 0);
    assert_int_equal(colony__bgroup_destroy(st, "gone"), COLONY_ENOENT);
    assert_int_equal(colony__bgroup_setid(audit, id_of(3)), 0);
    assert_int_equal(colony__bgroup_consumer_add(g, "idle"), 1);
    assert_int_equal(colony__bgroup_consumer_add(g, "idle"), 0);
    assert_int_equal(colony__bgroup_consumer_add(g, "temp"), 1);
    for (uint64_t i = 1; i <= 5; i++)
        assert_int_equal(colony__bgroup_deliver(g, i % 2 ? "alice" : "bob", id_of(i), 35000), 0);
    assert_int_equal(colony__bgroup_deliver(g, "temp", id_of(6), 1), 0);
    assert_int_equal(colony__bgroup_consumer_delete(g, "temp"), 1); /* drops its entry 6 */
    assert_int_equal(colony__bgroup_consumer_delete(g, "temp"), COLONY_ENOENT);
    assert_int_equal(colony__bgroup_ack(g, id_of(1)), 1);
    assert_int_equal(colony__bgroup_ack(g, id_of(1)), 0);
    assert_int_equal(colony__bgroup_ack(g, id_of(3)), 1);
    assert_int_equal(colony__bgroup_ack(g, id_of(5)), 1);
    colony_fake_clock_advance(&bs_clock, 100);
    assert_int_equal(colony__bgroup_deliver(g, "bob", id_of(2), 35100), 0); /* redelivery */
    assert_int_equal(colony__bgroup_deliver(g, "bob", id_of(6), 35100), 0);
    assert_int_equal(colony__bgroup_update(g, "alice", id_of(4), 7, 5100, 99999), 0);
    assert_int_equal(colony__bgroup_update(g, "alice", id_of(5), 1, 1, 1), COLONY_ENOENT);
}

static void reopen(colony__bstore **s, const colony__bstore_options *o, colony__bstream **st)
{
    colony__bstore_close(*s);
    *s = bs_open_with(o);
    *st = colony__bstore_get(*s, "orders");
    assert_non_null(*st);
}

/* Every change is in the journal: after reopen the same groups, cursor,
 * consumers and pending entries with owners and counts. */
static void journal_replays_after_reopen(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(bs_dir);
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st;
    assert_int_equal(colony__bstore_create(s, "orders", &st), 0);
    build_state(st);
    check_state(st);
    reopen(&s, &o, &st);
    check_state(st);
    /* a torn last journal record (a crash mid-write) is cut, the rest kept */
    colony__bgroup *g = colony__bgroup_get(st, "workers");
    assert_int_equal(colony__bgroup_ack(g, id_of(6)), 1);
    char path[4096];
    snprintf(path, sizeof(path), "%s", st->journal->path);
    uint64_t size = st->journal_bytes;
    colony__bstore_close(s);
    assert_int_equal(truncate(path, (off_t)size - 3), 0);
    s = bs_open_with(&o);
    st = colony__bstore_get(s, "orders");
    check_state(st); /* the ack of 6 was torn: 6 is pending again */
    colony__bstore_close(s);
}

/* Past journal_compact_bytes the journal is rewritten as a snapshot: it
 * shrinks, and the state after reopen is the same. */
static void journal_compaction_keeps_state(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(bs_dir);
    o.journal_compact_bytes = 4096;
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st;
    assert_int_equal(colony__bstore_create(s, "orders", &st), 0);
    build_state(st);
    colony__bgroup *g = colony__bgroup_get(st, "workers");
    for (int round = 0; round < 200; round++) { /* churn: deliver and ack entry 1 again */
        assert_int_equal(colony__bgroup_deliver(g, "alice", id_of(1), 1), 0);
        assert_int_equal(colony__bgroup_ack(g, id_of(1)), 1);
    }
    assert_true(st->journal_at_compact > 0);
    assert_true(st->journal_bytes < 8192);
    check_state(st);
    reopen(&s, &o, &st);
    check_state(st);
    colony__bstore_close(s);
}

/* One whole store script: open, create, appends across segments, a range,
 * delete, trim, groups, deliveries, acks, compaction, close, reopen. */
static int store_script(const char *path)
{
    colony__bstore_options o = bs_options(path);
    o.segment_bytes = 300;
    o.index_every = 2;
    o.journal_compact_bytes = 600;
    colony__bstore *s = NULL;
    char msg[256] = "";
    int rc = colony__bstore_open(&s, &o, msg, sizeof(msg));
    colony__bstream *st = NULL;
    if (!rc) rc = colony__bstore_create(s, "orders", &st);
    colony__bstr f[2] = {{"k", 1}, {"v", 1}};
    colony__bid out;
    for (uint64_t i = 1; !rc && i <= 20; i++)
        rc = colony__bstream_append(st, COLONY__BID_EXPLICIT, id_of(i), f, 2, &out);
    bs_ids *ids = calloc(1, sizeof(*ids));
    long n = 0;
    if (!rc) n = colony__bstream_range(st, id_of(0), bs_max, 1, 0, bs_count_only, ids);
    if (n < 0) rc = (int)n;
    if (!rc) rc = colony__bstream_delete(st, id_of(3)) == 1 ? 0 : COLONY_ENOMEM;
    if (!rc && (n = colony__bstream_trim_maxlen(st, 15)) < 0) rc = (int)n;
    colony__bgroup *g = NULL;
    if (!rc) rc = colony__bgroup_create(st, "g", id_of(0), &g);
    if (!rc) { /* entries 6..20 are left */
        ids->n = 0;
        n = colony__bgroup_read_new(g, "c", 0, 1, bs_count_only, ids);
        rc = n < 0 ? (int)n : n != 15 ? -1001 : 0;
    }
    for (uint64_t i = 6; !rc && i <= 13; i++)
        rc = colony__bgroup_ack(g, id_of(i)) == 1 ? 0 : -1;
    colony__bstore_close(s);
    s = NULL;
    if (!rc) rc = colony__bstore_open(&s, &o, msg, sizeof(msg));
    if (!rc) {
        st = colony__bstore_get(s, "orders");
        g = st ? colony__bgroup_get(st, "g") : NULL;
        colony__bgroup_info info;
        if (g) colony__bgroup_info_get(g, &info);
        if (!g || info.pending != 7 || st->length != 15) rc = -1000; /* wrong, not failed */
    }
    colony__bstore_close(s);
    free(ids);
    bs_rmtree(path);
    return rc;
}

/* Each allocation of the script fails once in turn: the call that hit it
 * reports COLONY_ENOMEM (or a reopen finds the data as acknowledged), never a
 * crash, a leak or wrong data; with no failure the script passes. */
static void allocation_failures_are_handled(void **state)
{
    (void)state;
    long n, failing_runs = 0;
    int clean = 0;
    for (n = 0; n < 100000 && !clean; n++) {
        char path[64];
        bs_tmpdir(path, sizeof(path));
        colony__alloc_fail_once_after(n);
        int rc = store_script(path);
        long injected = colony__alloc_failures();
        colony__alloc_fail_reset();
        clean = injected == 0;
        if (clean) {
            assert_int_equal(rc, 0);
        } else {
            failing_runs++;
            assert_true(rc == 0 || rc == COLONY_ENOMEM);
        }
    }
    assert_true(clean);
    print_message("allocations failed in turn: %ld\n", failing_runs);
    assert_true(failing_runs >= 30);
}

typedef struct seen {
    uint64_t ms[16];
    size_t n;
} seen;

static int note_entry(void *ud, const colony__bentry *e)
{
    seen *s = ud;
    s->ms[s->n++] = e->id.ms;
    return 0;
}

/* XREADGROUP ">": entries after the cursor, each recorded as delivered
 * before the caller sees it; deleted entries are skipped; the cursor moves. */
static void read_new_delivers_after_the_cursor(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(bs_dir);
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st;
    assert_int_equal(colony__bstore_create(s, "orders", &st), 0);
    for (uint64_t i = 1; i <= 6; i++)
        bs_add(st, i);
    assert_int_equal(colony__bstream_delete(st, id_of(3)), 1);
    colony__bgroup *g;
    assert_int_equal(colony__bgroup_create(st, "g", id_of(1), &g), 0);
    seen got = {0};
    assert_int_equal(colony__bgroup_read_new(g, "c1", 2, 777, note_entry, &got), 2);
    assert_int_equal(got.n, 2);
    assert_int_equal(got.ms[0], 2);
    assert_int_equal(got.ms[1], 4);
    const colony__bpending *p = colony__bgroup_pending(g, id_of(4));
    assert_non_null(p);
    assert_string_equal(p->consumer, "c1");
    assert_int_equal(p->due_ms, 777);
    memset(&got, 0, sizeof(got));
    assert_int_equal(colony__bgroup_read_new(g, "c2", 0, 1, note_entry, &got), 2);
    assert_int_equal(got.ms[0], 5);
    assert_int_equal(got.ms[1], 6);
    assert_int_equal(colony__bgroup_read_new(g, "c2", 0, 1, note_entry, &got), 0);
    colony__bgroup_info info;
    colony__bgroup_info_get(g, &info);
    assert_int_equal(info.cursor.ms, 6);
    assert_int_equal(info.pending, 4);
    colony__bstore_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(journal_replays_after_reopen, bs_setup, bs_teardown),
        cmocka_unit_test_setup_teardown(journal_compaction_keeps_state, bs_setup, bs_teardown),
        cmocka_unit_test_setup_teardown(read_new_delivers_after_the_cursor, bs_setup, bs_teardown),
        cmocka_unit_test_setup_teardown(allocation_failures_are_handled, bs_setup, bs_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
