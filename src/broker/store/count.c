/* Counting entries without reading them, so /metrics and the HTTP views stay
 * cheap however long a stream is: a group's lag (entries after its cursor) in
 * O(segments + log n + index_every) from each segment's entry count, its
 * sparse index (index[k] is the segment's entry number k * index_every) and
 * the sorted tombstones; the entries ever appended, from the counters read.c
 * keeps; and per group the acks and deliveries made since open, counted where
 * the store records them, so every door (RESP, HTTP, the delivery engine)
 * counts. */
#include "broker/store/group.h"
#include "colony/error.h"

uint64_t colony__bstream_added(const colony__bstream *st)
{
    uint64_t n = st->removed_entries;
    for (size_t i = 0; i < st->nsegs; i++)
        n += st->segs[i]->entries;
    return n;
}

/* Entry records of g with an id <= id (g->first <= id < g->last): the index
 * point at or before id, then at most index_every records read from there. */
static long count_upto(const colony__bstream *st, const bseg *g, colony__bid id)
{
    size_t lo = 0, hi = g->nindex; /* the last index point with its id <= id */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (colony__bid_cmp(g->index[mid].id, id) <= 0)
            lo = mid;
        else
            hi = mid;
    }
    if (!g->nindex) return COLONY_EIO;
    long n = (long)(lo * st->store->o.index_every);
    breader r;
    colony__breader_init(&r, g->file->fd, st->store->o.max_record);
    for (uint64_t off = g->index[lo].off; off < g->bytes;) {
        brec rec;
        int k = colony__breader_at(&r, off, &rec);
        if (k) {
            n = k < 0 && k != COLONY_EAGAIN ? k : COLONY_EIO;
            break;
        }
        if (rec.type == BREC_ENTRY) {
            if (colony__bid_cmp(rec.id, id) > 0) break;
            n++;
        }
        off += rec.size;
    }
    colony__breader_free(&r);
    return n;
}

/* Tombstones with an id above id (st->deleted is sorted). */
static uint64_t deleted_after(const colony__bstream *st, colony__bid id)
{
    size_t lo = 0, hi = st->ndeleted; /* first one above id */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (colony__bid_cmp(st->deleted[mid], id) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return st->ndeleted - lo;
}

int64_t colony__bstream_count_after(const colony__bstream *st, colony__bid id)
{
    if (!st->length) return 0;
    if (colony__bid_cmp(id, st->first) < 0) return (int64_t)st->length;
    uint64_t n = 0;
    for (size_t i = st->nsegs; i-- > 0;) {
        const bseg *g = st->segs[i];
        if (!g->entries) continue;
        if (colony__bid_cmp(g->last, id) <= 0) break; /* and all before it */
        if (colony__bid_cmp(g->first, id) > 0) {
            n += g->entries;
            continue;
        }
        long upto = count_upto(st, g, id);
        if (upto < 0) return upto;
        n += g->entries - (uint64_t)upto;
        break;
    }
    uint64_t dead = deleted_after(st, id);
    return dead >= n ? 0 : (int64_t)(n - dead);
}

void colony__bgroup_count_delivery(colony__bgroup *g, colony__bid id, uint64_t count)
{
    const colony__bpending *p = colony__bgroup_pending(g, id);
    if (count <= (p ? p->count : 0)) return; /* a nack, an extend, a delayed entry */
    g->delivered++;
    if (count > 1) g->redelivered++;
}

void colony__bgroup_stats_get(const colony__bgroup *g, colony__bgroup_stats *out)
{
    *out = (colony__bgroup_stats){g->acked, g->delivered, g->redelivered};
}
