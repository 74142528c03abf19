/* The stream commands without groups (XADD, XLEN, XRANGE, XREVRANGE, XDEL,
 * XTRIM) and the key commands over streams (DEL, EXISTS, TYPE), on
 * the durable store (store/store.h), with redis-server 7's replies and
 * errors, checked in its order (t_stream.c) by the differential test
 * tests/integration/test_broker_streams.sh. It also defines the helpers the
 * other stream command files share (cmd_stream.h); XREAD and XREADGROUP are
 * in cmd_xread.c, the group commands in cmd_xgroup.c, cmd_xpending.c and
 * cmd_xinfo.c.
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
#include "broker/cmd_stream.h"
#include "broker/commands.h"
#include "broker/stream_id.h"
#include "broker/store/store.h"

/* The stream name in argument a, as a C string in out. 0, or 1 after an
 * error reply (a NUL in the name, too long, or no store). */
int colony__xkey_name(colony__broker_client *c, const colony__resp_arg *a, char *out, int *rc)
{
    if (!c->srv->store) {
        *rc = colony__resp_error(&c->out, "ERR the broker's stream storage is not open");
        return 1;
    }
    if (a->len == 0 || a->len > COLONY__XNAME_MAX || memchr(a->ptr, '\0', a->len)) {
        *rc = colony__resp_errorf(&c->out, "ERR stream names are 1 to %d bytes without a NUL byte",
                                  COLONY__XNAME_MAX);
        return 1;
    }
    memcpy(out, a->ptr, a->len);
    out[a->len] = '\0';
    return 0;
}

colony__bstream *colony__xlookup(colony__broker_client *c, const char *name)
{
    return colony__bstore_get(c->srv->store, name);
}

colony__bstream *colony__xlookup_arg(colony__broker_client *c, const colony__resp_arg *a)
{
    char name[COLONY__XNAME_MAX + 1];
    if (!c->srv->store || a->len == 0 || a->len > COLONY__XNAME_MAX || memchr(a->ptr, '\0', a->len))
        return NULL;
    memcpy(name, a->ptr, a->len);
    name[a->len] = '\0';
    return colony__xlookup(c, name);
}

int colony__xreply_id(colony_buf *out, colony__bid id)
{
    char text[COLONY__XID_MAX_TEXT];
    size_t n = colony__xid_format(id, text);
    return colony__resp_bulk(out, text, n);
}

int colony__xstore_error(colony__broker_client *c, int err)
{
    if (err == COLONY_ENOMEM) return err;
    COLONY_LOG_WARN("broker: stream command failed", COLONY_LF_INT("client", (long long)c->id),
                    COLONY_LF_STR("error", colony_strerror(err)));
    return colony__resp_errorf(&c->out, "ERR %s", colony_strerror(err));
}

/* A commit wait: the parked reply, and the stream whose blocked readers
 * (XREAD BLOCK) are served once the entry is durable ("" for none), so no
 * reader sees an entry a crash could take back. While it is the client's
 * open wait (c->xwait) it has not been handed to the group commit yet: the
 * XADDs that follow it in the same read, to the same stream, join it (one
 * ticket, one wait and one reply write for a pipeline of them, not one
 * each); colony__xpark_flush hands it over, and the files it covers are
 * taken then, so every write that joined it is durable when it calls back. */
typedef struct commit_wait {
    colony__broker_park *park;
    colony__broker_resp *srv;
    colony__bstream *st; /* while open */
    char wake[];
} commit_wait;

static void on_commit(void *ud, int err)
{
    commit_wait *w = ud;
    if (!err && w->wake[0]) colony__xread_wake(w->srv, w->wake);
    colony__broker_park_done(w->park, err);
    colony__free(w);
}

static void issue(commit_wait *w)
{
    int rc = colony__bcommit_wait(w->srv->commit, w->st, on_commit, w);
    if (rc) { /* closes the client: no ack */
        colony__broker_park_done(w->park, rc);
        colony__free(w);
    }
}

void colony__xpark_flush(colony__broker_client *c)
{
    commit_wait *w = c->xwait;
    if (!w) return;
    c->xwait = NULL;
    issue(w);
}

/* Holds the reply just written until what st wrote is durable; then wakes
 * the readers blocked on wake (NULL: none). Inside a client's read (conn.c's
 * process) the wait stays open for the next write of the same stream. */
int colony__xpark(colony__broker_client *c, colony__bstream *st, const char *wake)
{
    if (!wake) wake = "";
    commit_wait *open = c->xwait;
    if (open && open->st == st && strcmp(open->wake, wake) == 0) return 0; /* joins it */
    colony__xpark_flush(c);
    size_t n = strlen(wake);
    commit_wait *w = colony__malloc(sizeof(*w) + n + 1);
    if (!w) return COLONY_ENOMEM;
    memcpy(w->wake, wake, n + 1);
    w->srv = c->srv;
    w->st = st;
    w->park = colony__broker_park_new(c);
    if (!w->park) {
        colony__free(w);
        return COLONY_ENOMEM;
    }
    if (c->processing && !c->closing)
        c->xwait = w; /* process() flushes it at the latest */
    else
        issue(w); /* a blocked read served from a wake: nothing follows */
    return 0;
}

/* ---- entries as replies ---- */

int colony__xemit_entry(void *ud, const colony__bentry *e)
{
    colony__xrange_out *r = ud;
    int rc = colony__resp_array(&r->buf, 2);
    if (!rc) rc = colony__xreply_id(&r->buf, e->id);
    if (!rc) rc = colony__resp_array(&r->buf, e->n);
    for (size_t i = 0; !rc && i < e->n; i++)
        rc = colony__resp_bulk(&r->buf, e->strs[i].data, e->strs[i].len);
    r->rc = rc;
    return rc ? rc : 0;
}

/* An array of [id, [field, value, ...]] for start..end. */
int colony__xreply_range(colony__broker_client *c, colony__bstream *st, colony__bid start,
                         colony__bid end, int reverse, size_t count)
{
    colony__xrange_out r = {.rc = 0};
    colony_buf_init(&r.buf, (size_t)1 << 40);
    long n = colony__bstream_range(st, start, end, reverse, count, colony__xemit_entry, &r);
    int rc;
    if (n < 0)
        rc = r.rc ? r.rc : colony__xstore_error(c, (int)n);
    else {
        rc = colony__resp_array(&c->out, (size_t)n);
        if (!rc && r.buf.len) rc = colony_buf_append(&c->out, r.buf.data, r.buf.len);
    }
    colony_buf_free(&r.buf);
    return rc;
}

int colony__xreply_entry(colony__bstream *st, colony__bid id, colony_buf *out)
{
    colony__xrange_out r = {.rc = 0};
    colony_buf_init(&r.buf, (size_t)1 << 40);
    long n = colony__bstream_range(st, id, id, 0, 1, colony__xemit_entry, &r);
    int rc = n < 0 ? (r.rc ? r.rc : (int)n) : 0;
    if (!rc && n > 0) rc = colony_buf_append(out, r.buf.data, r.buf.len);
    colony_buf_free(&r.buf);
    return rc ? rc : n > 0;
}

/* ---- XADD and XTRIM's shared options ---- */

enum { TRIM_NONE, TRIM_MAXLEN, TRIM_MINID };

typedef struct add_args {
    int trim, approx, nomkstream, id_given, seq_auto;
    long long maxlen, limit;
    colony__bid minid, id;
} add_args;

int colony__xparse_ll(const colony__resp_arg *a, long long *v)
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
                if (!colony__xparse_ll(&argv[i + 1], &a->maxlen)) {
                    *rc = colony__resp_error(&c->out, COLONY__XNOT_INT);
                    return -1;
                }
                if (a->maxlen < 0) {
                    *rc = colony__resp_error(&c->out, "ERR The MAXLEN argument must be >= 0.");
                    return -1;
                }
            } else if (colony__xid_parse(argv[i + 1].ptr, argv[i + 1].len, 0, 1, NULL, &a->minid)) {
                *rc = colony__resp_error(&c->out, COLONY__XINVALID_ID);
                return -1;
            }
            i++;
            a->trim = maxlen ? TRIM_MAXLEN : TRIM_MINID;
        } else if (colony__broker_arg_is(opt, "limit") && more) {
            if (!colony__xparse_ll(&argv[i + 1], &a->limit)) {
                *rc = colony__resp_error(&c->out, COLONY__XNOT_INT);
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
                *rc = colony__resp_error(&c->out, COLONY__XINVALID_ID);
                return -1;
            }
            a->id_given = 1;
            break;
        } else {
            *rc = colony__resp_error(&c->out, COLONY__XSYNTAX); /* XTRIM: an unknown option */
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
    uint64_t before = colony__bstream_length(st); /* no reads: XADD MAXLEN ~ runs it each time */
    if (a->approx) {
        if (a->trim == TRIM_MAXLEN) {
            all = a->maxlen == 0;
        } else {
            colony__bstream_info info;
            colony__bstream_info_get(st, &info);
            all = info.length && colony__bid_cmp(info.last, a->minid) < 0;
        }
        if (all && a->limit && (uint64_t)a->limit < before) return 0;
    }
    if (!a->approx || all)
        return a->trim == TRIM_MAXLEN ? colony__bstream_trim_maxlen(st, (uint64_t)a->maxlen)
                                      : colony__bstream_trim_minid(st, a->minid);
    colony__bretention r = {0};
    if (a->trim == TRIM_MAXLEN) {
        if (before <= (uint64_t)a->maxlen) return 0;
        r.max_entries = a->maxlen ? (uint64_t)a->maxlen : 1; /* 0 = no limit there */
    } else {
        r.needed = a->minid;
    }
    long rc = colony__bstream_retain(st, &r);
    if (rc < 0) return rc;
    return (long)(before - colony__bstream_length(st));
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
    char name[COLONY__XNAME_MAX + 1];
    if (colony__xkey_name(c, &argv[1], name, &rc)) return rc;
    colony__bstream *st = colony__xlookup(c, name);
    if (!st) {
        if (a.nomkstream) return colony__resp_null_bulk(&c->out);
        rc = colony__bstore_create(c->srv->store, name, &st);
        if (rc) return colony__xstore_error(c, rc);
    }
    /* the top alone: colony__bstream_info_get reads the first and last
     * entries from disk, which cost more than the append itself */
    colony__bid top = colony__bstream_top(st);
    if (top.ms == UINT64_MAX && top.seq == UINT64_MAX)
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
    if (rc) return colony__xstore_error(c, rc);
    if ((rc = colony__xreply_id(&c->out, id))) return rc;
    if (a.trim != TRIM_NONE) {
        long removed = trim(st, &a);
        if (removed < 0)
            COLONY_LOG_WARN("broker: XADD trim failed", COLONY_LF_STR("stream", name),
                            COLONY_LF_STR("error", colony_strerror((int)removed)));
    }
    return colony__xpark(c, st, name);
}

int colony__cmd_xtrim(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    add_args a;
    int rc = 0;
    long i = parse_add_args(c, argv, argc, 0, &a, &rc);
    if (i < 0) return rc;
    if ((size_t)i < argc) return colony__resp_error(&c->out, COLONY__XSYNTAX);
    char name[COLONY__XNAME_MAX + 1];
    if (colony__xkey_name(c, &argv[1], name, &rc)) return rc;
    colony__bstream *st = colony__xlookup(c, name);
    if (!st) return colony__resp_int(&c->out, 0);
    long removed = trim(st, &a);
    if (removed < 0) return colony__xstore_error(c, (int)removed);
    if ((rc = colony__resp_int(&c->out, removed))) return rc;
    return colony__xpark(c, st, NULL);
}

int colony__cmd_xdel(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    int rc = 0;
    char name[COLONY__XNAME_MAX + 1];
    if (colony__xkey_name(c, &argv[1], name, &rc)) return rc;
    colony__bstream *st = colony__xlookup(c, name);
    if (!st) return colony__resp_int(&c->out, 0);
    colony__bid small[16], *ids = small;
    size_t n = argc - 2;
    if (n > 16 && !(ids = colony__malloc(n * sizeof(*ids)))) return COLONY_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (colony__xid_parse(argv[i + 2].ptr, argv[i + 2].len, 0, 1, NULL, &ids[i])) {
            if (ids != small) colony__free(ids);
            return colony__resp_error(&c->out, COLONY__XINVALID_ID);
        }
    long deleted = 0;
    for (size_t i = 0; i < n && rc >= 0; i++) {
        rc = colony__bstream_delete(st, ids[i]);
        if (rc > 0) deleted += rc;
    }
    if (ids != small) colony__free(ids);
    if (rc < 0) return colony__xstore_error(c, rc);
    if ((rc = colony__resp_int(&c->out, deleted))) return rc;
    return deleted ? colony__xpark(c, st, NULL) : 0;
}

int colony__cmd_xlen(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    (void)argc;
    int rc = 0;
    char name[COLONY__XNAME_MAX + 1];
    if (colony__xkey_name(c, &argv[1], name, &rc)) return rc;
    colony__bstream *st = colony__xlookup(c, name);
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
    if (rc == COLONY_EINVAL) return colony__resp_error(&c->out, COLONY__XINVALID_ID);
    if (rc) return colony__resp_error(&c->out, "ERR invalid start ID for the interval");
    rc = colony__xid_parse_bound(ea->ptr, ea->len, UINT64_MAX, 1, &end);
    if (rc == COLONY_EINVAL) return colony__resp_error(&c->out, COLONY__XINVALID_ID);
    if (rc) return colony__resp_error(&c->out, "ERR invalid end ID for the interval");
    long long count = -1;
    for (size_t j = 4; j < argc; j++) {
        if (colony__broker_arg_is(&argv[j], "count") && argc - j - 1 >= 1) {
            if (!colony__xparse_ll(&argv[j + 1], &count))
                return colony__resp_error(&c->out, COLONY__XNOT_INT);
            if (count < 0) count = 0;
            j++;
        } else {
            return colony__resp_error(&c->out, COLONY__XSYNTAX);
        }
    }
    char name[COLONY__XNAME_MAX + 1];
    if (colony__xkey_name(c, &argv[1], name, &rc)) return rc;
    colony__bstream *st = colony__xlookup(c, name);
    if (!st) return colony__resp_array(&c->out, 0);
    if (count == 0) return colony__resp_null_array(&c->out);
    return colony__xreply_range(c, st, start, end, rev, count < 0 ? 0 : (size_t)count);
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
        char name[COLONY__XNAME_MAX + 1];
        if (!c->srv->store) return colony__xkey_name(c, &argv[i], name, &rc), rc;
        if (argv[i].len == 0 || argv[i].len > COLONY__XNAME_MAX ||
            memchr(argv[i].ptr, '\0', argv[i].len))
            continue; /* no stream has that name */
        memcpy(name, argv[i].ptr, argv[i].len);
        name[argv[i].len] = '\0';
        rc = colony__bstore_drop(c->srv->store, name);
        if (rc == 0) {
            n++;
            colony__xread_key_gone(c->srv, name);
        } else if (rc != COLONY_ENOENT)
            return colony__xstore_error(c, rc);
    }
    return colony__resp_int(&c->out, n);
}

int colony__cmd_exists(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    long long n = 0;
    int rc = 0;
    for (size_t i = 1; i < argc; i++) {
        char name[COLONY__XNAME_MAX + 1];
        if (!c->srv->store) return colony__xkey_name(c, &argv[i], name, &rc), rc;
        if (argv[i].len == 0 || argv[i].len > COLONY__XNAME_MAX ||
            memchr(argv[i].ptr, '\0', argv[i].len))
            continue;
        memcpy(name, argv[i].ptr, argv[i].len);
        name[argv[i].len] = '\0';
        if (colony__xlookup(c, name)) n++;
    }
    return colony__resp_int(&c->out, n);
}

int colony__cmd_type(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    (void)argc;
    const colony__resp_arg *a = &argv[1];
    char name[COLONY__XNAME_MAX + 1];
    int found = 0;
    if (c->srv->store && a->len && a->len <= COLONY__XNAME_MAX && !memchr(a->ptr, '\0', a->len)) {
        memcpy(name, a->ptr, a->len);
        name[a->len] = '\0';
        found = colony__xlookup(c, name) != NULL;
    }
    return colony__resp_simple(&c->out, found ? "stream" : "none");
}
