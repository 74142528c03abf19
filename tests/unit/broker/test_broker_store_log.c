/* The broker's segment log (src/broker/store/log.c, read.c, segment.c): reads
 * by range both ways, Redis id rules, roll-over, torn tails cut at every byte
 * offset, a damaged record refused, deletes, exact trims and retention. */
#include "broker_store_fixture.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "broker/store/stream.h"
#include "colony/log.h"

static char dir[64];
static bs_ids got;

static int setup(void **state)
{
    (void)state;
    bs_tmpdir(dir, sizeof(dir));
    colony_fake_clock_init(&bs_clock, 1000);
    colony_log_set_level(COLONY_LOG_ERROR + 1); /* the torn tails cut are logged */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    bs_rmtree(dir);
    return 0;
}

static colony__bstream *new_stream(colony__bstore *s)
{
    colony__bstream *st = NULL;
    assert_int_equal(colony__bstore_create(s, "orders", &st), 0);
    return st;
}

/* Entries come back in id order forward and backward, bounded by range and
 * count, with their fields; XLEN and first/last agree. */
static void append_and_read_ranges(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(dir);
    o.index_every = 4;
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st = new_stream(s);
    for (uint64_t i = 1; i <= 100; i++)
        bs_add(st, i * 10);
    assert_int_equal(bs_range(st, 0, UINT64_MAX, 0, 0, &got), 100);
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(got.ids[i].ms, (i + 1) * 10);
    assert_int_equal(bs_range(st, 0, UINT64_MAX, 1, 0, &got), 100);
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(got.ids[i].ms, (100 - i) * 10);
    assert_int_equal(bs_range(st, 55, 205, 0, 0, &got), 15);
    assert_int_equal(got.ids[0].ms, 60);
    assert_int_equal(got.ids[14].ms, 200);
    assert_int_equal(bs_range(st, 55, 205, 1, 3, &got), 3);
    assert_int_equal(got.ids[0].ms, 200);
    assert_int_equal(got.ids[2].ms, 180);
    assert_int_equal(bs_range(st, 301, 309, 0, 0, &got), 0);
    colony__bstream_info info;
    colony__bstream_info_get(st, &info);
    assert_int_equal(info.length, 100);
    assert_int_equal(info.first.ms, 10);
    assert_int_equal(info.last.ms, 1000);
    colony__bstore_close(s);
}

/* XADD's rules: ids grow strictly; an id not above the top is refused with
 * ERANGE, 0-0 with EINVAL; "*" and "ms-*" continue from the top. */
static void ids_follow_redis_rules(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(dir);
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st = new_stream(s);
    colony__bid id, out;
    colony__bstr f[2] = {{"a", 1}, {"b", 1}};
    id = (colony__bid){0, 0};
    assert_int_equal(colony__bstream_append(st, COLONY__BID_EXPLICIT, id, f, 2, &out),
                     COLONY_EINVAL);
    id = (colony__bid){5, 1};
    assert_int_equal(colony__bstream_append(st, COLONY__BID_EXPLICIT, id, f, 2, &out), 0);
    assert_int_equal(colony__bstream_append(st, COLONY__BID_EXPLICIT, id, f, 2, &out),
                     COLONY_ERANGE);
    id = (colony__bid){4, 9};
    assert_int_equal(colony__bstream_append(st, COLONY__BID_EXPLICIT, id, f, 2, &out),
                     COLONY_ERANGE);
    id = (colony__bid){5, 0};
    assert_int_equal(colony__bstream_append(st, COLONY__BID_AUTO_SEQ, id, f, 2, &out), 0);
    assert_int_equal(out.ms, 5);
    assert_int_equal(out.seq, 2);
    id = (colony__bid){3, 0};
    assert_int_equal(colony__bstream_append(st, COLONY__BID_AUTO_SEQ, id, f, 2, &out),
                     COLONY_ERANGE);
    assert_int_equal(colony__bstream_append(st, COLONY__BID_AUTO, id, f, 2, &out), 0);
    assert_int_equal(out.ms, 1000); /* the fake wall clock */
    assert_int_equal(out.seq, 0);
    assert_int_equal(colony__bstream_append(st, COLONY__BID_AUTO, id, f, 2, &out), 0);
    assert_int_equal(out.ms, 1000);
    assert_int_equal(out.seq, 1);
    id = (colony__bid){UINT64_MAX, UINT64_MAX};
    assert_int_equal(colony__bstream_append(st, COLONY__BID_EXPLICIT, id, f, 2, &out), 0);
    assert_int_equal(colony__bstream_append(st, COLONY__BID_AUTO, id, f, 2, &out), COLONY_ERANGE);
    colony__bstore_close(s);
    s = bs_open_with(&o); /* the top survives a reopen */
    st = colony__bstore_get(s, "orders");
    assert_non_null(st);
    id = (colony__bid){1000, 1};
    assert_int_equal(colony__bstream_append(st, COLONY__BID_EXPLICIT, id, f, 2, &out),
                     COLONY_ERANGE);
    colony__bstore_close(s);
}

/* Small segments: many files, reads across them both ways, after reopen too. */
static void segments_roll_over(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(dir);
    o.segment_bytes = 1024;
    o.index_every = 3;
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st = new_stream(s);
    for (uint64_t i = 1; i <= 300; i++)
        bs_add(st, i);
    colony__bstream_info info;
    colony__bstream_info_get(st, &info);
    assert_true(info.segments > 10);
    assert_int_equal(st->nunsynced, 0); /* sealed segments were synced as they rolled */
    /* memory per segment: one index point per index_every entries, not per entry */
    for (size_t i = 0; i < st->nsegs; i++)
        assert_int_equal(st->segs[i]->nindex, (st->segs[i]->entries + 2) / 3);
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(bs_range(st, 0, UINT64_MAX, 0, 0, &got), 300);
        for (size_t i = 0; i < 300; i++)
            assert_int_equal(got.ids[i].ms, i + 1);
        assert_int_equal(bs_range(st, 0, UINT64_MAX, 1, 0, &got), 300);
        for (size_t i = 0; i < 300; i++)
            assert_int_equal(got.ids[i].ms, 300 - i);
        assert_int_equal(bs_range(st, 77, 211, 1, 0, &got), 135);
        assert_int_equal(got.ids[0].ms, 211);
        colony__bstore_close(s);
        s = bs_open_with(&o);
        st = colony__bstore_get(s, "orders");
        colony__bstream_info info2;
        colony__bstream_info_get(st, &info2);
        assert_int_equal(info2.segments, info.segments);
        assert_int_equal(info2.length, 300);
    }
    colony__bstore_close(s);
}

static char *last_segment(colony__bstream *st)
{
    return st->segs[st->nsegs - 1]->file->path;
}

static void write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* A crash can leave any prefix of the last record: at every length it is
 * cut on reopen, every earlier record is intact, and appends go on. */
static void torn_tail_cut_at_every_offset(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(dir);
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st = new_stream(s);
    for (uint64_t i = 1; i <= 5; i++)
        bs_add(st, i);
    char path[4096];
    snprintf(path, sizeof(path), "%s", last_segment(st));
    uint64_t last_off = st->segs[0]->index[0].off;
    bs_range(st, 5, 5, 0, 0, &got);
    colony__bstore_close(s);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    size_t size = (size_t)sb.st_size;
    char *orig = malloc(size);
    FILE *f = fopen(path, "rb");
    assert_int_equal(fread(orig, 1, size, f), size);
    fclose(f);
    last_off = size - (size / 5); /* five records of equal size */
    (void)last_off;
    size_t rec = size / 5;
    for (size_t len = size - rec; len < size; len++) {
        write_file(path, orig, len);
        s = bs_open_with(&o);
        st = colony__bstore_get(s, "orders");
        assert_int_equal(bs_range(st, 0, UINT64_MAX, 0, 0, &got), 4);
        assert_int_equal(got.ids[3].ms, 4);
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal((size_t)sb.st_size, size - rec);
        bs_add(st, 6);
        assert_int_equal(bs_range(st, 0, UINT64_MAX, 0, 0, &got), 5);
        colony__bstore_close(s);
    }
    /* a damaged last record (nothing valid after it) is a torn tail too */
    orig[size - 3] ^= 0x40;
    write_file(path, orig, size);
    s = bs_open_with(&o);
    st = colony__bstore_get(s, "orders");
    assert_int_equal(bs_range(st, 0, UINT64_MAX, 0, 0, &got), 4);
    colony__bstore_close(s);
    free(orig);
}

/* A flipped byte in a sealed segment is damage: that stream is not opened
 * (the others are), the reason names the file and offset, and no new stream
 * takes its name; repaired, it opens again. In the last segment a
 * bad record with valid ones after it may be a batch the machine persisted
 * out of order before a power loss (nothing from it acknowledged): the tail
 * is cut from it, but kept first in <segment>.damaged-<offset>. */
static void flipped_byte_detected(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(dir);
    o.segment_bytes = 200;
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st = new_stream(s);
    for (uint64_t i = 1; i <= 20; i++)
        bs_add(st, i);
    assert_true(st->nsegs > 2);
    char first[4096], last[4096];
    snprintf(first, sizeof(first), "%s", st->segs[0]->file->path);
    snprintf(last, sizeof(last), "%s", last_segment(st));
    uint64_t rec = st->segs[0]->bytes / st->segs[0]->entries;
    uint64_t last_entries = st->segs[st->nsegs - 1]->entries;
    uint64_t last_bytes = st->segs[st->nsegs - 1]->bytes;
    assert_true(last_entries >= 2);
    colony__bstore_close(s);
    off_t at = (off_t)(rec / 2); /* inside the first record's header or body */
    char c;
    int fd = open(first, O_RDWR);
    assert_int_equal(pread(fd, &c, 1, at), 1);
    c ^= 0x01;
    assert_int_equal(pwrite(fd, &c, 1, at), 1);
    colony__bstore *bad = bs_open_with(&o); /* the store opens, that stream does not */
    assert_int_equal(colony__bstore_create(bad, "other", NULL), 0);
    assert_null(colony__bstore_get(bad, "orders"));
    const char *why = colony__bstore_damaged(bad, "orders");
    assert_non_null(why);
    assert_non_null(strstr(why, first));
    assert_non_null(strstr(why, "offset 0"));
    size_t pos = 0;
    assert_string_equal(colony__bstore_damaged_next(bad, &pos, NULL), "orders");
    assert_null(colony__bstore_damaged_next(bad, &pos, NULL));
    assert_int_equal(colony__bstore_create(bad, "orders", NULL),
                     COLONY_EIO); /* no new one over it */
    colony__bstore_close(bad);
    c ^= 0x01; /* repaired, it opens again */
    assert_int_equal(pwrite(fd, &c, 1, at), 1);
    close(fd);
    s = bs_open_with(&o);
    assert_int_equal(bs_range(colony__bstore_get(s, "orders"), 0, UINT64_MAX, 0, 0, &got), 20);
    colony__bstore_close(s);

    fd = open(last, O_RDWR);
    assert_int_equal(pread(fd, &c, 1, at), 1);
    c ^= 0x01;
    assert_int_equal(pwrite(fd, &c, 1, at), 1);
    close(fd);
    s = bs_open_with(&o);
    assert_int_equal(bs_range(colony__bstore_get(s, "orders"), 0, UINT64_MAX, 0, 0, &got),
                     20 - last_entries);
    colony__bstore_close(s);
    char kept[4200];
    snprintf(kept, sizeof(kept), "%s.damaged-0", last);
    struct stat sb;
    assert_int_equal(stat(kept, &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, last_bytes);
    assert_int_equal(stat(last, &sb), -1); /* cut to nothing, the empty segment went */

    fd = open(first, O_RDWR); /* damaged again: DEL removes it knowingly */
    assert_int_equal(pread(fd, &c, 1, at), 1);
    c ^= 0x01;
    assert_int_equal(pwrite(fd, &c, 1, at), 1);
    close(fd);
    s = bs_open_with(&o);
    assert_non_null(colony__bstore_damaged(s, "orders"));
    assert_int_equal(colony__bstore_drop(s, "orders"), 0);
    assert_null(colony__bstore_damaged(s, "orders"));
    assert_int_equal(colony__bstore_create(s, "orders", NULL), 0);
    colony__bstore_close(s);
    s = bs_open_with(&o);
    assert_null(colony__bstore_damaged(s, "orders"));
    assert_non_null(colony__bstore_get(s, "orders"));
    colony__bstore_close(s);
}

/* XDEL writes a tombstone: the entry is gone from reads and XLEN, after reopen too. */
static void delete_is_durable(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(dir);
    o.segment_bytes = 300;
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st = new_stream(s);
    for (uint64_t i = 1; i <= 30; i++)
        bs_add(st, i);
    colony__bid id = {7, 0}, none = {7, 1};
    assert_int_equal(colony__bstream_delete(st, id), 1);
    assert_int_equal(colony__bstream_delete(st, id), 0);
    assert_int_equal(colony__bstream_delete(st, none), 0);
    id.ms = 30;
    assert_int_equal(colony__bstream_delete(st, id), 1);
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(bs_range(st, 0, UINT64_MAX, 0, 0, &got), 28);
        assert_int_equal(got.ids[6].ms, 8);
        assert_int_equal(bs_range(st, 0, UINT64_MAX, 1, 0, &got), 28);
        assert_int_equal(got.ids[0].ms, 29);
        colony__bstream_info info;
        colony__bstream_info_get(st, &info);
        assert_int_equal(info.length, 28);
        assert_int_equal(info.top.ms, 30); /* a deleted top still bounds new ids */
        colony__bstore_close(s);
        s = bs_open_with(&o);
        st = colony__bstore_get(s, "orders");
    }
    colony__bstore_close(s);
}

/* XTRIM MAXLEN / MINID are exact (a first-id record), whole segments below
 * go, and the result survives reopen. */
static void trims_are_exact(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(dir);
    o.segment_bytes = 300;
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st = new_stream(s);
    for (uint64_t i = 1; i <= 100; i++)
        bs_add(st, i);
    colony__bid id = {50, 0};
    assert_int_equal(colony__bstream_delete(st, id), 1);
    size_t segs = st->nsegs;
    assert_int_equal(colony__bstream_trim_maxlen(st, 60), 39);
    assert_int_equal(bs_range(st, 0, UINT64_MAX, 0, 0, &got), 60);
    assert_int_equal(got.ids[0].ms, 40); /* 40..100 without 50 */
    assert_true(st->nsegs < segs);
    id.ms = 71;
    assert_int_equal(colony__bstream_trim_minid(st, id), 30);
    assert_int_equal(colony__bstream_trim_minid(st, id), 0);
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(bs_range(st, 0, UINT64_MAX, 1, 0, &got), 30);
        assert_int_equal(got.ids[29].ms, 71);
        colony__bstream_info info;
        colony__bstream_info_get(st, &info);
        assert_int_equal(info.length, 30);
        assert_int_equal(info.first.ms, 71);
        colony__bstore_close(s);
        s = bs_open_with(&o);
        st = colony__bstore_get(s, "orders");
    }
    assert_int_equal(colony__bstream_trim_maxlen(st, 0), 30);
    assert_int_equal(bs_range(st, 0, UINT64_MAX, 0, 0, &got), 0);
    bs_add(st, 101);
    assert_int_equal(bs_range(st, 0, UINT64_MAX, 0, 0, &got), 1);
    /* MINID past the top removes everything, but as in Redis, later entries
     * with ids below it are kept (the first id stops just past the top) */
    assert_int_equal(colony__bstream_trim_minid(st, (colony__bid){500, 0}), 1);
    bs_add(st, 102);
    colony__bstore_close(s);
    s = bs_open_with(&o);
    st = colony__bstore_get(s, "orders");
    assert_int_equal(bs_range(st, 0, UINT64_MAX, 0, 0, &got), 1);
    assert_int_equal(got.ids[0].ms, 102);
    colony__bstore_close(s);
}

/* Retention removes whole sealed segments by age, bytes, entries and by the
 * lowest id still needed; the segment being written always stays. */
static void retention_of_each_kind(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(dir);
    o.segment_bytes = 500; /* 10 entries per segment */
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st = new_stream(s);
    for (uint64_t i = 1; i <= 100; i++) {
        bs_add(st, i);
        colony_fake_clock_advance(&bs_clock, 1000);
    }
    size_t per = st->segs[0]->entries;
    assert_true(per >= 5);
    colony__bretention r = {0};
    assert_int_equal(colony__bstream_retain(st, &r), 0);
    char first_path[4096];
    snprintf(first_path, sizeof(first_path), "%s", st->segs[0]->file->path);
    char saved[4096];
    FILE *f = fopen(first_path, "rb");
    size_t saved_len = fread(saved, 1, sizeof(saved), f);
    fclose(f);
    r.needed = (colony__bid){per * 2 + 1, 0}; /* acked by all below: two segments */
    assert_int_equal(colony__bstream_retain(st, &r), 2);
    assert_int_equal(st->segs[0]->first.ms, per * 2 + 1);
    /* a crash before the unlink reached the disk brings a file back: its
     * entries stay gone (the first-id record written by retention) */
    colony__bstore_close(s);
    f = fopen(first_path, "wb");
    assert_int_equal(fwrite(saved, 1, saved_len, f), saved_len);
    fclose(f);
    s = bs_open_with(&o);
    st = colony__bstore_get(s, "orders");
    assert_int_equal(bs_range(st, 0, UINT64_MAX, 0, 0, &got), 100 - per * 2);
    assert_int_equal(got.ids[0].ms, per * 2 + 1);
    assert_int_equal(colony__bstream_retain(st, &r), 1); /* and it goes again */
    r = (colony__bretention){0};
    r.max_entries = 100 - per * 4;
    assert_int_equal(colony__bstream_retain(st, &r), 2);
    colony__bstream_info info;
    colony__bstream_info_get(st, &info);
    assert_int_equal(info.length, 100 - per * 4);
    assert_true(info.length >= r.max_entries);
    r = (colony__bretention){0};
    r.max_bytes = info.bytes - st->segs[0]->bytes;
    assert_int_equal(colony__bstream_retain(st, &r), 1);
    r = (colony__bretention){0};
    r.max_age_ms = 1000 * (100 - per * 6) - 1; /* newest entry of the next segment is older */
    assert_int_equal(colony__bstream_retain(st, &r), 1);
    uint64_t first = st->segs[0]->first.ms;
    r.max_age_ms = 1;
    assert_true(colony__bstream_retain(st, &r) >= 1);
    assert_int_equal(st->nsegs, 1);
    assert_int_equal(bs_range(st, 0, UINT64_MAX, 0, 0, &got), st->segs[0]->entries);
    assert_true(got.ids[0].ms > first);
    colony__bstore_close(s);
    s = bs_open_with(&o);
    st = colony__bstore_get(s, "orders");
    assert_int_equal(st->nsegs, 1);
    assert_int_equal(bs_range(st, 0, UINT64_MAX, 0, 0, &got), st->segs[0]->entries);
    colony__bstore_close(s);
}

/* Streams with any name live side by side; DEL removes one; a second
 * process (a second open) on the same dir is refused. */
static void streams_names_and_lock(void **state)
{
    (void)state;
    colony__bstore_options o = bs_options(dir);
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *a, *b;
    assert_int_equal(colony__bstore_create(s, "../odd name/é", &a), 0);
    assert_int_equal(colony__bstore_create(s, ".hidden", &b), 0);
    assert_int_equal(colony__bstore_create(s, ".hidden", NULL), COLONY_EEXIST);
    bs_add(a, 1);
    bs_add(b, 2);
    colony__bstore *other = NULL;
    char msg[512];
    assert_int_equal(colony__bstore_open(&other, &o, msg, sizeof(msg)), COLONY_EBUSY);
    assert_non_null(strstr(msg, "in use"));
    colony__bstore_close(s);
    s = bs_open_with(&o);
    assert_non_null(colony__bstore_get(s, "../odd name/é"));
    assert_int_equal(colony__bstore_drop(s, ".hidden"), 0);
    assert_int_equal(colony__bstore_drop(s, ".hidden"), COLONY_ENOENT);
    colony__bstore_close(s);
    s = bs_open_with(&o);
    assert_null(colony__bstore_get(s, ".hidden"));
    assert_int_equal(bs_range(colony__bstore_get(s, "../odd name/é"), 0, 9, 0, 0, &got), 1);
    colony__bstore_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(append_and_read_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(ids_follow_redis_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(segments_roll_over, setup, teardown),
        cmocka_unit_test_setup_teardown(torn_tail_cut_at_every_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(flipped_byte_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(delete_is_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(trims_are_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(retention_of_each_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(streams_names_and_lock, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
