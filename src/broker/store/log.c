/* A stream's segment files: the checking scan on open (torn tail cut, any
 * other bad record refused with its file and offset), appends with roll-over,
 * and the in-memory sparse index. */
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

int colony__bdir_sync(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

int colony__bwrite_all(bfile *f, const uint8_t *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t k = pwrite(f->fd, buf + done, len - done, (off_t)(off + done));
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            int err = k < 0 ? -errno : COLONY_EIO;
            if (ftruncate(f->fd, (off_t)off) != 0)
                COLONY_LOG_ERROR("broker store: cannot cut a failed write back",
                                 COLONY_LF_STR("file", f->path), COLONY_LF_INT("offset", off));
            return err;
        }
        done += (size_t)k;
    }
    f->written++;
    return 0;
}

int colony__bstore_strs(colony__bstore *s, size_t n)
{
    if (n <= s->capstrs) return 0;
    colony__bstr *p = colony__realloc(s->strs, n * sizeof(*p));
    if (!p) return COLONY_ENOMEM;
    s->strs = p;
    s->capstrs = n;
    return 0;
}

/* Is there a valid record anywhere in [from, size)? Tells a torn tail (no)
 * from a damaged record in the middle (yes). */
static int valid_after(breader *r, uint64_t from, uint64_t size)
{
    for (uint64_t off = from; off + BREC_HEADER <= size; off++) {
        brec rec;
        if (colony__breader_at(r, off, &rec) == 0) return 1;
    }
    return 0;
}

int colony__bscan(bfile *f, size_t max_record, int cut_tail, brec_cb cb, void *ud, uint64_t *end,
                  char *msg, size_t msg_size)
{
    struct stat sb;
    if (fstat(f->fd, &sb) != 0) return -errno;
    breader r;
    colony__breader_init(&r, f->fd, max_record);
    uint64_t off = 0;
    int rc;
    for (;;) {
        brec rec;
        rc = colony__breader_at(&r, off, &rec);
        if (rc == 1) {
            rc = 0;
            break;
        }
        if (rc == COLONY_EAGAIN) {
            if (!cut_tail || valid_after(&r, off + 1, (uint64_t)sb.st_size)) {
                snprintf(msg, msg_size,
                         "%s: bad record at offset %" PRIu64 " (checksum or framing)", f->path,
                         off);
                rc = COLONY_EIO;
                break;
            }
            COLONY_LOG_WARN("broker store: torn tail cut", COLONY_LF_STR("file", f->path),
                            COLONY_LF_INT("offset", off),
                            COLONY_LF_INT("bytes", (uint64_t)sb.st_size - off));
            rc = ftruncate(f->fd, (off_t)off) == 0 && fsync(f->fd) == 0 ? 0 : -errno;
            if (rc) snprintf(msg, msg_size, "%s: cannot cut torn tail: %s", f->path, strerror(-rc));
            break;
        }
        if (rc < 0) {
            snprintf(msg, msg_size, "%s: %s", f->path, colony_strerror(rc));
            break;
        }
        rc = cb(ud, &rec);
        if (rc) {
            if (rc == COLONY_EIO)
                snprintf(msg, msg_size, "%s: unexpected record at offset %" PRIu64, f->path, off);
            else
                snprintf(msg, msg_size, "%s: %s", f->path, colony_strerror(rc));
            break;
        }
        off += rec.size;
    }
    colony__breader_free(&r);
    *end = off;
    return rc;
}

/* ---- segments ---- */

static void seg_free(bseg *g)
{
    if (!g) return;
    colony__bfile_unref(g->file);
    colony__free(g->index);
    colony__free(g);
}

static int seg_note_entry(bseg *g, colony__bid id, uint64_t time_ms, uint64_t off, uint32_t every)
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

static int push_seg(colony__bstream *st, bseg *g)
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
        return seg_note_entry(ss->g, r->id, r->time_ms, r->off, st->store->o.index_every);
    case BREC_DELETE:
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
    for (size_t i = 0; i < st->nsegs; i++)
        seg_free(st->segs[i]);
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
        if (!g || push_seg(st, g)) {
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
            seg_free(g);
            st->nsegs--;
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

/* ---- appending ---- */

static int roll(colony__bstream *st, colony__bid id, bseg **out)
{
    char name[64];
    snprintf(name, sizeof(name), "%020" PRIu64 "-%020" PRIu64 ".seg", id.ms, id.seq);
    bseg *g = colony__calloc(1, sizeof(*g));
    if (!g) return COLONY_ENOMEM;
    int rc = push_seg(st, g);
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
    if (st->nsegs > 1)
        st->unsynced[st->nunsynced++] = colony__bfile_ref(st->segs[st->nsegs - 2]->file);
    *out = g;
    return 0;
}

/* A segment just created and left empty by a failed write goes away. */
static void unroll(colony__bstream *st, bseg *g)
{
    st->nsegs--;
    unlink(g->file->path);
    if (st->nsegs && st->nunsynced &&
        st->unsynced[st->nunsynced - 1] == st->segs[st->nsegs - 1]->file)
        colony__bfile_unref(st->unsynced[--st->nunsynced]);
    seg_free(g);
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
    if ((rc = seg_note_entry(g, id, now, off, s->o.index_every))) {
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
