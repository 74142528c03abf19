/* Reading the routes file's JSON with errors that name file, line, key and
 * reason: a cursor (the document, the error to fill and the dotted path of
 * the value being read, in its owner's buffer) and typed getters. Shared by
 * every part of the gateway that parses keys of its own (config.c, access.c,
 * ratelimit.c, config_health.c). */
#ifndef COLONY_GATEWAY_PARSE_H
#define COLONY_GATEWAY_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include "colony/config.h"

typedef struct gw_parse {
    const colony_json_doc *doc;
    colony_config_error *err;
    char *path; /* "routes.2.jwt": restored by every getter before it returns */
    size_t size;
} gw_parse;

/* Appends ".key" (or "key" at the top) to the path; returns the old length
 * for pop. A path too long is cut: its error then names no line, never a
 * wrong one. */
size_t colony__gw_parse_push(gw_parse *p, const char *key);
/* Appends an array index: "routes.2". */
size_t colony__gw_parse_push_index(gw_parse *p, size_t i);
void colony__gw_parse_pop(gw_parse *p, size_t len);
/* Fills the error at the path (or at path.key when key is set) and returns
 * COLONY_EINVAL, or COLONY_ENOMEM for the reason "out of memory". */
int colony__gw_parse_fail(gw_parse *p, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Refuses a key of obj that is not in allowed (NULL-terminated). */
int colony__gw_parse_only(gw_parse *p, const json_t *obj, const char *const *allowed);
/* Each getter reads obj.key; an absent key leaves *out as it is (so callers
 * set defaults first) unless the getter says otherwise. */
int colony__gw_parse_string(gw_parse *p, const json_t *obj, const char *key, int required,
                            char **out);
/* 1..max non-empty strings; absent: *n = 0. */
int colony__gw_parse_strings(gw_parse *p, const json_t *obj, const char *key, size_t max,
                             char ***out, size_t *n);
/* An integer in [min, max]. */
int colony__gw_parse_uint(gw_parse *p, const json_t *obj, const char *key, uint64_t min,
                          uint64_t max, uint64_t *out);
/* A time span of 1 ms to 24 h: a number of ms or "250ms", "5s", "1m". */
int colony__gw_parse_interval(gw_parse *p, const json_t *obj, const char *key, uint64_t *ms);
/* A duration of 0 to max_ms, the same forms. */
int colony__gw_parse_duration(gw_parse *p, const json_t *obj, const char *key, uint64_t max_ms,
                              uint64_t *ms);
void colony__gw_strings_free(char **s, size_t n);

#endif
