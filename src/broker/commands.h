/* The RESP command table and its dispatch: lookup (case-insensitive, with
 * subcommands), arity, authentication and subscribed-mode checks in the order
 * redis-server makes them, then the command. The streams commands join the
 * table here. Handlers reply into c->out and return 0, or a negative
 * COLONY_E* code when they could not (the connection is then closed). */
#ifndef COLONY_BROKER_COMMANDS_H
#define COLONY_BROKER_COMMANDS_H

#include <stddef.h>
#include "broker/conn.h"

typedef int (*colony__broker_cmd_fn)(colony__broker_client *c, const colony__resp_arg *argv,
                                     size_t argc);

enum {
    COLONY__CMD_NO_AUTH = 1,      /* runs before AUTH (AUTH, HELLO, QUIT, RESET) */
    COLONY__CMD_PUBSUB_OK = 2,    /* allowed in subscribed mode */
    COLONY__CMD_JOINS_COMMIT = 4, /* may join the client's open commit wait (XADD) */
};

typedef struct colony__broker_command {
    const char *name; /* lower case; subcommands as "client|id" */
    int arity;        /* Redis's: n exactly, -n at least n (name included) */
    unsigned flags;
    colony__broker_cmd_fn fn;
    const char *group, *since, *summary, *redis_flags; /* COMMAND and COMMAND DOCS */
    const struct colony__broker_command *subs;         /* container: its subcommands */
    size_t nsubs;
} colony__broker_command;

/* Runs one parsed command (argc >= 1) for c. 0 or a negative COLONY_E*. */
int colony__broker_dispatch(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
/* The whole table (COMMAND, COMMAND COUNT, INFO). */
const colony__broker_command *colony__broker_command_table(size_t *n);

/* Helpers for handlers. */
int colony__broker_arg_is(const colony__resp_arg *a, const char *lower); /* case-insensitive */
/* Copies a to a NUL-terminated string in out (cut at outlen-1 or at a NUL). */
const char *colony__broker_arg_str(const colony__resp_arg *a, char *out, size_t outlen);
/* Redis's "wrong number of arguments for 'x' command". */
int colony__broker_reply_arity(colony__broker_client *c, const char *fullname);

/* Handlers, by file. */
int colony__cmd_ping(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_echo(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_quit(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_hello(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_auth(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_select(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_reset(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_client_id(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_client_getname(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_client_setname(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_client_setinfo(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_client_info(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_client_list(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_command(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_command_count(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_command_docs(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_command_info(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_info(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_publish(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_subscribe(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_psubscribe(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_unsubscribe(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_punsubscribe(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_pubsub_channels(colony__broker_client *c, const colony__resp_arg *argv,
                                size_t argc);
int colony__cmd_pubsub_numsub(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_pubsub_numpat(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_xadd(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_xlen(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_xrange(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_xrevrange(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_xdel(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_xtrim(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_xread(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_xreadgroup(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_xack(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_xpending(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_xclaim(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_xautoclaim(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_xgroup_create(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_xgroup_setid(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_xgroup_destroy(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_xgroup_createconsumer(colony__broker_client *c, const colony__resp_arg *argv,
                                      size_t argc);
int colony__cmd_xgroup_delconsumer(colony__broker_client *c, const colony__resp_arg *argv,
                                   size_t argc);
int colony__cmd_xgroup_help(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_xinfo_stream(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_xinfo_groups(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_xinfo_consumers(colony__broker_client *c, const colony__resp_arg *argv,
                                size_t argc);
int colony__cmd_xinfo_help(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_del(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
int colony__cmd_exists(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);
/* cmd_xread.c: ends c's XREAD(GROUP) BLOCK (its client closes). */
void colony__xread_cancel(colony__broker_client *c);
/* cmd_stream.c: hands c's open commit wait (c->xwait) to the group commit;
 * dispatch calls it before any command that does not join it, process()
 * at the end of each read. */
void colony__xpark_flush(colony__broker_client *c);
/* Serves the clients blocked on stream name (an XADD to it is durable). */
void colony__xread_wake(colony__broker_resp *srv, const char *name);
int colony__cmd_type(colony__broker_client *c, const colony__resp_arg *argv, size_t argc);

#endif
