/* Preallocated segments and journals (prealloc.c): the store zero-fills the
 * last segment and the group journal ahead of their writes, so files end in
 * zeros after their last record. These tests check the recovery rules for
 * that tail (an all-zero tail is a clean end; a torn record before zeros is
 * still cut by its checksum), that the zero-filling thread never overwrites
 * a record written meanwhile, and that a sealed segment is cut back to its
 * records. */
#include "broker_store_fixture.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include "broker/store/stream.h"

static uint64_t file_size(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return (uint64_t)sb.st_size;
}

/* Appends n zero bytes to path (what the zero-filling thread leaves). */
static void add_zeros(const char *path, size_t n)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    char *z = calloc(1, n);
    assert_int_equal(write(fd, z, n), (ssize_t)n);
    free(z);
    close(fd);
}

static int on_tmpfs(const char *dir)
{
    struct statfs sf;
    assert_int_equal(statfs(dir, &sf), 0);
    return sf.f_type == 0x01021994;
}

static int count_damaged_files(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "find %s -name '*.damaged-*' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

/* A zero tail after the last record of a segment and of the journal is a
 * clean end: every entry and the group state come back, nothing is cut or
 * kept aside, and appends go on right after the last record. The last
 * segment keeps its zeros (still preallocated); a sealed segment with zeros
 * (a crash before its cut, with roll_unsynced) opens too, not as damage. */
static void zero_tail_is_a_clean_end(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(bs_dir);
    o.segment_bytes = 200; /* a few entries per segment */
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st;
    assert_int_equal(colony__bstore_create(s, "orders", &st), 0);
    for (uint64_t i = 1; i <= 12; i++)
        bs_add(st, i);
    assert_true(st->nsegs >= 2);
    colony__bgroup *g;
    assert_int_equal(colony__bgroup_create(st, "g", bs_min, &g), 0);
    assert_int_equal(colony__bgroup_deliver(g, "c", (colony__bid){2, 0}, 0), 0);
    char first[4096], last[4096], jnl[4096];
    snprintf(first, sizeof(first), "%s", st->segs[0]->file->path);
    snprintf(last, sizeof(last), "%s", st->segs[st->nsegs - 1]->file->path);
    snprintf(jnl, sizeof(jnl), "%s", st->journal->path);
    uint64_t last_bytes = st->segs[st->nsegs - 1]->bytes;
    colony__bstore_close(s);
    add_zeros(first, 3000);
    add_zeros(last, 100000);
    add_zeros(jnl, 5000);

    s = bs_open_with(&o);
    st = colony__bstore_get(s, "orders");
    assert_non_null(st);
    assert_null(colony__bstore_damaged(s, "orders"));
    bs_ids got;
    assert_int_equal(bs_range(st, 0, UINT64_MAX, 0, 0, &got), 12);
    assert_int_equal(st->segs[st->nsegs - 1]->bytes, last_bytes);
    assert_int_equal(file_size(last), last_bytes + 100000); /* kept, not cut */
    g = colony__bgroup_get(st, "g");
    assert_non_null(g);
    assert_non_null(colony__bgroup_pending(g, (colony__bid){2, 0}));
    bs_add(st, 13); /* written at the end of the records, over the zeros */
    assert_int_equal(colony__bgroup_ack(g, (colony__bid){2, 0}), 1);
    colony__bstore_close(s);
    assert_int_equal(count_damaged_files(bs_dir), 0);

    s = bs_open_with(&o);
    st = colony__bstore_get(s, "orders");
    assert_int_equal(bs_range(st, 0, UINT64_MAX, 0, 0, &got), 13);
    assert_int_equal(got.ids[12].ms, 13);
    assert_null(colony__bgroup_pending(colony__bgroup_get(st, "g"), (colony__bid){2, 0}));
    colony__bstore_close(s);
}

/* A torn last record followed by zeros (a crash mid-write into the
 * preallocated space) is still found by its checksum and cut. */
static void torn_record_before_zeros_is_cut(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(bs_dir);
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st;
    assert_int_equal(colony__bstore_create(s, "orders", &st), 0);
    for (uint64_t i = 1; i <= 5; i++)
        bs_add(st, i);
    char seg[4096];
    snprintf(seg, sizeof(seg), "%s", st->segs[0]->file->path);
    uint64_t bytes = st->segs[0]->bytes;
    colony__bstore_close(s);
    /* the last record loses its last 5 bytes to zeros, then more zeros */
    assert_int_equal(truncate(seg, (off_t)(bytes - 5)), 0);
    add_zeros(seg, 70000);

    s = bs_open_with(&o);
    st = colony__bstore_get(s, "orders");
    assert_non_null(st);
    bs_ids got;
    assert_int_equal(bs_range(st, 0, UINT64_MAX, 0, 0, &got), 4);
    assert_int_equal(got.ids[3].ms, 4);
    assert_true(file_size(seg) < bytes); /* cut where the torn record began */
    bs_add(st, 5);
    colony__bstore_close(s);
    s = bs_open_with(&o);
    assert_int_equal(bs_range(colony__bstore_get(s, "orders"), 0, UINT64_MAX, 0, 0, &got), 5);
    colony__bstore_close(s);
}

/* With prealloc_bytes the thread zero-fills ahead while the loop appends
 * (a 4 KiB chunk: a chunk in flight for almost every append): every record
 * reads back after reopen, and every sealed segment was cut back to its
 * records. */
static void appends_race_the_zero_fill(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(bs_dir);
    o.prealloc_bytes = 4096;
    o.segment_bytes = 64 * 1024;
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st;
    assert_int_equal(colony__bstore_create(s, "orders", &st), 0);
    colony__bgroup *g;
    assert_int_equal(colony__bgroup_create(st, "g", bs_min, &g), 0);
    const uint64_t n = 3000;
    for (uint64_t i = 1; i <= n; i++) {
        bs_add(st, i);
        assert_int_equal(colony__bgroup_deliver(g, "c", (colony__bid){i, 0}, 0), 0);
        if (i % 3 == 0) assert_int_equal(colony__bgroup_ack(g, (colony__bid){i, 0}), 1);
    }
    assert_true(st->nsegs > 2);
    int zero_filled = !on_tmpfs(bs_dir);
    if (zero_filled) { /* the thread ran (it gives up on tmpfs: nothing to gain) */
        for (int i = 0; i < 500 && colony__bprealloc_chunks(s->pa) < 3; i++)
            usleep(10000);
        assert_true(colony__bprealloc_chunks(s->pa) >= 3);
    }
    for (size_t i = 0; i + 1 < st->nsegs; i++) /* sealed: no zeros left */
        assert_int_equal(file_size(st->segs[i]->file->path), st->segs[i]->bytes);
    colony__bstore_close(s); /* joins the thread */
    assert_int_equal(count_damaged_files(bs_dir), 0);

    s = bs_open_with(&o);
    st = colony__bstore_get(s, "orders");
    assert_non_null(st);
    colony__bstream_info info;
    colony__bstream_info_get(st, &info);
    assert_int_equal(info.length, n);
    static bs_ids got;
    long k = colony__bstream_range(st, bs_min, bs_max, 0, 0, bs_collect, &got);
    assert_int_equal(k, (long)n);
    assert_false(got.bad_value);
    g = colony__bgroup_get(st, "g");
    colony__bgroup_info gi;
    colony__bgroup_info_get(g, &gi);
    assert_int_equal(gi.pending, n - n / 3);
    colony__bstore_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(zero_tail_is_a_clean_end, bs_setup, bs_teardown),
        cmocka_unit_test_setup_teardown(torn_record_before_zeros_is_cut, bs_setup, bs_teardown),
        cmocka_unit_test_setup_teardown(appends_race_the_zero_fill, bs_setup, bs_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
