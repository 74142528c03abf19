/* The segment log against a model: random appends (explicit ids with gaps),
 * XDELs, MAXLEN and MINID trims and retention on a store with tiny segments
 * and a sparse index, with reopens in between; after every step random range
 * reads both ways, with and without a count, and XLEN agree with a sorted
 * array of the ids that should be there. */
#include "broker_store_fixture.h"
#include "broker/store/stream.h"
#include "colony/log.h"

#define MAXN 3000

static char dir[64];
static uint64_t model[MAXN];
static size_t nmodel;
static bs_ids got;
static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(uint64_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng % n;
}

static void model_remove(size_t from, size_t to) /* [from, to) */
{
    memmove(model + from, model + to, (nmodel - to) * sizeof(model[0]));
    nmodel -= to - from;
}

static void check(colony__bstream *st)
{
    for (int q = 0; q < 20; q++) {
        uint64_t a = rnd(model[nmodel ? nmodel - 1 : 0] + 20), b = a + rnd(400);
        int reverse = (int)rnd(2);
        size_t count = rnd(3) ? 0 : 1 + rnd(50);
        size_t want[MAXN], n = 0;
        for (size_t i = 0; i < nmodel; i++)
            if (model[i] >= a && model[i] <= b) want[n++] = model[i];
        bs_range(st, a, b, reverse, count, &got);
        size_t expect = count && count < n ? count : n;
        assert_int_equal(got.n, expect);
        for (size_t i = 0; i < expect; i++)
            assert_int_equal(got.ids[i].ms, reverse ? want[n - 1 - i] : want[i]);
    }
    colony__bstream_info info;
    colony__bstream_info_get(st, &info);
    assert_int_equal(info.length, nmodel);
    if (nmodel) {
        assert_int_equal(info.first.ms, model[0]);
        assert_int_equal(info.last.ms, model[nmodel - 1]);
    }
}

static void run_model(uint64_t seed)
{
    rng = seed;
    nmodel = 0;
    bs_tmpdir(dir, sizeof(dir));
    colony_fake_clock_init(&bs_clock, 1000);
    colony_log_set_level(COLONY_LOG_ERROR + 1);
    colony__bstore_options o = bs_options(dir);
    o.segment_bytes = 700;
    o.index_every = 3;
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st;
    assert_int_equal(colony__bstore_create(s, "m", &st), 0);
    uint64_t next = 1;
    for (int step = 0; step < 1000; step++) {
        uint64_t op = rnd(100);
        if (op < 60) { /* a few appends */
            for (uint64_t k = 1 + rnd(8); k > 0 && nmodel < MAXN; k--) {
                next += 1 + rnd(3);
                bs_add(st, next);
                model[nmodel++] = next;
            }
        } else if (op < 75 && nmodel) { /* XDEL: present or not */
            uint64_t id = rnd(2) ? model[rnd(nmodel)] : rnd(next + 2);
            size_t i = 0;
            while (i < nmodel && model[i] != id)
                i++;
            int there = i < nmodel;
            assert_int_equal(colony__bstream_delete(st, (colony__bid){id, 0}), there);
            if (there) model_remove(i, i + 1);
        } else if (op < 80) { /* MAXLEN */
            uint64_t keep = rnd(nmodel + 5);
            long want = nmodel > keep ? (long)(nmodel - keep) : 0;
            assert_int_equal(colony__bstream_trim_maxlen(st, keep), want);
            if (want) model_remove(0, (size_t)want);
        } else if (op < 85 && nmodel) { /* MINID */
            uint64_t minid = model[0] + rnd(60);
            size_t i = 0;
            while (i < nmodel && model[i] < minid)
                i++;
            assert_int_equal(colony__bstream_trim_minid(st, (colony__bid){minid, 0}), (long)i);
            model_remove(0, i);
        } else if (op < 90) { /* retention by entries: whole segments only */
            colony__bretention r = {0};
            r.max_entries = 40 + rnd(40);
            colony__bstream_retain(st, &r);
            colony__bid first = st->nsegs ? st->segs[0]->first : (colony__bid){0, 0};
            size_t i = 0;
            while (i < nmodel && model[i] < first.ms)
                i++;
            model_remove(0, i);
            assert_true(nmodel >= r.max_entries || i == 0);
        } else { /* reopen */
            colony__bstore_close(s);
            s = bs_open_with(&o);
            st = colony__bstore_get(s, "m");
            assert_non_null(st);
        }
        check(st);
    }
    colony__bstore_close(s);
    bs_rmtree(dir);
}

static void log_matches_model(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++)
        run_model(seed * 88172645463325252ull);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(log_matches_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
