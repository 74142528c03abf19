/* Internals shared by config.c (table, layering, reload), config_value.c
 * (typed parsing), config_json.c (JSON layers and key lines) and
 * config_watch.c (SIGHUP and file watching). */
#ifndef COLONY_CORE_CONFIG_INTERNAL_H
#define COLONY_CORE_CONFIG_INTERNAL_H

#include <jansson.h>
#include "colony/config.h"

/* Where a value came from; the three file layers are consecutive. */
enum {
    COLONY__CONFIG_SRC_DEFAULT = 0,
    COLONY__CONFIG_SRC_FILE_DEFAULT = 1, /* <dir>/default.json */
    COLONY__CONFIG_SRC_FILE_ENV = 2,     /* <dir>/<env>.json */
    COLONY__CONFIG_SRC_FILE_LOCAL = 3,   /* <dir>/local.json */
    COLONY__CONFIG_SRC_ENVIRONMENT = 4,
    COLONY__CONFIG_SRC_COMMAND_LINE = 5,
};
#define COLONY__CONFIG_FILE_LAYERS 3
#define COLONY__CONFIG_FILE_MAX    (16 * 1024 * 1024) /* bytes in one config file */

/* Reads a whole file (at most COLONY__CONFIG_FILE_MAX) into a NUL-terminated
 * buffer freed with colony__free. 0, -errno (ENOENT passes through), E2BIG or ENOMEM. */
int colony__config_read_file(const char *path, char **out, size_t *out_len);

/* json_loadb with duplicate keys refused that tells out of memory (which
 * jansson reports as a syntax error) apart: NULL with *nomem set then. */
json_t *colony__json_parse(const char *text, size_t len, json_error_t *err, int *nomem);

/* One setting's current value. text is canonical (it parses back to the same
 * value) and is what reload compares; NULL only for an unset string. */
typedef struct colony__config_value {
    char *text;
    int64_t i; /* INT, BOOL (0/1), DURATION (ms), SIZE (bytes) */
    double d;  /* DOUBLE */
    int source;
} colony__config_value;

/* Everything a load was asked to do, copied so a reload can repeat it. */
typedef struct colony__config_plan {
    char *dir;
    char *env;
    char *files[COLONY__CONFIG_FILE_LAYERS]; /* full paths; NULL = layer skipped */
    char *env_prefix;                        /* NULL = environment not read */
    int argc;
    char **argv;
    int from_memory; /* loaded by colony__config_load_buffer: cannot reload */
} colony__config_plan;

struct colony__config_watch;

struct colony_config {
    const colony_config_setting *table;
    size_t n;
    colony__config_value *values; /* n entries */
    colony__config_plan plan;
    int loaded;
    struct colony__config_watch *watch;
};

/* config_value.c */
/* Sets *out from text (a default, env value or flag). On success replaces
 * out->text and returns 0; COLONY_EINVAL with reason filled, or COLONY_ENOMEM.
 * text NULL is accepted only for STRING (an unset string). */
int colony__config_value_from_text(const colony_config_setting *s, const char *text,
                                   colony__config_value *out, char *reason, size_t reason_size);
/* The same for a JSON value from a file. */
int colony__config_value_from_json(const colony_config_setting *s, const json_t *v,
                                   colony__config_value *out, char *reason, size_t reason_size);
void colony__config_values_free(colony__config_value *values, size_t n);
const char *colony__config_type_name(colony_config_type type);
/* Fills err (which may be NULL); truncates long fields. */
void colony__config_error_set(colony_config_error *err, const char *file, int line, const char *key,
                              const char *fmt, ...) COLONY_PRINTF(5, 6);

/* config.c */
/* Index of key in the table, or -1. key_len is the length to compare. */
long colony__config_find(const colony_config *cfg, const char *key, size_t key_len);
/* Whether some table key starts with prefix followed by a dot. */
int colony__config_is_prefix(const colony_config *cfg, const char *prefix, size_t len);

/* config_json.c */
/* Applies one JSON object (file text) onto values. file names the layer in
 * errors. 0, COLONY_EINVAL (err filled) or COLONY_ENOMEM. */
int colony__config_apply_json(const colony_config *cfg, colony__config_value *values, int source,
                              const char *file, const char *text, size_t len,
                              colony_config_error *err);
/* Reads path and applies it; a missing file is skipped (returns 0). */
int colony__config_apply_file(const colony_config *cfg, colony__config_value *values, int source,
                              const char *path, colony_config_error *err);

/* Loads defaults plus one JSON layer held in memory, named name in errors and
 * in colony_config_source(); for the fuzzer and tests. Same all-or-nothing
 * contract as colony_config_load. Such a config cannot be reloaded. */
int colony__config_load_buffer(colony_config *cfg, const char *name, const char *text, size_t len,
                               colony_config_error *err);

/* config_watch.c: detaches the watcher (handles close on the loop later). */
void colony__config_watch_detach(colony_config *cfg);

#endif
