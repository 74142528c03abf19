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

static void on_commit(void *ud, int err)
{
    colony__broker_park_done(ud, err);
}

/* Holds the reply just written until what st wrote is durable. */
static int park_until_durable(colony__broker_client *c, colony__bstream *st)
{
    colony__broker_park *p = colony__broker_park_new(c);
    if (!p) return COLONY_ENOMEM;
    int rc = colony__bcommit_wait(c->srv->commit, st, on_commit, p);
    if (rc) colony__broker_park_done(p, rc); /* closes the client: no ack */
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
    return park_until_durable(c, st);
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
    return park_until_durable(c, st);
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
    return deleted ? park_until_durable(c, st) : 0;
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
    colony__bid small[8], *ids = small;
    if (nstreams > 8 && !(ids = colony__malloc(nstreams * sizeof(*ids)))) return COLONY_ENOMEM;
    colony__bstream *st_small[8], **sts = st_small;
    if (nstreams > 8 && !(sts = colony__malloc(nstreams * sizeof(*sts)))) {
        if (ids != small) colony__free(ids);
        return COLONY_ENOMEM;
    }
    for (size_t k = 0; k < nstreams && !rc; k++) {
        const colony__resp_arg *key = &argv[streams_arg + k],
                               *ida = &argv[streams_arg + nstreams + k];
        char name[NAME_MAX_LEN + 1];
        sts[k] = NULL;
        if (!c->srv->store) {
            key_name(c, key, name, &rc);
            goto done;
        }
        if (key->len && key->len <= NAME_MAX_LEN && !memchr(key->ptr, '\0', key->len)) {
            memcpy(name, key->ptr, key->len);
            name[key->len] = '\0';
            sts[k] = lookup(c, name);
        }
        if (ida->len == 1 && ida->ptr[0] == '$') {
            colony__bstream_info info;
            ids[k] = (colony__bid){0, 0};
            if (sts[k]) {
                colony__bstream_info_get(sts[k], &info);
                ids[k] = info.top;
            }
            continue;
        }
        if (ida->len == 1 && ida->ptr[0] == '>') {
            rc = colony__resp_error(&c->out, "ERR The > ID can be specified only when calling "
                                             "XREADGROUP using the GROUP <group> <consumer> "
                                             "option.");
            goto done;
        }
        if (colony__xid_parse(ida->ptr, ida->len, 0, 1, NULL, &ids[k])) {
            rc = colony__resp_error(&c->out, INVALID_ID);
            goto done;
        }
    }
    /* serve what is there now */
    colony_buf body;
    colony_buf_init(&body, (size_t)1 << 40);
    size_t served = 0;
    for (size_t k = 0; k < nstreams && !rc; k++) {
        if (!sts[k]) continue;
        colony__bstream_info info;
        colony__bstream_info_get(sts[k], &info);
        if (!info.length || colony__bid_cmp(info.last, ids[k]) <= 0) continue;
        colony__bid start = ids[k], max = {UINT64_MAX, UINT64_MAX};
        colony__xid_incr(&start);
        const colony__resp_arg *key = &argv[streams_arg + k];
        range_out r = {.rc = 0};
        colony_buf_init(&r.buf, (size_t)1 << 40);
        long n = colony__bstream_range(sts[k], start, max, 0, (size_t)count, emit_entry, &r);
        if (n < 0) {
            rc = r.rc ? r.rc : (int)n;
        } else {
            served++;
            rc = colony__resp_array(&body, 2);
            if (!rc) rc = colony__resp_bulk(&body, key->ptr, key->len);
            if (!rc) rc = colony__resp_array(&body, (size_t)n);
            if (!rc && r.buf.len) rc = colony_buf_append(&body, r.buf.data, r.buf.len);
        }
        colony_buf_free(&r.buf);
    }
    if (rc < 0 && rc != COLONY_ENOMEM)
        rc = reply_store_error(c, rc);
    else if (!rc && served) {
        rc = colony__resp_array(&c->out, served);
        if (!rc) rc = colony_buf_append(&c->out, body.data, body.len);
    } else if (!rc) {
        rc = colony__resp_null_array(&c->out); /* BLOCK: not yet */
    }
    colony_buf_free(&body);
done:
    if (ids != small) colony__free(ids);
    if (sts != st_small) colony__free(sts);
    return rc;
}
