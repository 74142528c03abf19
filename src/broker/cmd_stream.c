/* The stream commands without groups (XADD, XLEN, XRANGE, XREVRANGE, XDEL,
 * XTRIM, XREAD) and the key commands over streams (DEL, EXISTS, TYPE), on
 * the durable store (store/store.h), with redis-server 7's replies and
 * errors, checked in its order (t_stream.c) by the differential test
 * tests/integration/test_broker_streams.sh.
 *
 * A write (XADD, XDEL, XTRIM) replies only once it is durable: the handler
 * writes its reply, takes a ticket (colony__broker_park_new) and asks the
 * group commit to call back; conn.c holds that reply, and every later reply
 * of the client, until the callback, so pipelined replies stay in order. DEL
 * removes the stream's directory and fsyncs the parent before it replies. */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "broker/commands.h"
#include "broker/stream_id.h"
#include "broker/store/store.h"

#define NAME_MAX_LEN 300 /* a stream name's bytes: its escaped form must fit a file name */

static const char INVALID_ID[] = "ERR Invalid stream ID specified as stream command argument";
static const char SYNTAX[] = "ERR syntax error";
static const char NOT_INT[] = "ERR value is not an integer or out of range";

/* The stream name in argument a, as a C string in out. 0, or 1 after an
 * error reply (a NUL in the name, too long, or no store). */
static int key_name(colony__broker_client *c, const colony__resp_arg *a, char *out, int *rc)
{
    if (!c->srv->store) {
        *rc = colony__resp_error(&c->out, "ERR the broker's stream storage is not open");
        return 1;
    }
    if (a->len == 0 || a->len > NAME_MAX_LEN || memchr(a->ptr, '\0', a->len)) {
        *rc = colony__resp_errorf(&c->out, "ERR stream names are 1 to %d bytes without a NUL byte",
                                  NAME_MAX_LEN);
        return 1;
    }
    memcpy(out, a->ptr, a->len);
    out[a->len] = '\0';
    return 0;
}

static colony__bstream *lookup(colony__broker_client *c, const char *name)
{
    return colony__bstore_get(c->srv->store, name);
}

static int reply_id(colony_buf *out, colony__bid id)
{
    char text[COLONY__XID_MAX_TEXT];
    size_t n = colony__xid_format(id, text);
    return colony__resp_bulk(out, text, n);
}

static int reply_store_error(colony__broker_client *c, int err)
{
    if (err == COLONY_ENOMEM) return err;
    COLONY_LOG_WARN("broker: stream command failed", COLONY_LF_INT("client", (long long)c->id),
                    COLONY_LF_STR("error", colony_strerror(err)));
    return colony__resp_errorf(&c->out, "ERR %s", colony_strerror(err));
}

/* A commit wait: the parked reply, and the stream whose blocked readers
 * (XREAD BLOCK) are served once the entry is durable ("" for none), so no
 * reader sees an entry a crash could take back. */
typedef struct commit_wait {
    colony__broker_park *park;
    colony__broker_resp *srv;
    char wake[];
} commit_wait;

static void on_commit(void *ud, int err)
{
    commit_wait *w = ud;
    if (!err && w->wake[0]) colony__xread_wake(w->srv, w->wake);
    colony__broker_park_done(w->park, err);
    colony__free(w);
}

/* Holds the reply just written until what st wrote is durable; then wakes
 * the readers blocked on wake (NULL: none). */
static int park_until_durable(colony__broker_client *c, colony__bstream *st, const char *wake)
{
    size_t n = wake ? strlen(wake) : 0;
    commit_wait *w = colony__malloc(sizeof(*w) + n + 1);
    if (!w) return COLONY_ENOMEM;
    memcpy(w->wake, wake ? wake : "", n + 1);
    w->srv = c->srv;
    w->park = colony__broker_park_new(c);
    if (!w->park) {
        colony__free(w);
        return COLONY_ENOMEM;
    }
    int rc = colony__bcommit_wait(c->srv->commit, st, on_commit, w);
    if (rc) { /* closes the client: no ack */
        colony__broker_park_done(w->park, rc);
        colony__free(w);
    }
    return 0;
}

/* ---- entries as replies ---- */

typedef struct range_out {
    colony_buf buf;
    int rc;
} range_out;

static int emit_entry(void *ud, const colony__bentry *e)
{
    range_out *r = ud;
    int rc = colony__resp_array(&r->buf, 2);
    if (!rc) rc = reply_id(&r->buf, e->id);
    if (!rc) rc = colony__resp_array(&r->buf, e->n);
    for (size_t i = 0; !rc && i < e->n; i++)
        rc = colony__resp_bulk(&r->buf, e->strs[i].data, e->strs[i].len);
    r->rc = rc;
    return rc ? rc : 0;
}

/* An array of [id, [field, value, ...]] for start..end. */
static int reply_range(colony__broker_client *c, colony__bstream *st, colony__bid start,
                       colony__bid end, int reverse, size_t count)
{
    range_out r = {.rc = 0};
    colony_buf_init(&r.buf, (size_t)1 << 40);
    long n = colony__bstream_range(st, start, end, reverse, count, emit_entry, &r);
    int rc;
    if (n < 0)
        rc = r.rc ? r.rc : reply_store_error(c, (int)n);
    else {
        rc = colony__resp_array(&c->out, (size_t)n);
        if (!rc && r.buf.len) rc = colony_buf_append(&c->out, r.buf.data, r.buf.len);
    }
    colony_buf_free(&r.buf);
    return rc;
}

/* ---- XADD and XTRIM's shared options ---- */

enum { TRIM_NONE, TRIM_MAXLEN, TRIM_MINID };

typedef struct add_args {
    int trim, approx, nomkstream, id_given, seq_auto;
    long long maxlen, limit;
    colony__bid minid, id;
} add_args;

static int parse_ll_arg(const colony__resp_arg *a, long long *v)
{
    return colony__resp_parse_ll(a->ptr, a->len, v);
}

static int is_char(const colony__resp_arg *a, char ch)
{
    return a->len == 1 && a->ptr[0] == ch;
}

/* streamParseAddOrTrimArgsOrReply: returns the index of the id (XADD) or of
 * the first argument not taken (XTRIM), or -1 after an error reply (*rc). */
static long parse_add_args(colony__broker_client *c, const colony__resp_arg *argv, size_t argc,
                           int xadd, add_args *a, int *rc)
{
    memset(a, 0, sizeof(*a));
    size_t i = 2;
    int limit_given = 0;
    for (; i < argc; i++) {
        size_t more = argc - 1 - i;
        const colony__resp_arg *opt = &argv[i];
        if (xadd && is_char(opt, '*')) break;
        if ((colony__broker_arg_is(opt, "maxlen") || colony__broker_arg_is(opt, "minid")) && more) {
            int maxlen = colony__broker_arg_is(opt, "maxlen");
            if (a->trim != TRIM_NONE) {
                *rc = colony__resp_error(&c->out, "ERR syntax error, MAXLEN and MINID options at "
                                                  "the same time are not compatible");
                return -1;
            }
            a->approx = 0;
            if (more >= 2 && is_char(&argv[i + 1], '~')) {
                a->approx = 1;
                i++;
            } else if (more >= 2 && is_char(&argv[i + 1], '=')) {
                i++;
            }
            if (maxlen) {
                if (!parse_ll_arg(&argv[i + 1], &a->maxlen)) {
                    *rc = colony__resp_error(&c->out, NOT_INT);
                    return -1;
                }
                if (a->maxlen < 0) {
                    *rc = colony__resp_error(&c->out, "ERR The MAXLEN argument must be >= 0.");
                    return -1;
                }
            } else if (colony__xid_parse(argv[i + 1].ptr, argv[i + 1].len, 0, 1, NULL, &a->minid)) {
                *rc = colony__resp_error(&c->out, INVALID_ID);
                return -1;
            }
            i++;
            a->trim = maxlen ? TRIM_MAXLEN : TRIM_MINID;
        } else if (colony__broker_arg_is(opt, "limit") && more) {
            if (!parse_ll_arg(&argv[i + 1], &a->limit)) {
                *rc = colony__resp_error(&c->out, NOT_INT);
                return -1;
            }
            if (a->limit < 0) {
                *rc = colony__resp_error(&c->out, "ERR The LIMIT argument must be >= 0.");
                return -1;
            }
            limit_given = 1;
            i++;
        } else if (xadd && colony__broker_arg_is(opt, "nomkstream")) {
            a->nomkstream = 1;
        } else if (xadd) {
            if (colony__xid_parse(opt->ptr, opt->len, 0, 1, &a->seq_auto, &a->id)) {
                *rc = colony__resp_error(&c->out, INVALID_ID);
                return -1;
            }
            a->id_given = 1;
            break;
        } else {
            *rc = colony__resp_error(&c->out, SYNTAX); /* XTRIM: an unknown option */
            return -1;
        }
    }
    if (a->limit && a->trim == TRIM_NONE) {
        *rc = colony__resp_error(
            &c->out,
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy");
        return -1;
    }
    if (!xadd && a->trim == TRIM_NONE) {
        *rc = colony__resp_error(&c->out,
                                 "ERR syntax error, XTRIM must be called with a trimming strategy");
        return -1;
    }
    if (limit_given && !a->approx) {
        *rc = colony__resp_error(
            &c->out, "ERR syntax error, LIMIT cannot be used without the special ~ option");
        return -1;
    }
    return (long)i;
}

/* Trims st as a says: exact (the store's trim) or "~": whole segments, as
 * Redis removes whole nodes, and, as Redis does with its last node, all of
 * it when every entry goes (MAXLEN ~ 0, MINID ~ past the last entry) unless
 * LIMIT is below the entries. Returns entries removed. */
static long trim(colony__bstream *st, const add_args *a)
{
    int all = 0;
    if (a->approx) {
        colony__bstream_info info;
        colony__bstream_info_get(st, &info);
        all = a->trim == TRIM_MAXLEN ? a->maxlen == 0
                                     : info.length && colony__bid_cmp(info.last, a->minid) < 0;
        if (all && a->limit && (uint64_t)a->limit < info.length) return 0;
    }
    if (!a->approx || all)
        return a->trim == TRIM_MAXLEN ? colony__bstream_trim_maxlen(st, (uint64_t)a->maxlen)
                                      : colony__bstream_trim_minid(st, a->minid);
    colony__bstream_info before, after;
    colony__bstream_info_get(st, &before);
    colony__bretention r = {0};
    if (a->trim == TRIM_MAXLEN) {
        if (before.length <= (uint64_t)a->maxlen) return 0;
        r.max_entries = a->maxlen ? (uint64_t)a->maxlen : 1; /* 0 = no limit there */
    } else {
        r.needed = a->minid;
    }
    long rc = colony__bstream_retain(st, &r);
    if (rc < 0) return rc;
    colony__bstream_info_get(st, &after);
    return (long)(before.length - after.length);
}

int colony__cmd_xadd(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    add_args a;
    int rc = 0;
    long idpos = parse_add_args(c, argv, argc, 1, &a, &rc);
    if (idpos < 0) return rc;
    size_t fields = argc - (size_t)idpos - 1;
    if ((size_t)idpos + 1 > argc || fields < 2 || fields % 2)
        return colony__broker_reply_arity(c, "xadd");
    if (a.id_given && !a.seq_auto && a.id.ms == 0 && a.id.seq == 0)
        return colony__resp_error(&c->out, "ERR The ID specified in XADD must be greater than 0-0");
    char name[NAME_MAX_LEN + 1];
    if (key_name(c, &argv[1], name, &rc)) return rc;
    colony__bstream *st = lookup(c, name);
    if (!st) {
        if (a.nomkstream) return colony__resp_null_bulk(&c->out);
        rc = colony__bstore_create(c->srv->store, name, &st);
        if (rc) return reply_store_error(c, rc);
    }
    colony__bstream_info info;
    colony__bstream_info_get(st, &info);
    if (info.top.ms == UINT64_MAX && info.top.seq == UINT64_MAX)
        return colony__resp_error(
            &c->out, "ERR The stream has exhausted the last possible ID, unable to add more items");
    colony__bstr strs_small[16], *strs = strs_small;
    if (fields > 16 && !(strs = colony__malloc(fields * sizeof(*strs)))) return COLONY_ENOMEM;
    for (size_t i = 0; i < fields; i++) {
        strs[i].data = argv[(size_t)idpos + 1 + i].ptr;
        strs[i].len = argv[(size_t)idpos + 1 + i].len;
    }
    int mode = !a.id_given  ? COLONY__BID_AUTO
               : a.seq_auto ? COLONY__BID_AUTO_SEQ
                            : COLONY__BID_EXPLICIT;
    colony__bid id;
    rc = colony__bstream_append(st, mode, a.id, strs, fields, &id);
    if (strs != strs_small) colony__free(strs);
    if (rc == COLONY_ERANGE)
        return colony__resp_error(&c->out, "ERR The ID specified in XADD is equal or smaller than "
                                           "the target stream top item");
    if (rc == COLONY_E2BIG)
        return colony__resp_error(&c->out, "ERR Elements are too large to be stored");
    if (rc) return reply_store_error(c, rc);
    if ((rc = reply_id(&c->out, id))) return rc;
    if (a.trim != TRIM_NONE) {
        long removed = trim(st, &a);
        if (removed < 0)
            COLONY_LOG_WARN("broker: XADD trim failed", COLONY_LF_STR("stream", name),
                            COLONY_LF_STR("error", colony_strerror((int)removed)));
    }
    return park_until_durable(c, st, name);
}

int colony__cmd_xtrim(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    add_args a;
    int rc = 0;
    long i = parse_add_args(c, argv, argc, 0, &a, &rc);
    if (i < 0) return rc;
    if ((size_t)i < argc) return colony__resp_error(&c->out, SYNTAX);
    char name[NAME_MAX_LEN + 1];
    if (key_name(c, &argv[1], name, &rc)) return rc;
    colony__bstream *st = lookup(c, name);
    if (!st) return colony__resp_int(&c->out, 0);
    long removed = trim(st, &a);
    if (removed < 0) return reply_store_error(c, (int)removed);
    if ((rc = colony__resp_int(&c->out, removed))) return rc;
    return park_until_durable(c, st, NULL);
}

int colony__cmd_xdel(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    int rc = 0;
    char name[NAME_MAX_LEN + 1];
    if (key_name(c, &argv[1], name, &rc)) return rc;
    colony__bstream *st = lookup(c, name);
    if (!st) return colony__resp_int(&c->out, 0);
    colony__bid small[16], *ids = small;
    size_t n = argc - 2;
    if (n > 16 && !(ids = colony__malloc(n * sizeof(*ids)))) return COLONY_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (colony__xid_parse(argv[i + 2].ptr, argv[i + 2].len, 0, 1, NULL, &ids[i])) {
            if (ids != small) colony__free(ids);
            return colony__resp_error(&c->out, INVALID_ID);
        }
    long deleted = 0;
    for (size_t i = 0; i < n && rc >= 0; i++) {
        rc = colony__bstream_delete(st, ids[i]);
        if (rc > 0) deleted += rc;
    }
    if (ids != small) colony__free(ids);
    if (rc < 0) return reply_store_error(c, rc);
    if ((rc = colony__resp_int(&c->out, deleted))) return rc;
    return deleted ? park_until_durable(c, st, NULL) : 0;
}

int colony__cmd_xlen(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    (void)argc;
    int rc = 0;
    char name[NAME_MAX_LEN + 1];
    if (key_name(c, &argv[1], name, &rc)) return rc;
    colony__bstream *st = lookup(c, name);
    if (!st) return colony__resp_int(&c->out, 0);
    colony__bstream_info info;
    colony__bstream_info_get(st, &info);
    return colony__resp_int(&c->out, (long long)info.length);
}

static int xrange(colony__broker_client *c, const colony__resp_arg *argv, size_t argc, int rev)
{
    const colony__resp_arg *sa = rev ? &argv[3] : &argv[2], *ea = rev ? &argv[2] : &argv[3];
    colony__bid start, end;
    int rc = colony__xid_parse_bound(sa->ptr, sa->len, 0, 0, &start);
    if (rc == COLONY_EINVAL) return colony__resp_error(&c->out, INVALID_ID);
    if (rc) return colony__resp_error(&c->out, "ERR invalid start ID for the interval");
    rc = colony__xid_parse_bound(ea->ptr, ea->len, UINT64_MAX, 1, &end);
    if (rc == COLONY_EINVAL) return colony__resp_error(&c->out, INVALID_ID);
    if (rc) return colony__resp_error(&c->out, "ERR invalid end ID for the interval");
    long long count = -1;
    for (size_t j = 4; j < argc; j++) {
        if (colony__broker_arg_is(&argv[j], "count") && argc - j - 1 >= 1) {
            if (!parse_ll_arg(&argv[j + 1], &count)) return colony__resp_error(&c->out, NOT_INT);
            if (count < 0) count = 0;
            j++;
        } else {
            return colony__resp_error(&c->out, SYNTAX);
        }
    }
    char name[NAME_MAX_LEN + 1];
    if (key_name(c, &argv[1], name, &rc)) return rc;
    colony__bstream *st = lookup(c, name);
    if (!st) return colony__resp_array(&c->out, 0);
    if (count == 0) return colony__resp_null_array(&c->out);
    return reply_range(c, st, start, end, rev, count < 0 ? 0 : (size_t)count);
}

int colony__cmd_xrange(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    return xrange(c, argv, argc, 0);
}

int colony__cmd_xrevrange(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    return xrange(c, argv, argc, 1);
}

int colony__cmd_del(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    long long n = 0;
    int rc = 0;
    for (size_t i = 1; i < argc; i++) {
        char name[NAME_MAX_LEN + 1];
        if (!c->srv->store) return key_name(c, &argv[i], name, &rc), rc;
        if (argv[i].len == 0 || argv[i].len > NAME_MAX_LEN ||
            memchr(argv[i].ptr, '\0', argv[i].len))
            continue; /* no stream has that name */
        memcpy(name, argv[i].ptr, argv[i].len);
        name[argv[i].len] = '\0';
        rc = colony__bstore_drop(c->srv->store, name);
        if (rc == 0)
            n++;
        else if (rc != COLONY_ENOENT)
            return reply_store_error(c, rc);
    }
    return colony__resp_int(&c->out, n);
}

int colony__cmd_exists(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    long long n = 0;
    int rc = 0;
    for (size_t i = 1; i < argc; i++) {
        char name[NAME_MAX_LEN + 1];
        if (!c->srv->store) return key_name(c, &argv[i], name, &rc), rc;
        if (argv[i].len == 0 || argv[i].len > NAME_MAX_LEN ||
            memchr(argv[i].ptr, '\0', argv[i].len))
            continue;
        memcpy(name, argv[i].ptr, argv[i].len);
        name[argv[i].len] = '\0';
        if (lookup(c, name)) n++;
    }
    return colony__resp_int(&c->out, n);
}

int colony__cmd_type(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    (void)argc;
    const colony__resp_arg *a = &argv[1];
    char name[NAME_MAX_LEN + 1];
    int found = 0;
    if (c->srv->store && a->len && a->len <= NAME_MAX_LEN && !memchr(a->ptr, '\0', a->len)) {
        memcpy(name, a->ptr, a->len);
        name[a->len] = '\0';
        found = lookup(c, name) != NULL;
    }
    return colony__resp_simple(&c->out, found ? "stream" : "none");
}

/* ---- XREAD ---- */

/* One stream to read: its key as given (the reply names it so), the stream
 * (NULL: none) and the id entries must be above. */
typedef struct xsource {
    const char *key;
    size_t key_len;
    colony__bstream *st;
    colony__bid after;
} xsource;

/* XREAD's reply for what the streams hold past their ids, into c->out: the
 * number of streams served (0: nothing written), or a negative error. */
static long serve(colony__broker_client *c, const xsource *src, size_t n, size_t count)
{
    colony_buf body;
    colony_buf_init(&body, (size_t)1 << 40);
    size_t served = 0;
    int rc = 0;
    for (size_t k = 0; k < n && !rc; k++) {
        if (!src[k].st) continue;
        colony__bstream_info info;
        colony__bstream_info_get(src[k].st, &info);
        if (!info.length || colony__bid_cmp(info.last, src[k].after) <= 0) continue;
        colony__bid start = src[k].after, max = {UINT64_MAX, UINT64_MAX};
        colony__xid_incr(&start);
        range_out r = {.rc = 0};
        colony_buf_init(&r.buf, (size_t)1 << 40);
        long got = colony__bstream_range(src[k].st, start, max, 0, count, emit_entry, &r);
        if (got < 0) {
            rc = r.rc ? r.rc : (int)got;
        } else {
            served++;
            rc = colony__resp_array(&body, 2);
            if (!rc) rc = colony__resp_bulk(&body, src[k].key, src[k].key_len);
            if (!rc) rc = colony__resp_array(&body, (size_t)got);
            if (!rc && r.buf.len) rc = colony_buf_append(&body, r.buf.data, r.buf.len);
        }
        colony_buf_free(&r.buf);
    }
    if (!rc && served) {
        rc = colony__resp_array(&c->out, served);
        if (!rc) rc = colony_buf_append(&c->out, body.data, body.len);
    }
    colony_buf_free(&body);
    return rc ? rc : (long)served;
}

/* A client blocked in XREAD BLOCK: its streams by name (a DEL and a new XADD
 * meanwhile find the new stream) and ids, and its timeout. */
typedef struct xblock {
    colony__list link; /* in srv->blocked */
    colony__broker_client *c;
    uv_timer_t timer;
    size_t n, count;
    colony__bid *after;
    char **names;
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

static void on_block_timeout(uv_timer_t *t)
{
    xblock *b = t->data;
    colony__broker_client *c = b->c;
    colony__broker_resp *srv = c->srv;
    size_t before = c->out.len;
    xblock_end(b);
    if (colony__resp_null_array(&c->out)) {
        colony__broker_client_close(c);
        return;
    }
    colony__broker_client_unblock(c, before);
    colony__broker_resp_flush_dirty(srv);
}

/* Serves b from its streams now: 1 served (b has ended), 0 not yet, <0 error. */
static int xblock_try(xblock *b)
{
    colony__broker_client *c = b->c;
    xsource small[8], *src = small;
    memset(small, 0, sizeof(small));
    if (b->n > 8 && !(src = colony__malloc(b->n * sizeof(*src)))) return COLONY_ENOMEM;
    for (size_t k = 0; k < b->n; k++) {
        src[k].key = b->names[k];
        src[k].key_len = strlen(b->names[k]);
        src[k].st = b->names[k][0] ? colony__bstore_get(c->srv->store, b->names[k]) : NULL;
        src[k].after = b->after[k];
    }
    size_t before = c->out.len;
    long served = serve(c, src, b->n, b->count);
    if (src != small) colony__free(src);
    if (served <= 0) return (int)served;
    xblock_end(b);
    colony__broker_client_unblock(c, before);
    return 1;
}

void colony__xread_wake(colony__broker_resp *srv, const char *name)
{
    colony__list waiting, *n;
    colony__list_init(&waiting);
    if (srv->on_durable) srv->on_durable(srv->on_durable_ud, name);
    while ((n = colony__list_pop_front(&srv->blocked)))
        colony__list_push_back(&waiting, n);
    while ((n = colony__list_pop_front(&waiting))) {
        xblock *b = COLONY__CONTAINER_OF(n, xblock, link);
        colony__list_push_back(&srv->blocked, &b->link);
        int match = 0;
        for (size_t k = 0; k < b->n && !match; k++)
            match = strcmp(b->names[k], name) == 0;
        if (!match) continue;
        int rc = xblock_try(b);
        if (rc < 0) {
            colony__broker_client *c = b->c;
            xblock_end(b);
            colony__broker_client_close(c);
        }
    }
}

/* Blocks c until an XADD to one of src's streams (or the timeout, 0 = none). */
static int block(colony__broker_client *c, const xsource *src, size_t n, size_t count,
                 long long timeout)
{
    size_t bytes = sizeof(xblock) + n * (sizeof(colony__bid) + sizeof(char *));
    for (size_t k = 0; k < n; k++)
        bytes += src[k].key_len + 1;
    xblock *b = colony__calloc(1, bytes);
    if (!b) return COLONY_ENOMEM;
    b->after = (colony__bid *)(b + 1);
    b->names = (char **)(b->after + n);
    char *p = (char *)(b->names + n);
    for (size_t k = 0; k < n; k++) {
        b->after[k] = src[k].after;
        b->names[k] = p;
        /* a name no stream can have (NUL, too long) never matches: "" */
        if (src[k].key_len <= NAME_MAX_LEN && !memchr(src[k].key, '\0', src[k].key_len)) {
            memcpy(p, src[k].key, src[k].key_len);
            p += src[k].key_len;
        }
        *p++ = '\0';
    }
    b->n = n;
    b->count = count;
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

int colony__cmd_xread(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    long long count = 0, timeout = -1;
    size_t streams_arg = 0, nstreams = 0;
    int rc = 0;
    for (size_t i = 1; i < argc; i++) {
        size_t more = argc - i - 1;
        const colony__resp_arg *o = &argv[i];
        if (colony__broker_arg_is(o, "block") && more) {
            i++;
            if (!parse_ll_arg(&argv[i], &timeout))
                return colony__resp_error(&c->out, "ERR timeout is not an integer or out of range");
            if (timeout < 0) return colony__resp_error(&c->out, "ERR timeout is negative");
        } else if (colony__broker_arg_is(o, "count") && more) {
            i++;
            if (!parse_ll_arg(&argv[i], &count)) return colony__resp_error(&c->out, NOT_INT);
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
            return colony__resp_error(&c->out, "ERR The GROUP option is only supported by "
                                               "XREADGROUP. You called XREAD instead.");
        } else if (colony__broker_arg_is(o, "noack")) {
            return colony__resp_error(&c->out, "ERR The NOACK option is only supported by "
                                               "XREADGROUP. You called XREAD instead.");
        } else {
            return colony__resp_error(&c->out, SYNTAX);
        }
    }
    if (!streams_arg) return colony__resp_error(&c->out, SYNTAX);
    if (!c->srv->store)
        return colony__resp_error(&c->out, "ERR the broker's stream storage is not open");
    xsource small[8], *src = small;
    if (nstreams > 8 && !(src = colony__malloc(nstreams * sizeof(*src)))) return COLONY_ENOMEM;
    for (size_t k = 0; k < nstreams; k++) {
        const colony__resp_arg *key = &argv[streams_arg + k];
        const colony__resp_arg *ida = &argv[streams_arg + nstreams + k];
        char name[NAME_MAX_LEN + 1];
        src[k].key = key->ptr;
        src[k].key_len = key->len;
        src[k].st = NULL;
        if (key->len && key->len <= NAME_MAX_LEN && !memchr(key->ptr, '\0', key->len)) {
            memcpy(name, key->ptr, key->len);
            name[key->len] = '\0';
            src[k].st = lookup(c, name);
        }
        if (ida->len == 1 && ida->ptr[0] == '$') {
            src[k].after = (colony__bid){0, 0};
            if (src[k].st) {
                colony__bstream_info info;
                colony__bstream_info_get(src[k].st, &info);
                src[k].after = info.top;
            }
            continue;
        }
        if (ida->len == 1 && ida->ptr[0] == '>') {
            rc = colony__resp_error(&c->out, "ERR The > ID can be specified only when calling "
                                             "XREADGROUP using the GROUP <group> <consumer> "
                                             "option.");
            goto done;
        }
        if (colony__xid_parse(ida->ptr, ida->len, 0, 1, NULL, &src[k].after)) {
            rc = colony__resp_error(&c->out, INVALID_ID);
            goto done;
        }
    }
    long served = serve(c, src, nstreams, (size_t)count);
    if (served < 0)
        rc = served == COLONY_ENOMEM ? COLONY_ENOMEM : reply_store_error(c, (int)served);
    else if (served == 0 && timeout >= 0)
        rc = block(c, src, nstreams, (size_t)count, timeout);
    else if (served == 0)
        rc = colony__resp_null_array(&c->out);
done:
    if (src != small) colony__free(src);
    return rc;
}
