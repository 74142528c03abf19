/* The group journal (<stream>/groups.jnl): every group change is a
 * checksummed record (segment.h framing) written before it is applied in
 * memory, replayed on open, and compacted into a snapshot of the live state
 * (the same records) when it has grown by journal_compact_bytes. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "broker/store/group.h"
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"

static int journal_compact(colony__bstream *st);

/* Encodes a record into the store's encoder and appends it to the journal. */
int colony__bjournal_put(colony__bstream *st, uint8_t type, colony__bid id, uint64_t time_ms,
                         const colony__bstr *strs, size_t n)
{
    colony__bstore *s = st->store;
    s->enc.len = 0;
    int rc = colony__benc_record(&s->enc, type, id, time_ms, strs, n);
    return rc ? rc : colony__bjournal_put_encoded(st);
}

int colony__bjournal_put_encoded(colony__bstream *st)
{
    colony__bstore *s = st->store;
    int rc = colony__bwrite_all(st->journal, s->enc.buf, s->enc.len, st->journal_bytes);
    if (rc) return rc;
    st->journal_bytes += s->enc.len;
    return 0;
}

/* Called after a change is applied in memory, so the snapshot holds it. */
void colony__bjournal_maybe_compact(colony__bstream *st)
{
    if (st->journal_bytes - st->journal_at_compact <= st->store->o.journal_compact_bytes) return;
    int rc = journal_compact(st);
    if (rc) /* the journal is intact; compaction is tried again after the next change */
        COLONY_LOG_WARN("broker store: journal compaction failed",
                        COLONY_LF_STR("stream", st->name),
                        COLONY_LF_STR("error", colony_strerror(rc)));
}

/* A BREC_PENDING record's strings: group, consumer, count, due, d(eliver)/u
 * [, entries_read + 1 when the delivery moves the cursor]. */
size_t colony__bjournal_pending_strs(const colony__bgroup *g, const colony__bpending *p,
                                     int deliver, int64_t entries_read, uint8_t nums[24],
                                     colony__bstr strs[6])
{
    colony__bput64(nums, p->count);
    colony__bput64(nums + 8, p->due_ms);
    strs[0] = STR(g->name);
    strs[1] = STR(p->consumer);
    strs[2] = (colony__bstr){(const char *)nums, 8};
    strs[3] = (colony__bstr){(const char *)nums + 8, 8};
    strs[4] = (colony__bstr){deliver ? "d" : "u", 1};
    if (!deliver || colony__bid_cmp(p->id, g->cursor) <= 0) return 5;
    colony__bput64(nums + 16, (uint64_t)(entries_read + 1));
    strs[5] = (colony__bstr){(const char *)nums + 16, 8};
    return 6;
}

void colony__bjournal_counters(colony__bstream *st)
{
    colony__bstr none = {"", 0};
    int rc =
        colony__bjournal_put(st, BREC_COUNTERS, st->max_deleted, st->removed_entries, &none, 1);
    if (rc)
        COLONY_LOG_WARN("broker store: cannot record the stream's counters",
                        COLONY_LF_STR("stream", st->name),
                        COLONY_LF_STR("error", colony_strerror(rc)));
}

/* Writes the live state as a new journal: temp file, fsync, rename, fsync dir. */
static int journal_compact(colony__bstream *st)
{
    benc e = {0};
    int rc = 0;
    size_t pos = 0;
    colony__map_slot *sl;
    colony__bid zero = {0, 0};
    colony__bstr none = {"", 0};
    if (st->removed_entries || st->max_deleted.ms || st->max_deleted.seq)
        rc = colony__benc_record(&e, BREC_COUNTERS, st->max_deleted, st->removed_entries, &none, 1);
    while (!rc && (sl = colony__map_next(&st->groups, &pos))) {
        colony__bgroup *g = sl->value;
        colony__bstr name = STR(g->name);
        rc = colony__benc_record(&e, BREC_GROUP, g->cursor, (uint64_t)(g->entries_read + 1), &name,
                                 1);
        size_t cpos = 0;
        colony__map_slot *cs;
        while (!rc && (cs = colony__map_next(&g->consumers, &cpos))) {
            colony__bstr strs[2] = {name, STR(((bconsumer *)cs->value)->name)};
            rc = colony__benc_record(&e, BREC_CONSUMER, zero, 0, strs, 2);
        }
        for (size_t i = 0; !rc && i < g->npend; i++) {
            uint8_t nums[24];
            colony__bstr strs[6];
            colony__bjournal_pending_strs(g, &g->pend[i], 0, -1, nums, strs);
            rc = colony__benc_record(&e, BREC_PENDING, g->pend[i].id, g->pend[i].last_ms, strs, 5);
        }
    }
    bfile *f = NULL;
    if (!rc) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s/groups.jnl.tmp", st->dir);
        unlink(tmp);
        rc = colony__bfile_open(&f, st->dir, "groups.jnl.tmp", 1);
        if (!rc) rc = colony__bwrite_all(f, e.buf, e.len, 0);
        if (!rc && fsync(f->fd) != 0) rc = -errno;
        if (!rc && rename(f->path, st->journal->path) != 0) rc = -errno;
        if (!rc) rc = colony__bdir_sync(st->dir);
        if (rc && f) unlink(f->path);
    }
    if (!rc) {
        char *path = f->path; /* the file is now groups.jnl */
        f->path = st->journal->path;
        st->journal->path = path;
        colony__bfile_unref(st->journal);
        st->journal = f;
        st->journal_bytes = st->journal_at_compact = e.len;
        colony__bfile_prealloc(f, st->store->pa, e.len, e.len + st->store->o.journal_compact_bytes);
    } else {
        colony__bfile_unref(f);
    }
    colony__benc_free(&e);
    return rc;
}

static int replay(void *ud, const brec *r)
{
    colony__bstream *st = ud;
    colony__bstr s[6];
    size_t n;
    if (r->type == BREC_COUNTERS) {
        st->removed_entries = r->time_ms;
        if (colony__bid_cmp(r->id, st->max_deleted) > 0) st->max_deleted = r->id;
        return 0;
    }
    int rc = colony__brec_strs(r, s, 6, &n);
    if (rc || n < 1 || n > 6) return COLONY_EIO;
    char name[256], cons[256];
    if (s[0].len >= sizeof(name) || (n > 1 && s[1].len >= sizeof(cons))) return COLONY_EIO;
    memcpy(name, s[0].data, s[0].len);
    name[s[0].len] = '\0';
    if (n > 1) {
        memcpy(cons, s[1].data, s[1].len);
        cons[s[1].len] = '\0';
    }
    colony__bgroup *g = colony__map_get(&st->groups, name);
    bconsumer *c;
    switch (r->type) {
    case BREC_GROUP:
        if (!g && !(g = colony__bgroup_new(st, name, r->id))) return COLONY_ENOMEM;
        g->cursor = r->id;
        g->entries_read = (int64_t)r->time_ms - 1;
        return 0;
    case BREC_UNGROUP:
        if (g) {
            colony__map_remove(&st->groups, name);
            colony__bgroup_free_one(g);
        }
        return 0;
    case BREC_CONSUMER:
        if (!g || n != 2) return COLONY_EIO;
        return colony__bconsumer_get(g, cons, 1) ? 0 : COLONY_ENOMEM;
    case BREC_UNCONSUMER:
        if (!g || n != 2) return COLONY_EIO;
        if ((c = colony__bconsumer_get(g, cons, 0))) colony__bconsumer_drop(g, c);
        return 0;
    case BREC_PENDING:
        if (!g || n < 5 || s[2].len != 8 || s[3].len != 8 || s[4].len != 1 ||
            (n == 6 && s[5].len != 8))
            return COLONY_EIO;
        if (!(c = colony__bconsumer_get(g, cons, 1)) || colony__bpend_reserve(g))
            return COLONY_ENOMEM;
        if (n == 6 && colony__bid_cmp(r->id, g->cursor) > 0)
            g->entries_read = (int64_t)colony__bget64((const uint8_t *)s[5].data) - 1;
        colony__bpend_apply(g, c, r->id, colony__bget64((const uint8_t *)s[2].data), r->time_ms,
                            colony__bget64((const uint8_t *)s[3].data), s[4].data[0] == 'd');
        return 0;
    case BREC_ACK:
        if (!g) return COLONY_EIO;
        colony__bpend_remove(g, r->id);
        return 0;
    default:
        return COLONY_EIO;
    }
}

int colony__bgroups_open(colony__bstream *st, int create, char *msg, size_t msg_size)
{
    int rc = colony__bfile_open(&st->journal, st->dir, "groups.jnl", 0);
    if (rc == COLONY_ENOENT) rc = colony__bfile_open(&st->journal, st->dir, "groups.jnl", 1);
    (void)create;
    if (rc) {
        snprintf(msg, msg_size, "cannot open %s/groups.jnl: %s", st->dir, colony_strerror(rc));
        return rc;
    }
    rc = colony__bscan(st->journal, st->store->o.max_record, 1, replay, st, &st->journal_bytes, msg,
                       msg_size);
    st->journal_at_compact = st->journal_bytes;
    if (!rc)
        colony__bfile_prealloc(st->journal, st->store->pa, st->journal_bytes,
                               st->journal_bytes + st->store->o.journal_compact_bytes);
    return rc;
}
