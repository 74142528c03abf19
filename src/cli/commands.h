/* The subcommand table's entry type and each subcommand's entry point.
 * A subcommand gets argv with its own name at argv[0] and returns the exit code. */
#ifndef COLONY_CLI_COMMANDS_H
#define COLONY_CLI_COMMANDS_H

typedef struct colony_cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} colony_cli_command;

int colony_cli_version(int argc, char **argv);
int colony_cli_help(int argc, char **argv);
int colony_cli_registry(int argc, char **argv);
int colony_cli_gateway(int argc, char **argv);
int colony_cli_broker(int argc, char **argv);
int colony_cli_services(int argc, char **argv);
int colony_cli_kv(int argc, char **argv);
/* The broker's streams over its HTTP API: cmd_streams.c, cmd_publish.c, cmd_dlq.c. */
int colony_cli_streams(int argc, char **argv);
int colony_cli_publish(int argc, char **argv);
int colony_cli_dlq(int argc, char **argv);
/* The supervisor: cmd_up.c and cmd_ps.c. */
int colony_cli_up(int argc, char **argv);
int colony_cli_ps(int argc, char **argv);
int colony_cli_stop(int argc, char **argv);
int colony_cli_start(int argc, char **argv);
int colony_cli_restart(int argc, char **argv);
int colony_cli_reload(int argc, char **argv);
int colony_cli_scale(int argc, char **argv);
int colony_cli_logs(int argc, char **argv);
int colony_cli_down(int argc, char **argv);

#endif
