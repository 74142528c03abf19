/* XINFO STREAM [FULL [COUNT n]], XINFO GROUPS, XINFO CONSUMERS and XINFO
 * HELP as redis-server 7.0 gives them (t_stream.c xinfoCommand): groups and
 * consumers in name order, Redis 7's counters (entries-added,
 * max-deleted-entry-id, recorded-first-entry-id, entries-read, lag) from the
 * store. radix-tree-keys and radix-tree-nodes describe Redis's memory layout,
 * which the broker does not have: it reports its segment files there. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "broker/cmd_stream.h"
#include "broker/commands.h"
#include "broker/stream_id.h"
#include "broker/store/store.h"

static const char *const XINFO_HELP[] = {
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    NULL,
};

int colony__cmd_xinfo_help(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    (void)argc;
    return colony__xhelp(c, &argv[0], XINFO_HELP);
}

static int key(colony_buf *out, const char *name)
{
    return colony__resp_bulk(out, name, strlen(name));
}

static int reply_read_and_lag(colony_buf *out, colony__bgroup *g)
{
    colony__bgroup_info info;
    colony__bgroup_info_get(g, &info);
    int64_t lag;
    int rc = key(out, "entries-read");
    if (!rc)
        rc = info.entries_read != -1 ? colony__resp_int(out, info.entries_read)
                                     : colony__resp_null_bulk(out);
    if (!rc) rc = key(out, "lag");
    if (!rc)
        rc = colony__bgroup_lag(g, &lag) ? colony__resp_int(out, lag) : colony__resp_null_bulk(out);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The stream's groups in name order (free the array); NULL: no memory. */
static colony__bgroup **groups_sorted(colony__bstream *st, size_t *n)
{
    colony__bstream_info info;
    colony__bstream_info_get(st, &info);
    colony__bgroup **gs = colony__malloc((info.groups ? info.groups : 1) * sizeof(*gs));
    const char **names = colony__malloc((info.groups ? info.groups : 1) * sizeof(*names));
    if (!gs || !names) {
        colony__free(gs);
        colony__free(names);
        return NULL;
    }
    size_t pos = 0, k = 0;
    colony__bgroup *g;
    while (k < info.groups && (g = colony__bgroup_next(st, &pos))) {
        colony__bgroup_info gi;
        colony__bgroup_info_get(g, &gi);
        names[k++] = gi.name;
    }
    qsort(names, k, sizeof(*names), cmp_str);
    for (size_t i = 0; i < k; i++)
        gs[i] = colony__bgroup_get(st, names[i]);
    colony__free(names);
    *n = k;
    return gs;
}

/* FULL's pending lists: with_consumer for the group's, else a consumer's. */
typedef struct pel_out {
    colony_buf buf;
    size_t n;
    int with_consumer;
} pel_out;

static int pel_line(void *ud, const colony__bpending *p)
{
    pel_out *o = ud;
    o->n++;
    int rc = colony__resp_array(&o->buf, o->with_consumer ? 4 : 3);
    if (!rc) rc = colony__xreply_id(&o->buf, p->id);
    if (!rc && o->with_consumer) rc = key(&o->buf, p->consumer);
    if (!rc) rc = colony__resp_int(&o->buf, (long long)p->last_ms);
    if (!rc) rc = colony__resp_int(&o->buf, (long long)p->count);
    return rc;
}

static int reply_pel(colony_buf *out, colony__bgroup *g, const char *consumer, size_t count)
{
    pel_out o = {.n = 0, .with_consumer = consumer == NULL};
    colony_buf_init(&o.buf, (size_t)1 << 40);
    colony__bid zero = {0, 0}, max = {UINT64_MAX, UINT64_MAX};
    long got = colony__bgroup_pending_range(g, zero, max, consumer, count, pel_line, &o);
    int rc = got < 0 ? (int)got : colony__resp_array(out, o.n);
    if (!rc && o.buf.len) rc = colony_buf_append(out, o.buf.data, o.buf.len);
    colony_buf_free(&o.buf);
    return rc;
}

static int reply_group_full(colony_buf *out, colony__bgroup *g, size_t count)
{
    colony__bgroup_info info;
    colony__bgroup_info_get(g, &info);
    int rc = colony__resp_array(out, 14);
    if (!rc && !(rc = key(out, "name"))) rc = key(out, info.name);
    if (!rc && !(rc = key(out, "last-delivered-id"))) rc = colony__xreply_id(out, info.cursor);
    if (!rc) rc = reply_read_and_lag(out, g);
    if (!rc && !(rc = key(out, "pel-count"))) rc = colony__resp_int(out, (long long)info.pending);
    if (!rc && !(rc = key(out, "pending"))) rc = reply_pel(out, g, NULL, count);
    if (!rc) rc = key(out, "consumers");
    size_t n = 0;
    const char **names = rc ? NULL : colony__xconsumers_sorted(g, &n);
    if (!rc && !names) return COLONY_ENOMEM;
    if (!rc) rc = colony__resp_array(out, n);
    for (size_t i = 0; !rc && i < n; i++) {
        uint64_t seen = 0;
        size_t pending = 0;
        colony__bgroup_consumer_seen(g, names[i], &seen, &pending);
        rc = colony__resp_array(out, 8);
        if (!rc && !(rc = key(out, "name"))) rc = key(out, names[i]);
        if (!rc && !(rc = key(out, "seen-time"))) rc = colony__resp_int(out, (long long)seen);
        if (!rc && !(rc = key(out, "pel-count"))) rc = colony__resp_int(out, (long long)pending);
        if (!rc && !(rc = key(out, "pending"))) rc = reply_pel(out, g, names[i], count);
    }
    colony__free(names);
    return rc;
}

static int entry_or_nil(colony_buf *out, colony__bstream *st, const colony__bstream_info *info,
                        colony__bid id)
{
    if (!info->length) return colony__resp_null_bulk(out);
    int rc = colony__xreply_entry(st, id, out);
    return rc < 0 ? rc : 0;
}

int colony__cmd_xinfo_stream(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    int full = argc > 3;
    long long count = 10;
    colony__bstream *st = colony__xlookup_arg(c, &argv[2]);
    if (!st) return colony__resp_error(&c->out, "ERR no such key");
    if (full) {
        if ((argc != 4 && argc != 6) || !colony__broker_arg_is(&argv[3], "full") ||
            (argc == 6 && !colony__broker_arg_is(&argv[4], "count")))
            return colony__xsubcommand_error(c, argv);
        if (argc == 6) {
            if (!colony__xparse_ll(&argv[5], &count))
                return colony__resp_error(&c->out, COLONY__XNOT_INT);
            if (count < 0) count = 10;
        }
    }
    colony__bstream_info info;
    colony__bstream_info_get(st, &info);
    colony_buf *out = &c->out;
    int rc = colony__resp_array(out, full ? 18 : 20);
    if (!rc && !(rc = key(out, "length"))) rc = colony__resp_int(out, (long long)info.length);
    if (!rc && !(rc = key(out, "radix-tree-keys")))
        rc = colony__resp_int(out, (long long)info.segments);
    if (!rc && !(rc = key(out, "radix-tree-nodes")))
        rc = colony__resp_int(out, (long long)info.segments + 1);
    if (!rc && !(rc = key(out, "last-generated-id"))) rc = colony__xreply_id(out, info.top);
    if (!rc && !(rc = key(out, "max-deleted-entry-id")))
        rc = colony__xreply_id(out, info.max_deleted);
    if (!rc && !(rc = key(out, "entries-added")))
        rc = colony__resp_int(out, (long long)info.entries_added);
    if (!rc && !(rc = key(out, "recorded-first-entry-id"))) rc = colony__xreply_id(out, info.first);
    if (rc) return rc;
    if (!full) {
        if (!(rc = key(out, "groups"))) rc = colony__resp_int(out, (long long)info.groups);
        if (!rc && !(rc = key(out, "first-entry"))) rc = entry_or_nil(out, st, &info, info.first);
        if (!rc && !(rc = key(out, "last-entry"))) rc = entry_or_nil(out, st, &info, info.last);
        return rc;
    }
    colony__bid zero = {0, 0}, max = {UINT64_MAX, UINT64_MAX};
    if (!(rc = key(out, "entries"))) rc = colony__xreply_range(c, st, zero, max, 0, (size_t)count);
    if (!rc) rc = key(out, "groups");
    size_t n = 0;
    colony__bgroup **gs = rc ? NULL : groups_sorted(st, &n);
    if (!rc && !gs) return COLONY_ENOMEM;
    if (!rc) rc = colony__resp_array(out, n);
    for (size_t i = 0; !rc && i < n; i++)
        rc = reply_group_full(out, gs[i], (size_t)count);
    colony__free(gs);
    return rc;
}

int colony__cmd_xinfo_groups(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    (void)argc;
    colony__bstream *st = colony__xlookup_arg(c, &argv[2]);
    if (!st) return colony__resp_error(&c->out, "ERR no such key");
    size_t n = 0;
    colony__bgroup **gs = groups_sorted(st, &n);
    if (!gs) return COLONY_ENOMEM;
    colony_buf *out = &c->out;
    int rc = colony__resp_array(out, n);
    for (size_t i = 0; !rc && i < n; i++) {
        colony__bgroup_info info;
        colony__bgroup_info_get(gs[i], &info);
        rc = colony__resp_array(out, 12);
        if (!rc && !(rc = key(out, "name"))) rc = key(out, info.name);
        if (!rc && !(rc = key(out, "consumers")))
            rc = colony__resp_int(out, (long long)info.consumers);
        if (!rc && !(rc = key(out, "pending"))) rc = colony__resp_int(out, (long long)info.pending);
        if (!rc && !(rc = key(out, "last-delivered-id"))) rc = colony__xreply_id(out, info.cursor);
        if (!rc) rc = reply_read_and_lag(out, gs[i]);
    }
    colony__free(gs);
    return rc;
}

int colony__cmd_xinfo_consumers(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    (void)argc;
    colony__bstream *st = colony__xlookup_arg(c, &argv[2]);
    if (!st) return colony__resp_error(&c->out, "ERR no such key");
    char group[256], kname[COLONY__XNAME_MAX + 1];
    colony__broker_arg_str(&argv[3], group, sizeof(group));
    colony__bgroup *g = NULL;
    if (argv[3].len < 256 && !memchr(argv[3].ptr, '\0', argv[3].len))
        g = colony__bgroup_get(st, group);
    if (!g)
        return colony__resp_errorf(&c->out, "NOGROUP No such consumer group '%s' for key name '%s'",
                                   group, colony__broker_arg_str(&argv[2], kname, sizeof(kname)));
    size_t n = 0;
    const char **names = colony__xconsumers_sorted(g, &n);
    if (!names) return COLONY_ENOMEM;
    uint64_t now = colony__bstore_now(c->srv->store);
    colony_buf *out = &c->out;
    int rc = colony__resp_array(out, n);
    for (size_t i = 0; !rc && i < n; i++) {
        uint64_t seen = 0;
        size_t pending = 0;
        colony__bgroup_consumer_seen(g, names[i], &seen, &pending);
        rc = colony__resp_array(out, 6);
        if (!rc && !(rc = key(out, "name"))) rc = key(out, names[i]);
        if (!rc && !(rc = key(out, "pending"))) rc = colony__resp_int(out, (long long)pending);
        if (!rc && !(rc = key(out, "idle")))
            rc = colony__resp_int(out, seen < now ? (long long)(now - seen) : 0);
    }
    colony__free(names);
    return rc;
}
