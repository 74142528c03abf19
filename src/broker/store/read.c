/* Reads by id range (forward through the sparse index, backward block by
 * block), XDEL tombstones, exact trims by a "first id" record, and retention
 * by whole segments. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>
#include "broker/store/stream.h"
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"

int colony__bstore_strs(colony__bstore *s, size_t n)
{
    if (n <= s->capstrs) return 0;
    colony__bstr *p = colony__realloc(s->strs, n * sizeof(*p));
    if (!p) return COLONY_ENOMEM;
    s->strs = p;
    s->capstrs = n;
    return 0;
}

static int visible(const colony__bstream *st, colony__bid id)
{
    return colony__bid_cmp(id, st->first) >= 0 && !colony__bstream_deleted_find(st, id, NULL);
}

static int bad_record(const bseg *g, uint64_t off, int rc)
{
    if (rc == COLONY_EAGAIN || rc == 1) {
        COLONY_LOG_ERROR("broker store: bad record", COLONY_LF_STR("file", g->file->path),
                         COLONY_LF_INT("offset", off));
        return COLONY_EIO;
    }
    return rc;
}

/* Gives entry rec to cb. */
static int emit(colony__bstream *st, const brec *rec, colony__bentry_cb cb, void *ud)
{
    colony__bstore *s = st->store;
    size_t n;
    int rc = colony__brec_strs(rec, NULL, 0, &n);
    if (!rc) rc = colony__bstore_strs(s, n ? n : 1);
    if (!rc) rc = colony__brec_strs(rec, s->strs, n, &n);
    if (rc) return rc;
    colony__bentry e = {rec->id, rec->time_ms, s->strs, n, {NULL, 0}};
    if (n % 2) e.meta = s->strs[--e.n]; /* metadata section (meta.c) */
    return cb(ud, &e);
}

/* Offset of the last index point of g at or before id. */
static uint64_t index_start(const bseg *g, colony__bid id, size_t *point)
{
    size_t lo = 0, hi = g->nindex;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (colony__bid_cmp(g->index[mid].id, id) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (point) *point = lo ? lo - 1 : 0;
    return lo ? g->index[lo - 1].off : 0;
}

static long range_forward(colony__bstream *st, colony__bid start, colony__bid end, size_t count,
                          colony__bentry_cb cb, void *ud)
{
    size_t si;
    long given = 0;
    int rc = 0;
    if (!colony__bstream_seg_for(st, start, &si)) return 0;
    for (; si < st->nsegs && !rc; si++) {
        bseg *g = st->segs[si];
        if (colony__bid_cmp(g->first, end) > 0) break;
        breader r;
        colony__breader_init(&r, g->file->fd, st->store->o.max_record);
        uint64_t off = index_start(g, start, NULL);
        if (st->hint_seg == g && colony__bid_cmp(st->hint_id, start) < 0 && st->hint_off > off &&
            st->hint_off <= g->bytes)
            off = st->hint_off; /* entries before it are below start */
        while (off < g->bytes) {
            brec rec;
            int k = colony__breader_at(&r, off, &rec);
            if (k) {
                rc = bad_record(g, off, k);
                break;
            }
            off += rec.size;
            if (rec.type == BREC_ENTRY) {
                st->hint_seg = g;
                st->hint_id = rec.id;
                st->hint_off = off;
            }
            if (rec.type != BREC_ENTRY || colony__bid_cmp(rec.id, start) < 0) continue;
            if (colony__bid_cmp(rec.id, end) > 0) {
                rc = 1;
                break;
            }
            if (!visible(st, rec.id)) continue;
            given++;
            if ((rc = emit(st, &rec, cb, ud)) || (count && (size_t)given >= count)) {
                rc = rc ? rc : 1;
                break;
            }
        }
        colony__breader_free(&r);
    }
    return rc < 0 ? rc : given;
}

static long range_backward(colony__bstream *st, colony__bid start, colony__bid end, size_t count,
                           colony__bentry_cb cb, void *ud)
{
    size_t si, point;
    long given = 0;
    int rc = 0;
    uint64_t *offs = NULL;
    size_t capoffs = 0;
    if (!colony__bstream_seg_for(st, end, &si)) return 0;
    for (size_t left = si + 1; left-- > 0 && !rc;) {
        bseg *g = st->segs[left];
        if (colony__bid_cmp(g->last, start) < 0) break;
        breader r;
        colony__breader_init(&r, g->file->fd, st->store->o.max_record);
        index_start(g, end, &point);
        for (size_t b = point + 1; b-- > 0 && !rc;) {
            uint64_t off = g->nindex ? g->index[b].off : 0;
            uint64_t stop = b + 1 < g->nindex ? g->index[b + 1].off : g->bytes;
            size_t n = 0;
            while (off < stop) { /* this block's matching entries, forward */
                brec rec;
                int k = colony__breader_at(&r, off, &rec);
                if (k) {
                    rc = bad_record(g, off, k);
                    break;
                }
                if (rec.type == BREC_ENTRY && colony__bid_cmp(rec.id, start) >= 0 &&
                    colony__bid_cmp(rec.id, end) <= 0 && visible(st, rec.id)) {
                    if (n == capoffs) {
                        size_t cap = capoffs ? capoffs * 2 : 64;
                        uint64_t *p = colony__realloc(offs, cap * sizeof(*p));
                        if (!p) {
                            rc = COLONY_ENOMEM;
                            break;
                        }
                        offs = p;
                        capoffs = cap;
                    }
                    offs[n++] = off;
                }
                off += rec.size;
            }
            while (!rc && n-- > 0) {
                brec rec;
                int k = colony__breader_at(&r, offs[n], &rec);
                if (k)
                    rc = bad_record(g, offs[n], k);
                else if (++given,
                         (rc = emit(st, &rec, cb, ud)) == 0 && count && (size_t)given >= count)
                    rc = 1;
            }
            if (!rc && b && colony__bid_cmp(g->index[b].id, start) <= 0) break;
        }
        colony__breader_free(&r);
    }
    colony__free(offs);
    return rc < 0 ? rc : given;
}

long colony__bseg_count_below(colony__bstream *st, bseg *g, colony__bid id)
{
    breader r;
    colony__breader_init(&r, g->file->fd, st->store->o.max_record);
    long n = 0;
    for (uint64_t off = 0; off < g->bytes;) {
        brec rec;
        int k = colony__breader_at(&r, off, &rec);
        if (k) {
            n = bad_record(g, off, k);
            break;
        }
        if (rec.type == BREC_ENTRY) {
            if (colony__bid_cmp(rec.id, id) >= 0) break;
            n++;
        }
        off += rec.size;
    }
    colony__breader_free(&r);
    return n;
}

long colony__bstream_range(colony__bstream *st, colony__bid start, colony__bid end, int reverse,
                           size_t count, colony__bentry_cb cb, void *ud)
{
    if (colony__bid_cmp(start, st->first) < 0) start = st->first;
    if (colony__bid_cmp(start, end) > 0) return 0;
    st->range_depth++;
    long n = reverse ? range_backward(st, start, end, count, cb, ud)
                     : range_forward(st, start, end, count, cb, ud);
    st->range_depth--;
    return n;
}

static int note_id(void *ud, const colony__bentry *e)
{
    *(colony__bid *)ud = e->id;
    return 0;
}

void colony__bstream_info_get(colony__bstream *st, colony__bstream_info *out)
{
    colony__bid max = {UINT64_MAX, UINT64_MAX}, zero = {0, 0};
    memset(out, 0, sizeof(*out));
    out->name = st->name;
    out->length = st->length;
    out->bytes = st->bytes;
    out->segments = st->nsegs;
    out->top = st->top;
    out->groups = st->groups.count;
    out->max_deleted = st->max_deleted;
    out->entries_added = st->removed_entries;
    for (size_t i = 0; i < st->nsegs; i++)
        out->entries_added += st->segs[i]->entries;
    if (st->length) {
        colony__bstream_range(st, zero, max, 0, 1, note_id, &out->first);
        colony__bstream_range(st, zero, max, 1, 1, note_id, &out->last);
    }
}

/* Writes a record of type with id (no strings) to the last segment. */
static int write_marker(colony__bstream *st, uint8_t type, colony__bid id)
{
    colony__bstore *s = st->store;
    s->enc.len = 0;
    int rc = colony__benc_record(&s->enc, type, id, colony__bstore_now(s), NULL, 0);
    bseg *g;
    uint64_t off;
    return rc ? rc : colony__bstream_write(st, NULL, &g, &off);
}

static int count_one(void *ud, const colony__bentry *e)
{
    (void)e;
    ++*(uint64_t *)ud;
    return 0;
}

int colony__bstream_delete(colony__bstream *st, colony__bid id)
{
    uint64_t found = 0;
    size_t pos;
    if (colony__bstream_deleted_find(st, id, &pos)) return 0;
    long rc = colony__bstream_range(st, id, id, 0, 1, count_one, &found);
    if (rc <= 0) return (int)rc;
    if (st->ndeleted == st->capdeleted) {
        size_t cap = st->capdeleted ? st->capdeleted * 2 : 16;
        colony__bid *p = colony__realloc(st->deleted, cap * sizeof(*p));
        if (!p) return COLONY_ENOMEM;
        st->deleted = p;
        st->capdeleted = cap;
    }
    if ((rc = write_marker(st, BREC_DELETE, id))) return (int)rc;
    memmove(st->deleted + pos + 1, st->deleted + pos, (st->ndeleted - pos) * sizeof(colony__bid));
    st->deleted[pos] = id;
    st->ndeleted++;
    if (colony__bid_cmp(id, st->max_deleted) > 0) st->max_deleted = id;
    colony__bstream_seg_for(st, id, NULL)->live--;
    st->length--;
    return 1;
}

/* Removes segment 0 (its file too) and what pointed into it. */
static void drop_first_segment(colony__bstream *st)
{
    bseg *g = st->segs[0];
    if (st->hint_seg == g) st->hint_seg = NULL;
    st->length -= g->live;
    st->bytes -= g->bytes;
    st->removed_entries += g->entries;
    if (unlink(g->file->path) != 0)
        COLONY_LOG_WARN("broker store: cannot remove segment", COLONY_LF_STR("file", g->file->path),
                        COLONY_LF_STR("error", strerror(errno)));
    colony__bfile_unref(g->file);
    colony__free(g->index);
    colony__free(g);
    memmove(st->segs, st->segs + 1, --st->nsegs * sizeof(bseg *));
    colony__bid first = st->segs[0]->first;
    if (colony__bid_cmp(first, st->first) > 0) st->first = first;
    size_t cut;
    colony__bstream_deleted_find(st, st->first, &cut);
    if (cut) memmove(st->deleted, st->deleted + cut, (st->ndeleted - cut) * sizeof(colony__bid));
    st->ndeleted -= cut;
}

/* Moves the first id to first (past the current one): a BREC_FIRST record,
 * live counts, then whole segments wholly below it. Returns entries removed. */
static long set_first(colony__bstream *st, colony__bid first)
{
    long removed = 0;
    uint64_t n = 0;
    bseg *g = colony__bstream_seg_for(st, first, NULL);
    if (g && colony__bid_cmp(g->first, first) < 0) {
        colony__bid before = first;
        if (before.seq)
            before.seq--;
        else
            before = (colony__bid){before.ms - 1, UINT64_MAX};
        colony__bid from = colony__bid_cmp(g->first, st->first) > 0 ? g->first : st->first;
        long rc = colony__bstream_range(st, from, before, 0, 0, count_one, &n);
        if (rc < 0) return rc;
    }
    int rc = write_marker(st, BREC_FIRST, first);
    if (rc) return rc;
    for (size_t i = 0; i < st->nsegs; i++) {
        bseg *s = st->segs[i];
        if (s == g) {
            s->live -= n;
            removed += (long)n;
            break;
        }
        removed += (long)s->live;
        s->live = 0;
    }
    st->length -= (uint64_t)removed;
    st->first = first;
    int dropped = 0;
    while (st->nsegs > 1 && colony__bid_cmp(st->segs[0]->last, first) < 0) {
        st->segs[0]->live = 0;
        drop_first_segment(st);
        dropped = 1;
    }
    if (dropped) colony__bjournal_counters(st);
    size_t cut;
    colony__bstream_deleted_find(st, first, &cut);
    if (cut) memmove(st->deleted, st->deleted + cut, (st->ndeleted - cut) * sizeof(colony__bid));
    st->ndeleted -= cut;
    return removed;
}

/* The id just past the top: a first id there hides every entry so far and
 * none added later (they must be above the top). */
static colony__bid past_top(const colony__bstream *st)
{
    colony__bid id = st->top;
    if (id.seq == UINT64_MAX) return (colony__bid){id.ms + 1, 0};
    id.seq++;
    return id;
}

long colony__bstream_trim_minid(colony__bstream *st, colony__bid minid)
{
    colony__bid past = past_top(st);
    if (colony__bid_cmp(minid, past) > 0) minid = past; /* as Redis: later ids below it stay */
    if (colony__bid_cmp(minid, st->first) <= 0 || !st->nsegs) return 0;
    return set_first(st, minid);
}

long colony__bstream_trim_maxlen(colony__bstream *st, uint64_t maxlen)
{
    if (st->length <= maxlen) return 0;
    uint64_t skip = st->length - maxlen;
    colony__bid first = st->top;
    if (first.seq == UINT64_MAX)
        first = (colony__bid){first.ms + 1, 0};
    else
        first.seq++;
    if (maxlen) { /* the id of the (skip+1)th visible entry */
        size_t i = 0;
        while (i < st->nsegs && st->segs[i]->live <= skip)
            skip -= st->segs[i++]->live;
        bseg *g = st->segs[i];
        colony__bid from = colony__bid_cmp(g->first, st->first) > 0 ? g->first : st->first;
        colony__bid max = {UINT64_MAX, UINT64_MAX};
        long rc = colony__bstream_range(st, from, max, 0, (size_t)skip + 1, note_id, &first);
        if (rc < 0) return rc;
    }
    return set_first(st, first);
}

long colony__bstream_retain(colony__bstream *st, const colony__bretention *r)
{
    uint64_t now = colony__bstore_now(st->store);
    long removed = 0;
    while (st->nsegs > 1) {
        bseg *g = st->segs[0];
        int go = (r->max_age_ms && g->last_time + r->max_age_ms < now) ||
                 (r->max_bytes && st->bytes > r->max_bytes) ||
                 (r->max_entries && st->length - g->live >= r->max_entries) ||
                 ((r->needed.ms || r->needed.seq) && colony__bid_cmp(g->last, r->needed) < 0);
        if (!go) break;
        drop_first_segment(st);
        removed++;
    }
    /* A removed file can come back after a crash (its unlink not yet on
     * disk): a first-id record keeps its entries out then. Best effort: this
     * runs when the disk is full too. */
    if (removed) colony__bjournal_counters(st);
    if (removed && write_marker(st, BREC_FIRST, st->first))
        COLONY_LOG_WARN("broker store: cannot record the first id after retention",
                        COLONY_LF_STR("stream", st->name));
    return removed;
}
