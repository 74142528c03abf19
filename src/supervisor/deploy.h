/* colony deploy: PM2's deploy section of the ecosystem file (deploy.<env>)
 * and the deploy cycle over ssh (setup, update, revert, list, exec). The
 * section is read by deploy_config.c; ssh is spawned and values quoted by
 * deploy_ssh.c; the remote scripts are built and run by deploy_script.c
 * (deploy_steps.h); setup/update/exec are deploy.c, revert/list
 * deploy_history.c, the command line deploy_main.c. */
#ifndef COLONY_SUPERVISOR_DEPLOY_H
#define COLONY_SUPERVISOR_DEPLOY_H

#include <stddef.h>
#include "colony/buf.h"
#include "colony/config.h"

typedef struct sup_deploy_env {
    char *name;         /* the environment: the key under "deploy" */
    char **hosts;       /* NULL-terminated: "host" (a string or an array) */
    size_t nhosts;      /* >= 1 */
    char *user;         /* NULL: ssh's default */
    int port;           /* 0: ssh's default */
    char *key;          /* identity file (-i), "~/" expanded; NULL = none */
    char **ssh_options; /* NULL-terminated, each passed as -o OPTION */
    size_t nssh_options;
    char *repo;
    char *ref;  /* "origin/main" unless given */
    char *path; /* absolute folder on the host */
    char *pre_setup, *post_setup, *pre_deploy_local, *pre_deploy, *post_deploy;
    char **env; /* NULL-terminated "KEY=VALUE", exported to every remote command */
    size_t nenv;
} sup_deploy_env;

/* Reads deploy.<env_name> from the ecosystem file at path (apps[] is not
 * read). 0, or COLONY_EINVAL with err naming file, line and reason (a missing
 * environment names the "deploy" line and the environments there are), or
 * COLONY_ENOMEM. Free a result with colony__sup_deploy_env_free(). */
int colony__sup_deploy_load(const char *path, const char *env_name, sup_deploy_env *out,
                            colony_config_error *err);
/* The same from text; name stands for the file in errors. */
int colony__sup_deploy_parse(const char *name, const char *text, size_t len, const char *env_name,
                             sup_deploy_env *out, colony_config_error *err);
void colony__sup_deploy_env_free(sup_deploy_env *d);

/* For the ecosystem parser: checks every environment of a "deploy" value so
 * `colony up` refuses a broken section with its line (parse_ctx is
 * ecosystem_parse.h's). 0, COLONY_EINVAL or COLONY_ENOMEM. */
struct parse_ctx;
int colony__sup_deploy_check(struct parse_ctx *c, const json_t *deploy);

/* ---- remote commands (deploy_ssh.c) ---- */

/* Appends s to b quoted as one word for a POSIX shell: 'it'\''s'.
 * 0, or colony_buf_append's COLONY_E2BIG / COLONY_ENOMEM. */
int colony__sup_shell_quote(colony_buf *b, const char *s);

/* The result of one command: its exit status and the tail of its stderr. */
typedef struct sup_run_result {
    int status;      /* exit code; 128 + signal when killed; -1 if it did not run */
    char tail[1024]; /* the last bytes of its stderr, NUL-terminated */
} sup_run_result;

/* Runs script (POSIX sh) on host over ssh -o BatchMode=yes with d's user,
 * port, key and ssh_options; the script gets d's env exported first. Its
 * stderr is echoed to ours and its stdout too, unless capture is given: then
 * stdout (up to capture_size - 1 bytes) lands there. 0 when it ran (see
 * res->status), or a negative COLONY_E* when it could not start. */
int colony__sup_deploy_remote(const sup_deploy_env *d, const char *host, const char *script,
                              char *capture, size_t capture_size, sup_run_result *res);
/* argv for that (for tests): NULL-terminated, freed with
 * colony__sup_deploy_argv_free(). 0 or COLONY_ENOMEM / COLONY_E2BIG. */
int colony__sup_deploy_ssh_argv(const sup_deploy_env *d, const char *host, const char *script,
                                char ***argv);
void colony__sup_deploy_argv_free(char **argv);
/* Runs argv (no shell) the same way: stderr echoed and its tail kept. */
int colony__sup_run_argv(char *const *argv, char *capture, size_t capture_size,
                         sup_run_result *res);

/* ---- the deploy cycle (deploy.c); each returns 0 or 1 (a message printed) ---- */

typedef enum sup_deploy_action {
    SUP_DEPLOY_UPDATE,
    SUP_DEPLOY_SETUP,
    SUP_DEPLOY_REVERT,
    SUP_DEPLOY_LIST,
    SUP_DEPLOY_EXEC,
} sup_deploy_action;

/* Runs action on every host of d in turn, stopping at the first failure.
 * revert_n: deploys to go back (revert); exec_cmd: the command (exec). */
int colony__sup_deploy_run(const sup_deploy_env *d, sup_deploy_action action, int revert_n,
                           const char *exec_cmd);

#endif
