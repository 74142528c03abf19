/* Deliveries and acks of many entries in one journal write
 * (colony__bgroup_deliver_new, colony__bgroup_ack_many in
 * src/broker/store/group.c): the state they leave, in memory and after
 * reopen, is the one the one-at-a-time calls leave (counts, owners, cursor,
 * entries-read); a write the disk refuses, or an allocation that fails,
 * changes nothing (all or none). And colony__bgroup_has_new, which
 * XREADGROUP asks before it reads. */
#include "broker_store_fixture.h"
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "broker/store/stream.h"
#include "colony/log.h"
#include "core/alloc.h"

static colony__bid id_of(uint64_t ms)
{
    return (colony__bid){ms, 0};
}

/* The group's state as text: cursor, entries-read, then per pending entry
 * id:owner:count:last:due. */
static int dump_one(void *ud, const colony__bpending *p)
{
    char *out = ud;
    size_t at = strlen(out);
    snprintf(out + at, 4096 - at, " %llu:%s:%llu:%llu:%llu", (unsigned long long)p->id.ms,
             p->consumer, (unsigned long long)p->count, (unsigned long long)p->last_ms,
             (unsigned long long)p->due_ms);
    return 0;
}

static void dump(colony__bstream *st, char out[4096])
{
    colony__bgroup *g = colony__bgroup_get(st, "g");
    assert_non_null(g);
    colony__bgroup_info info;
    colony__bgroup_info_get(g, &info);
    snprintf(out, 4096, "cursor %llu read %lld:", (unsigned long long)info.cursor.ms,
             (long long)info.entries_read);
    colony__bgroup_pending_range(g, bs_min, bs_max, NULL, 0, dump_one, out);
}

/* Entries 1..10; "a" holds 2 and 3 (count 2 for 3); the cursor is moved
 * back to 2, so 3 is pending and past the cursor. */
static colony__bstream *build(colony__bstore **s, const char *name)
{
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/%s", bs_dir, name);
    assert_int_equal(mkdir(sub, 0755), 0);
    colony__bstore_options o = bs_options(sub);
    *s = bs_open_with(&o);
    colony__bstream *st;
    assert_int_equal(colony__bstore_create(*s, "orders", &st), 0);
    for (uint64_t i = 1; i <= 10; i++)
        bs_add(st, i);
    colony__bgroup *g;
    assert_int_equal(colony__bgroup_create(st, "g", bs_min, &g), 0);
    assert_int_equal(colony__bgroup_deliver(g, "a", id_of(1), 7), 0);
    assert_int_equal(colony__bgroup_deliver(g, "a", id_of(2), 7), 0);
    assert_int_equal(colony__bgroup_deliver(g, "a", id_of(3), 7), 0);
    assert_int_equal(colony__bgroup_deliver(g, "a", id_of(3), 7), 0);
    assert_int_equal(colony__bgroup_setid_read(g, id_of(2), 2), 0);
    return st;
}

static void reopen(colony__bstore **s, colony__bstream **st, const char *name)
{
    colony__bstore_close(*s);
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/%s", bs_dir, name);
    colony__bstore_options o = bs_options(sub);
    *s = bs_open_with(&o);
    *st = colony__bstore_get(*s, "orders");
    assert_non_null(*st);
}

static void same_state_as_one_at_a_time(void **state)
{
    (void)state;
    colony__bstore *s1, *s2;
    colony__bstream *one = build(&s1, "one"), *many = build(&s2, "many");
    colony__bgroup *g1 = colony__bgroup_get(one, "g"), *g2 = colony__bgroup_get(many, "g");
    colony_fake_clock_advance(&bs_clock, 100);
    /* XREADGROUP > reads 3..6: 3 was pending (to "a"): now "b"'s, count 1 */
    colony__bid ids[] = {id_of(3), id_of(4), id_of(5), id_of(6)};
    for (size_t i = 0; i < 4; i++) {
        int was = colony__bgroup_pending(g1, ids[i]) != NULL;
        assert_int_equal(colony__bgroup_deliver(g1, "b", ids[i], 99), 0);
        if (was)
            assert_int_equal(colony__bgroup_update(g1, "b", ids[i], 1, colony__bstore_now(s1), 99),
                             0);
    }
    uint64_t before = many->journal->written;
    assert_int_equal(colony__bgroup_deliver_new(g2, "b", ids, 4, 99), 4);
    assert_int_equal(many->journal->written, before + 1); /* one write */
    char a[4096], b[4096];
    dump(one, a);
    dump(many, b);
    assert_string_equal(a, b);
    assert_non_null(strstr(b, "cursor 6 read 6:"));
    assert_non_null(strstr(b, " 3:b:1:"));
    /* XACK 1 4 4 9 (9 not pending, 4 twice): two acked */
    colony__bid acks[] = {id_of(1), id_of(4), id_of(4), id_of(9)};
    long n1 = 0;
    for (size_t i = 0; i < 4; i++)
        n1 += colony__bgroup_ack(g1, acks[i]);
    before = many->journal->written;
    assert_int_equal(colony__bgroup_ack_many(g2, acks, 4), 2);
    assert_int_equal(n1, 2);
    assert_int_equal(many->journal->written, before + 1);
    dump(one, a);
    dump(many, b);
    assert_string_equal(a, b);
    /* and after reopen */
    reopen(&s2, &many, "many");
    dump(many, b);
    assert_string_equal(a, b);
    colony__bstore_close(s1);
    colony__bstore_close(s2);
}

/* RLIMIT_FSIZE makes the journal write fail (EFBIG), as a full disk does. */
static void a_refused_write_changes_nothing(void **state)
{
    (void)state;
    colony__bstore *s;
    colony__bstream *st = build(&s, "full");
    colony__bgroup *g = colony__bgroup_get(st, "g");
    char was[4096], now[4096];
    dump(st, was);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = (rlim_t)st->journal_bytes;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    colony__bid ids[] = {id_of(3), id_of(4), id_of(5)};
    long rc = colony__bgroup_deliver_new(g, "b", ids, 3, 99);
    colony__bid acks[] = {id_of(1), id_of(2)};
    long rc2 = colony__bgroup_ack_many(g, acks, 2);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_true(rc < 0);
    assert_true(rc2 < 0);
    dump(st, now);
    assert_string_equal(was, now);
    reopen(&s, &st, "full");
    dump(st, now);
    assert_string_equal(was, now);
    colony__bstore_close(s);
}

static void allocation_failures_change_nothing(void **state)
{
    (void)state;
    colony__bstore *s;
    colony__bstream *st = build(&s, "alloc");
    colony__bgroup *g = colony__bgroup_get(st, "g");
    char was[4096], now[4096];
    int clean = 0;
    for (long n = 0; n < 50 && !clean; n++) {
        dump(st, was);
        colony__bid ids[] = {id_of(3), id_of(4), id_of(5)};
        colony__alloc_fail_once_after(n);
        long rc = colony__bgroup_deliver_new(g, "newcomer", ids, 3, 99);
        long failed = colony__alloc_failures();
        colony__alloc_fail_reset();
        if (!failed) {
            assert_int_equal(rc, 3);
            clean = 1;
            break;
        }
        assert_int_equal(rc, COLONY_ENOMEM);
        dump(st, now);
        assert_string_equal(was, now);
    }
    assert_true(clean);
    colony__bid acks[] = {id_of(3), id_of(4)};
    colony__alloc_fail_once_after(0);
    long rc = colony__bgroup_ack_many(g, acks, 2);
    colony__alloc_fail_reset();
    assert_int_equal(rc, COLONY_ENOMEM);
    assert_int_equal(colony__bgroup_ack_many(g, acks, 2), 2);
    colony__bstore_close(s);
}

/* colony__bgroup_has_new: a visible entry past the cursor, across XDEL of
 * the top entry and trims. */
static void has_new_entries(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(bs_dir);
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st;
    assert_int_equal(colony__bstore_create(s, "orders", &st), 0);
    colony__bgroup *g;
    assert_int_equal(colony__bgroup_create(st, "g", bs_min, &g), 0);
    assert_int_equal(colony__bgroup_has_new(g), 0); /* empty */
    for (uint64_t i = 1; i <= 3; i++)
        bs_add(st, i);
    assert_int_equal(colony__bgroup_has_new(g), 1);
    assert_int_equal(colony__bgroup_setid(g, id_of(3)), 0);
    assert_int_equal(colony__bgroup_has_new(g), 0);
    assert_int_equal(colony__bgroup_setid(g, id_of(2)), 0);
    assert_int_equal(colony__bgroup_has_new(g), 1);
    assert_int_equal(colony__bstream_delete(st, id_of(3)), 1); /* the top is gone */
    assert_int_equal(colony__bgroup_has_new(g), 0);
    assert_int_equal(colony__bgroup_setid(g, id_of(1)), 0);
    assert_int_equal(colony__bgroup_has_new(g), 1); /* 2 is there */
    assert_int_equal(colony__bstream_trim_maxlen(st, 0), 2);
    assert_int_equal(colony__bgroup_has_new(g), 0);
    bs_add(st, 4);
    assert_int_equal(colony__bgroup_has_new(g), 1);
    colony__bstore_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(same_state_as_one_at_a_time, bs_setup, bs_teardown),
        cmocka_unit_test_setup_teardown(a_refused_write_changes_nothing, bs_setup, bs_teardown),
        cmocka_unit_test_setup_teardown(allocation_failures_change_nothing, bs_setup, bs_teardown),
        cmocka_unit_test_setup_teardown(has_new_entries, bs_setup, bs_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
