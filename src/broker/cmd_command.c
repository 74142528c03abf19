/* COMMAND, COMMAND COUNT/INFO/DOCS from the command table: enough for
 * redis-cli (which asks COMMAND DOCS at start for its hints) and for clients
 * that read COMMAND to learn what the server knows. Keys are not described
 * (first/last/step 0), not even the streams' (a cluster client would need
 * them; redis-cli and the Redis clients we test with do not). */
#include <string.h>
#include "colony/error.h"
#include "broker/commands.h"

static size_t count_words(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p;) {
        while (*p == ' ')
            p++;
        if (!*p) break;
        n++;
        while (*p && *p != ' ')
            p++;
    }
    return n;
}

/* Redis 7's ten-element command info. */
static int info_entry(colony_buf *o, const colony__broker_command *cmd)
{
    int rc = colony__resp_array(o, 10);
    if (!rc) rc = colony__resp_bulk_str(o, cmd->name);
    if (!rc) rc = colony__resp_int(o, cmd->arity);
    if (!rc) rc = colony__resp_array(o, count_words(cmd->redis_flags));
    for (const char *p = cmd->redis_flags; !rc && *p;) {
        while (*p == ' ')
            p++;
        const char *w = p;
        while (*p && *p != ' ')
            p++;
        if (p > w) {
            char flag[32];
            size_t n = (size_t)(p - w) < sizeof(flag) - 1 ? (size_t)(p - w) : sizeof(flag) - 1;
            memcpy(flag, w, n);
            flag[n] = '\0';
            rc = colony__resp_simple(o, flag);
        }
    }
    for (int i = 0; i < 3 && !rc; i++)
        rc = colony__resp_int(o, 0);
    if (!rc) rc = colony__resp_array(o, 1);
    if (!rc)
        rc = colony__resp_simple(o, strcmp(cmd->group, "pubsub") == 0 ? "@pubsub" : "@connection");
    if (!rc) rc = colony__resp_array(o, 0); /* tips */
    if (!rc) rc = colony__resp_array(o, 0); /* key specs */
    if (!rc) rc = colony__resp_array(o, cmd->nsubs);
    for (size_t i = 0; i < cmd->nsubs && !rc; i++)
        rc = info_entry(o, &cmd->subs[i]);
    return rc;
}

static const colony__broker_command *lookup(const colony__resp_arg *a)
{
    size_t n;
    const colony__broker_command *t = colony__broker_command_table(&n);
    for (size_t i = 0; i < n; i++)
        if (colony__broker_arg_is(a, t[i].name)) return &t[i];
    return NULL;
}

int colony__cmd_command(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    (void)argv;
    (void)argc;
    size_t n;
    const colony__broker_command *t = colony__broker_command_table(&n);
    int rc = colony__resp_array(&c->out, n);
    for (size_t i = 0; i < n && !rc; i++)
        rc = info_entry(&c->out, &t[i]);
    return rc;
}

int colony__cmd_command_count(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    (void)argv;
    (void)argc;
    size_t n;
    colony__broker_command_table(&n);
    return colony__resp_int(&c->out, (long long)n);
}

int colony__cmd_command_info(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    if (argc == 2) return colony__cmd_command(c, argv, argc);
    int rc = colony__resp_array(&c->out, argc - 2);
    for (size_t i = 2; i < argc && !rc; i++) {
        const colony__broker_command *cmd = lookup(&argv[i]);
        rc = cmd ? info_entry(&c->out, cmd) : colony__resp_null_array(&c->out);
    }
    return rc;
}

/* One command's docs: a map (a flat array in RESP2) of summary, since, group,
 * complexity and, for containers, the subcommands' docs. */
static int docs_entry(colony_buf *o, const colony__broker_command *cmd)
{
    int rc = colony__resp_bulk_str(o, cmd->name);
    if (!rc) rc = colony__resp_array(o, cmd->nsubs ? 10 : 8);
    if (!rc) rc = colony__resp_bulk_str(o, "summary");
    if (!rc) rc = colony__resp_bulk_str(o, cmd->summary);
    if (!rc) rc = colony__resp_bulk_str(o, "since");
    if (!rc) rc = colony__resp_bulk_str(o, cmd->since);
    if (!rc) rc = colony__resp_bulk_str(o, "group");
    if (!rc) rc = colony__resp_bulk_str(o, cmd->group);
    if (!rc) rc = colony__resp_bulk_str(o, "complexity");
    if (!rc) rc = colony__resp_bulk_str(o, "O(1)");
    if (!rc && cmd->nsubs) {
        rc = colony__resp_bulk_str(o, "subcommands");
        if (!rc) rc = colony__resp_array(o, cmd->nsubs * 2);
        for (size_t i = 0; i < cmd->nsubs && !rc; i++)
            rc = docs_entry(o, &cmd->subs[i]);
    }
    return rc;
}

int colony__cmd_command_docs(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    size_t n;
    const colony__broker_command *t = colony__broker_command_table(&n);
    if (argc == 2) {
        int rc = colony__resp_array(&c->out, n * 2);
        for (size_t i = 0; i < n && !rc; i++)
            rc = docs_entry(&c->out, &t[i]);
        return rc;
    }
    size_t found = 0;
    for (size_t i = 2; i < argc; i++)
        if (lookup(&argv[i])) found++;
    int rc = colony__resp_array(&c->out, found * 2);
    for (size_t i = 2; i < argc && !rc; i++) {
        const colony__broker_command *cmd = lookup(&argv[i]);
        if (cmd) rc = docs_entry(&c->out, cmd);
    }
    return rc;
}
