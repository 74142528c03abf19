/* Dead letters: the move of a pending entry to its group's dead-letter stream
 * (an ordinary stream; the original fields, then dlq-* fields), and the
 * operations on those streams: list, replay, purge. A move appends the copy,
 * waits for its fsync (options.commit), then acks the original: a crash in
 * between leaves the original pending, so it is moved again (at least once,
 * possibly twice; never lost). Replay mirrors it: the new entry is durable
 * before the dead letter is deleted. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "broker/delivery/internal.h"
#include "colony/error.h"
#include "core/alloc.h"

#define DLQ_FIELDS 7 /* pairs after the original fields */
static const char *const dlq_names[DLQ_FIELDS] = {
    "dlq-stream", "dlq-group", "dlq-id", "dlq-reason", "dlq-error", "dlq-count", "dlq-time"};

/* An entry copied out of a store callback. */
typedef struct copy {
    colony__bid id;
    colony__bstr *strs;
    size_t n;
    char *buf;
} copy;

static void copy_free(copy *c)
{
    colony__free(c->strs);
    colony__free(c->buf);
    memset(c, 0, sizeof(*c));
}

static int copy_entry(copy *c, const colony__bentry *e, size_t extra)
{
    size_t bytes = 0;
    for (size_t i = 0; i < e->n; i++)
        bytes += e->strs[i].len;
    c->strs = colony__malloc((e->n + extra) * sizeof(*c->strs) + 1);
    c->buf = colony__malloc(bytes + 1);
    if (!c->strs || !c->buf) {
        copy_free(c);
        return COLONY_ENOMEM;
    }
    size_t off = 0;
    for (size_t i = 0; i < e->n; i++) {
        if (e->strs[i].len) memcpy(c->buf + off, e->strs[i].data, e->strs[i].len);
        c->strs[i] = (colony__bstr){c->buf + off, e->strs[i].len};
        off += e->strs[i].len;
    }
    c->id = e->id;
    c->n = e->n;
    return 0;
}

static int copy_one(void *ud, const colony__bentry *e)
{
    int rc = copy_entry(ud, e, 2 * DLQ_FIELDS);
    return rc ? rc : 1;
}

/* A move or replay waiting on the destination's fsync. */
typedef struct move_wait {
    bd_life *life;
    colony__bid id;
    int replay; /* 0: ack id in group of stream; 1: delete id from stream (the dlq) */
    char *stream, *group;
} move_wait;

static void move_finish(colony__bdelivery *d, const char *stream, const char *group, colony__bid id,
                        int replay)
{
    colony__bstream *st = colony__bstore_get(d->store, stream);
    if (!st) return;
    if (replay) {
        (void)colony__bstream_delete(st, id);
        return;
    }
    colony__bgroup *g = colony__bgroup_get(st, group);
    if (g && colony__bgroup_ack(g, id) == 1) {
        (void)colony__bnote_drop(st, group, id);
        colony__bd_retain(d, st);
    }
}

static void on_durable(void *ud, int err)
{
    move_wait *w = ud;
    if (!err && w->life->d) move_finish(w->life->d, w->stream, w->group, w->id, w->replay);
    if (--w->life->refs == 0) colony__free(w->life);
    colony__free(w->stream);
    colony__free(w->group);
    colony__free(w);
}

/* Finishes now (no committer) or once dst is durable. */
static int after_durable(colony__bdelivery *d, colony__bstream *dst, const char *stream,
                         const char *group, colony__bid id, int replay)
{
    if (!d->commit) {
        move_finish(d, stream, group, id, replay);
        return 0;
    }
    move_wait *w = colony__calloc(1, sizeof(*w));
    if (!w) return COLONY_ENOMEM;
    w->stream = colony__strdup(stream);
    w->group = group ? colony__strdup(group) : NULL;
    if (!w->stream || (group && !w->group)) {
        colony__free(w->stream);
        colony__free(w->group);
        colony__free(w);
        return COLONY_ENOMEM;
    }
    w->life = d->life;
    w->id = id;
    w->replay = replay;
    d->life->refs++;
    int rc = colony__bcommit_wait(d->commit, dst, on_durable, w);
    if (rc) {
        d->life->refs--;
        colony__free(w->stream);
        colony__free(w->group);
        colony__free(w);
    }
    return rc;
}

int colony__bd_dead_letter(colony__bdelivery *d, colony__bstream *st, colony__bgroup *g,
                           colony__bid id, const char *reason, uint64_t count)
{
    colony__bgroup_info gi;
    colony__bgroup_info_get(g, &gi);
    const char *sname = colony__bstream_name(st);
    colony__bgroup_policy pol;
    int rc = colony__bd_group_pol(d, st, gi.name, &pol);
    if (rc) return rc;
    uint64_t now = colony__bdelivery_now(d);
    copy c = {0};
    long k = colony__bstream_range(st, id, id, 0, 1, copy_one, &c);
    if (k < 0) return (int)k;
    if (!c.strs) { /* gone from the stream: nothing left to keep */
        rc = colony__bgroup_ack(g, id);
        if (rc >= 0) (void)colony__bnote_drop(st, gi.name, id);
        return rc < 0 ? rc : 0;
    }
    colony__bstr err = {"", 0};
    (void)colony__bnote_get(st, gi.name, id, &err);
    char ids[48], counts[24], times[24];
    snprintf(ids, sizeof(ids), "%" PRIu64 "-%" PRIu64, id.ms, id.seq);
    snprintf(counts, sizeof(counts), "%" PRIu64, count);
    snprintf(times, sizeof(times), "%" PRIu64, now);
    const char *vals[DLQ_FIELDS] = {sname, gi.name, ids, reason, NULL, counts, times};
    for (size_t i = 0; i < DLQ_FIELDS; i++) {
        c.strs[c.n++] = (colony__bstr){dlq_names[i], strlen(dlq_names[i])};
        c.strs[c.n++] = i == 4 ? err : (colony__bstr){vals[i], strlen(vals[i])};
    }
    char *group = colony__strdup(gi.name), *stream = colony__strdup(sname);
    colony__bstream *dst = colony__bstore_get(d->store, pol.dead_letter);
    rc = group && stream ? 0 : COLONY_ENOMEM;
    if (!rc && !dst) rc = colony__bstore_create(d->store, pol.dead_letter, &dst);
    colony__bid got, zero = {0, 0};
    if (!rc) rc = colony__bstream_append(dst, COLONY__BID_AUTO, zero, c.strs, c.n, &got);
    copy_free(&c);
    if (!rc) {
        colony__bd_touch(d, dst);
        /* not handed out again while the copy is on its way to the disk */
        const colony__bpending *p = colony__bgroup_pending(g, id);
        if (p && d->commit)
            rc = colony__bgroup_update(g, p->consumer, id, p->count, p->last_ms,
                                       now + pol.visibility_ms);
        if (!rc) rc = after_durable(d, dst, stream, group, id, 0);
    }
    colony__free(group);
    colony__free(stream);
    return rc;
}

/* Splits a dead-letter entry into its parts; COLONY_EINVAL if it lacks them. */
static int parse_dead(const colony__bentry *e, colony__bdead *out)
{
    if (e->n < 2 * DLQ_FIELDS) return COLONY_EINVAL;
    size_t base = e->n - 2 * DLQ_FIELDS;
    const colony__bstr *v[DLQ_FIELDS];
    for (size_t i = 0; i < DLQ_FIELDS; i++) {
        const colony__bstr *k = &e->strs[base + 2 * i];
        if (k->len != strlen(dlq_names[i]) || memcmp(k->data, dlq_names[i], k->len))
            return COLONY_EINVAL;
        v[i] = &e->strs[base + 2 * i + 1];
    }
    memset(out, 0, sizeof(*out));
    out->id = e->id;
    out->stream = v[0]->data;
    out->stream_len = v[0]->len;
    out->group = v[1]->data;
    out->group_len = v[1]->len;
    out->reason = v[3]->data;
    out->reason_len = v[3]->len;
    out->error = v[4]->data;
    out->error_len = v[4]->len;
    char num[48];
    size_t n = v[2]->len < sizeof(num) - 1 ? v[2]->len : sizeof(num) - 1;
    memcpy(num, v[2]->data, n);
    num[n] = '\0';
    sscanf(num, "%" SCNu64 "-%" SCNu64, &out->original.ms, &out->original.seq);
    n = v[5]->len < sizeof(num) - 1 ? v[5]->len : sizeof(num) - 1;
    memcpy(num, v[5]->data, n);
    num[n] = '\0';
    sscanf(num, "%" SCNu64, &out->count);
    n = v[6]->len < sizeof(num) - 1 ? v[6]->len : sizeof(num) - 1;
    memcpy(num, v[6]->data, n);
    num[n] = '\0';
    sscanf(num, "%" SCNu64, &out->time_ms);
    out->strs = e->strs;
    out->n = base;
    return 0;
}

typedef struct list_ctx {
    colony__bdead_cb cb;
    void *ud;
} list_ctx;

static int list_one(void *ud, const colony__bentry *e)
{
    list_ctx *c = ud;
    colony__bdead dl;
    if (parse_dead(e, &dl)) return 0; /* not a dead letter (written by hand): skipped */
    return c->cb(c->ud, &dl);
}

long colony__bdelivery_dead_list(colony__bdelivery *d, const char *dlq, colony__bid start,
                                 colony__bid end, size_t count, colony__bdead_cb cb, void *ud)
{
    colony__bstream *st = colony__bstore_get(d->store, dlq);
    if (!st) return COLONY_ENOENT;
    list_ctx c = {cb, ud};
    return colony__bstream_range(st, start, end, 0, count, list_one, &c);
}

#define REPLAY_BATCH 64
typedef struct replay_ctx {
    copy items[REPLAY_BATCH];
    char *origin[REPLAY_BATCH];
    size_t n;
    int err;
} replay_ctx;

static int replay_collect(void *ud, const colony__bentry *e)
{
    replay_ctx *c = ud;
    colony__bdead dl;
    if (parse_dead(e, &dl)) return 0;
    colony__bentry orig = *e;
    orig.n = dl.n;
    if ((c->err = copy_entry(&c->items[c->n], &orig, 0))) return c->err;
    if (!(c->origin[c->n] = colony__malloc(dl.stream_len + 1))) {
        copy_free(&c->items[c->n]);
        return c->err = COLONY_ENOMEM;
    }
    memcpy(c->origin[c->n], dl.stream, dl.stream_len);
    c->origin[c->n][dl.stream_len] = '\0';
    c->items[c->n].id = e->id;
    return ++c->n == REPLAY_BATCH ? 1 : 0;
}

long colony__bdelivery_dead_replay(colony__bdelivery *d, const char *dlq, colony__bid start,
                                   colony__bid end)
{
    d->ntouched = 0;
    colony__bstream *st = colony__bstore_get(d->store, dlq);
    if (!st) return COLONY_ENOENT;
    long done = 0;
    int rc = 0;
    for (;;) {
        replay_ctx c = {0};
        long k = colony__bstream_range(st, start, end, 0, REPLAY_BATCH, replay_collect, &c);
        if (k < 0) rc = (int)k;
        for (size_t i = 0; i < c.n; i++) {
            colony__bid got;
            colony__bpublish m = {.strs = c.items[i].strs, .n = c.items[i].n};
            /* under the stream's policy: a full stream (reject) stops the replay */
            if (!rc) rc = colony__bd_publish(d, c.origin[i], &m, &got);
            colony__bstream *o = rc ? NULL : colony__bstore_get(d->store, c.origin[i]);
            if (o) {
                colony__bd_touch(d, o);
                rc = after_durable(d, o, dlq, NULL, c.items[i].id, 1);
            }
            if (!rc) done++;
            start = c.items[i].id;
            copy_free(&c.items[i]);
            colony__free(c.origin[i]);
        }
        if (rc || c.n < REPLAY_BATCH) break;
        if (start.seq == UINT64_MAX)
            start = (colony__bid){start.ms + 1, 0};
        else
            start.seq++;
    }
    return rc ? rc : done;
}

long colony__bdelivery_dead_purge(colony__bdelivery *d, const char *dlq, colony__bid upto)
{
    d->ntouched = 0;
    colony__bstream *st = colony__bstore_get(d->store, dlq);
    if (!st) return COLONY_ENOENT;
    if (upto.ms == UINT64_MAX && upto.seq == UINT64_MAX) return colony__bstream_trim_maxlen(st, 0);
    colony__bid minid = upto.seq == UINT64_MAX ? (colony__bid){upto.ms + 1, 0}
                                               : (colony__bid){upto.ms, upto.seq + 1};
    return colony__bstream_trim_minid(st, minid);
}
