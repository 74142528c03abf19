/* next / ack / nack / extend / next_due: the delivery state machine on a
 * group's pending entries (store/group.c keeps them durable). An entry is
 * new (after the cursor), pending with an owner until its due time (the
 * visibility timeout, a nack's delay), pending with no owner and count 0
 * (delayed publish, due at its time), or gone (acked, dead-lettered). */
#include <string.h>
#include "broker/delivery/internal.h"
#include "colony/error.h"

#define BD_BATCH 64

typedef struct next_ctx {
    colony__bdelivery *d;
    colony__bgroup *g;
    const char *consumer;
    colony__bgroup_policy pol;
    uint64_t now;
    colony__bdelivered_cb cb;
    void *ud;
    size_t given;
    /* entries to move after the read (no appends inside a store callback) */
    colony__bid dead[BD_BATCH];
    const char *dead_reason[BD_BATCH];
    uint64_t dead_count[BD_BATCH];
    size_t ndead;
    /* redelivery: the pending entry being looked at */
    uint64_t count;
    int found;
} next_ctx;

static int give(next_ctx *c, const colony__bentry *e, uint64_t count, uint64_t due)
{
    colony__bdelivered out = {e->id, count, e->time_ms, due, e->strs, e->n};
    int rc = c->cb(c->ud, &out);
    if (rc < 0) return rc;
    c->given++;
    return 0;
}

static void mark_dead(next_ctx *c, colony__bid id, const char *reason, uint64_t count)
{
    c->dead[c->ndead] = id;
    c->dead_reason[c->ndead] = reason;
    c->dead_count[c->ndead++] = count;
}

/* A pending entry whose time came: deliver again (count + 1), or mark it. */
static int redeliver_one(void *ud, const colony__bentry *e)
{
    next_ctx *c = ud;
    bd_meta m;
    colony__bd_meta_parse(e->meta, &m);
    c->found = 1;
    if (m.expire_at && m.expire_at <= c->now) {
        mark_dead(c, e->id, "expired", c->count);
        return 1;
    }
    if (c->pol.max_deliveries && c->count >= c->pol.max_deliveries) {
        mark_dead(c, e->id, "max-deliveries", c->count);
        return 1;
    }
    uint64_t due = c->now + c->pol.visibility_ms;
    int rc = colony__bgroup_update(c->g, c->consumer, e->id, c->count + 1, c->now, due);
    return rc ? rc : give(c, e, c->count + 1, due);
}

typedef struct due_ids {
    colony__bid ids[BD_BATCH];
    uint64_t counts[BD_BATCH];
    size_t n, max;
    uint64_t now;
} due_ids;

static int collect_due(void *ud, const colony__bpending *p)
{
    due_ids *u = ud;
    if (p->due_ms > u->now) return 0;
    u->ids[u->n] = p->id;
    u->counts[u->n++] = p->count;
    return u->n == u->max ? 1 : 0;
}

/* A new entry (already recorded as delivered to the consumer by read_new). */
static int deliver_new(void *ud, const colony__bentry *e)
{
    next_ctx *c = ud;
    bd_meta m;
    colony__bd_meta_parse(e->meta, &m);
    if (m.expire_at && m.expire_at <= c->now) {
        mark_dead(c, e->id, "expired", 0);
        return 0;
    }
    if (m.deliver_at > c->now) /* delayed: no owner, count 0, due at its time */
        return colony__bgroup_update(c->g, "", e->id, 0, c->now, m.deliver_at);
    return give(c, e, 1, c->now + c->pol.visibility_ms);
}

static int move_marked(next_ctx *c, colony__bstream *st)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < c->ndead; i++)
        rc =
            colony__bd_dead_letter(c->d, st, c->g, c->dead[i], c->dead_reason[i], c->dead_count[i]);
    c->ndead = 0;
    return rc;
}

long colony__bdelivery_next(colony__bdelivery *d, const char *stream, const char *group,
                            const char *consumer, size_t count, colony__bdelivered_cb cb, void *ud)
{
    d->ntouched = 0;
    if (!count) count = 1;
    if (!consumer || !*consumer || !cb) return COLONY_EINVAL;
    colony__bstream *st = colony__bstore_get(d->store, stream);
    if (!st) return COLONY_ENOENT;
    next_ctx c = {0};
    c.d = d;
    c.consumer = consumer;
    c.cb = cb;
    c.ud = ud;
    c.now = colony__bdelivery_now(d);
    c.g = colony__bgroup_get(st, group);
    colony__bid zero = {0, 0}, max = {UINT64_MAX, UINT64_MAX};
    int rc = c.g ? 0 : colony__bgroup_create(st, group, zero, &c.g);
    if (!rc) rc = colony__bd_group_pol(d, st, group, &c.pol);
    /* 1. pending entries whose due time has passed, in id order */
    while (!rc && c.given < count) {
        due_ids u = {.max = count - c.given < BD_BATCH ? count - c.given : BD_BATCH, .now = c.now};
        long k = colony__bgroup_pending_range(c.g, zero, max, NULL, 0, collect_due, &u);
        if (k < 0) rc = (int)k;
        for (size_t i = 0; !rc && i < u.n; i++) {
            c.count = u.counts[i];
            c.found = 0;
            long r = colony__bstream_range(st, u.ids[i], u.ids[i], 0, 1, redeliver_one, &c);
            if (r < 0)
                rc = (int)r;
            else if (!c.found) /* deleted or trimmed meanwhile: nothing to deliver */
                rc = colony__bgroup_ack(c.g, u.ids[i]) < 0 ? COLONY_EIO : 0;
            if (!rc) rc = move_marked(&c, st);
        }
        if (u.n < u.max) break;
    }
    /* 2. new entries after the cursor */
    while (!rc && c.given < count) {
        size_t want = count - c.given < BD_BATCH ? count - c.given : BD_BATCH;
        long k = colony__bgroup_read_new(c.g, consumer, want, c.now + c.pol.visibility_ms,
                                         deliver_new, &c);
        if (k < 0) rc = (int)k;
        if (!rc) rc = move_marked(&c, st);
        if (k <= 0) break;
    }
    return rc ? rc : (long)c.given;
}

static int lookup(colony__bdelivery *d, const char *stream, const char *group, colony__bstream **st,
                  colony__bgroup **g)
{
    d->ntouched = 0;
    *st = colony__bstore_get(d->store, stream);
    *g = *st ? colony__bgroup_get(*st, group) : NULL;
    return *g ? 0 : COLONY_ENOENT;
}

long colony__bdelivery_ack(colony__bdelivery *d, const char *stream, const char *group,
                           const colony__bid *ids, size_t n)
{
    colony__bstream *st;
    colony__bgroup *g;
    int rc = lookup(d, stream, group, &st, &g);
    if (rc) return rc;
    long acked = 0;
    for (size_t i = 0; i < n; i++) {
        rc = colony__bgroup_ack(g, ids[i]);
        if (rc < 0) return rc;
        if (rc == 1) {
            acked++;
            (void)colony__bnote_drop(st, group, ids[i]);
        }
    }
    if (acked) colony__bd_retain(d, st);
    return acked;
}

int colony__bdelivery_nack(colony__bdelivery *d, const char *stream, const char *group,
                           colony__bid id, uint64_t delay_ms, const char *error, size_t error_len,
                           int dead_letter)
{
    colony__bstream *st;
    colony__bgroup *g;
    int rc = lookup(d, stream, group, &st, &g);
    if (rc) return rc;
    const colony__bpending *p = colony__bgroup_pending(g, id);
    if (!p) return COLONY_ENOENT;
    colony__bgroup_policy pol;
    if ((rc = colony__bd_group_pol(d, st, group, &pol))) return rc;
    if (error && (rc = colony__bnote_put(st, group, id, error, error_len))) return rc;
    p = colony__bgroup_pending(g, id);
    uint64_t count = p->count;
    if (dead_letter) return colony__bd_dead_letter(d, st, g, id, "rejected", count);
    if (pol.max_deliveries && count >= pol.max_deliveries)
        return colony__bd_dead_letter(d, st, g, id, "max-deliveries", count);
    uint64_t now = colony__bdelivery_now(d);
    if (delay_ms == COLONY__BNACK_BACKOFF)
        delay_ms = colony__bdelivery_backoff(d, &pol.backoff, count);
    uint64_t due = delay_ms > UINT64_MAX - now ? UINT64_MAX : now + delay_ms;
    return colony__bgroup_update(g, p->consumer, id, count, p->last_ms, due);
}

int colony__bdelivery_extend(colony__bdelivery *d, const char *stream, const char *group,
                             colony__bid id, uint64_t ms)
{
    colony__bstream *st;
    colony__bgroup *g;
    int rc = lookup(d, stream, group, &st, &g);
    if (rc) return rc;
    const colony__bpending *p = colony__bgroup_pending(g, id);
    if (!p) return COLONY_ENOENT;
    uint64_t now = colony__bdelivery_now(d);
    uint64_t due = ms > UINT64_MAX - now ? UINT64_MAX : now + ms;
    return colony__bgroup_update(g, p->consumer, id, p->count, p->last_ms, due);
}

static int min_due(void *ud, const colony__bpending *p)
{
    uint64_t *m = ud;
    if (p->due_ms < *m) *m = p->due_ms;
    return 0;
}

static uint64_t group_due(colony__bstream *st, colony__bgroup *g, uint64_t now)
{
    colony__bstream_info si;
    colony__bgroup_info gi;
    colony__bstream_info_get(st, &si);
    colony__bgroup_info_get(g, &gi);
    if (si.length && colony__bid_cmp(si.last, gi.cursor) > 0) return now;
    uint64_t m = UINT64_MAX;
    colony__bid zero = {0, 0}, max = {UINT64_MAX, UINT64_MAX};
    colony__bgroup_pending_range(g, zero, max, NULL, 0, min_due, &m);
    return m < now ? now : m;
}

uint64_t colony__bdelivery_next_due(colony__bdelivery *d, const char *stream, const char *group)
{
    uint64_t now = colony__bdelivery_now(d), best = UINT64_MAX;
    if (stream) {
        colony__bstream *st = colony__bstore_get(d->store, stream);
        colony__bgroup *g = st && group ? colony__bgroup_get(st, group) : NULL;
        return g ? group_due(st, g, now) : UINT64_MAX;
    }
    size_t spos = 0;
    colony__bstream *st;
    while ((st = colony__bstore_next(d->store, &spos))) {
        size_t gpos = 0;
        colony__bgroup *g;
        while ((g = colony__bgroup_next(st, &gpos))) {
            uint64_t t = group_due(st, g, now);
            if (t < best) best = t;
        }
    }
    return best;
}
