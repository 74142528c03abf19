/* A JSON document kept with its text, for daemons that validate structured
 * files of their own (gateway routes, ecosystem files): every error they find,
 * however deep, can name the file and the line (config.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "core/config_internal.h"

struct colony_json_doc {
    char *name; /* file path, or the name given to parse */
    char *text;
    size_t len;
    json_t *root;
};

void colony_json_doc_free(colony_json_doc *d)
{
    if (!d) return;
    json_decref(d->root);
    colony__free(d->text);
    colony__free(d->name);
    colony__free(d);
}

json_t *colony__json_parse(const char *text, size_t len, json_error_t *err, int *nomem)
{
    unsigned long failed_before = colony__alloc_failed_count();
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, err);
    *nomem = !root && colony__alloc_failed_count() != failed_before;
    return root;
}

/* Takes ownership of text (freed on failure too). */
static int parse_owned(const char *name, char *text, size_t len, colony_json_doc **out,
                       colony_config_error *err)
{
    *out = NULL;
    colony_json_doc *d = colony__calloc(1, sizeof(*d));
    if (!d || !(d->name = colony__strdup(name))) {
        colony__free(d);
        colony__free(text);
        colony__config_error_set(err, name, 0, "", "out of memory");
        return COLONY_ENOMEM;
    }
    d->text = text;
    d->len = len;
    json_error_t jerr;
    int nomem = 0;
    d->root = colony__json_parse(text, len, &jerr, &nomem);
    if (!d->root) {
        if (nomem)
            colony__config_error_set(err, name, 0, "", "out of memory");
        else
            colony__config_error_set(err, name, jerr.line > 0 ? jerr.line : 0, "", "%s",
                                     jerr.text[0] ? jerr.text : "invalid JSON");
        colony_json_doc_free(d);
        return nomem ? COLONY_ENOMEM : COLONY_EINVAL;
    }
    *out = d;
    return 0;
}

int colony_json_doc_parse(const char *name, const char *text, size_t len, colony_json_doc **out,
                          colony_config_error *err)
{
    char *copy = colony__malloc(len + 1);
    if (!copy) {
        *out = NULL;
        colony__config_error_set(err, name, 0, "", "out of memory");
        return COLONY_ENOMEM;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    return parse_owned(name, copy, len, out, err);
}

int colony_json_doc_load(const char *path, colony_json_doc **out, colony_config_error *err)
{
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = colony__config_read_file(path, &text, &len);
    if (rc == COLONY_E2BIG) {
        colony__config_error_set(err, path, 0, "", "file larger than %d bytes",
                                 COLONY__CONFIG_FILE_MAX);
        return COLONY_EINVAL;
    }
    if (rc) {
        colony__config_error_set(err, path, 0, "", "cannot read: %s", colony_strerror(rc));
        return rc == COLONY_ENOMEM ? rc : COLONY_EINVAL;
    }
    return parse_owned(path, text, len, out, err);
}

json_t *colony_json_doc_root(const colony_json_doc *d)
{
    return d->root;
}

const char *colony_json_doc_name(const colony_json_doc *d)
{
    return d->name;
}

int colony_json_doc_error(const colony_json_doc *d, colony_config_error *err, const char *path,
                          const char *fmt, ...)
{
    char reason[sizeof(err->reason)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    int line = path && *path ? colony_config_json_line(d->text, d->len, path) : 0;
    colony__config_error_set(err, d->name, line, path ? path : "", "%s", reason);
    return COLONY_EINVAL;
}
