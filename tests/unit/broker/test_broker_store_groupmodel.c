/* Group state against a model: random deliveries, redeliveries, claims,
 * acks, consumer deletes, SETIDs, reopens and compactions (a tiny
 * journal_compact_bytes) on two groups; after every step each group's cursor,
 * pending entries (owner, count, last and due times) and consumers' counts
 * agree with plain arrays. */
#include "broker_store_fixture.h"
#include "broker/store/stream.h"
#include "colony/log.h"

#define IDS   64
#define NCONS 4

typedef struct mpend {
    int pending, owner;
    uint64_t count, last, due;
} mpend;

typedef struct mgroup {
    const char *name;
    uint64_t cursor;
    mpend p[IDS + 1];
    int has_consumer[NCONS];
} mgroup;

static char dir[64];
static const char *cons[NCONS] = {"ann", "ben", "cat", "dan"};
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(uint64_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng % n;
}

static void check_group(colony__bstream *st, const mgroup *m)
{
    colony__bgroup *g = colony__bgroup_get(st, m->name);
    assert_non_null(g);
    colony__bgroup_info info;
    colony__bgroup_info_get(g, &info);
    assert_int_equal(info.cursor.ms, m->cursor);
    size_t npend = 0, held[NCONS] = {0}, ncons = 0;
    for (uint64_t id = 1; id <= IDS; id++) {
        const colony__bpending *p = colony__bgroup_pending(g, (colony__bid){id, 0});
        if (!m->p[id].pending) {
            assert_null(p);
            continue;
        }
        npend++;
        held[m->p[id].owner]++;
        assert_non_null(p);
        assert_string_equal(p->consumer, cons[m->p[id].owner]);
        assert_int_equal(p->count, m->p[id].count);
        assert_int_equal(p->last_ms, m->p[id].last);
        assert_int_equal(p->due_ms, m->p[id].due);
    }
    assert_int_equal(info.pending, npend);
    for (int c = 0; c < NCONS; c++)
        ncons += (size_t)m->has_consumer[c];
    assert_int_equal(info.consumers, ncons);
    size_t pos = 0, n;
    const char *name;
    while ((name = colony__bgroup_consumer_next(g, &pos, &n))) {
        int c = 0;
        while (c < NCONS && strcmp(cons[c], name))
            c++;
        assert_true(c < NCONS && m->has_consumer[c]);
        assert_int_equal(n, held[c]);
    }
}

static void step(colony__bstream *st, mgroup *m)
{
    colony__bgroup *g = colony__bgroup_get(st, m->name);
    uint64_t id = 1 + rnd(IDS), op = rnd(100);
    int c = (int)rnd(NCONS);
    mpend *p = &m->p[id];
    uint64_t now = colony__bstore_now(st->store);
    if (op < 45) { /* deliver (new or again) */
        uint64_t due = now + rnd(1000);
        assert_int_equal(colony__bgroup_deliver(g, cons[c], (colony__bid){id, 0}, due), 0);
        *p = (mpend){1, c, p->pending ? p->count + 1 : 1, now, due};
        m->has_consumer[c] = 1;
        if (id > m->cursor) m->cursor = id;
    } else if (op < 60) { /* claim / nack / extend */
        uint64_t count = rnd(9), due = rnd(5000);
        int rc = colony__bgroup_update(g, cons[c], (colony__bid){id, 0}, count, now - 1, due);
        assert_int_equal(rc, p->pending ? 0 : COLONY_ENOENT);
        if (p->pending) {
            *p = (mpend){1, c, count, now - 1, due};
            m->has_consumer[c] = 1;
        }
    } else if (op < 85) { /* ack */
        assert_int_equal(colony__bgroup_ack(g, (colony__bid){id, 0}), p->pending);
        p->pending = 0;
    } else if (op < 90) { /* delete a consumer with what it holds */
        long held = 0;
        for (uint64_t i = 1; i <= IDS; i++)
            held += m->p[i].pending && m->p[i].owner == c;
        long rc = colony__bgroup_consumer_delete(g, cons[c]);
        assert_int_equal(rc, m->has_consumer[c] ? held : COLONY_ENOENT);
        for (uint64_t i = 1; i <= IDS; i++)
            if (m->p[i].pending && m->p[i].owner == c) m->p[i].pending = 0;
        m->has_consumer[c] = 0;
    } else if (op < 95) { /* add a consumer */
        assert_int_equal(colony__bgroup_consumer_add(g, cons[c]), !m->has_consumer[c]);
        m->has_consumer[c] = 1;
    } else { /* SETID */
        uint64_t to = rnd(IDS + 1);
        assert_int_equal(colony__bgroup_setid(g, (colony__bid){to, 0}), 0);
        m->cursor = to;
    }
}

static void groups_match_model(void **state)
{
    (void)state;
    bs_tmpdir(dir, sizeof(dir));
    colony_fake_clock_init(&bs_clock, 10000);
    colony_log_set_level(COLONY_LOG_ERROR + 1);
    colony__bstore_options o = bs_options(dir);
    o.journal_compact_bytes = 2048;
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st;
    assert_int_equal(colony__bstore_create(s, "m", &st), 0);
    static mgroup m[2];
    memset(m, 0, sizeof(m));
    m[0].name = "a";
    m[1].name = "b";
    for (int k = 0; k < 2; k++)
        assert_int_equal(colony__bgroup_create(st, m[k].name, bs_min, NULL), 0);
    for (int i = 0; i < 3000; i++) {
        colony_fake_clock_advance(&bs_clock, 1 + rnd(5));
        if (rnd(100) == 0) {
            colony__bstore_close(s);
            s = bs_open_with(&o);
            st = colony__bstore_get(s, "m");
        } else {
            step(st, &m[rnd(2)]);
        }
        check_group(st, &m[0]);
        check_group(st, &m[1]);
    }
    assert_true(st->journal_at_compact > 0); /* it compacted along the way */
    colony__bstore_close(s);
    s = bs_open_with(&o);
    st = colony__bstore_get(s, "m");
    check_group(st, &m[0]);
    check_group(st, &m[1]);
    colony__bstore_close(s);
    bs_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(groups_match_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
