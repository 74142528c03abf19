/* XGROUP (CREATE, SETID, DESTROY, CREATECONSUMER, DELCONSUMER, HELP), XACK
 * and XREADGROUP's deliveries over the store's durable groups, with
 * redis-server 7.0's replies and its order of checks (t_stream.c
 * xgroupCommand, xackCommand, streamReplyWithRange). Every change replies
 * once it is durable (colony__xpark). */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "broker/cmd_stream.h"
#include "broker/commands.h"
#include "broker/stream_id.h"
#include "broker/store/store.h"

#define NEVER_DUE UINT64_MAX /* RESP deliveries: redelivered only by a claim, as in Redis */

/* ---- XREADGROUP's serving of a group (cmd_xread.c reads and blocks) ---- */

typedef struct id_list {
    colony__bid *ids;
    size_t n, cap;
    colony__xrange_out *out;
} id_list;

static int id_push(id_list *l, colony__bid id)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        colony__bid *p = colony__realloc(l->ids, cap * sizeof(*p));
        if (!p) return COLONY_ENOMEM;
        l->ids = p;
        l->cap = cap;
    }
    l->ids[l->n++] = id;
    return 0;
}

static int emit_and_note(void *ud, const colony__bentry *e)
{
    id_list *l = ud;
    int rc = colony__xemit_entry(l->out, e);
    return rc ? rc : id_push(l, e->id);
}

static int note_pending(void *ud, const colony__bpending *p)
{
    return id_push(ud, p->id);
}

long colony__xgroup_serve(colony__bstream *st, colony__bgroup *g, const char *consumer, int history,
                          colony__bid after, colony__bid upto, size_t count, int noack,
                          uint64_t now, colony_buf *out)
{
    colony__xrange_out r = {.rc = 0};
    colony_buf_init(&r.buf, (size_t)1 << 40);
    id_list l = {NULL, 0, 0, &r};
    colony__bid start = after, max = {UINT64_MAX, UINT64_MAX};
    long rc = colony__xid_incr(&start) ? 0 : 1;
    if (rc && history) {
        rc = colony__bgroup_pending_range(g, start, max, consumer, count, note_pending, &l);
        for (size_t i = 0; rc >= 0 && i < l.n; i++) {
            int there = colony__xreply_entry(st, l.ids[i], &r.buf);
            if (there < 0) {
                rc = there;
            } else if (!there) { /* deleted while pending: its id and nil */
                if (!(rc = colony__resp_array(&r.buf, 2))) rc = colony__xreply_id(&r.buf, l.ids[i]);
                if (!rc) rc = colony__resp_null_array(&r.buf);
            } else {
                const colony__bpending *p = colony__bgroup_pending(g, l.ids[i]);
                rc = colony__bgroup_update(g, consumer, l.ids[i], p->count + 1, now, p->due_ms);
            }
        }
    } else if (rc) {
        rc = colony__bstream_range(st, start, upto, 0, count, emit_and_note, &l);
        if (rc < 0 && r.rc) rc = r.rc;
        /* an entry pending already (SETID moved the cursor back) is given
         * to this consumer as a first delivery, as Redis does */
        for (size_t i = 0; rc >= 0 && noack && i < l.n; i++)
            rc = colony__bgroup_advance(g, l.ids[i]); /* entries-read counts each */
        if (rc >= 0 && !noack) rc = colony__bgroup_deliver_new(g, consumer, l.ids, l.n, NEVER_DUE);
    }
    if (rc >= 0) rc = colony__resp_array(out, l.n);
    if (rc >= 0 && r.buf.len) rc = colony_buf_append(out, r.buf.data, r.buf.len);
    colony_buf_free(&r.buf);
    colony__free(l.ids);
    return rc < 0 ? rc : (long)l.n;
}

/* ---- XGROUP ---- */

int colony__xname_arg(colony__broker_client *c, const colony__resp_arg *a, char out[256], int *rc)
{
    if (a->len >= 256 || memchr(a->ptr, '\0', a->len)) {
        *rc = colony__resp_error(&c->out, "ERR group and consumer names are at most 255 bytes "
                                          "without a NUL byte");
        return 1;
    }
    colony__broker_arg_str(a, out, 256);
    return 0;
}

int colony__xhelp(colony__broker_client *c, const colony__resp_arg *name, const char *const *lines)
{
    size_t n = 0;
    while (lines[n])
        n++;
    char upper[64];
    size_t len = name->len < sizeof(upper) - 1 ? name->len : sizeof(upper) - 1;
    for (size_t i = 0; i < len; i++) {
        char ch = name->ptr[i];
        upper[i] = (char)(ch >= 'a' && ch <= 'z' ? ch - 'a' + 'A' : ch);
    }
    upper[len] = '\0';
    char head[160];
    snprintf(head, sizeof(head),
             "%s <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", upper);
    int rc = colony__resp_array(&c->out, n + 3);
    if (!rc) rc = colony__resp_simple(&c->out, head);
    for (size_t i = 0; !rc && i < n; i++)
        rc = colony__resp_simple(&c->out, lines[i]);
    if (!rc) rc = colony__resp_simple(&c->out, "HELP");
    if (!rc) rc = colony__resp_simple(&c->out, "    Prints this help.");
    return rc;
}

int colony__xsubcommand_error(colony__broker_client *c, const colony__resp_arg *argv)
{
    char sub[129], upper[64];
    colony__broker_arg_str(&argv[1], sub, sizeof(sub));
    size_t len = argv[0].len < sizeof(upper) - 1 ? argv[0].len : sizeof(upper) - 1;
    for (size_t i = 0; i < len; i++) {
        char ch = argv[0].ptr[i];
        upper[i] = (char)(ch >= 'a' && ch <= 'z' ? ch - 'a' + 'A' : ch);
    }
    upper[len] = '\0';
    return colony__resp_errorf(&c->out,
                               "ERR unknown subcommand or wrong number of arguments for '%s'. "
                               "Try %s HELP.",
                               sub, upper);
}

static const char *const XGROUP_HELP[] = {
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    NULL,
};

int colony__cmd_xgroup_help(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    (void)argc;
    return colony__xhelp(c, &argv[0], XGROUP_HELP);
}

enum { SUB_CREATE, SUB_SETID, SUB_DESTROY, SUB_CREATECONSUMER, SUB_DELCONSUMER };

/* xgroupCommand after the dispatch's arity check. */
static int xgroup(colony__broker_client *c, const colony__resp_arg *argv, size_t argc, int sub)
{
    int mkstream = 0, rc = 0;
    long long entries_read = -1;
    for (size_t i = 5; i < argc;) {
        if (sub == SUB_CREATE && colony__broker_arg_is(&argv[i], "mkstream")) {
            mkstream = 1;
            i++;
        } else if ((sub == SUB_CREATE || sub == SUB_SETID) &&
                   colony__broker_arg_is(&argv[i], "entriesread") && i + 1 < argc) {
            if (!colony__xparse_ll(&argv[i + 1], &entries_read))
                return colony__resp_error(&c->out, COLONY__XNOT_INT);
            if (entries_read < 0 && entries_read != -1)
                return colony__resp_error(&c->out,
                                          "ERR value for ENTRIESREAD must be positive or -1");
            i += 2;
        } else {
            return colony__xsubcommand_error(c, argv);
        }
    }
    if (!c->srv->store)
        return colony__resp_error(&c->out, "ERR the broker's stream storage is not open");
    colony__bstream *st = colony__xlookup_arg(c, &argv[2]);
    char group[256], kname[COLONY__XNAME_MAX + 1];
    if (colony__xname_arg(c, &argv[3], group, &rc)) return rc;
    colony__bgroup *g = st ? colony__bgroup_get(st, group) : NULL;
    if (!mkstream) {
        if (!st)
            return colony__resp_error(&c->out, "ERR The XGROUP subcommand requires the key to "
                                               "exist. Note that for CREATE you may want to use "
                                               "the MKSTREAM option to create an empty stream "
                                               "automatically.");
        if (!g && (sub == SUB_SETID || sub == SUB_CREATECONSUMER || sub == SUB_DELCONSUMER))
            return colony__resp_errorf(
                &c->out, "NOGROUP No such consumer group '%s' for key name '%s'", group,
                colony__broker_arg_str(&argv[2], kname, sizeof(kname)));
    }
    colony__bstream_info info;
    colony__bid id = {0, 0};
    if (sub == SUB_CREATE || sub == SUB_SETID) {
        if ((sub == SUB_CREATE && argc > 8) || (sub == SUB_SETID && argc != 5 && argc != 7))
            return colony__xsubcommand_error(c, argv);
        if (argv[4].len == 1 && argv[4].ptr[0] == '$') {
            if (st) {
                colony__bstream_info_get(st, &info);
                id = info.top;
            }
        } else if (colony__xid_parse(argv[4].ptr, argv[4].len, 0, sub == SUB_CREATE, NULL, &id)) {
            return colony__resp_error(&c->out, COLONY__XINVALID_ID);
        }
    }
    char name[256];
    long n;
    switch (sub) {
    case SUB_CREATE:
        if (!st) {
            if (colony__xkey_name(c, &argv[2], kname, &rc)) return rc;
            if ((rc = colony__bstore_create(c->srv->store, kname, &st)))
                return colony__xstore_error(c, rc);
        }
        rc = colony__bgroup_create(st, group, id, &g);
        if (rc == COLONY_EEXIST)
            return colony__resp_error(&c->out, "BUSYGROUP Consumer Group name already exists");
        if (!rc && entries_read != -1) rc = colony__bgroup_setid_read(g, id, entries_read);
        if (rc) return colony__xstore_error(c, rc);
        rc = colony__resp_simple(&c->out, "OK");
        break;
    case SUB_SETID:
        if ((rc = colony__bgroup_setid_read(g, id, entries_read)))
            return colony__xstore_error(c, rc);
        rc = colony__resp_simple(&c->out, "OK");
        break;
    case SUB_DESTROY:
        if (!g) return colony__resp_int(&c->out, 0);
        colony__broker_arg_str(&argv[2], kname, sizeof(kname));
        if ((rc = colony__bgroup_destroy(st, group))) return colony__xstore_error(c, rc);
        if ((rc = colony__resp_int(&c->out, 1))) return rc;
        rc = colony__xpark(c, st, NULL);
        colony__xread_group_gone(c->srv, kname); /* after the park: its reply comes first */
        return rc;
    case SUB_CREATECONSUMER:
        if (colony__xname_arg(c, &argv[4], name, &rc)) return rc;
        n = colony__bgroup_consumer_add(g, name);
        if (n < 0) return colony__xstore_error(c, (int)n);
        if ((rc = colony__resp_int(&c->out, n))) return rc;
        return n ? colony__xpark(c, st, NULL) : 0;
    default: /* SUB_DELCONSUMER */
        if (colony__xname_arg(c, &argv[4], name, &rc)) return rc;
        n = colony__bgroup_consumer_delete(g, name);
        if (n == COLONY_ENOENT) return colony__resp_int(&c->out, 0);
        if (n < 0) return colony__xstore_error(c, (int)n);
        if ((rc = colony__resp_int(&c->out, n))) return rc;
        break;
    }
    return rc ? rc : colony__xpark(c, st, NULL);
}

int colony__cmd_xgroup_create(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    return xgroup(c, argv, argc, SUB_CREATE);
}

int colony__cmd_xgroup_setid(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    return xgroup(c, argv, argc, SUB_SETID);
}

int colony__cmd_xgroup_destroy(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    return xgroup(c, argv, argc, SUB_DESTROY);
}

int colony__cmd_xgroup_createconsumer(colony__broker_client *c, const colony__resp_arg *argv,
                                      size_t argc)
{
    return xgroup(c, argv, argc, SUB_CREATECONSUMER);
}

int colony__cmd_xgroup_delconsumer(colony__broker_client *c, const colony__resp_arg *argv,
                                   size_t argc)
{
    return xgroup(c, argv, argc, SUB_DELCONSUMER);
}

int colony__cmd_xack(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    colony__bstream *st = colony__xlookup_arg(c, &argv[1]);
    char group[256];
    colony__bgroup *g = NULL;
    if (st && argv[2].len < 256 && !memchr(argv[2].ptr, '\0', argv[2].len))
        g = colony__bgroup_get(st, colony__broker_arg_str(&argv[2], group, sizeof(group)));
    if (!g) return colony__resp_int(&c->out, 0);
    colony__bid small[16], *ids = small;
    size_t n = argc - 3;
    if (n > 16 && !(ids = colony__malloc(n * sizeof(*ids)))) return COLONY_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        if (colony__xid_parse(argv[i + 3].ptr, argv[i + 3].len, 0, 1, NULL, &ids[i])) {
            if (ids != small) colony__free(ids);
            return colony__resp_error(&c->out, COLONY__XINVALID_ID);
        }
    long acked = colony__bgroup_ack_many(g, ids, n);
    if (ids != small) colony__free(ids);
    if (acked < 0) return colony__xstore_error(c, (int)acked);
    if ((rc = colony__resp_int(&c->out, acked))) return rc;
    return acked ? colony__xpark(c, st, NULL) : 0;
}
