/* XPENDING (summary and extended forms), XCLAIM and XAUTOCLAIM over the
 * store's pending entries, with redis-server 7.0's replies, errors and
 * order of checks (t_stream.c). Claims reply once they are durable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "broker/cmd_stream.h"
#include "broker/commands.h"
#include "broker/stream_id.h"
#include "broker/store/store.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char **colony__xconsumers_sorted(const colony__bgroup *g, size_t *n)
{
    colony__bgroup_info info;
    colony__bgroup_info_get(g, &info);
    const char **names = colony__malloc((info.consumers ? info.consumers : 1) * sizeof(*names));
    if (!names) return NULL;
    size_t pos = 0, k = 0;
    const char *name;
    while (k < info.consumers && (name = colony__bgroup_consumer_next(g, &pos, NULL)))
        names[k++] = name;
    qsort(names, k, sizeof(*names), cmp_str);
    *n = k;
    return names;
}

/* The stream and group named by argv[1], argv[2], or NULL after Redis's
 * NOGROUP reply (*rc). */
static colony__bgroup *group_or_reply(colony__broker_client *c, const colony__resp_arg *argv,
                                      colony__bstream **st, int *rc)
{
    *st = colony__xlookup_arg(c, &argv[1]);
    char group[256], kname[COLONY__XNAME_MAX + 1];
    colony__broker_arg_str(&argv[2], group, sizeof(group));
    colony__bgroup *g = NULL;
    if (*st && argv[2].len < 256 && !memchr(argv[2].ptr, '\0', argv[2].len))
        g = colony__bgroup_get(*st, group);
    if (!g)
        *rc = colony__resp_errorf(&c->out, "NOGROUP No such key '%s' or consumer group '%s'",
                                  colony__broker_arg_str(&argv[1], kname, sizeof(kname)), group);
    return g;
}

/* ---- XPENDING ---- */

typedef struct pending_out {
    colony_buf buf;
    const char *consumer;
    long long minidle, left;
    uint64_t now;
    size_t n;
    colony__bid first, last;
} pending_out;

static int pending_line(void *ud, const colony__bpending *p)
{
    pending_out *o = ud;
    if (!o->left) return 1;
    if (o->consumer && strcmp(o->consumer, p->consumer) != 0) return 0;
    long long idle = (long long)(o->now - p->last_ms);
    if (p->last_ms > o->now) idle = 0;
    if (o->minidle && (long long)o->now - (long long)p->last_ms < o->minidle) return 0;
    o->left--;
    o->n++;
    int rc = colony__resp_array(&o->buf, 4);
    if (!rc) rc = colony__xreply_id(&o->buf, p->id);
    if (!rc) rc = colony__resp_bulk(&o->buf, p->consumer, strlen(p->consumer));
    if (!rc) rc = colony__resp_int(&o->buf, idle);
    if (!rc) rc = colony__resp_int(&o->buf, (long long)p->count);
    return rc;
}

static int note_edges(void *ud, const colony__bpending *p)
{
    pending_out *o = ud;
    if (!o->n++) o->first = p->id;
    o->last = p->id;
    return 0;
}

static int xpending_summary(colony__broker_client *c, colony__bgroup *g)
{
    colony__bgroup_info info;
    colony__bgroup_info_get(g, &info);
    int rc = colony__resp_array(&c->out, 4);
    if (!rc) rc = colony__resp_int(&c->out, (long long)info.pending);
    if (rc) return rc;
    if (!info.pending) {
        if (!(rc = colony__resp_null_bulk(&c->out))) rc = colony__resp_null_bulk(&c->out);
        return rc ? rc : colony__resp_null_array(&c->out);
    }
    pending_out o = {.n = 0};
    colony__bid zero = {0, 0}, max = {UINT64_MAX, UINT64_MAX};
    long got = colony__bgroup_pending_range(g, zero, max, NULL, 0, note_edges, &o);
    if (got < 0) return (int)got;
    if (!(rc = colony__xreply_id(&c->out, o.first))) rc = colony__xreply_id(&c->out, o.last);
    size_t n = 0, with = 0;
    const char **names = rc ? NULL : colony__xconsumers_sorted(g, &n);
    if (!rc && !names) rc = COLONY_ENOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        size_t pending = 0;
        colony__bgroup_consumer_seen(g, names[i], NULL, &pending);
        with += pending > 0;
    }
    if (!rc) rc = colony__resp_array(&c->out, with);
    for (size_t i = 0; !rc && i < n; i++) {
        size_t pending = 0;
        colony__bgroup_consumer_seen(g, names[i], NULL, &pending);
        if (!pending) continue;
        char num[24];
        int len = snprintf(num, sizeof(num), "%zu", pending);
        if (!(rc = colony__resp_array(&c->out, 2)))
            rc = colony__resp_bulk(&c->out, names[i], strlen(names[i]));
        if (!rc) rc = colony__resp_bulk(&c->out, num, (size_t)len);
    }
    colony__free(names);
    return rc;
}

/* A range bound as XPENDING and XAUTOCLAIM parse it: 0, or 1 after the reply. */
static int bound(colony__broker_client *c, const colony__resp_arg *a, int end, colony__bid *id,
                 int *rc)
{
    int e = colony__xid_parse_bound(a->ptr, a->len, end ? UINT64_MAX : 0, end, id);
    if (!e) return 0;
    *rc = colony__resp_error(&c->out, e == COLONY_EINVAL ? COLONY__XINVALID_ID
                                      : end              ? "ERR invalid end ID for the interval"
                                                         : "ERR invalid start ID for the interval");
    return 1;
}

int colony__cmd_xpending(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    int rc = 0;
    long long minidle = 0, count = 0;
    colony__bid start = {0, 0}, end = {0, 0};
    const colony__resp_arg *consumer = NULL;
    if (argc != 3 && (argc < 6 || argc > 9)) return colony__resp_error(&c->out, COLONY__XSYNTAX);
    if (argc >= 6) {
        size_t at = 3;
        if (colony__broker_arg_is(&argv[3], "idle")) {
            if (!colony__xparse_ll(&argv[4], &minidle))
                return colony__resp_error(&c->out, COLONY__XNOT_INT);
            if (argc < 8) return colony__resp_error(&c->out, COLONY__XSYNTAX);
            at += 2;
        }
        if (!colony__xparse_ll(&argv[at + 2], &count))
            return colony__resp_error(&c->out, COLONY__XNOT_INT);
        if (count < 0) count = 0;
        if (bound(c, &argv[at], 0, &start, &rc) || bound(c, &argv[at + 1], 1, &end, &rc)) return rc;
        if (at + 3 < argc) consumer = &argv[at + 3];
    }
    colony__bstream *st;
    colony__bgroup *g = group_or_reply(c, argv, &st, &rc);
    if (!g) return rc;
    if (argc == 3) return xpending_summary(c, g);
    char cname[256];
    if (consumer) {
        if (consumer->len >= 256 || memchr(consumer->ptr, '\0', consumer->len) ||
            !colony__bgroup_consumer_seen(g, colony__broker_arg_str(consumer, cname, 256), NULL,
                                          NULL))
            return colony__resp_array(&c->out, 0);
    }
    pending_out o = {.consumer = consumer ? cname : NULL,
                     .minidle = minidle,
                     .left = count,
                     .now = colony__bstore_now(c->srv->store)};
    colony_buf_init(&o.buf, (size_t)1 << 40);
    long got = count ? colony__bgroup_pending_range(g, start, end, NULL, 0, pending_line, &o) : 0;
    if (got < 0)
        rc = (int)got;
    else if (!(rc = colony__resp_array(&c->out, o.n)) && o.buf.len)
        rc = colony_buf_append(&c->out, o.buf.data, o.buf.len);
    colony_buf_free(&o.buf);
    return rc;
}

/* ---- XCLAIM / XAUTOCLAIM ---- */

/* Claims the pending entry id (in the store) for consumer: time and count
 * as given; one reply element (the entry, or its id for JUSTID) into out. */
static int claim_one(colony__bstream *st, colony__bgroup *g, const char *consumer, colony__bid id,
                     uint64_t count, uint64_t time, int justid, colony_buf *out)
{
    const colony__bpending *p = colony__bgroup_pending(g, id);
    uint64_t due = p ? p->due_ms : UINT64_MAX;
    int rc = colony__bgroup_claim(g, consumer, id, count, time, due);
    if (rc) return rc;
    if (justid) return colony__xreply_id(out, id);
    rc = colony__xreply_entry(st, id, out);
    return rc < 0 ? rc : 0;
}

static int entry_there(colony__bstream *st, colony__bid id)
{
    colony_buf scratch;
    colony_buf_init(&scratch, (size_t)1 << 40);
    int rc = colony__xreply_entry(st, id, &scratch);
    colony_buf_free(&scratch);
    return rc;
}

int colony__cmd_xclaim(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    int rc = 0, force = 0, justid = 0;
    colony__bstream *st;
    colony__bgroup *g = group_or_reply(c, argv, &st, &rc);
    if (!g) return rc;
    long long minidle, retrycount = -1, deliverytime = -1;
    if (!colony__xparse_ll(&argv[4], &minidle))
        return colony__resp_error(&c->out, "ERR Invalid min-idle-time argument for XCLAIM");
    if (minidle < 0) minidle = 0;
    size_t j = 5;
    colony__bid small[16], *ids = small;
    if (argc - 5 > 16 && !(ids = colony__malloc((argc - 5) * sizeof(*ids)))) return COLONY_ENOMEM;
    for (; j < argc; j++)
        if (colony__xid_parse(argv[j].ptr, argv[j].len, 0, 1, NULL, &ids[j - 5])) break;
    size_t nids = j - 5;
    uint64_t now = colony__bstore_now(c->srv->store);
    colony__bid last_id = {0, 0};
    for (; j < argc; j++) {
        size_t more = argc - 1 - j;
        const colony__resp_arg *o = &argv[j];
        const char *bad = NULL;
        long long *v = NULL;
        if (colony__broker_arg_is(o, "force")) {
            force = 1;
        } else if (colony__broker_arg_is(o, "justid")) {
            justid = 1;
        } else if (colony__broker_arg_is(o, "idle") && more) {
            bad = "ERR Invalid IDLE option argument for XCLAIM";
            v = &deliverytime;
        } else if (colony__broker_arg_is(o, "time") && more) {
            bad = "ERR Invalid TIME option argument for XCLAIM";
            v = &deliverytime;
        } else if (colony__broker_arg_is(o, "retrycount") && more) {
            bad = "ERR Invalid RETRYCOUNT option argument for XCLAIM";
            v = &retrycount;
        } else if (colony__broker_arg_is(o, "lastid") && more) {
            j++;
            if (colony__xid_parse(argv[j].ptr, argv[j].len, 0, 1, NULL, &last_id)) {
                rc = colony__resp_error(&c->out, COLONY__XINVALID_ID);
                goto done;
            }
        } else {
            char opt[129];
            rc = colony__resp_errorf(&c->out, "ERR Unrecognized XCLAIM option '%s'",
                                     colony__broker_arg_str(o, opt, sizeof(opt)));
            goto done;
        }
        if (v) {
            j++;
            if (!colony__xparse_ll(&argv[j], v)) {
                rc = colony__resp_error(&c->out, bad);
                goto done;
            }
            if (colony__broker_arg_is(o, "idle")) deliverytime = (long long)now - deliverytime;
        }
    }
    colony__bgroup_info info;
    colony__bgroup_info_get(g, &info);
    int changed = 0;
    if (colony__bid_cmp(last_id, info.cursor) > 0) {
        if ((rc = colony__bgroup_setid_read(g, last_id, info.entries_read))) goto store_error;
        changed = 1;
    }
    if (deliverytime < 0 || deliverytime > (long long)now) deliverytime = (long long)now;
    char consumer[256];
    if (colony__xname_arg(c, &argv[3], consumer, &rc)) goto done;
    colony_buf body;
    colony_buf_init(&body, (size_t)1 << 40);
    size_t claimed = 0;
    int touched = 0;
    for (size_t i = 0; i < nids && !rc; i++) {
        const colony__bpending *p = colony__bgroup_pending(g, ids[i]);
        int there = entry_there(st, ids[i]);
        if (there < 0) {
            rc = there;
            break;
        }
        if (!there) { /* gone from the stream: gone from the group too */
            if (p && (rc = colony__bgroup_ack(g, ids[i])) > 0) rc = 0, changed = 1;
            continue;
        }
        uint64_t count = 1;
        if (p) {
            if (minidle && (long long)now - (long long)p->last_ms < minidle) continue;
            count = p->count;
        } else if (!force) {
            continue;
        }
        if (retrycount >= 0)
            count = (uint64_t)retrycount;
        else if (!justid)
            count++;
        if (!touched) {
            touched = 1;
            if ((rc = colony__bgroup_consumer_add(g, consumer)) < 0) break;
            rc = 0;
            colony__bgroup_consumer_touch(g, consumer);
        }
        rc = claim_one(st, g, consumer, ids[i], count, (uint64_t)deliverytime, justid, &body);
        claimed++;
        changed = 1;
    }
    if (!rc && !(rc = colony__resp_array(&c->out, claimed)) && body.len)
        rc = colony_buf_append(&c->out, body.data, body.len);
    colony_buf_free(&body);
    if (rc) goto store_error;
    if (changed) rc = colony__xpark(c, st, NULL);
    goto done;
store_error:
    rc = colony__xstore_error(c, rc);
done:
    if (ids != small) colony__free(ids);
    return rc;
}

typedef struct id_list {
    colony__bid *ids;
    size_t n, cap, max;
} id_list;

static int note_id(void *ud, const colony__bpending *p)
{
    id_list *l = ud;
    if (l->n == l->max) return 1;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        colony__bid *ids = colony__realloc(l->ids, cap * sizeof(*ids));
        if (!ids) return COLONY_ENOMEM;
        l->ids = ids;
        l->cap = cap;
    }
    l->ids[l->n++] = p->id;
    return 0;
}

int colony__cmd_xautoclaim(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    int rc = 0, justid = 0;
    long long minidle, count = 100;
    colony__bid start;
    if (!colony__xparse_ll(&argv[4], &minidle))
        return colony__resp_error(&c->out, "ERR Invalid min-idle-time argument for XAUTOCLAIM");
    if (minidle < 0) minidle = 0;
    if (bound(c, &argv[5], 0, &start, &rc)) return rc;
    for (size_t j = 6; j < argc; j++) {
        if (colony__broker_arg_is(&argv[j], "count") && argc - 1 - j) {
            if (!colony__xparse_ll(&argv[j + 1], &count) || count < 1 ||
                count > (long long)(__LONG_MAX__ / 16))
                return colony__resp_error(&c->out, "ERR COUNT must be > 0");
            j++;
        } else if (colony__broker_arg_is(&argv[j], "justid")) {
            justid = 1;
        } else {
            return colony__resp_error(&c->out, COLONY__XSYNTAX);
        }
    }
    colony__bstream *st;
    colony__bgroup *g = group_or_reply(c, argv, &st, &rc);
    if (!g) return rc;
    char consumer[256];
    if (colony__xname_arg(c, &argv[3], consumer, &rc)) return rc;
    long long attempts = count * 10;
    colony__bgroup_info info;
    colony__bgroup_info_get(g, &info);
    id_list l = {NULL, 0, 0, (size_t)attempts + 1};
    if (l.max > info.pending + 1) l.max = info.pending + 1;
    colony__bid max = {UINT64_MAX, UINT64_MAX};
    long got = colony__bgroup_pending_range(g, start, max, NULL, 0, note_id, &l);
    if (got < 0) {
        colony__free(l.ids);
        return got == COLONY_ENOMEM ? COLONY_ENOMEM : colony__xstore_error(c, (int)got);
    }
    uint64_t now = colony__bstore_now(c->srv->store);
    colony_buf body, gone;
    colony_buf_init(&body, (size_t)1 << 40);
    colony_buf_init(&gone, (size_t)1 << 40);
    size_t i = 0, claimed = 0, deleted = 0;
    int touched = 0;
    while (!rc && attempts-- > 0 && count && i < l.n) {
        colony__bid id = l.ids[i++];
        const colony__bpending *p = colony__bgroup_pending(g, id);
        int there = entry_there(st, id);
        if (there < 0) {
            rc = there;
            break;
        }
        if (!there) {
            if ((rc = colony__bgroup_ack(g, id)) < 0) break;
            rc = colony__xreply_id(&gone, id);
            deleted++;
            count--;
            continue;
        }
        if (minidle && (long long)now - (long long)p->last_ms < minidle) continue;
        if (!touched) {
            touched = 1;
            if ((rc = colony__bgroup_consumer_add(g, consumer)) < 0) break;
            rc = 0;
            colony__bgroup_consumer_touch(g, consumer);
        }
        rc = claim_one(st, g, consumer, id, justid ? p->count : p->count + 1, now, justid, &body);
        claimed++;
        count--;
    }
    colony__bid next = i < l.n ? l.ids[i] : (colony__bid){0, 0};
    if (!rc) rc = colony__resp_array(&c->out, 3);
    if (!rc) rc = colony__xreply_id(&c->out, next);
    if (!rc) rc = colony__resp_array(&c->out, claimed);
    if (!rc && body.len) rc = colony_buf_append(&c->out, body.data, body.len);
    if (!rc) rc = colony__resp_array(&c->out, deleted);
    if (!rc && gone.len) rc = colony_buf_append(&c->out, gone.data, gone.len);
    colony_buf_free(&body);
    colony_buf_free(&gone);
    colony__free(l.ids);
    if (rc) return rc == COLONY_ENOMEM ? rc : colony__xstore_error(c, rc);
    return claimed || deleted ? colony__xpark(c, st, NULL) : 0;
}
