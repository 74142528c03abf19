/* Consumer groups and their journal (<stream>/groups.jnl): every change is a
 * checksummed record (segment.h framing) written before it is applied in
 * memory, replayed on open, and compacted into a snapshot of the live state
 * (same records) when the journal grows past journal_compact_bytes. Pending
 * entries are a sorted array per group (deliveries append at its end). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "broker/store/stream.h"
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"

typedef struct bconsumer {
    char *name;
    size_t pending;
} bconsumer;

struct colony__bgroup {
    colony__bstream *st;
    char *name;
    colony__bid cursor;
    colony__bpending *pend;
    size_t npend, cappend;
    colony__map consumers; /* name -> bconsumer */
};

#define STR(s) ((colony__bstr){(s), strlen(s)})

static void group_free(colony__bgroup *g)
{
    size_t pos = 0;
    colony__map_slot *sl;
    while ((sl = colony__map_next(&g->consumers, &pos))) {
        bconsumer *c = sl->value;
        colony__free(c->name);
        colony__free(c);
    }
    colony__map_free(&g->consumers);
    colony__free(g->pend);
    colony__free(g->name);
    colony__free(g);
}

void colony__bgroups_free(colony__bstream *st)
{
    size_t pos = 0;
    colony__map_slot *sl;
    while ((sl = colony__map_next(&st->groups, &pos)))
        group_free(sl->value);
    colony__map_free(&st->groups);
    colony__bfile_unref(st->journal);
    st->journal = NULL;
}

/* ---- in memory ---- */

static size_t pend_find(const colony__bgroup *g, colony__bid id, int *found)
{
    size_t lo = 0, hi = g->npend;
    if (hi && colony__bid_cmp(g->pend[hi - 1].id, id) < 0) lo = hi; /* the usual append */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (colony__bid_cmp(g->pend[mid].id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < g->npend && colony__bid_cmp(g->pend[lo].id, id) == 0;
    return lo;
}

static int pend_reserve(colony__bgroup *g)
{
    if (g->npend < g->cappend) return 0;
    size_t cap = g->cappend ? g->cappend * 2 : 16;
    colony__bpending *p = colony__realloc(g->pend, cap * sizeof(*p));
    if (!p) return COLONY_ENOMEM;
    g->pend = p;
    g->cappend = cap;
    return 0;
}

static bconsumer *consumer_get(colony__bgroup *g, const char *name, int create)
{
    bconsumer *c = colony__map_get(&g->consumers, name);
    if (c || !create) return c;
    c = colony__calloc(1, sizeof(*c));
    if (c && !(c->name = colony__strdup(name))) {
        colony__free(c);
        return NULL;
    }
    if (c && colony__map_put(&g->consumers, name, c)) {
        colony__free(c->name);
        colony__free(c);
        return NULL;
    }
    return c;
}

static colony__bgroup *group_new(colony__bstream *st, const char *name, colony__bid cursor)
{
    colony__bgroup *g = colony__calloc(1, sizeof(*g));
    if (!g) return NULL;
    g->st = st;
    g->cursor = cursor;
    if (!(g->name = colony__strdup(name)) || colony__map_put(&st->groups, name, g)) {
        colony__free(g->name);
        colony__free(g);
        return NULL;
    }
    return g;
}

/* Sets (or adds, with room reserved) the pending entry; cannot fail. */
static void pend_apply(colony__bgroup *g, bconsumer *c, colony__bid id, uint64_t count,
                       uint64_t last_ms, uint64_t due_ms, int deliver)
{
    int found;
    size_t i = pend_find(g, id, &found);
    if (!found) {
        memmove(g->pend + i + 1, g->pend + i, (g->npend - i) * sizeof(*g->pend));
        g->npend++;
    } else {
        bconsumer *old = colony__map_get(&g->consumers, g->pend[i].consumer);
        if (old) old->pending--;
    }
    c->pending++;
    g->pend[i] = (colony__bpending){id, c->name, count, last_ms, due_ms};
    if (deliver && colony__bid_cmp(id, g->cursor) > 0) g->cursor = id;
}

static int pend_remove(colony__bgroup *g, colony__bid id)
{
    int found;
    size_t i = pend_find(g, id, &found);
    if (!found) return 0;
    bconsumer *c = colony__map_get(&g->consumers, g->pend[i].consumer);
    if (c) c->pending--;
    memmove(g->pend + i, g->pend + i + 1, (g->npend - i - 1) * sizeof(*g->pend));
    g->npend--;
    return 1;
}

static size_t consumer_drop(colony__bgroup *g, bconsumer *c)
{
    size_t w = 0, n = 0;
    for (size_t i = 0; i < g->npend; i++) {
        if (g->pend[i].consumer == c->name)
            n++;
        else
            g->pend[w++] = g->pend[i];
    }
    g->npend = w;
    colony__map_remove(&g->consumers, c->name);
    colony__free(c->name);
    colony__free(c);
    return n;
}

/* ---- the journal ---- */

/* Encodes a record into the store's encoder and appends it to the journal. */
static int journal_put(colony__bstream *st, uint8_t type, colony__bid id, uint64_t time_ms,
                       const colony__bstr *strs, size_t n)
{
    colony__bstore *s = st->store;
    s->enc.len = 0;
    int rc = colony__benc_record(&s->enc, type, id, time_ms, strs, n);
    if (!rc) rc = colony__bwrite_all(st->journal, s->enc.buf, s->enc.len, st->journal_bytes);
    if (rc) return rc;
    st->journal_bytes += s->enc.len;
    return 0;
}

static int journal_compact(colony__bstream *st);

/* Called after a change is applied in memory, so the snapshot holds it. */
static void maybe_compact(colony__bstream *st)
{
    if (st->journal_bytes - st->journal_at_compact <= st->store->o.journal_compact_bytes) return;
    int rc = journal_compact(st);
    if (rc) /* the journal is intact; compaction is tried again after the next change */
        COLONY_LOG_WARN("broker store: journal compaction failed",
                        COLONY_LF_STR("stream", st->name),
                        COLONY_LF_STR("error", colony_strerror(rc)));
}

/* A BREC_PENDING record's strings: group, consumer, count, due, d(eliver)/u. */
static void pending_strs(const colony__bgroup *g, const colony__bpending *p, int deliver,
                         uint8_t nums[16], colony__bstr strs[5])
{
    colony__bput64(nums, p->count);
    colony__bput64(nums + 8, p->due_ms);
    strs[0] = STR(g->name);
    strs[1] = STR(p->consumer);
    strs[2] = (colony__bstr){(const char *)nums, 8};
    strs[3] = (colony__bstr){(const char *)nums + 8, 8};
    strs[4] = (colony__bstr){deliver ? "d" : "u", 1};
}

/* Writes the live state as a new journal: temp file, fsync, rename, fsync dir. */
static int journal_compact(colony__bstream *st)
{
    benc e = {0};
    int rc = 0;
    size_t pos = 0;
    colony__map_slot *sl;
    colony__bid zero = {0, 0};
    while (!rc && (sl = colony__map_next(&st->groups, &pos))) {
        colony__bgroup *g = sl->value;
        colony__bstr name = STR(g->name);
        rc = colony__benc_record(&e, BREC_GROUP, g->cursor, 0, &name, 1);
        size_t cpos = 0;
        colony__map_slot *cs;
        while (!rc && (cs = colony__map_next(&g->consumers, &cpos))) {
            colony__bstr strs[2] = {name, STR(((bconsumer *)cs->value)->name)};
            rc = colony__benc_record(&e, BREC_CONSUMER, zero, 0, strs, 2);
        }
        for (size_t i = 0; !rc && i < g->npend; i++) {
            uint8_t nums[16];
            colony__bstr strs[5];
            pending_strs(g, &g->pend[i], 0, nums, strs);
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
    } else {
        colony__bfile_unref(f);
    }
    colony__benc_free(&e);
    return rc;
}

static int replay(void *ud, const brec *r)
{
    colony__bstream *st = ud;
    colony__bstr s[5];
    size_t n;
    int rc = colony__brec_strs(r, s, 5, &n);
    if (rc || n < 1 || n > 5) return COLONY_EIO;
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
        if (g) g->cursor = r->id;
        return g || group_new(st, name, r->id) ? 0 : COLONY_ENOMEM;
    case BREC_UNGROUP:
        if (g) {
            colony__map_remove(&st->groups, name);
            group_free(g);
        }
        return 0;
    case BREC_CONSUMER:
        if (!g || n != 2) return COLONY_EIO;
        return consumer_get(g, cons, 1) ? 0 : COLONY_ENOMEM;
    case BREC_UNCONSUMER:
        if (!g || n != 2) return COLONY_EIO;
        if ((c = consumer_get(g, cons, 0))) consumer_drop(g, c);
        return 0;
    case BREC_PENDING:
        if (!g || n != 5 || s[2].len != 8 || s[3].len != 8) return COLONY_EIO;
        if (!(c = consumer_get(g, cons, 1)) || pend_reserve(g)) return COLONY_ENOMEM;
        pend_apply(g, c, r->id, colony__bget64((const uint8_t *)s[2].data), r->time_ms,
                   colony__bget64((const uint8_t *)s[3].data), s[4].data[0] == 'd');
        return 0;
    case BREC_ACK:
        if (!g) return COLONY_EIO;
        pend_remove(g, r->id);
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
    return rc;
}

/* ---- the API ---- */

int colony__bgroup_create(colony__bstream *st, const char *name, colony__bid cursor,
                          colony__bgroup **out)
{
    if (colony__map_get(&st->groups, name)) return COLONY_EEXIST;
    if (strlen(name) >= 256) return COLONY_E2BIG;
    colony__bgroup *g = group_new(st, name, cursor);
    if (!g) return COLONY_ENOMEM;
    colony__bstr s = STR(name);
    int rc = journal_put(st, BREC_GROUP, cursor, 0, &s, 1);
    if (rc) {
        colony__map_remove(&st->groups, name);
        group_free(g);
        return rc;
    }
    maybe_compact(st);
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
    int rc = journal_put(st, BREC_UNGROUP, zero, 0, &s, 1);
    if (rc) return rc;
    colony__map_remove(&st->groups, name);
    group_free(g);
    maybe_compact(st);
    return 0;
}

int colony__bgroup_setid(colony__bgroup *g, colony__bid cursor)
{
    colony__bstr s = STR(g->name);
    int rc = journal_put(g->st, BREC_GROUP, cursor, 0, &s, 1);
    if (rc) return rc;
    g->cursor = cursor;
    maybe_compact(g->st);
    return 0;
}

void colony__bgroup_info_get(const colony__bgroup *g, colony__bgroup_info *out)
{
    *out = (colony__bgroup_info){g->name, g->cursor, g->npend, g->consumers.count};
}

int colony__bgroup_consumer_add(colony__bgroup *g, const char *consumer)
{
    if (colony__map_get(&g->consumers, consumer)) return 0;
    if (strlen(consumer) >= 256) return COLONY_E2BIG;
    bconsumer *c = consumer_get(g, consumer, 1);
    if (!c) return COLONY_ENOMEM;
    colony__bstr s[2] = {STR(g->name), STR(consumer)};
    colony__bid zero = {0, 0};
    int rc = journal_put(g->st, BREC_CONSUMER, zero, 0, s, 2);
    if (rc) {
        consumer_drop(g, c);
        return rc;
    }
    maybe_compact(g->st);
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

long colony__bgroup_consumer_delete(colony__bgroup *g, const char *consumer)
{
    bconsumer *c = colony__map_get(&g->consumers, consumer);
    if (!c) return COLONY_ENOENT;
    colony__bstr s[2] = {STR(g->name), STR(consumer)};
    colony__bid zero = {0, 0};
    int rc = journal_put(g->st, BREC_UNCONSUMER, zero, 0, s, 2);
    if (rc) return rc;
    long n = (long)consumer_drop(g, c);
    maybe_compact(g->st);
    return n;
}

static int pending_set(colony__bgroup *g, const char *consumer, colony__bid id, uint64_t count,
                       uint64_t last_ms, uint64_t due_ms, int deliver)
{
    if (strlen(consumer) >= 256) return COLONY_E2BIG;
    bconsumer *c = consumer_get(g, consumer, 1); /* a consumer is created by use, as in Redis */
    if (!c || pend_reserve(g)) return COLONY_ENOMEM;
    colony__bpending p = {id, c->name, count, last_ms, due_ms};
    uint8_t nums[16];
    colony__bstr strs[5];
    pending_strs(g, &p, deliver, nums, strs);
    int rc = journal_put(g->st, BREC_PENDING, id, last_ms, strs, 5);
    if (rc) return rc;
    pend_apply(g, c, id, count, last_ms, due_ms, deliver);
    maybe_compact(g->st);
    return 0;
}

int colony__bgroup_deliver(colony__bgroup *g, const char *consumer, colony__bid id, uint64_t due_ms)
{
    const colony__bpending *p = colony__bgroup_pending(g, id);
    return pending_set(g, consumer, id, p ? p->count + 1 : 1, colony__bstore_now(g->st->store),
                       due_ms, 1);
}

int colony__bgroup_update(colony__bgroup *g, const char *consumer, colony__bid id, uint64_t count,
                          uint64_t last_ms, uint64_t due_ms)
{
    if (!colony__bgroup_pending(g, id)) return COLONY_ENOENT;
    return pending_set(g, consumer, id, count, last_ms, due_ms, 0);
}

int colony__bgroup_ack(colony__bgroup *g, colony__bid id)
{
    if (!colony__bgroup_pending(g, id)) return 0;
    colony__bstr s = STR(g->name);
    int rc = journal_put(g->st, BREC_ACK, id, 0, &s, 1);
    if (rc) return rc;
    pend_remove(g, id);
    maybe_compact(g->st);
    return 1;
}

const colony__bpending *colony__bgroup_pending(const colony__bgroup *g, colony__bid id)
{
    int found;
    size_t i = pend_find(g, id, &found);
    return found ? &g->pend[i] : NULL;
}

long colony__bgroup_pending_range(const colony__bgroup *g, colony__bid start, colony__bid end,
                                  const char *consumer, size_t count, colony__bpending_cb cb,
                                  void *ud)
{
    int found;
    long given = 0;
    for (size_t i = pend_find(g, start, &found); i < g->npend; i++) {
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
