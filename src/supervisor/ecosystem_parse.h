/* The ecosystem file's parser, shared by ecosystem.c (the whole file: apps[],
 * dependency order) and ecosystem_app.c (one app's keys). Internal. */
#ifndef COLONY_SUPERVISOR_ECOSYSTEM_PARSE_H
#define COLONY_SUPERVISOR_ECOSYSTEM_PARSE_H

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include "colony/error.h"
#include "supervisor/ecosystem.h"

#define MAX_APPS      256
#define MAX_INSTANCES 1024
#define MAX_LIST      256 /* args, env entries, exit codes, dependencies per app */

typedef struct parse_ctx {
    const colony_json_doc *doc;
    const sup_parse_options *opts;
    colony_config_error *err;
    const char *dir;
    char path[160]; /* "apps.3.key" of the value being read */
} parse_ctx;

static inline int set_path(parse_ctx *c, size_t app, const char *key)
{
    snprintf(c->path, sizeof(c->path), "apps.%zu%s%s", app, key ? "." : "", key ? key : "");
    return 0;
}

static inline int fail(parse_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int fail(parse_ctx *c, const char *fmt, ...)
{
    char reason[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    colony_json_doc_error(c->doc, c->err, c->path, "%s", reason);
    /* The key names the setting a user looks for: the path without "apps.N.". */
    return COLONY_EINVAL;
}

static inline int nomem(parse_ctx *c)
{
    colony_json_doc_error(c->doc, c->err, "", "out of memory");
    return COLONY_ENOMEM;
}

static inline void warn(parse_ctx *c, const char *reason)
{
    if (!c->opts->warn) return;
    colony_config_error tmp;
    colony_json_doc_error(c->doc, &tmp, c->path, "%s", reason);
    c->opts->warn(tmp.file, tmp.line, c->path, reason, c->opts->warn_ud);
}
/* Values (ecosystem_values.c). String lists are NULL-terminated vectors; a
 * reader fails with the value's path, line and reason in c->err. */
void colony__sup_strv_free(char **v);
int colony__sup_strv_push_str(char ***v, size_t *len, const char *s);
/* A JSON scalar as the text a child sees in argv or its environment. */
int colony__sup_scalar_text(const json_t *v, char *buf, size_t size, const char **out);
/* args / interpreter_args / node_args: a string split into words, or an array. */
int colony__sup_read_words(parse_ctx *c, const json_t *v, char ***out, size_t *len);
int colony__sup_read_string(parse_ctx *c, const json_t *v, char **out);
int colony__sup_read_bool(parse_ctx *c, const json_t *v, int *out);
int colony__sup_read_count(parse_ctx *c, const json_t *v, int lo, int hi, int *out);
/* A number of ms (PM2) or "1.5s", "2m" (Colony's durations). */
int colony__sup_read_duration(parse_ctx *c, const json_t *v, int64_t *out);
/* A number of bytes, PM2's "200M" / "1G" / "150K", or Colony's "200mb". */
int colony__sup_read_size(parse_ctx *c, const json_t *v, int64_t *out);

/* One element of apps[] into *a (ecosystem_app.c); on failure *a holds what
 * was read, for colony__sup_eco_app_free. */
int colony__sup_eco_parse_app(parse_ctx *c, size_t idx, const json_t *obj, sup_app *a);
void colony__sup_eco_app_free(sup_app *a);

#endif
