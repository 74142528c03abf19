/* Appends to a stream: the id rules of XADD, the write of one record to the
 * last segment (rolling to a new segment past segment_bytes), and the sparse
 * index kept up to date. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "broker/store/stream.h"
#include "colony/error.h"
#include "core/alloc.h"

static int roll(colony__bstream *st, colony__bid id, bseg **out)
{
    char name[64];
    snprintf(name, sizeof(name), "%020" PRIu64 "-%020" PRIu64 ".seg", id.ms, id.seq);
    bseg *g = colony__calloc(1, sizeof(*g));
    if (!g) return COLONY_ENOMEM;
    int rc = 0;
    bseg *sealed = st->nsegs ? st->segs[st->nsegs - 1] : NULL;
    /* sealed whole before the next segment gets a byte (one fdatasync per
     * segment_bytes, of what the last commit did not sync yet) */
    if (sealed) colony__bfile_seal(sealed->file, sealed->bytes);
    if (sealed && !st->store->o.roll_unsynced && fdatasync(sealed->file->fd) != 0) rc = -errno;
    if (!rc) rc = colony__bstream_push_seg(st, g);
    if (!rc && st->nunsynced == sizeof(st->unsynced) / sizeof(st->unsynced[0])) {
        /* many roll-overs and no commit wait: make the oldest durable now */
        if (fdatasync(st->unsynced[0]->fd) != 0) rc = -errno;
        if (!rc) {
            colony__bfile_unref(st->unsynced[0]);
            memmove(st->unsynced, st->unsynced + 1, --st->nunsynced * sizeof(bfile *));
        }
    }
    if (!rc) rc = colony__bfile_open(&g->file, st->dir, name, 1);
    if (rc) {
        if (st->nsegs && st->segs[st->nsegs - 1] == g) st->nsegs--;
        colony__free(g);
        return rc;
    }
    colony__bfile_prealloc(g->file, st->store->pa, 0, st->store->o.segment_bytes);
    if (sealed && st->store->o.roll_unsynced)
        st->unsynced[st->nunsynced++] = colony__bfile_ref(sealed->file);
    *out = g;
    return 0;
}

/* A segment just created and left empty by a failed write goes away. */
static void unroll(colony__bstream *st, bseg *g)
{
    if (st->hint_seg == g) st->hint_seg = NULL;
    st->nsegs--;
    unlink(g->file->path);
    if (st->nsegs && st->nunsynced &&
        st->unsynced[st->nunsynced - 1] == st->segs[st->nsegs - 1]->file)
        colony__bfile_unref(st->unsynced[--st->nunsynced]);
    colony__bseg_free(g);
}

colony__bid colony__bstream_top(const colony__bstream *st)
{
    return st->top;
}

int colony__bstream_write(colony__bstream *st, const colony__bid *roll_id, bseg **seg_out,
                          uint64_t *off_out)
{
    colony__bstore *s = st->store;
    bseg *g = st->nsegs ? st->segs[st->nsegs - 1] : NULL;
    int rolled = 0, rc;
    if (!g && !roll_id) return COLONY_ENOENT;
    if (roll_id && (!g || (g->bytes >= s->o.segment_bytes && g->entries))) {
        if ((rc = roll(st, *roll_id, &g))) return rc;
        rolled = 1;
    }
    rc = colony__bwrite_all(g->file, s->enc.buf, s->enc.len, g->bytes);
    if (rc) {
        if (rolled) unroll(st, g);
        return rc;
    }
    *seg_out = g;
    *off_out = g->bytes;
    g->bytes += s->enc.len;
    st->bytes += s->enc.len;
    return 0;
}

int colony__bstream_append(colony__bstream *st, int id_mode, colony__bid id,
                           const colony__bstr *strs, size_t n, colony__bid *out)
{
    colony__bstore *s = st->store;
    colony__bid top = st->top;
    uint64_t now = colony__bstore_now(s);
    if (id_mode == COLONY__BID_AUTO) {
        if (top.ms == UINT64_MAX && top.seq == UINT64_MAX) return COLONY_ERANGE; /* exhausted */
        id.ms = now > top.ms ? now : top.ms;
        id.seq = id.ms == top.ms ? top.seq + 1 : 0;
        if (id.ms == top.ms && top.seq == UINT64_MAX) id = (colony__bid){top.ms + 1, 0};
    } else if (id_mode == COLONY__BID_AUTO_SEQ) {
        if (id.ms < top.ms || (id.ms == top.ms && top.seq == UINT64_MAX)) return COLONY_ERANGE;
        id.seq = id.ms == top.ms && (top.ms || top.seq) ? top.seq + 1 : 0;
        if (id.ms == 0 && id.seq == 0) id.seq = 1;
    } else if (id_mode != COLONY__BID_EXPLICIT) {
        return COLONY_EINVAL;
    }
    if (id.ms == 0 && id.seq == 0) return COLONY_EINVAL;
    if (colony__bid_cmp(id, top) <= 0) return COLONY_ERANGE;
    s->enc.len = 0;
    int rc = colony__benc_record(&s->enc, BREC_ENTRY, id, now, strs, n);
    if (!rc && s->enc.len > s->o.max_record) rc = COLONY_E2BIG;
    bseg *g;
    uint64_t off;
    if (!rc) rc = colony__bstream_write(st, &id, &g, &off);
    if (rc) return rc;
    if ((rc = colony__bseg_note_entry(g, id, now, off, s->o.index_every))) {
        /* no room for an index point: take the record back */
        if (ftruncate(g->file->fd, (off_t)off) == 0) {
            g->bytes = off;
            st->bytes -= s->enc.len;
            if (!g->entries) unroll(st, g);
            return rc;
        }
        rc = 0; /* it is on disk: keep it, unindexed reads still find it */
        if (!g->entries) g->first = id;
        g->last = id;
        g->entries++;
        g->live++;
    }
    st->top = id;
    st->length++;
    *out = id;
    return 0;
}
