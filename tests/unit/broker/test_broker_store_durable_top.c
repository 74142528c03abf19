/* colony__bcommit_durable_top (src/broker/store/commit.c): the id up to which
 * a stream is durable, which lets XREADGROUP give new entries without a
 * commit of its own. With fsync always it moves only when a wait that began
 * after the entry calls back (every wait of a batch before the first
 * callback runs), never past what that wait covered, across roll-overs;
 * a reopened store's entries count as durable; batch and never give the top. */
#include "broker_store_fixture.h"
#include <unistd.h>
#include "broker/store/stream.h"
#include "colony/log.h"

typedef struct seen {
    colony__bcommit *c;
    colony__bstream *st;
    int calls;
    colony__bid tops[64]; /* the durable top as each callback ran */
} seen;

static void on_ack(void *ud, int err)
{
    seen *s = ud;
    assert_int_equal(err, 0);
    if (s->calls < 64) s->tops[s->calls] = colony__bcommit_durable_top(s->c, s->st);
    s->calls++;
}

static colony__bid id_of(uint64_t ms)
{
    return (colony__bid){ms, 0};
}

#define assert_top(c, st, want) assert_int_equal(colony__bcommit_durable_top(c, st).ms, want)

static void moves_only_when_a_wait_is_durable(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(bs_dir);
    o.segment_bytes = 400; /* a roll-over every few entries */
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st;
    assert_int_equal(colony__bstore_create(s, "orders", &st), 0);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    colony__bcommit *c;
    assert_int_equal(colony__bcommit_new(&c, &loop, COLONY__BSYNC_ALWAYS, 0), 0);

    bs_add(st, 1);
    assert_top(c, st, 0); /* written, no wait yet */
    seen a = {c, st, 0, {{0, 0}}};
    assert_int_equal(colony__bcommit_wait(c, st, on_ack, &a), 0);
    bs_add(st, 2); /* after the wait began: not covered by it */
    assert_top(c, st, 0);
    volatile int *done = (volatile int *)&a.calls;
    assert_true(colony_test_run_until(&loop, done, 5000));
    assert_top(c, st, 1);

    /* the 38 waits of one loop turn reach the committer together and make
     * one batch, whose top is the last one's before any of its callbacks
     * runs */
    seen b = {c, st, 0, {{0, 0}}};
    for (uint64_t i = 3; i <= 40; i++) { /* roll-overs on the way */
        bs_add(st, i);
        assert_int_equal(colony__bcommit_wait(c, st, on_ack, &b), 0);
    }
    /* before their commit: the segments sealed (and fdatasynced) by the
     * roll-overs are durable, the one being written is not */
    assert_true(st->nsegs > 3);
    assert_top(c, st, st->segs[st->nsegs - 2]->last.ms);
    for (int i = 0; i < 5000 && b.calls < 38; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        if (b.calls < 38) usleep(1000);
    }
    assert_int_equal(b.calls, 38);
    for (int i = 0; i < 38; i++)
        assert_int_equal(colony__bid_cmp(b.tops[i], id_of(40)), 0);
    assert_top(c, st, 40);

    /* entries after it: the top stays until their wait, or a roll-over */
    bs_add(st, 41);
    assert_top(c, st, 40);
    for (uint64_t i = 42; i <= 60; i++)
        bs_add(st, i);
    assert_top(c, st, st->segs[st->nsegs - 2]->last.ms);
    assert_true(colony__bcommit_idle(c));
    colony__bcommit_shutdown(c);
    colony__bcommit_close(c);
    colony_test_loop_close(&loop);
    colony__bstore_close(s);

    /* reopened: what is there is as durable as it will get */
    s = bs_open_with(&o);
    st = colony__bstore_get(s, "orders");
    assert_non_null(st);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(colony__bcommit_new(&c, &loop, COLONY__BSYNC_ALWAYS, 0), 0);
    assert_top(c, st, 60);
    bs_add(st, 61); /* not durable: below it (an underestimate only delays a read) */
    assert_true(colony__bid_cmp(colony__bcommit_durable_top(c, st), id_of(61)) < 0);
    colony__bcommit_close(c);
    colony_test_loop_close(&loop);

    /* batch and never do not wait for the disk: the top is the stream's */
    colony__bsync_mode modes[] = {COLONY__BSYNC_BATCH, COLONY__BSYNC_NEVER};
    for (size_t m = 0; m < 2; m++) {
        assert_int_equal(uv_loop_init(&loop), 0);
        assert_int_equal(colony__bcommit_new(&c, &loop, modes[m], 0), 0);
        bs_add(st, 62 + m);
        assert_top(c, st, 62 + m);
        colony__bcommit_shutdown(c);
        colony__bcommit_close(c);
        colony_test_loop_close(&loop);
    }
    colony__bstore_close(s);
}

/* roll_unsynced (fsync: never's store option) leaves sealed segments to the
 * next wait: nothing is durable before it calls back. */
static void sealed_unsynced_segments_wait_for_the_commit(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(bs_dir);
    o.segment_bytes = 400;
    o.roll_unsynced = 1;
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st;
    assert_int_equal(colony__bstore_create(s, "orders", &st), 0);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    colony__bcommit *c;
    assert_int_equal(colony__bcommit_new(&c, &loop, COLONY__BSYNC_ALWAYS, 0), 0);
    for (uint64_t i = 1; i <= 20; i++)
        bs_add(st, i);
    assert_true(st->nunsynced > 0);
    assert_top(c, st, 0);
    seen a = {c, st, 0, {{0, 0}}};
    assert_int_equal(colony__bcommit_wait(c, st, on_ack, &a), 0);
    assert_top(c, st, 0);
    volatile int *done = (volatile int *)&a.calls;
    assert_true(colony_test_run_until(&loop, done, 5000));
    assert_top(c, st, 20);
    colony__bcommit_close(c);
    colony_test_loop_close(&loop);
    colony__bstore_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(moves_only_when_a_wait_is_durable, bs_setup_1s,
                                        bs_teardown),
        cmocka_unit_test_setup_teardown(sealed_unsynced_segments_wait_for_the_commit, bs_setup_1s,
                                        bs_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
