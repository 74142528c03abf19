/* colony: one binary whose subcommands are Colony's infrastructure. This file
 * only dispatches; each subcommand lives in its own file and uses the public
 * API (include/colony/). */
#include <stdio.h>
#include <string.h>
#include "colony/colony.h"
#include "cli/commands.h"

static const colony_cli_command commands[] = {
    {"version", "print the version and exit", colony_cli_version},
    {"help", "show this help, or a command's help: colony help COMMAND", colony_cli_help},
    {"registry", "run the service registry and KV store (Consul HTTP API)", colony_cli_registry},
    {"gateway", "run the API gateway and load balancer (routes, upstreams, retries)",
     colony_cli_gateway},
    {"broker", "run the message broker (Redis protocol pub/sub; durable streams)",
     colony_cli_broker},
    {"services", "list registered services, instances and health", colony_cli_services},
    {"streams", "list the broker's streams (entries, bytes, groups, pending, lag, dead letters)",
     colony_cli_streams},
    {"publish", "publish a message to a broker stream or topic", colony_cli_publish},
    {"dlq", "list, show, replay or purge a group's dead letters", colony_cli_dlq},
    {"kv", "get, put, delete or list registry keys: colony kv get|put|delete|ls", colony_cli_kv},
    {"up", "start and supervise the apps of colony.json / PM2's ecosystem.json", colony_cli_up},
    {"ps", "list the supervised instances (colony up): status, restarts, CPU, memory",
     colony_cli_ps},
    {"stop", "stop an app's instances (or all) under colony up", colony_cli_stop},
    {"start", "start an app's stopped or errored instances (or all)", colony_cli_start},
    {"restart", "restart an app's instances (or all)", colony_cli_restart},
    {"reload", "replace an app's instances (or all) one by one without downtime",
     colony_cli_reload},
    {"scale", "run N instances of an app (colony up): colony scale APP N", colony_cli_scale},
    {"logs", "print the last lines of an app's logs (or every app's)", colony_cli_logs},
    {"down", "stop every app and the supervisor (colony up)", colony_cli_down},
};

static const size_t command_count = sizeof(commands) / sizeof(commands[0]);

static void usage(FILE *out)
{
    fprintf(out, "usage: colony [--help] [--version] COMMAND [ARGS...]\n\n"
                 "Colony: a microservices platform in one binary.\n\ncommands:\n");
    for (size_t i = 0; i < command_count; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'colony COMMAND --help' for a command's options.\n");
}

int colony_cli_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("colony %s\n", colony_version());
    return 0;
}

static const colony_cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < command_count; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

int colony_cli_help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return 0;
    }
    const colony_cli_command *cmd = find_command(argv[1]);
    if (!cmd) {
        fprintf(stderr, "colony: unknown command '%s'\n", argv[1]);
        return 2;
    }
    char *sub_argv[] = {argv[1], "--help", NULL};
    return cmd->run(2, sub_argv);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) name = "version";
    const colony_cli_command *cmd = find_command(name);
    if (!cmd) {
        fprintf(stderr, "colony: unknown command '%s' (see 'colony --help')\n", name);
        return 2;
    }
    return cmd->run(argc - 1, argv + 1);
}
