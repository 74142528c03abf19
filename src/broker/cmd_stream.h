/* What the stream command files share (cmd_stream.c defines it): stream
 * names from arguments, Redis's common error texts, entries as replies, and
 * parking a write's reply until it is durable. Included only by cmd_*.c
 * files of the stream commands. */
#ifndef COLONY_BROKER_CMD_STREAM_H
#define COLONY_BROKER_CMD_STREAM_H

#include "broker/commands.h"
#include "broker/store/store.h"

#define COLONY__XNAME_MAX   300 /* a stream name's bytes: its escaped form must fit a file name */
#define COLONY__XINVALID_ID "ERR Invalid stream ID specified as stream command argument"
#define COLONY__XSYNTAX     "ERR syntax error"
#define COLONY__XNOT_INT    "ERR value is not an integer or out of range"

/* The stream name in argument a, as a C string in out (COLONY__XNAME_MAX + 1
 * bytes). 0, or 1 after an error reply (a NUL in the name, too long, or no
 * store) with *rc the reply's result. */
int colony__xkey_name(colony__broker_client *c, const colony__resp_arg *a, char *out, int *rc);
/* The stream named by argument a, or NULL (none, or a name no stream can have). */
colony__bstream *colony__xlookup_arg(colony__broker_client *c, const colony__resp_arg *a);
colony__bstream *colony__xlookup(colony__broker_client *c, const char *name);
int colony__xreply_id(colony_buf *out, colony__bid id);
/* "ERR <strerror>" (logged); COLONY_ENOMEM is returned as is. */
int colony__xstore_error(colony__broker_client *c, int err);
/* Holds the reply just written until what st wrote is durable; then wakes
 * the readers blocked on wake (NULL: none). */
int colony__xpark(colony__broker_client *c, colony__bstream *st, const char *wake);
int colony__xparse_ll(const colony__resp_arg *a, long long *v);

/* Entries as replies: colony__xemit_entry appends [id, [field, value...]]
 * to buf (a colony__bentry_cb). */
typedef struct colony__xrange_out {
    colony_buf buf;
    int rc;
} colony__xrange_out;
int colony__xemit_entry(void *ud, const colony__bentry *e);
/* An array of entries start..end into c->out. */
int colony__xreply_range(colony__broker_client *c, colony__bstream *st, colony__bid start,
                         colony__bid end, int reverse, size_t count);
/* The entry id as [id, [field, value...]] into out: 1, or 0 if it is not there. */
int colony__xreply_entry(colony__bstream *st, colony__bid id, colony_buf *out);

/* cmd_xgroup.c: XREADGROUP's serving of one stream of the group g (from a
 * command or from the wake-up of a blocked reader): new entries past `after`
 * (the cursor) up to `upto`, each recorded as delivered to consumer (NOACK:
 * the cursor moves, nothing is pending), or (history) the consumer's pending
 * entries past `after`, each delivery counted. Writes the entries array (the
 * part of XREAD's [key, entries] after the key) into out. Returns entries
 * given, or <0. */
long colony__xgroup_serve(colony__bstream *st, colony__bgroup *g, const char *consumer, int history,
                          colony__bid after, colony__bid upto, size_t count, int noack,
                          uint64_t now, colony_buf *out);
/* cmd_xread.c: ends the XREADGROUP BLOCKs on stream name whose group is gone (XGROUP
 * DESTROY) with Redis's NOGROUP error. */
void colony__xread_group_gone(colony__broker_resp *srv, const char *name);
/* Ends the XREADGROUP BLOCKs on stream name, just deleted (DEL), with
 * redis-server 7.0.15's UNBLOCKED error (XREAD BLOCKs wait on). */
void colony__xread_key_gone(colony__broker_resp *srv, const char *name);

/* cmd_xgroup.c: a group or consumer name (at most 255 bytes, no NUL) into
 * out: 0, or 1 after an error reply (*rc). */
int colony__xname_arg(colony__broker_client *c, const colony__resp_arg *a, char out[256], int *rc);
/* Redis's HELP reply (addReplyHelp) for the command named by name. */
int colony__xhelp(colony__broker_client *c, const colony__resp_arg *name, const char *const *lines);
/* Redis's addReplySubcommandSyntaxError. */
int colony__xsubcommand_error(colony__broker_client *c, const colony__resp_arg *argv);
/* cmd_xpending.c: the group's consumer names in Redis's (byte) order, *n of
 * them; free the array (not the names) with colony__free. NULL: no memory. */
const char **colony__xconsumers_sorted(const colony__bgroup *g, size_t *n);

#endif
