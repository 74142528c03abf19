/* XREAD and XREADGROUP (t_stream.c xreadCommand), and their BLOCK: a blocked
 * client waits in srv->blocked until an XADD to one of its streams is durable
 * (colony__xread_wake), its timeout, or (XREADGROUP) the end of its group
 * (colony__xread_group_gone). A group read changes the group (deliveries,
 * cursor): a history read's reply, and one giving entries not durable yet,
 * is held until that is durable, as a write's is; new durable entries go out
 * at once (serve_group). A plain XREAD giving an entry not durable yet is
 * held the same way (serve_plain): no reply shows an entry a crash could
 * take back. */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "broker/cmd_stream.h"
#include "broker/commands.h"
#include "broker/stream_id.h"
#include "broker/store/store.h"

/* One stream to read: its key as given (the reply names it so), the stream
 * (NULL: none) and the id entries must be above; for XREADGROUP, newest
 * (">": new entries) or else the consumer's history after `after`. */
typedef struct xsource {
    const char *key;
    size_t key_len;
    colony__bstream *st;
    colony__bid after;
    int newest;
} xsource;

/* XREADGROUP's group, consumer and NOACK (group NULL: XREAD). */
typedef struct xgroup_opt {
    const char *group, *consumer;
    int noack;
} xgroup_opt;

/* ---- XREAD / XREADGROUP replies ---- */

/* One stream of a group read into body. New entries (">") that are durable
 * already are given without a commit of their own: their delivery records
 * are synced by the next commit of the stream, which comes before any other
 * delivery of the same entries (a claim, a history read: those wait for
 * theirs), so a crash can leave at most one delivery of an entry uncounted
 * (docs/broker.md, "Delivery records"). Entries not durable yet, and history
 * reads, set *touched: the reply waits for the commit. */
static long serve_group(colony__broker_client *c, const xsource *src, colony__bgroup *g,
                        const xgroup_opt *go, colony__bid after, size_t count, colony_buf *body,
                        colony__bstream **touched)
{
    colony__bid all = {UINT64_MAX, UINT64_MAX};
    uint64_t now = colony__bstore_now(c->srv->store);
    if (src->newest) {
        colony__bid durable = colony__bcommit_durable_top(c->srv->commit, src->st);
        size_t mark = body->len;
        if (colony__bid_cmp(durable, after) > 0) {
            long got = colony__xgroup_serve(src->st, g, go->consumer, 0, after, durable, count,
                                            go->noack, now, body);
            if (got != 0) return got;
            body->len = mark; /* none durable past the cursor (deleted): wait for the rest */
        }
    }
    *touched = src->st;
    return colony__xgroup_serve(src->st, g, go->consumer, !src->newest, after, all, count,
                                go->noack, now, body);
}

/* XREAD's entries as they are emitted, and the greatest id given. */
typedef struct plain_out {
    colony__xrange_out r;
    colony__bid last;
} plain_out;

static int emit_plain(void *ud, const colony__bentry *e)
{
    plain_out *o = ud;
    o->last = e->id;
    return colony__xemit_entry(&o->r, e);
}

/* One stream of an XREAD (no group) into body: the entries after `after`.
 * One past the stream's durable top (an XADD whose commit is still running)
 * sets *touched: the reply waits for that commit, so a reader never sees an
 * id a crash could take back (a blocked reader is woken once a commit is
 * done, so it rarely has to). */
static int serve_plain(colony__broker_client *c, colony__bstream *st, colony__bid after,
                       size_t count, colony_buf *body, colony__bstream **touched)
{
    colony__bid start = after, max = {UINT64_MAX, UINT64_MAX};
    colony__xid_incr(&start);
    plain_out o = {.r = {.rc = 0}, .last = {0, 0}};
    colony_buf_init(&o.r.buf, (size_t)1 << 40);
    long got = colony__bstream_range(st, start, max, 0, count, emit_plain, &o);
    int rc;
    if (got < 0) {
        rc = o.r.rc ? o.r.rc : (int)got;
    } else {
        rc = colony__resp_array(body, (size_t)got);
        if (!rc && o.r.buf.len) rc = colony_buf_append(body, o.r.buf.data, o.r.buf.len);
        if (!rc && got > 0 && touched &&
            colony__bid_cmp(o.last, colony__bcommit_durable_top(c->srv->commit, st)) > 0)
            *touched = st;
    }
    colony_buf_free(&o.r.buf);
    return rc;
}

/* The reply for what the streams hold past their ids, into c->out: the
 * number of streams served (0: nothing written), or a negative error. The
 * streams a group read changed are in touched (n slots, NULL otherwise). */
static long serve(colony__broker_client *c, const xsource *src, size_t n, size_t count,
                  const xgroup_opt *go, colony__bstream **touched)
{
    colony_buf body;
    colony_buf_init(&body, (size_t)1 << 40);
    size_t served = 0;
    int rc = 0;
    for (size_t k = 0; k < n && !rc; k++) {
        if (touched) touched[k] = NULL;
        if (!src[k].st) continue;
        colony__bgroup *g = go ? colony__bgroup_get(src[k].st, go->group) : NULL;
        colony__bid after = src[k].after;
        if (go && !g) continue; /* gone meanwhile (a blocked reader's wake-up) */
        if (g && src[k].newest) {
            if (!colony__bgroup_has_new(g)) continue;
            colony__bgroup_info gi;
            colony__bgroup_info_get(g, &gi);
            after = gi.cursor;
        } else if (!g) {
            colony__bstream_info info;
            colony__bstream_info_get(src[k].st, &info);
            if (!info.length || colony__bid_cmp(info.last, after) <= 0) continue;
        }
        served++;
        rc = colony__resp_array(&body, 2);
        if (!rc) rc = colony__resp_bulk(&body, src[k].key, src[k].key_len);
        if (rc) break;
        if (g) {
            int made = colony__bgroup_consumer_add(g, go->consumer);
            if (made < 0) {
                rc = made;
                break;
            }
            colony__bgroup_consumer_touch(g, go->consumer);
            long got = serve_group(c, &src[k], g, go, after, count, &body, &touched[k]);
            if (got < 0) rc = (int)got;
            continue;
        }
        rc = serve_plain(c, src[k].st, after, count, &body, touched ? &touched[k] : NULL);
    }
    if (!rc && served) {
        rc = colony__resp_array(&c->out, served);
        if (!rc) rc = colony_buf_append(&c->out, body.data, body.len);
    }
    colony_buf_free(&body);
    return rc ? rc : (long)served;
}

/* Holds the reply just written until the group changes are durable. */
static int park_touched(colony__broker_client *c, colony__bstream **touched, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        int dup = 0;
        for (size_t j = 0; j < k && !dup; j++)
            dup = touched[j] == touched[k];
        if (touched[k] && !dup) {
            int rc = colony__xpark(c, touched[k], NULL);
            if (rc) return rc;
        }
    }
    return 0;
}

/* ---- BLOCK ---- */

/* A client blocked in XREAD(GROUP) BLOCK: its streams by name (a DEL and a
 * new XADD meanwhile find the new stream), ids, group, and its timeout. */
typedef struct xblock {
    colony__list link; /* in srv->blocked */
    colony__broker_client *c;
    uv_timer_t timer;
    size_t n, count;
    colony__bid *after;
    char **names;
    int grouped; /* XREADGROUP: go holds the group (always ">") */
    xgroup_opt go;
} xblock;

static void xblock_free(uv_handle_t *h)
{
    colony__free(h->data);
}

static void xblock_end(xblock *b)
{
    colony__list_remove(&b->link);
    b->c->blocked = NULL;
    b->c = NULL;
    uv_timer_stop(&b->timer);
    uv_close((uv_handle_t *)&b->timer, xblock_free);
}

void colony__xread_cancel(colony__broker_client *c)
{
    if (c->blocked) xblock_end(c->blocked);
}

/* Ends b with the reply reply() writes. */
static void xblock_reply(xblock *b, int (*reply)(colony_buf *, const char *), const char *arg)
{
    colony__broker_client *c = b->c;
    colony__broker_resp *srv = c->srv;
    size_t before = c->out.len;
    xblock_end(b);
    if (reply(&c->out, arg)) {
        colony__broker_client_close(c);
        return;
    }
    colony__broker_client_unblock(c, before);
    colony__broker_resp_flush_dirty(srv);
}

static int reply_null_array(colony_buf *out, const char *unused)
{
    (void)unused;
    return colony__resp_null_array(out);
}

static void on_block_timeout(uv_timer_t *t)
{
    xblock_reply(t->data, reply_null_array, NULL);
}

/* Serves b from its streams now: 1 served (b has ended), 0 not yet, <0 error. */
static int xblock_try(xblock *b)
{
    colony__broker_client *c = b->c;
    xsource small[8], *src = small;
    colony__bstream *tsmall[8], **touched = tsmall;
    memset(small, 0, sizeof(small));
    if (b->n > 8 && (!(src = colony__calloc(b->n, sizeof(*src))) ||
                     !(touched = colony__calloc(b->n, sizeof(*touched))))) {
        if (src != small) colony__free(src);
        return COLONY_ENOMEM;
    }
    for (size_t k = 0; k < b->n; k++) {
        src[k].key = b->names[k];
        src[k].key_len = strlen(b->names[k]);
        src[k].st = b->names[k][0] ? colony__bstore_get(c->srv->store, b->names[k]) : NULL;
        src[k].after = b->after[k];
        src[k].newest = b->grouped;
    }
    size_t before = c->out.len;
    long served = serve(c, src, b->n, b->count, b->grouped ? &b->go : NULL, touched);
    if (served > 0) {
        int prc = park_touched(c, touched, b->n);
        if (prc) served = prc;
    }
    if (src != small) colony__free(src);
    if (touched != tsmall) colony__free(touched);
    if (served <= 0) return (int)served;
    xblock_end(b);
    colony__broker_client_unblock(c, before);
    return 1;
}

static int blocked_on(const xblock *b, const char *name)
{
    for (size_t k = 0; k < b->n; k++)
        if (strcmp(b->names[k], name) == 0) return 1;
    return 0;
}

/* Runs fn on every client blocked on stream name (it may end them). */
static void each_blocked(colony__broker_resp *srv, const char *name,
                         void (*fn)(xblock *, const char *))
{
    colony__list waiting, *n;
    colony__list_init(&waiting);
    while ((n = colony__list_pop_front(&srv->blocked)))
        colony__list_push_back(&waiting, n);
    while ((n = colony__list_pop_front(&waiting))) {
        xblock *b = COLONY__CONTAINER_OF(n, xblock, link);
        colony__list_push_back(&srv->blocked, &b->link);
        if (blocked_on(b, name)) fn(b, name);
    }
}

static int reply_error(colony_buf *out, const char *text)
{
    return colony__resp_error(out, text);
}

static const char GROUP_GONE[] =
    "NOGROUP the consumer group this client was blocked on no longer exists";

static void wake_one(xblock *b, const char *name)
{
    if (b->grouped) { /* its group must still be there (a DEL and XADD drop it) */
        colony__bstream *st = colony__bstore_get(b->c->srv->store, name);
        if (st && !colony__bgroup_get(st, b->go.group)) {
            xblock_reply(b, reply_error, GROUP_GONE);
            return;
        }
    }
    int rc = xblock_try(b);
    if (rc < 0) {
        colony__broker_client *c = b->c;
        xblock_end(b);
        colony__broker_client_close(c);
    }
}

void colony__xread_wake(colony__broker_resp *srv, const char *name)
{
    /* the HTTP door's long-polls wait on the same streams */
    if (srv->on_durable) srv->on_durable(srv->on_durable_ud, name);
    each_blocked(srv, name, wake_one);
}

static void group_gone_one(xblock *b, const char *name)
{
    colony__bstream *st = colony__bstore_get(b->c->srv->store, name);
    if (b->grouped && st && !colony__bgroup_get(st, b->go.group))
        xblock_reply(b, reply_error, GROUP_GONE);
}

void colony__xread_group_gone(colony__broker_resp *srv, const char *name)
{
    each_blocked(srv, name, group_gone_one);
}

static void key_gone_one(xblock *b, const char *name)
{
    (void)name;
    if (b->grouped) xblock_reply(b, reply_error, "UNBLOCKED the stream key no longer exists");
}

void colony__xread_key_gone(colony__broker_resp *srv, const char *name)
{
    each_blocked(srv, name, key_gone_one);
}

/* Blocks c until an XADD to one of src's streams (or the timeout, 0 = none). */
static int block(colony__broker_client *c, const xsource *src, size_t n, size_t count,
                 long long timeout, const xgroup_opt *go)
{
    size_t bytes = sizeof(xblock) + n * (sizeof(colony__bid) + sizeof(char *));
    for (size_t k = 0; k < n; k++)
        bytes += src[k].key_len + 1;
    if (go) bytes += strlen(go->group) + strlen(go->consumer) + 2;
    xblock *b = colony__calloc(1, bytes);
    if (!b) return COLONY_ENOMEM;
    b->after = (colony__bid *)(b + 1);
    b->names = (char **)(b->after + n);
    char *p = (char *)(b->names + n);
    for (size_t k = 0; k < n; k++) {
        b->after[k] = src[k].after;
        b->names[k] = p;
        /* a name no stream can have (NUL, too long) never matches: "" */
        if (src[k].key_len <= COLONY__XNAME_MAX && !memchr(src[k].key, '\0', src[k].key_len)) {
            memcpy(p, src[k].key, src[k].key_len);
            p += src[k].key_len;
        }
        *p++ = '\0';
    }
    if (go) {
        b->grouped = 1;
        b->go.noack = go->noack;
        b->go.group = p;
        p += strlen(strcpy(p, go->group)) + 1;
        b->go.consumer = strcpy(p, go->consumer);
    }
    b->n = n;
    b->count = count ? count : 1000; /* Redis's XREAD_BLOCKED_DEFAULT_COUNT */
    b->c = c;
    if (uv_timer_init(c->srv->loop, &b->timer)) {
        colony__free(b);
        return COLONY_ENOMEM;
    }
    b->timer.data = b;
    colony__list_push_back(&c->srv->blocked, &b->link);
    c->blocked = b;
    if (timeout > 0) uv_timer_start(&b->timer, on_block_timeout, (uint64_t)timeout, 0);
    return 0;
}

/* ---- the commands ---- */

/* An argument as a C string (cut at a NUL, as Redis's %s does). */
static const char *arg_cstr(const colony__resp_arg *a, char *out, size_t outlen)
{
    return colony__broker_arg_str(a, out, outlen);
}

static int xread(colony__broker_client *c, const colony__resp_arg *argv, size_t argc, int grouped)
{
    long long count = 0, timeout = -1;
    size_t streams_arg = 0, nstreams = 0;
    const colony__resp_arg *group_arg = NULL, *consumer_arg = NULL;
    int noack = 0, rc = 0;
    for (size_t i = 1; i < argc; i++) {
        size_t more = argc - i - 1;
        const colony__resp_arg *o = &argv[i];
        if (colony__broker_arg_is(o, "block") && more) {
            i++;
            if (!colony__xparse_ll(&argv[i], &timeout))
                return colony__resp_error(&c->out, "ERR timeout is not an integer or out of range");
            if (timeout < 0) return colony__resp_error(&c->out, "ERR timeout is negative");
        } else if (colony__broker_arg_is(o, "count") && more) {
            i++;
            if (!colony__xparse_ll(&argv[i], &count))
                return colony__resp_error(&c->out, COLONY__XNOT_INT);
            if (count < 0) count = 0;
        } else if (colony__broker_arg_is(o, "streams") && more) {
            streams_arg = i + 1;
            nstreams = argc - streams_arg;
            if (nstreams % 2)
                return colony__resp_error(&c->out,
                                          "ERR Unbalanced XREAD list of streams: for each stream "
                                          "key an ID or '$' must be specified.");
            nstreams /= 2;
            break;
        } else if (colony__broker_arg_is(o, "group") && more >= 2) {
            if (!grouped)
                return colony__resp_error(&c->out, "ERR The GROUP option is only supported by "
                                                   "XREADGROUP. You called XREAD instead.");
            group_arg = &argv[i + 1];
            consumer_arg = &argv[i + 2];
            i += 2;
        } else if (colony__broker_arg_is(o, "noack")) {
            if (!grouped)
                return colony__resp_error(&c->out, "ERR The NOACK option is only supported by "
                                                   "XREADGROUP. You called XREAD instead.");
            noack = 1;
        } else {
            return colony__resp_error(&c->out, COLONY__XSYNTAX);
        }
    }
    if (!streams_arg) return colony__resp_error(&c->out, COLONY__XSYNTAX);
    if (grouped && !group_arg)
        return colony__resp_error(&c->out, "ERR Missing GROUP option for XREADGROUP");
    if (!c->srv->store)
        return colony__resp_error(&c->out, "ERR the broker's stream storage is not open");
    char group[256], consumer[256];
    xgroup_opt go = {NULL, NULL, noack};
    if (grouped) {
        if (group_arg->len >= sizeof(group) || consumer_arg->len >= sizeof(consumer) ||
            memchr(group_arg->ptr, '\0', group_arg->len) ||
            memchr(consumer_arg->ptr, '\0', consumer_arg->len))
            return colony__resp_error(&c->out, "ERR group and consumer names are 0 to 255 bytes "
                                               "without a NUL byte");
        go.group = colony__broker_arg_str(group_arg, group, sizeof(group));
        go.consumer = colony__broker_arg_str(consumer_arg, consumer, sizeof(consumer));
    }
    xsource small[8], *src = small;
    colony__bstream *tsmall[8], **touched = tsmall;
    memset(small, 0, sizeof(small));
    if (nstreams > 8 && (!(src = colony__calloc(nstreams, sizeof(*src))) ||
                         !(touched = colony__calloc(nstreams, sizeof(*touched))))) {
        if (src != small) colony__free(src);
        return COLONY_ENOMEM;
    }
    for (size_t k = 0; k < nstreams; k++) {
        const colony__resp_arg *key = &argv[streams_arg + k];
        const colony__resp_arg *ida = &argv[streams_arg + nstreams + k];
        src[k].key = key->ptr;
        src[k].key_len = key->len;
        src[k].st = colony__xlookup_arg(c, key);
        if (grouped && (!src[k].st || !colony__bgroup_get(src[k].st, go.group))) {
            char kname[COLONY__XNAME_MAX + 1];
            rc = colony__resp_errorf(&c->out,
                                     "NOGROUP No such key '%s' or consumer group '%s' in "
                                     "XREADGROUP with GROUP option",
                                     arg_cstr(key, kname, sizeof(kname)), go.group);
            goto done;
        }
        if (ida->len == 1 && ida->ptr[0] == '$') {
            if (grouped) {
                rc = colony__resp_error(
                    &c->out, "ERR The $ ID is meaningless in the context of XREADGROUP: you want "
                             "to read the history of this consumer by specifying a proper ID, or "
                             "use the > ID to get new messages. The $ ID would just return an "
                             "empty result set.");
                goto done;
            }
            src[k].after = (colony__bid){0, 0};
            if (src[k].st) {
                colony__bstream_info info;
                colony__bstream_info_get(src[k].st, &info);
                src[k].after = info.top;
            }
            continue;
        }
        if (ida->len == 1 && ida->ptr[0] == '>') {
            if (!grouped) {
                rc = colony__resp_error(&c->out, "ERR The > ID can be specified only when calling "
                                                 "XREADGROUP using the GROUP <group> <consumer> "
                                                 "option.");
                goto done;
            }
            src[k].newest = 1;
            continue;
        }
        if (colony__xid_parse(ida->ptr, ida->len, 0, 1, NULL, &src[k].after)) {
            rc = colony__resp_error(&c->out, COLONY__XINVALID_ID);
            goto done;
        }
    }
    long served = serve(c, src, nstreams, (size_t)count, grouped ? &go : NULL, touched);
    if (served > 0) {
        int prc = park_touched(c, touched, nstreams);
        if (prc) served = prc;
    }
    if (served < 0)
        rc = served == COLONY_ENOMEM ? COLONY_ENOMEM : colony__xstore_error(c, (int)served);
    else if (served == 0 && timeout >= 0)
        rc = block(c, src, nstreams, (size_t)count, timeout, grouped ? &go : NULL);
    else if (served == 0)
        rc = colony__resp_null_array(&c->out);
done:
    if (src != small) colony__free(src);
    if (touched != tsmall) colony__free(touched);
    return rc;
}

int colony__cmd_xread(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    return xread(c, argv, argc, 0);
}

int colony__cmd_xreadgroup(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    return xread(c, argv, argc, 1);
}
