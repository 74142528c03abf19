/* The ecosystem file: colony.json, or PM2's ecosystem.json unchanged, read
 * into a list of apps with every setting resolved (defaults, the chosen
 * env_<name>, instance count, interpreter, dependency order). */
#ifndef COLONY_SUPERVISOR_ECOSYSTEM_H
#define COLONY_SUPERVISOR_ECOSYSTEM_H

#include <stddef.h>
#include <stdint.h>
#include "colony/config.h"

#define SUP_LOG_MAX_SIZE_DEFAULT (10 * 1024 * 1024)
#define SUP_LOG_RETAIN_DEFAULT   5
#define SUP_LOG_RETAIN_MAX       1000

typedef struct sup_app {
    char *name;
    char **argv; /* NULL-terminated: [interpreter [interpreter_args]] script [args] or cmd */
    size_t argc;
    char *cwd;  /* NULL: the ecosystem file's folder */
    char **env; /* NULL-terminated "KEY=VALUE": env, then env_<name> over it */
    size_t nenv;
    int instances;    /* resolved: >= 1 */
    int port;         /* base port (key "port", else env PORT), 0 = none */
    char *ready_path; /* "/ready": readiness is GET path answering 200; NULL = port accepting */
    int autorestart;  /* 1 */
    int max_restarts; /* 16: unstable exits in a row before "errored" */
    int64_t min_uptime_ms;     /* 1000: a run shorter than this is unstable */
    int64_t restart_delay_ms;  /* 0 */
    int64_t exp_backoff_ms;    /* 0 = off; else first delay, x1.5 per restart */
    int64_t kill_timeout_ms;   /* 1600: SIGTERM, then SIGKILL after this */
    int64_t listen_timeout_ms; /* 3000: readiness wait before it is assumed */
    int64_t max_memory_bytes;  /* 0 = none (parsed, not enforced yet) */
    int *stop_exit_codes;      /* exit codes that are not restarted */
    size_t nstop_exit_codes;
    char *out_file;         /* NULL: <state>/logs/<name>-out[-<i>].log */
    char *error_file;       /* NULL: <state>/logs/<name>-error[-<i>].log */
    int merge_logs;         /* 0: one file per instance (PM2's -<i> suffix) */
    char *log_date_format;  /* moment.js-style (PM2), NULL = ISO 8601 UTC */
    int64_t log_max_size;   /* max_size: 10 MiB; a log file past it is rotated; 0 = never */
    int log_retain;         /* retain: 5 rotated files kept (<file>.1 newest) */
    char *registry_url;     /* "registry": readiness also waits for the instance to pass there */
    char *registry_service; /* the service name it registers as (default: the app's name) */
    char **depends_on;      /* names, each an app of the same file */
    size_t ndepends_on;
} sup_app;

typedef struct sup_ecosystem {
    sup_app *apps; /* in start order: every app after the apps it depends on */
    size_t napps;
    char *dir; /* the file's folder: relative cwd and scripts start here */
} sup_ecosystem;

/* One warning: a key that is unknown, or accepted but not acted upon yet. */
typedef void (*sup_warn_cb)(const char *file, int line, const char *key, const char *reason,
                            void *ud);

typedef struct sup_parse_options {
    const char *env_name; /* --env NAME: env_NAME applies over env; NULL = none */
    int ncpu;             /* for instances "max" / 0 / -1; 0 = ask the system */
    sup_warn_cb warn;     /* NULL = warnings are dropped */
    void *warn_ud;
} sup_parse_options;

/* Reads and resolves path. 0, or COLONY_EINVAL with err naming file, line,
 * key and reason (nothing to free then), or COLONY_ENOMEM. Free a result with
 * colony__sup_ecosystem_free(). */
int colony__sup_ecosystem_load(const char *path, const sup_parse_options *opts, sup_ecosystem *out,
                               colony_config_error *err);
/* The same from text; name stands for the file, dir for its folder. */
int colony__sup_ecosystem_parse(const char *name, const char *dir, const char *text, size_t len,
                                const sup_parse_options *opts, sup_ecosystem *out,
                                colony_config_error *err);
void colony__sup_ecosystem_free(sup_ecosystem *eco);
/* The app named name, or NULL. */
sup_app *colony__sup_ecosystem_find(const sup_ecosystem *eco, const char *name);

#endif
