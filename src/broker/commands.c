/* The command table and dispatch. The checks run in redis-server's order
 * (processCommand): unknown command, unknown subcommand, arity, NOAUTH, then
 * the subscribed-mode restriction, each with Redis's error text. */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "broker/commands.h"

#define SUB(n) n, sizeof(n) / sizeof(n[0])

static const colony__broker_command client_subs[] = {
    {"client|id", 2, 0, colony__cmd_client_id, "connection", "5.0.0",
     "Returns the unique client ID of the connection.", "noscript loading stale", NULL, 0},
    {"client|getname", 2, 0, colony__cmd_client_getname, "connection", "2.6.9",
     "Returns the name of the connection.", "noscript loading stale", NULL, 0},
    {"client|setname", 3, 0, colony__cmd_client_setname, "connection", "2.6.9",
     "Sets the connection name.", "noscript loading stale", NULL, 0},
    {"client|setinfo", 4, 0, colony__cmd_client_setinfo, "connection", "7.2.0",
     "Sets information specific to the client or connection.", "noscript loading stale", NULL, 0},
    {"client|info", 2, 0, colony__cmd_client_info, "connection", "6.2.0",
     "Returns information about the connection.", "noscript loading stale", NULL, 0},
    {"client|list", -2, 0, colony__cmd_client_list, "connection", "2.4.0",
     "Lists open connections.", "admin noscript loading stale", NULL, 0},
};

static const colony__broker_command command_subs[] = {
    {"command|count", 2, 0, colony__cmd_command_count, "server", "2.8.13",
     "Returns a count of commands.", "loading stale", NULL, 0},
    {"command|docs", -2, 0, colony__cmd_command_docs, "server", "7.0.0",
     "Returns documentary information about one, multiple or all commands.", "loading stale", NULL,
     0},
    {"command|info", -2, 0, colony__cmd_command_info, "server", "2.8.13",
     "Returns information about one, multiple or all commands.", "loading stale", NULL, 0},
};

static const colony__broker_command pubsub_subs[] = {
    {"pubsub|channels", -2, 0, colony__cmd_pubsub_channels, "pubsub", "2.8.0",
     "Returns the active channels.", "pubsub loading stale", NULL, 0},
    {"pubsub|numsub", -2, 0, colony__cmd_pubsub_numsub, "pubsub", "2.8.0",
     "Returns a count of subscribers to channels.", "pubsub loading stale", NULL, 0},
    {"pubsub|numpat", 2, 0, colony__cmd_pubsub_numpat, "pubsub", "2.8.0",
     "Returns a count of unique pattern subscriptions.", "pubsub loading stale", NULL, 0},
};

static const colony__broker_command xgroup_subs[] = {
    {"xgroup|create", -5, 0, colony__cmd_xgroup_create, "stream", "5.0.0",
     "Creates a consumer group.", "write denyoom", NULL, 0},
    {"xgroup|createconsumer", 5, 0, colony__cmd_xgroup_createconsumer, "stream", "6.2.0",
     "Creates a consumer in a consumer group.", "write denyoom", NULL, 0},
    {"xgroup|delconsumer", 5, 0, colony__cmd_xgroup_delconsumer, "stream", "5.0.0",
     "Deletes a consumer from a consumer group.", "write", NULL, 0},
    {"xgroup|destroy", 4, 0, colony__cmd_xgroup_destroy, "stream", "5.0.0",
     "Destroys a consumer group.", "write", NULL, 0},
    {"xgroup|help", 2, 0, colony__cmd_xgroup_help, "stream", "5.0.0",
     "Returns helpful text about the different subcommands.", "loading stale", NULL, 0},
    {"xgroup|setid", -5, 0, colony__cmd_xgroup_setid, "stream", "5.0.0",
     "Sets the last-delivered ID of a consumer group.", "write", NULL, 0},
};

static const colony__broker_command xinfo_subs[] = {
    {"xinfo|consumers", 4, 0, colony__cmd_xinfo_consumers, "stream", "5.0.0",
     "Returns a list of the consumers in a consumer group.", "readonly", NULL, 0},
    {"xinfo|groups", 3, 0, colony__cmd_xinfo_groups, "stream", "5.0.0",
     "Returns a list of the consumer groups of a stream.", "readonly", NULL, 0},
    {"xinfo|help", 2, 0, colony__cmd_xinfo_help, "stream", "5.0.0",
     "Returns helpful text about the different subcommands.", "loading stale", NULL, 0},
    {"xinfo|stream", -3, 0, colony__cmd_xinfo_stream, "stream", "5.0.0",
     "Returns information about a stream.", "readonly", NULL, 0},
};

static const colony__broker_command table[] = {
    {"ping", -1, COLONY__CMD_PUBSUB_OK, colony__cmd_ping, "connection", "1.0.0",
     "Returns the server's liveliness response.", "fast", NULL, 0},
    {"echo", 2, 0, colony__cmd_echo, "connection", "1.0.0", "Returns the given string.", "fast",
     NULL, 0},
    {"quit", -1, COLONY__CMD_NO_AUTH | COLONY__CMD_PUBSUB_OK, colony__cmd_quit, "connection",
     "1.0.0", "Closes the connection.", "allow_busy noscript loading stale fast no_auth", NULL, 0},
    {"hello", -1, COLONY__CMD_NO_AUTH, colony__cmd_hello, "connection", "6.0.0",
     "Handshakes with the server.", "noscript loading stale fast no_auth", NULL, 0},
    {"auth", -2, COLONY__CMD_NO_AUTH, colony__cmd_auth, "connection", "1.0.0",
     "Authenticates the connection.", "noscript loading stale fast no_auth", NULL, 0},
    {"select", 2, 0, colony__cmd_select, "connection", "1.0.0",
     "Changes the selected database (only 0 exists).", "loading stale fast", NULL, 0},
    {"reset", 1, COLONY__CMD_NO_AUTH | COLONY__CMD_PUBSUB_OK, colony__cmd_reset, "connection",
     "6.2.0", "Resets the connection.", "noscript loading stale fast no_auth", NULL, 0},
    {"client", -2, 0, NULL, "connection", "2.4.0", "A container for client connection commands.",
     "", SUB(client_subs)},
    {"command", -1, 0, colony__cmd_command, "server", "2.8.13",
     "Returns detailed information about all commands.", "loading stale", SUB(command_subs)},
    {"info", -1, 0, colony__cmd_info, "server", "1.0.0",
     "Returns information and statistics about the server.", "loading stale", NULL, 0},
    {"publish", 3, 0, colony__cmd_publish, "pubsub", "2.0.0", "Posts a message to a channel.",
     "pubsub loading stale fast", NULL, 0},
    {"subscribe", -2, COLONY__CMD_PUBSUB_OK, colony__cmd_subscribe, "pubsub", "2.0.0",
     "Listens for messages published to channels.", "pubsub noscript loading stale", NULL, 0},
    {"psubscribe", -2, COLONY__CMD_PUBSUB_OK, colony__cmd_psubscribe, "pubsub", "2.0.0",
     "Listens for messages published to channels that match one or more patterns.",
     "pubsub noscript loading stale", NULL, 0},
    {"unsubscribe", -1, COLONY__CMD_PUBSUB_OK, colony__cmd_unsubscribe, "pubsub", "2.0.0",
     "Stops listening to messages posted to channels.", "pubsub noscript loading stale", NULL, 0},
    {"punsubscribe", -1, COLONY__CMD_PUBSUB_OK, colony__cmd_punsubscribe, "pubsub", "2.0.0",
     "Stops listening to messages published to channels that match one or more patterns.",
     "pubsub noscript loading stale", NULL, 0},
    {"pubsub", -2, 0, NULL, "pubsub", "2.8.0", "A container for Pub/Sub commands.", "",
     SUB(pubsub_subs)},
    {"xadd", -5, COLONY__CMD_JOINS_COMMIT, colony__cmd_xadd, "stream", "5.0.0",
     "Appends a new message to a stream. Creates the key if it doesn't exist.",
     "write denyoom fast", NULL, 0},
    {"xlen", 2, 0, colony__cmd_xlen, "stream", "5.0.0",
     "Return the number of messages in a stream.", "readonly fast", NULL, 0},
    {"xrange", -4, 0, colony__cmd_xrange, "stream", "5.0.0",
     "Returns the messages from a stream within a range of IDs.", "readonly", NULL, 0},
    {"xrevrange", -4, 0, colony__cmd_xrevrange, "stream", "5.0.0",
     "Returns the messages from a stream within a range of IDs in reverse order.", "readonly", NULL,
     0},
    {"xdel", -3, 0, colony__cmd_xdel, "stream", "5.0.0",
     "Returns the number of messages after removing them from a stream.", "write fast", NULL, 0},
    {"xtrim", -4, 0, colony__cmd_xtrim, "stream", "5.0.0",
     "Deletes messages from the beginning of a stream.", "write", NULL, 0},
    {"xread", -4, 0, colony__cmd_xread, "stream", "5.0.0",
     "Returns messages from multiple streams with IDs greater than the ones requested. Blocks "
     "until a message is available otherwise.",
     "readonly blocking", NULL, 0},
    {"xreadgroup", -7, 0, colony__cmd_xreadgroup, "stream", "5.0.0",
     "Returns new or historical messages from a stream for a consumer in a group. Blocks until a "
     "message is available otherwise.",
     "write blocking", NULL, 0},
    {"xack", -4, 0, colony__cmd_xack, "stream", "5.0.0",
     "Returns the number of messages that were successfully acknowledged by the consumer group "
     "member of a stream.",
     "write fast", NULL, 0},
    {"xpending", -3, 0, colony__cmd_xpending, "stream", "5.0.0",
     "Returns the information and entries from a stream consumer group's pending entries list.",
     "readonly", NULL, 0},
    {"xclaim", -6, 0, colony__cmd_xclaim, "stream", "5.0.0",
     "Changes, or acquires, ownership of a message in a consumer group, as if the message was "
     "delivered a consumer group member.",
     "write fast", NULL, 0},
    {"xautoclaim", -6, 0, colony__cmd_xautoclaim, "stream", "6.2.0",
     "Changes, or acquires, ownership of messages in a consumer group, as if the messages were "
     "delivered to as consumer group member.",
     "write fast", NULL, 0},
    {"xgroup", -2, 0, NULL, "stream", "5.0.0", "A container for consumer groups commands.", "",
     SUB(xgroup_subs)},
    {"xinfo", -2, 0, NULL, "stream", "5.0.0", "A container for stream introspection commands.", "",
     SUB(xinfo_subs)},
    {"del", -2, 0, colony__cmd_del, "keyspace", "1.0.0", "Deletes one or more keys.", "write", NULL,
     0},
    {"exists", -2, 0, colony__cmd_exists, "keyspace", "1.0.0",
     "Determines whether one or more keys exist.", "readonly fast", NULL, 0},
    {"type", 2, 0, colony__cmd_type, "keyspace", "1.0.0",
     "Determines the type of value stored at a key.", "readonly fast", NULL, 0},
};

const colony__broker_command *colony__broker_command_table(size_t *n)
{
    *n = sizeof(table) / sizeof(table[0]);
    return table;
}

int colony__broker_arg_is(const colony__resp_arg *a, const char *lower)
{
    size_t n = strlen(lower);
    if (a->len != n) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = a->ptr[i];
        if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
        if (ch != lower[i]) return 0;
    }
    return 1;
}

const char *colony__broker_arg_str(const colony__resp_arg *a, char *out, size_t outlen)
{
    size_t n = a->len < outlen - 1 ? a->len : outlen - 1;
    memcpy(out, a->ptr, n);
    out[n] = '\0';
    return out;
}

int colony__broker_reply_arity(colony__broker_client *c, const char *fullname)
{
    return colony__resp_errorf(&c->out, "ERR wrong number of arguments for '%s' command", fullname);
}

/* The part of a name after the container ("client|id" -> "id"). */
static const char *short_name(const char *name)
{
    const char *bar = strchr(name, '|');
    return bar ? bar + 1 : name;
}

static const colony__broker_command *find(const colony__broker_command *cmds, size_t n,
                                          const colony__resp_arg *a)
{
    for (size_t i = 0; i < n; i++)
        if (colony__broker_arg_is(a, short_name(cmds[i].name))) return &cmds[i];
    return NULL;
}

/* Redis formats arguments with %s: they end at a NUL. */
static size_t c_len(const colony__resp_arg *a, size_t max)
{
    const char *nul = memchr(a->ptr, '\0', a->len);
    size_t n = nul ? (size_t)(nul - a->ptr) : a->len;
    return n < max ? n : max;
}

static int unknown_command(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    char args[200];
    size_t len = 0;
    for (size_t j = 1; j < argc && len < 128; j++) {
        size_t n = c_len(&argv[j], 128 - len);
        args[len++] = '\'';
        memcpy(args + len, argv[j].ptr, n);
        len += n;
        args[len++] = '\'';
        args[len++] = ' ';
    }
    args[len] = '\0';
    char name[129];
    memcpy(name, argv[0].ptr, c_len(&argv[0], 128));
    name[c_len(&argv[0], 128)] = '\0';
    return colony__resp_errorf(&c->out, "ERR unknown command '%s', with args beginning with: %s",
                               name, args);
}

int colony__broker_dispatch(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    const colony__broker_command *cmd = find(table, sizeof(table) / sizeof(table[0]), &argv[0]);
    if (!cmd) return unknown_command(c, argv, argc);
    if (cmd->subs && argc >= 2) {
        const colony__broker_command *sub = find(cmd->subs, cmd->nsubs, &argv[1]);
        if (!sub) {
            char arg[129], upper[32];
            size_t n = c_len(&argv[1], 128);
            memcpy(arg, argv[1].ptr, n);
            arg[n] = '\0';
            size_t i = 0;
            for (; cmd->name[i] && i < sizeof(upper) - 1; i++)
                upper[i] =
                    (char)(cmd->name[i] >= 'a' && cmd->name[i] <= 'z' ? cmd->name[i] - 'a' + 'A'
                                                                      : cmd->name[i]);
            upper[i] = '\0';
            return colony__resp_errorf(&c->out, "ERR unknown subcommand '%s'. Try %s HELP.", arg,
                                       upper);
        }
        if (sub) cmd = sub;
    }
    c->last_cmd = cmd->name;
    long long n = (long long)argc;
    if ((cmd->arity > 0 && cmd->arity != n) || n < -cmd->arity || !cmd->fn)
        return colony__broker_reply_arity(c, cmd->name);
    if (!c->authenticated && !(cmd->flags & COLONY__CMD_NO_AUTH))
        return colony__resp_error(&c->out, "NOAUTH Authentication required.");
    if (colony__broker_subs_count(&c->subs) && !(cmd->flags & COLONY__CMD_PUBSUB_OK))
        return colony__resp_errorf(&c->out,
                                   "ERR Can't execute '%s': only (P|S)SUBSCRIBE / "
                                   "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this "
                                   "context",
                                   cmd->name);
    /* a command that could drop a stream (DEL) or must see its own commit
     * order never runs while a wait is still open */
    if (!(cmd->flags & COLONY__CMD_JOINS_COMMIT)) colony__xpark_flush(c);
    return cmd->fn(c, argv, argc);
}
