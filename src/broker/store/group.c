/* Consumer groups: the API the daemon calls (create, SETID, consumers,
 * deliveries, claims, acks, pending lists); each change goes through the
 * journal (journal.c) before memory (group_state.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "broker/store/group.h"
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"

int colony__bgroup_create(colony__bstream *st, const char *name, colony__bid cursor,
                          colony__bgroup **out)
{
    if (colony__map_get(&st->groups, name)) return COLONY_EEXIST;
    if (strlen(name) >= 256) return COLONY_E2BIG;
    colony__bgroup *g = colony__bgroup_new(st, name, cursor);
    if (!g) return COLONY_ENOMEM;
    colony__bstr s = STR(name);
    int rc = colony__bjournal_put(st, BREC_GROUP, cursor, 0, &s, 1);
    if (rc) {
        colony__map_remove(&st->groups, name);
        colony__bgroup_free_one(g);
        return rc;
    }
    colony__bjournal_maybe_compact(st);
    if (out) *out = g;
    return 0;
}

colony__bgroup *colony__bgroup_get(colony__bstream *st, const char *name)
{
    return colony__map_get(&st->groups, name);
}

colony__bgroup *colony__bgroup_next(colony__bstream *st, size_t *pos)
{
    colony__map_slot *sl = colony__map_next(&st->groups, pos);
    return sl ? sl->value : NULL;
}

int colony__bgroup_destroy(colony__bstream *st, const char *name)
{
    colony__bgroup *g = colony__map_get(&st->groups, name);
    if (!g) return COLONY_ENOENT;
    colony__bstr s = STR(name);
    colony__bid zero = {0, 0};
    int rc = colony__bjournal_put(st, BREC_UNGROUP, zero, 0, &s, 1);
    if (rc) return rc;
    colony__map_remove(&st->groups, name);
    colony__bgroup_free_one(g);
    colony__bjournal_maybe_compact(st);
    return 0;
}

int colony__bgroup_setid_read(colony__bgroup *g, colony__bid cursor, int64_t entries_read)
{
    colony__bstr s = STR(g->name);
    if (entries_read < -1) entries_read = -1;
    int rc = colony__bjournal_put(g->st, BREC_GROUP, cursor, (uint64_t)(entries_read + 1), &s, 1);
    if (rc) return rc;
    g->cursor = cursor;
    g->entries_read = entries_read;
    colony__bjournal_maybe_compact(g->st);
    return 0;
}

int colony__bgroup_setid(colony__bgroup *g, colony__bid cursor)
{
    return colony__bgroup_setid_read(g, cursor, -1);
}

int colony__bgroup_advance(colony__bgroup *g, colony__bid id)
{
    if (colony__bid_cmp(id, g->cursor) <= 0) return 0;
    return colony__bgroup_setid_read(g, id, colony__bgroup_read_counter(g, id));
}

/* The stream's last visible entry is its top unless that one was deleted
 * (trims remove from the bottom): only then does it take reads to know. */
int colony__bgroup_has_new(colony__bgroup *g)
{
    colony__bstream *st = g->st;
    if (!st->length || colony__bid_cmp(st->top, g->cursor) <= 0) return 0;
    if (!colony__bstream_deleted_find(st, st->top, NULL)) return 1;
    colony__bstream_info info;
    colony__bstream_info_get(st, &info);
    return colony__bid_cmp(info.last, g->cursor) > 0;
}

void colony__bgroup_info_get(const colony__bgroup *g, colony__bgroup_info *out)
{
    *out = (colony__bgroup_info){g->name, g->cursor, g->npend, g->consumers.count, g->entries_read};
}

/* ---- Redis 7's read counters (t_stream.c: streamRangeHasTombstones,
 * streamEstimateDistanceFromFirstEverEntry, streamReplyWithCGLag) ---- */

typedef struct counters {
    colony__bstream *st;
    uint64_t added, length;
    colony__bid top, max_deleted;
    colony__bid first; /* first visible entry, read when needed */
    int have_first;
} counters;

static void counters_get(colony__bstream *st, counters *c)
{
    *c = (counters){st, st->removed_entries, st->length, st->top, st->max_deleted, {0, 0}, 0};
    for (size_t i = 0; i < st->nsegs; i++)
        c->added += st->segs[i]->entries;
}

static int note_first(void *ud, const colony__bentry *e)
{
    *(colony__bid *)ud = e->id;
    return 1;
}

/* The first visible entry into *first: 1, or 0 when it would take a read
 * from inside a range callback (a delivery recorded from one, which store.h
 * allows: the entry being given lives in the scratch buffer a read would
 * reuse). The counters are then "unknown", as Redis says when it cannot
 * tell; read_new reads the first entry before its range. */
static int first_of(counters *c, colony__bid *first)
{
    if (!c->have_first && c->length) {
        if (c->st->range_depth) return 0;
        colony__bid zero = {0, 0}, max = {UINT64_MAX, UINT64_MAX};
        colony__bstream_range(c->st, zero, max, 0, 1, note_first, &c->first);
    }
    c->have_first = 1;
    *first = c->first;
    return 1;
}

static int is_zero(colony__bid id)
{
    return !id.ms && !id.seq;
}

/* A tombstone at or after start. */
static int tombstones_after(counters *c, colony__bid start)
{
    colony__bid first;
    if (!c->length || is_zero(c->max_deleted)) return 0;
    if (!first_of(c, &first)) return 1; /* unknown: as if one were ahead */
    if (colony__bid_cmp(first, c->max_deleted) > 0) return 0;
    return colony__bid_cmp(start, c->max_deleted) <= 0;
}

/* The read counter of id, or -1 when it cannot be known. */
static int64_t estimate(counters *c, colony__bid id)
{
    if (!c->added) return 0;
    if (!c->length && colony__bid_cmp(id, c->top) < 1) return (int64_t)c->added;
    int cmp_last = colony__bid_cmp(id, c->top);
    if (cmp_last == 0) return (int64_t)c->added;
    if (cmp_last > 0) return -1;
    colony__bid first;
    if (!first_of(c, &first)) return -1;
    if (is_zero(c->max_deleted) || colony__bid_cmp(c->max_deleted, first) < 0) {
        int cmp_first = colony__bid_cmp(id, first);
        if (cmp_first < 0) return (int64_t)(c->added - c->length);
        if (cmp_first == 0) return (int64_t)(c->added - c->length + 1);
    }
    return -1;
}

static int64_t read_counter(colony__bgroup *g, colony__bid id, counters *c)
{
    if (g->entries_read != -1 && !tombstones_after(c, id)) return g->entries_read + 1;
    if (c->added) return estimate(c, id);
    return g->entries_read;
}

int64_t colony__bgroup_read_counter(colony__bgroup *g, colony__bid id)
{
    counters c;
    counters_get(g->st, &c);
    return read_counter(g, id, &c);
}

int colony__bgroup_lag(colony__bgroup *g, int64_t *lag)
{
    counters c;
    counters_get(g->st, &c);
    if (!c.added) {
        *lag = 0;
        return 1;
    }
    if (g->entries_read != -1 && !tombstones_after(&c, g->cursor)) {
        *lag = (int64_t)c.added - g->entries_read;
        return 1;
    }
    int64_t read = estimate(&c, g->cursor);
    if (read == -1) return 0;
    *lag = (int64_t)c.added - read;
    return 1;
}

int colony__bgroup_consumer_add(colony__bgroup *g, const char *consumer)
{
    if (colony__map_get(&g->consumers, consumer)) return 0;
    if (strlen(consumer) >= 256) return COLONY_E2BIG;
    bconsumer *c = colony__bconsumer_get(g, consumer, 1);
    if (!c) return COLONY_ENOMEM;
    colony__bstr s[2] = {STR(g->name), STR(consumer)};
    colony__bid zero = {0, 0};
    int rc = colony__bjournal_put(g->st, BREC_CONSUMER, zero, 0, s, 2);
    if (rc) {
        colony__bconsumer_drop(g, c);
        return rc;
    }
    colony__bjournal_maybe_compact(g->st);
    return 1;
}

const char *colony__bgroup_consumer_next(const colony__bgroup *g, size_t *pos, size_t *pending)
{
    colony__map_slot *sl = colony__map_next(&g->consumers, pos);
    if (!sl) return NULL;
    bconsumer *c = sl->value;
    if (pending) *pending = c->pending;
    return c->name;
}

int colony__bgroup_consumer_seen(const colony__bgroup *g, const char *consumer, uint64_t *seen_ms,
                                 size_t *pending)
{
    bconsumer *c = colony__map_get(&g->consumers, consumer);
    if (!c) return 0;
    if (seen_ms) *seen_ms = c->seen_ms;
    if (pending) *pending = c->pending;
    return 1;
}

void colony__bgroup_consumer_touch(colony__bgroup *g, const char *consumer)
{
    bconsumer *c = colony__map_get(&g->consumers, consumer);
    if (c) c->seen_ms = colony__bstore_now(g->st->store);
}

long colony__bgroup_consumer_delete(colony__bgroup *g, const char *consumer)
{
    bconsumer *c = colony__map_get(&g->consumers, consumer);
    if (!c) return COLONY_ENOENT;
    colony__bstr s[2] = {STR(g->name), STR(consumer)};
    colony__bid zero = {0, 0};
    int rc = colony__bjournal_put(g->st, BREC_UNCONSUMER, zero, 0, s, 2);
    if (rc) return rc;
    long n = (long)colony__bconsumer_drop(g, c);
    colony__bjournal_maybe_compact(g->st);
    return n;
}

static int pending_set(colony__bgroup *g, const char *consumer, colony__bid id, uint64_t count,
                       uint64_t last_ms, uint64_t due_ms, int deliver, counters *pre)
{
    if (strlen(consumer) >= 256) return COLONY_E2BIG;
    bconsumer *c =
        colony__bconsumer_get(g, consumer, 1); /* a consumer is created by use, as in Redis */
    if (!c || colony__bpend_reserve(g)) return COLONY_ENOMEM;
    colony__bpending p = {id, c->name, count, last_ms, due_ms};
    uint8_t nums[24];
    colony__bstr strs[6];
    int moves = deliver && colony__bid_cmp(id, g->cursor) > 0;
    int64_t read = !moves ? g->entries_read
                   : pre  ? read_counter(g, id, pre)
                          : colony__bgroup_read_counter(g, id);
    size_t n = colony__bjournal_pending_strs(g, &p, deliver, read, nums, strs);
    int rc = colony__bjournal_put(g->st, BREC_PENDING, id, last_ms, strs, n);
    if (rc) return rc;
    colony__bgroup_count_delivery(g, id, count);
    colony__bpend_apply(g, c, id, count, last_ms, due_ms, deliver);
    g->entries_read = read;
    colony__bjournal_maybe_compact(g->st);
    return 0;
}

static int deliver(colony__bgroup *g, const char *consumer, colony__bid id, uint64_t due_ms,
                   counters *pre)
{
    const colony__bpending *p = colony__bgroup_pending(g, id);
    return pending_set(g, consumer, id, p ? p->count + 1 : 1, colony__bstore_now(g->st->store),
                       due_ms, 1, pre);
}

int colony__bgroup_deliver(colony__bgroup *g, const char *consumer, colony__bid id, uint64_t due_ms)
{
    return deliver(g, consumer, id, due_ms, NULL);
}

int colony__bgroup_update(colony__bgroup *g, const char *consumer, colony__bid id, uint64_t count,
                          uint64_t last_ms, uint64_t due_ms)
{
    if (!colony__bgroup_pending(g, id)) return COLONY_ENOENT;
    return pending_set(g, consumer, id, count, last_ms, due_ms, 0, NULL);
}

int colony__bgroup_claim(colony__bgroup *g, const char *consumer, colony__bid id, uint64_t count,
                         uint64_t last_ms, uint64_t due_ms)
{
    return pending_set(g, consumer, id, count, last_ms, due_ms, 0, NULL);
}

int colony__bgroup_ack(colony__bgroup *g, colony__bid id)
{
    if (!colony__bgroup_pending(g, id)) return 0;
    colony__bstr s = STR(g->name);
    int rc = colony__bjournal_put(g->st, BREC_ACK, id, 0, &s, 1);
    if (rc) return rc;
    colony__bpend_remove(g, id);
    g->acked++;
    colony__bjournal_maybe_compact(g->st);
    return 1;
}

/* ---- many at once: one journal write per XREADGROUP or XACK, not one per
 * entry (a write is a syscall: two per message were a third of the broker's
 * CPU on the end-to-end benchmark). Each change is applied in memory as it
 * is encoded, and undone if the write fails. ---- */

/* Puts back the pending entries saved in before[0..n): those with a
 * consumer as they were, the others (not pending then) removed. The room
 * is there (it was theirs), so this cannot fail. */
static void pending_restore(colony__bgroup *g, const colony__bpending *before, size_t n)
{
    for (size_t i = n; i-- > 0;) {
        const colony__bpending *b = &before[i];
        if (!b->consumer) {
            colony__bpend_remove(g, b->id);
            continue;
        }
        bconsumer *o = colony__map_get(&g->consumers, b->consumer);
        colony__bpend_apply(g, o, b->id, b->count, b->last_ms, b->due_ms, 0);
    }
}

long colony__bgroup_deliver_new(colony__bgroup *g, const char *consumer, const colony__bid *ids,
                                size_t n, uint64_t due_ms)
{
    if (!n) return 0;
    if (strlen(consumer) >= 256) return COLONY_E2BIG;
    bconsumer *c = colony__bconsumer_get(g, consumer, 1);
    colony__bpending *before = colony__malloc(n * sizeof(*before));
    if (!c || !before) {
        colony__free(before);
        return COLONY_ENOMEM;
    }
    colony__bstore *s = g->st->store;
    uint64_t now = colony__bstore_now(s);
    colony__bid cursor = g->cursor;
    int64_t entries_read = g->entries_read;
    counters pre;
    counters_get(g->st, &pre);
    s->enc.len = 0;
    int rc = 0;
    size_t done = 0;
    uint64_t counted = 0; /* deliveries for the metrics, as colony__bgroup_count_delivery */
    while (done < n) {
        colony__bid id = ids[done];
        const colony__bpending *p = colony__bgroup_pending(g, id);
        before[done] = p ? *p : (colony__bpending){id, NULL, 0, 0, 0};
        counted += !p || p->count < 1;
        if (!p && (rc = colony__bpend_reserve(g))) break;
        colony__bpending np = {id, c->name, 1, now, due_ms};
        uint8_t nums[24];
        colony__bstr strs[6];
        int64_t read =
            colony__bid_cmp(id, g->cursor) > 0 ? read_counter(g, id, &pre) : g->entries_read;
        size_t k = colony__bjournal_pending_strs(g, &np, 1, read, nums, strs);
        if ((rc = colony__benc_record(&s->enc, BREC_PENDING, id, now, strs, k))) break;
        colony__bpend_apply(g, c, id, 1, now, due_ms, 1);
        g->entries_read = read;
        done++;
    }
    if (!rc) rc = colony__bjournal_put_encoded(g->st);
    if (rc) {
        pending_restore(g, before, done);
        g->cursor = cursor;
        g->entries_read = entries_read;
    }
    colony__free(before);
    if (rc) return rc;
    g->delivered += counted;
    colony__bjournal_maybe_compact(g->st);
    return (long)n;
}

long colony__bgroup_ack_many(colony__bgroup *g, const colony__bid *ids, size_t n)
{
    if (!n) return 0;
    colony__bpending *gone = colony__malloc(n * sizeof(*gone));
    if (!gone) return COLONY_ENOMEM;
    colony__bstore *s = g->st->store;
    colony__bstr name = STR(g->name);
    s->enc.len = 0;
    int rc = 0;
    size_t k = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const colony__bpending *p = colony__bgroup_pending(g, ids[i]);
        if (!p || (rc = colony__benc_record(&s->enc, BREC_ACK, ids[i], 0, &name, 1))) continue;
        gone[k++] = *p;
        colony__bpend_remove(g, ids[i]);
    }
    if (!rc && k) rc = colony__bjournal_put_encoded(g->st);
    if (rc) pending_restore(g, gone, k);
    colony__free(gone);
    if (rc) return rc;
    g->acked += k;
    if (k) colony__bjournal_maybe_compact(g->st);
    return (long)k;
}

const colony__bpending *colony__bgroup_pending(const colony__bgroup *g, colony__bid id)
{
    int found;
    size_t i = colony__bpend_find(g, id, &found);
    return found ? &g->pend[i] : NULL;
}

long colony__bgroup_pending_range(const colony__bgroup *g, colony__bid start, colony__bid end,
                                  const char *consumer, size_t count, colony__bpending_cb cb,
                                  void *ud)
{
    int found;
    long given = 0;
    for (size_t i = colony__bpend_find(g, start, &found); i < g->npend; i++) {
        const colony__bpending *p = &g->pend[i];
        if (colony__bid_cmp(p->id, end) > 0 || (count && (size_t)given >= count)) break;
        if (consumer && strcmp(consumer, p->consumer) != 0) continue;
        given++;
        int rc = cb(ud, p);
        if (rc < 0) return rc;
        if (rc > 0) break;
    }
    return given;
}

typedef struct read_new_ctx {
    colony__bgroup *g;
    const char *consumer;
    uint64_t due_ms;
    colony__bentry_cb cb;
    void *ud;
    counters pre; /* read before the range: no read from inside it */
} read_new_ctx;

static int deliver_one(void *ud, const colony__bentry *e)
{
    read_new_ctx *c = ud;
    int rc = deliver(c->g, c->consumer, e->id, c->due_ms, &c->pre);
    return rc ? rc : c->cb(c->ud, e);
}

long colony__bgroup_read_new(colony__bgroup *g, const char *consumer, size_t count, uint64_t due_ms,
                             colony__bentry_cb cb, void *ud)
{
    colony__bid from = g->cursor, max = {UINT64_MAX, UINT64_MAX};
    if (from.ms == UINT64_MAX && from.seq == UINT64_MAX) return 0;
    if (from.seq == UINT64_MAX)
        from = (colony__bid){from.ms + 1, 0};
    else
        from.seq++;
    read_new_ctx c = {g, consumer, due_ms, cb, ud, {0}};
    colony__bid first;
    counters_get(g->st, &c.pre);
    first_of(&c.pre, &first);
    return colony__bstream_range(g->st, from, max, 0, count, deliver_one, &c);
}
