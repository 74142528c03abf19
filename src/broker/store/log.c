/* A stream's segment files on open: each one scanned and checked (torn tail
 * cut, any other bad record refused with its file and offset, segment.c),
 * its sparse index built, tombstones and the first id settled. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "broker/store/stream.h"
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"

/* ---- segments ---- */

void colony__bseg_free(bseg *g)
{
    if (!g) return;
    colony__bfile_unref(g->file);
    colony__free(g->index);
    colony__free(g);
}

int colony__bseg_note_entry(bseg *g, colony__bid id, uint64_t time_ms, uint64_t off, uint32_t every)
{
    if (g->entries == 0 || g->since_index >= every) {
        if (g->nindex == g->capindex) {
            size_t cap = g->capindex ? g->capindex * 2 : 8;
            bindex *p = colony__realloc(g->index, cap * sizeof(*p));
            if (!p) return COLONY_ENOMEM;
            g->index = p;
            g->capindex = cap;
        }
        g->index[g->nindex++] = (bindex){id, off};
        g->since_index = 0;
    }
    if (g->entries == 0) g->first = id;
    g->last = id;
    g->entries++;
    g->live++;
    g->since_index++;
    g->last_time = time_ms;
    return 0;
}

int colony__bstream_push_seg(colony__bstream *st, bseg *g)
{
    if (st->nsegs == st->capsegs) {
        size_t cap = st->capsegs ? st->capsegs * 2 : 4;
        bseg **p = colony__realloc(st->segs, cap * sizeof(*p));
        if (!p) return COLONY_ENOMEM;
        st->segs = p;
        st->capsegs = cap;
    }
    st->segs[st->nsegs++] = g;
    return 0;
}

static int push_deleted(colony__bstream *st, colony__bid id)
{
    if (st->ndeleted == st->capdeleted) {
        size_t cap = st->capdeleted ? st->capdeleted * 2 : 16;
        colony__bid *p = colony__realloc(st->deleted, cap * sizeof(*p));
        if (!p) return COLONY_ENOMEM;
        st->deleted = p;
        st->capdeleted = cap;
    }
    st->deleted[st->ndeleted++] = id;
    return 0;
}

int colony__bstream_deleted_find(const colony__bstream *st, colony__bid id, size_t *pos)
{
    size_t lo = 0, hi = st->ndeleted;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (colony__bid_cmp(st->deleted[mid], id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos) *pos = lo;
    return lo < st->ndeleted && colony__bid_cmp(st->deleted[lo], id) == 0;
}

bseg *colony__bstream_seg_for(const colony__bstream *st, colony__bid id, size_t *pos)
{
    size_t lo = 0, hi = st->nsegs;
    while (lo < hi) { /* first segment whose first id is past id */
        size_t mid = lo + (hi - lo) / 2;
        if (colony__bid_cmp(st->segs[mid]->first, id) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t i = lo ? lo - 1 : 0;
    if (pos) *pos = i;
    return st->nsegs ? st->segs[i] : NULL;
}

/* ---- opening ---- */

typedef struct scan_state {
    colony__bstream *st;
    bseg *g;
    colony__bid prev; /* last entry id seen in the stream */
} scan_state;

static int scan_record(void *ud, const brec *r)
{
    scan_state *ss = ud;
    colony__bstream *st = ss->st;
    switch (r->type) {
    case BREC_ENTRY:
        if ((ss->prev.ms || ss->prev.seq) && colony__bid_cmp(r->id, ss->prev) <= 0)
            return COLONY_EIO; /* ids must grow */
        ss->prev = r->id;
        if (colony__bid_cmp(r->id, st->top) > 0) st->top = r->id;
        return colony__bseg_note_entry(ss->g, r->id, r->time_ms, r->off, st->store->o.index_every);
    case BREC_DELETE:
        if (colony__bid_cmp(r->id, st->max_deleted) > 0) st->max_deleted = r->id;
        return push_deleted(st, r->id);
    case BREC_FIRST:
        if (colony__bid_cmp(r->id, st->first) > 0) st->first = r->id;
        return 0;
    default:
        return COLONY_EIO;
    }
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int bid_cmp_p(const void *a, const void *b)
{
    return colony__bid_cmp(*(const colony__bid *)a, *(const colony__bid *)b);
}

/* The segment names in dir, sorted (zero-padded ids sort as numbers). */
static int list_segments(const char *dir, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return -errno;
    size_t cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".seg") != 0) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            char **p = colony__realloc(*out, cap * sizeof(*p));
            if (!p) {
                rc = COLONY_ENOMEM;
                break;
            }
            *out = p;
        }
        if (!((*out)[*n] = colony__strdup(e->d_name))) {
            rc = COLONY_ENOMEM;
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (*n) qsort(*out, *n, sizeof(char *), cmp_names);
    return rc;
}

/* After the scan: drop tombstones below the first id, count what is live. */
static int settle(colony__bstream *st)
{
    if (st->nsegs && colony__bid_cmp(st->segs[0]->first, st->first) > 0)
        st->first = st->segs[0]->first;
    if (st->ndeleted) qsort(st->deleted, st->ndeleted, sizeof(colony__bid), bid_cmp_p);
    size_t w = 0;
    for (size_t i = 0; i < st->ndeleted; i++) {
        colony__bid id = st->deleted[i];
        if (colony__bid_cmp(id, st->first) < 0) continue;
        if (w && colony__bid_cmp(st->deleted[w - 1], id) == 0) continue;
        st->deleted[w++] = id;
        bseg *g = colony__bstream_seg_for(st, id, NULL);
        if (g && g->live) g->live--;
    }
    st->ndeleted = w;
    for (size_t i = 0; i < st->nsegs; i++) { /* entries below the first id */
        bseg *g = st->segs[i];
        if (colony__bid_cmp(g->first, st->first) >= 0) break;
        long below = colony__bseg_count_below(st, g, st->first);
        if (below < 0) return (int)below;
        g->live -= (uint64_t)below < g->live ? (uint64_t)below : g->live;
    }
    st->length = 0;
    st->bytes = 0;
    for (size_t i = 0; i < st->nsegs; i++) {
        bseg *g = st->segs[i];
        st->bytes += g->bytes;
        st->length += g->live;
    }
    return 0;
}

void colony__bstream_free(colony__bstream *st)
{
    if (!st) return;
    colony__bgroups_free(st);
    colony__bnotes_free(st);
    for (size_t i = 0; i < st->nsegs; i++)
        colony__bseg_free(st->segs[i]);
    for (size_t i = 0; i < st->nunsynced; i++)
        colony__bfile_unref(st->unsynced[i]);
    colony__free(st->segs);
    colony__free(st->deleted);
    colony__free(st->name);
    colony__free(st->dir);
    colony__free(st);
}

int colony__bstream_open(colony__bstore *s, const char *name, const char *dir, int create,
                         colony__bstream **out, char *msg, size_t msg_size)
{
    colony__bstream *st = colony__calloc(1, sizeof(*st));
    if (!st) return COLONY_ENOMEM;
    st->store = s;
    st->name = colony__strdup(name);
    st->dir = colony__strdup(dir);
    char **names = NULL;
    size_t n = 0;
    int rc = st->name && st->dir ? 0 : COLONY_ENOMEM;
    if (!rc && create) {
        if (mkdir(dir, 0755) != 0) rc = -errno;
        if (!rc) rc = colony__bdir_sync(s->dir);
        if (rc) snprintf(msg, msg_size, "cannot create %s: %s", dir, colony_strerror(rc));
    }
    if (!rc) rc = list_segments(dir, &names, &n);
    for (size_t i = 0; !rc && i < n; i++) {
        bseg *g = colony__calloc(1, sizeof(*g));
        if (!g || colony__bstream_push_seg(st, g)) {
            colony__free(g);
            rc = COLONY_ENOMEM;
            break;
        }
        if ((rc = colony__bfile_open(&g->file, dir, names[i], 0))) {
            snprintf(msg, msg_size, "cannot open %s/%s: %s", dir, names[i], colony_strerror(rc));
            break;
        }
        scan_state ss = {st, g, st->top};
        rc = colony__bscan(g->file, s->o.max_record, i + 1 == n, scan_record, &ss, &g->bytes, msg,
                           msg_size);
        if (!rc && g->entries == 0) { /* created, then nothing reached it */
            unlink(g->file->path);
            colony__bseg_free(g);
            st->nsegs--;
        } else if (!rc && i + 1 == n) {
            colony__bfile_prealloc(g->file, s->pa, g->bytes, s->o.segment_bytes);
        }
    }
    for (size_t i = 0; i < n; i++)
        colony__free(names[i]);
    colony__free(names);
    if (!rc && (rc = settle(st))) snprintf(msg, msg_size, "%s: %s", dir, colony_strerror(rc));
    if (!rc) rc = colony__bgroups_open(st, create, msg, msg_size);
    if (rc) {
        if (rc == COLONY_ENOMEM && !*msg) snprintf(msg, msg_size, "out of memory");
        colony__bstream_free(st);
        return rc;
    }
    *out = st;
    return 0;
}
