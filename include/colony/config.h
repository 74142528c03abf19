/* Layered configuration driven by a declarative table of typed settings
 * (Redis's static_configs[]): the same table drives parsing, validation,
 * `--help` and the docs. Layers, lowest first:
 *   built-in defaults < config/default.json < config/<env>.json <
 *   config/local.json < COLONY_* environment variables < command-line flags.
 * Keys are dotted paths ("http.max_body_bytes") matching nested JSON objects;
 * the environment variable for "gateway.port" is COLONY_GATEWAY_PORT and the
 * flag is --gateway.port=VALUE (or --gateway.port VALUE).
 * A bad value is reported with file, line and key, and never half-applied. */
#ifndef COLONY_CONFIG_H
#define COLONY_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>
#include "export.h"

typedef enum colony_config_type {
    COLONY_CONFIG_STRING,
    COLONY_CONFIG_INT,  /* int64 */
    COLONY_CONFIG_BOOL, /* true/false; env and flags also take 1/0, yes/no, on/off */
    COLONY_CONFIG_DOUBLE,
    COLONY_CONFIG_DURATION, /* milliseconds; JSON number (ms) or string "250ms", "5s", "2m", "1h" */
    COLONY_CONFIG_SIZE, /* bytes; JSON number or string "512", "64kb", "8mb", "1gb" (1024-based) */
} colony_config_type;

typedef struct colony_config_setting {
    const char *key; /* dotted path */
    colony_config_type type;
    const char *default_value; /* as text, parsed like an env value; NULL = unset string */
    int reloadable;            /* may change on reload without a restart */
    const char *description;   /* one line, for --help and docs */
    int64_t min, max;          /* inclusive bounds for numeric types; min == max == 0: none */
} colony_config_setting;

/* Where a bad value came from. line is 0 when the source has no lines (env, flag). */
typedef struct colony_config_error {
    char file[256]; /* file path, "environment" or "command line" */
    int line;
    char key[128];
    char reason[256];
} colony_config_error;

typedef struct colony_config_options {
    const char *dir;        /* folder with the JSON files; NULL = "config" */
    const char *env;        /* environment name; NULL = $COLONY_ENV, else "development" */
    const char *env_prefix; /* NULL = "COLONY_" */
    int argc;               /* flags to apply last; argv[0] is not skipped: pass only */
                            /* config flags, the caller strips its own arguments */
    char **argv;
    int use_environment; /* read environment variables (1) or not (0) */
} colony_config_options;
/* Fills o with the defaults: folder "config", $COLONY_ENV, prefix "COLONY_",
 * environment variables read, no flags. */
COLONY_API void colony_config_options_init(colony_config_options *o);

typedef struct colony_config colony_config;

/* Creates a config holding the table's defaults. The table must outlive it.
 * Returns NULL on allocation failure or an invalid table (bad default). */
COLONY_API colony_config *colony_config_new(const colony_config_setting *table, size_t n);
COLONY_API void colony_config_free(colony_config *cfg);

/* Loads every layer. On error returns COLONY_EINVAL (or ENOMEM), fills err and
 * leaves cfg exactly as it was. Missing files are skipped; unknown keys in a
 * file are errors (they are almost always typos). */
COLONY_API int colony_config_load(colony_config *cfg, const colony_config_options *opts,
                                  colony_config_error *err);

/* Getters. The key must be in the table with the matching type; anything else
 * is a programming error and returns 0 / NULL. Strings stay valid until the
 * next successful load or reload. Plain reads without locks: call them on the
 * thread that loads and reloads the config (its loop thread). */
COLONY_API const char *colony_config_get_string(const colony_config *cfg, const char *key);
COLONY_API int64_t colony_config_get_int(const colony_config *cfg, const char *key);
COLONY_API int colony_config_get_bool(const colony_config *cfg, const char *key);
COLONY_API double colony_config_get_double(const colony_config *cfg, const char *key);
/* DURATION (ms) and SIZE (bytes) settings are read with get_int. */

/* Where the current value of key came from: "default", a file path,
 * "environment" or "command line". */
COLONY_API const char *colony_config_source(const colony_config *cfg, const char *key);

/* Called once per setting whose value differs after a reload. applied is 0 for
 * a non-reloadable setting: its old value is kept until restart. The texts are
 * canonical ("1500ms") and NULL for an unset string. */
typedef void (*colony_config_change_cb)(const colony_config_setting *setting, const char *old_text,
                                        const char *new_text, int applied, void *ud);

/* Re-reads every layer with the options of the last load. If anything is
 * invalid, returns COLONY_EINVAL with err filled and keeps the old config;
 * otherwise applies reloadable changes and reports each change to cb. */
COLONY_API int colony_config_reload(colony_config *cfg, colony_config_error *err,
                                    colony_config_change_cb cb, void *ud);

/* Reloads on SIGHUP and whenever a config file in the folder changes
 * (debounced), logging what changed or why the new config was refused.
 * cb (may be NULL) is called after each successful reload that changed
 * something. Stop with colony_config_unwatch() before closing the loop. */
typedef void (*colony_config_reloaded_cb)(colony_config *cfg, void *ud);
COLONY_API int colony_config_watch(colony_config *cfg, uv_loop_t *loop,
                                   colony_config_reloaded_cb cb, void *ud);
COLONY_API void colony_config_unwatch(colony_config *cfg);

/* 1-based line of the value at a dotted path in JSON text ("a.b" is key b in
 * object a; a decimal component indexes an array: "routes.2.path"), or 0 if
 * the path is not there. For daemons that validate their own structured files
 * and must say file, line and reason. Never reads past text[len]. */
COLONY_API int colony_config_json_line(const char *text, size_t len, const char *path);

/* Parses "250ms", "1.5s", "2m", "1h" (bare number = ms) / "512", "64kb", "8mb",
 * "1gb" (bare = bytes), as DURATION and SIZE settings do. 0 or COLONY_EINVAL
 * (bad syntax, negative, overflow). */
COLONY_API int colony_config_parse_duration(const char *text, int64_t *ms);
COLONY_API int colony_config_parse_size(const char *text, int64_t *bytes);

/* ---- structured JSON files ----
 * A JSON document kept with its text, for daemons that validate files of their
 * own (gateway routes, ecosystem files) and must name file, line and reason
 * for an error found anywhere in them. */
typedef struct colony_json_doc colony_json_doc;
typedef struct json_t json_t; /* jansson.h */
/* Reads and parses path (at most 16 MiB; duplicate keys refused). On error
 * returns COLONY_EINVAL (or ENOMEM) with err naming the file and, for a
 * syntax error, the line. The caller frees *out with colony_json_doc_free(). */
COLONY_API int colony_json_doc_load(const char *path, colony_json_doc **out,
                                    colony_config_error *err);
/* The same from text in memory; name stands for the file in errors. */
COLONY_API int colony_json_doc_parse(const char *name, const char *text, size_t len,
                                     colony_json_doc **out, colony_config_error *err);
/* The parsed value (borrowed: lives as long as the document). */
COLONY_API json_t *colony_json_doc_root(const colony_json_doc *d);
COLONY_API const char *colony_json_doc_name(const colony_json_doc *d);
/* Fills err with the document's name, the line of the value at path (a
 * colony_config_json_line path; "" for none) and the formatted reason; returns
 * COLONY_EINVAL so a validator can `return colony_json_doc_error(...)`. */
COLONY_API int colony_json_doc_error(const colony_json_doc *d, colony_config_error *err,
                                     const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
COLONY_API void colony_json_doc_free(colony_json_doc *d);

/* ---- reload triggers ----
 * Calls cb once per burst of triggers: SIGHUP, or a change to one of files (at
 * most 4, watched through their folders so a file replaced by a rename is
 * seen), debounced by 100 ms. n may be 0 (SIGHUP only); a file whose folder does
 * not exist is not watched. For daemons that reload files of their own (the
 * gateway's routes). Returns 0, COLONY_EINVAL or a libuv error; stop with
 * colony_reload_watch_stop()
 * before the loop closes: cb never runs after it, and the watch frees itself. */
typedef struct colony_reload_watch colony_reload_watch;
typedef void (*colony_reload_cb)(void *ud);
COLONY_API int colony_reload_watch_start(uv_loop_t *loop, const char *const *files, size_t n,
                                         colony_reload_cb cb, void *ud, colony_reload_watch **out);
COLONY_API void colony_reload_watch_stop(colony_reload_watch *w);

/* Writes one line per setting (flag, type, default, description) for --help. */
COLONY_API void colony_config_print_help(const colony_config_setting *table, size_t n, FILE *out);
/* Formats an error as "file:line: key: reason" into out. */
COLONY_API const char *colony_config_error_format(const colony_config_error *err, char *out,
                                                  size_t size);

#endif
