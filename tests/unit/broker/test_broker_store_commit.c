/* Durability modes (src/broker/store/commit.c) and a full disk: ALWAYS calls
 * back only after the fsync on the thread pool, BATCH and NEVER at once; a
 * wait covers segments sealed by roll-overs since the last one; a write the
 * disk refuses fails the call with its error, leaves no partial record, and
 * everything accepted before it is there after reopen. */
#include "broker_store_fixture.h"
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "broker/store/stream.h"
#include "colony/log.h"

typedef struct acked {
    int calls, err;
} acked;

static void on_ack(void *ud, int err)
{
    acked *a = ud;
    a->calls++;
    a->err = err;
}

static void run_mode(colony__bsync_mode mode, colony__bstream *st)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    colony__bcommit *c;
    assert_int_equal(colony__bcommit_new(&c, &loop, mode, 5), 0);
    for (uint64_t i = 0; i < 50; i++)
        bs_add(st, st->top.ms + 1);
    assert_true(mode != COLONY__BSYNC_ALWAYS || st->nunsynced > 0); /* it rolled over */
    acked a = {0};
    assert_int_equal(colony__bcommit_wait(c, st, on_ack, &a), 0);
    assert_int_equal(st->nunsynced, 0);
    if (mode == COLONY__BSYNC_ALWAYS) {
        assert_int_equal(a.calls, 0); /* not before its fsync */
        volatile int *done = (volatile int *)&a.calls;
        assert_true(colony_test_run_until(&loop, done, 5000));
        /* the sealed segments and the last one were fdatasynced, each up to
         * its last write (the journal was not written: skipped) */
        uint64_t n = colony__bcommit_fsyncs(c);
        assert_true(n >= 2);
        bfile *last = st->segs[st->nsegs - 1]->file;
        assert_int_equal(last->synced_gen, last->written);
        /* nothing written since: a second wait syncs nothing */
        a.calls = 0;
        assert_int_equal(colony__bcommit_wait(c, st, on_ack, &a), 0);
        assert_true(colony_test_run_until(&loop, done, 5000));
        assert_int_equal(colony__bcommit_fsyncs(c), n);
        /* a group change is in the journal: the next wait syncs it */
        colony__bgroup *g = colony__bgroup_get(st, "g");
        if (!g) assert_int_equal(colony__bgroup_create(st, "g", bs_min, &g), 0);
        a.calls = 0;
        assert_int_equal(colony__bcommit_wait(c, st, on_ack, &a), 0);
        assert_true(colony_test_run_until(&loop, done, 5000));
        assert_int_equal(colony__bcommit_fsyncs(c), n + 1);
        assert_int_equal(st->journal->synced_gen, st->journal->written);
    } else {
        assert_int_equal(a.calls, 1);
    }
    assert_int_equal(a.err, 0);
    uint64_t start = colony_test_now_ms(); /* BATCH: the tick syncs and empties */
    while (!colony__bcommit_idle(c) && colony_test_now_ms() - start < 5000)
        colony_test_run_once(&loop);
    assert_true(colony__bcommit_idle(c));
    colony__bcommit_shutdown(c);
    colony__bcommit_close(c);
    colony_test_loop_close(&loop);
}

static void sync_modes(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(bs_dir);
    o.segment_bytes = 400;
    o.roll_unsynced = 1; /* sealed segments wait for the next commit */
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st;
    assert_int_equal(colony__bstore_create(s, "orders", &st), 0);
    run_mode(COLONY__BSYNC_ALWAYS, st);
    run_mode(COLONY__BSYNC_BATCH, st);
    run_mode(COLONY__BSYNC_NEVER, st);
    colony__bstore_close(s);
}

/* ALWAYS: the waits made in one turn of the loop go to the committer
 * together at the next turn, so two writes and their two waits cost one
 * fdatasync (handed over one by one, the first would start a batch alone
 * and the second would need a second fdatasync). */
static void waits_of_one_turn_share_a_batch(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(bs_dir);
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st;
    assert_int_equal(colony__bstore_create(s, "orders", &st), 0);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    colony__bcommit *c;
    assert_int_equal(colony__bcommit_new(&c, &loop, COLONY__BSYNC_ALWAYS, 0), 0);
    acked a = {0}, b = {0}, first = {0};
    bs_add(st, 1); /* the new stream's files synced once */
    assert_int_equal(colony__bcommit_wait(c, st, on_ack, &first), 0);
    assert_true(colony_test_run_until(&loop, (volatile int *)&first.calls, 5000));
    uint64_t n = colony__bcommit_fsyncs(c);
    bs_add(st, 2);
    assert_int_equal(colony__bcommit_wait(c, st, on_ack, &a), 0);
    bs_add(st, 3);
    assert_int_equal(colony__bcommit_wait(c, st, on_ack, &b), 0);
    assert_false(colony__bcommit_idle(c));
    assert_true(colony_test_run_until(&loop, (volatile int *)&b.calls, 5000));
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.err, 0);
    assert_int_equal(b.err, 0);
    assert_int_equal(colony__bcommit_fsyncs(c), n + 1); /* the last segment, once */
    bfile *last = st->segs[st->nsegs - 1]->file;
    assert_int_equal(last->synced_gen, last->written);
    colony__bcommit_shutdown(c);
    colony__bcommit_close(c);
    colony_test_loop_close(&loop);
    colony__bstore_close(s);
}

/* A wait still queued for the next turn when the commit closes is called
 * back with COLONY_ECANCELED (never a success) and freed; nothing reaches
 * the thread pool after the close. */
static void close_cancels_queued_waits(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(bs_dir);
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st;
    assert_int_equal(colony__bstore_create(s, "orders", &st), 0);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    colony__bcommit *c;
    assert_int_equal(colony__bcommit_new(&c, &loop, COLONY__BSYNC_ALWAYS, 0), 0);
    acked a = {0};
    bs_add(st, 1);
    assert_int_equal(colony__bcommit_wait(c, st, on_ack, &a), 0);
    assert_int_equal(a.calls, 0);
    colony__bcommit_close(c);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.err, COLONY_ECANCELED);
    colony_test_loop_close(&loop);
    colony__bstore_close(s);
}

/* RLIMIT_FSIZE makes writes past a size fail (EFBIG), as a full disk does
 * (ENOSPC) through the same path. */
static void full_disk_refuses_and_loses_nothing(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(bs_dir);
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st;
    assert_int_equal(colony__bstore_create(s, "orders", &st), 0);
    colony__bgroup *g;
    assert_int_equal(colony__bgroup_create(st, "g", bs_min, &g), 0);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 2000;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    colony__bstr f[2] = {{"k", 1}, {"0123456789012345678901234567890123456789", 40}};
    colony__bid out;
    uint64_t ok = 0;
    int rc = 0;
    for (uint64_t i = 1; i < 1000 && !rc; i++) {
        rc = colony__bstream_append(st, COLONY__BID_EXPLICIT, (colony__bid){i, 0}, f, 2, &out);
        if (!rc) ok = i;
    }
    char consumer[201];
    memset(consumer, 'c', 200);
    consumer[200] = '\0';
    int rc_deliver = 0;
    for (uint64_t i = 1; i <= ok && !rc_deliver; i++)
        rc_deliver = colony__bgroup_deliver(g, consumer, (colony__bid){i, 0}, 0);
    colony__bgroup_info info;
    colony__bgroup_info_get(g, &info);
    size_t pending_ok = info.pending;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(rc, -EFBIG);
    assert_int_equal(rc_deliver, -EFBIG);
    assert_true(ok >= 10);
    assert_true(pending_ok >= 3 && pending_ok < ok);
    struct stat sb;
    assert_int_equal(stat(st->segs[0]->file->path, &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, st->segs[0]->bytes); /* no partial record */
    assert_true(sb.st_size <= 2000);
    bs_ids *ids = calloc(1, sizeof(*ids));
    colony__bstore_close(s);
    s = bs_open_with(&o); /* space is back */
    st = colony__bstore_get(s, "orders");
    assert_int_equal(colony__bstream_range(st, bs_min, bs_max, 0, 0, bs_count_only, ids), (long)ok);
    g = colony__bgroup_get(st, "g");
    colony__bgroup_info_get(g, &info);
    assert_int_equal(info.pending, pending_ok);
    assert_int_equal(
        colony__bstream_append(st, COLONY__BID_EXPLICIT, (colony__bid){ok + 1, 0}, f, 2, &out), 0);
    assert_int_equal(colony__bgroup_deliver(g, consumer, out, 0), 0);
    colony__bstore_close(s);
    free(ids);
}

/* on_fsync: which threads made the fdatasyncs (thread-safe: called on the
 * pool thread and the helper at once) */
static uv_thread_t fsync_threads[8];
static int nfsync_threads;
static uv_mutex_t fsync_mu;

static void on_fsync(void *ud, double seconds)
{
    (void)ud;
    (void)seconds;
    uv_mutex_lock(&fsync_mu);
    if (nfsync_threads < 8) fsync_threads[nfsync_threads++] = uv_thread_self();
    uv_mutex_unlock(&fsync_mu);
}

/* A batch that wrote the segment and the group journal syncs them at the same
 * time, on two threads (the pool's and the commit's helper): it waits for the
 * slower fdatasync, not the sum of both. A batch of one file uses one. */
static void batch_syncs_segment_and_journal_apart(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(bs_dir);
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st;
    assert_int_equal(colony__bstore_create(s, "orders", &st), 0);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(uv_mutex_init(&fsync_mu), 0);
    colony__bcommit *c;
    assert_int_equal(colony__bcommit_new(&c, &loop, COLONY__BSYNC_ALWAYS, 0), 0);
    colony__bcommit_on_fsync(c, on_fsync, NULL);
    colony__bgroup *g;
    bs_add(st, 1);
    assert_int_equal(colony__bgroup_create(st, "g", bs_min, &g), 0);
    acked a = {0};
    volatile int *done = (volatile int *)&a.calls;
    assert_int_equal(colony__bcommit_wait(c, st, on_ack, &a), 0);
    assert_true(colony_test_run_until(&loop, done, 5000));
    assert_int_equal(a.err, 0);
    assert_int_equal(colony__bcommit_fsyncs(c), 2);
    assert_int_equal(nfsync_threads, 2);
    assert_false(uv_thread_equal(&fsync_threads[0], &fsync_threads[1]));
    assert_int_equal(st->segs[0]->file->synced_gen, st->segs[0]->file->written);
    assert_int_equal(st->journal->synced_gen, st->journal->written);
    /* the journal only (an XACK): one fdatasync */
    nfsync_threads = 0;
    a.calls = 0;
    assert_int_equal(colony__bgroup_deliver(g, "c", (colony__bid){1, 0}, 0), 0);
    assert_int_equal(colony__bcommit_wait(c, st, on_ack, &a), 0);
    assert_true(colony_test_run_until(&loop, done, 5000));
    assert_int_equal(colony__bcommit_fsyncs(c), 3);
    assert_int_equal(nfsync_threads, 1);
    colony__bcommit_shutdown(c);
    colony__bcommit_close(c);
    colony_test_loop_close(&loop);
    uv_mutex_destroy(&fsync_mu);
    colony__bstore_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(sync_modes, bs_setup_1s, bs_teardown),
        cmocka_unit_test_setup_teardown(waits_of_one_turn_share_a_batch, bs_setup_1s, bs_teardown),
        cmocka_unit_test_setup_teardown(close_cancels_queued_waits, bs_setup_1s, bs_teardown),
        cmocka_unit_test_setup_teardown(batch_syncs_segment_and_journal_apart, bs_setup_1s,
                                        bs_teardown),
        cmocka_unit_test_setup_teardown(full_disk_refuses_and_loses_nothing, bs_setup_1s,
                                        bs_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
