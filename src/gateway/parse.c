/* The routes file's cursor and typed getters (parse.h). */
#include "gateway/parse.h"
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"

size_t colony__gw_parse_push(gw_parse *p, const char *key)
{
    size_t len = strlen(p->path);
    snprintf(p->path + len, p->size - len, "%s%s", len ? "." : "", key);
    return len;
}

size_t colony__gw_parse_push_index(gw_parse *p, size_t i)
{
    char key[24];
    snprintf(key, sizeof(key), "%zu", i);
    return colony__gw_parse_push(p, key);
}

void colony__gw_parse_pop(gw_parse *p, size_t len)
{
    p->path[len] = '\0';
}

int colony__gw_parse_fail(gw_parse *p, const char *key, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    size_t at = key ? colony__gw_parse_push(p, key) : strlen(p->path);
    int rc = colony_json_doc_error(p->doc, p->err, p->path, "%s", reason);
    colony__gw_parse_pop(p, at);
    if (strcmp(fmt, "out of memory") == 0) return COLONY_ENOMEM;
    return rc == 0 ? COLONY_EINVAL : rc;
}

int colony__gw_parse_only(gw_parse *p, const json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        int known = 0;
        for (const char *const *a = allowed; *a && !known; a++)
            known = strcmp(*a, key) == 0;
        if (!known) return colony__gw_parse_fail(p, key, "unknown key \"%s\"", key);
    }
    return 0;
}

int colony__gw_parse_strings(gw_parse *p, const json_t *obj, const char *key, size_t max,
                             char ***out, size_t *n)
{
    json_t *v = json_object_get(obj, key);
    *n = 0;
    if (!v) return 0;
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > max)
        return colony__gw_parse_fail(p, key, "\"%s\" must be an array of 1 to %zu strings", key,
                                     max);
    if (!(*out = colony__calloc(json_array_size(v), sizeof(char *))))
        return colony__gw_parse_fail(p, key, "out of memory");
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *s = json_array_get(v, i);
        if (!json_is_string(s) || json_string_length(s) == 0 ||
            strlen(json_string_value(s)) != json_string_length(s))
            return colony__gw_parse_fail(p, key, "\"%s\" must hold non-empty strings", key);
        if (!((*out)[(*n)++] = colony__strdup(json_string_value(s))))
            return colony__gw_parse_fail(p, key, "out of memory");
    }
    return 0;
}

int colony__gw_parse_string(gw_parse *p, const json_t *obj, const char *key, int required,
                            char **out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return required ? colony__gw_parse_fail(p, NULL, "\"%s\" is required", key) : 0;
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v))
        return colony__gw_parse_fail(p, key, "\"%s\" must be a non-empty string", key);
    if (!(*out = colony__strdup(json_string_value(v))))
        return colony__gw_parse_fail(p, key, "out of memory");
    return 0;
}

/* Milliseconds from a number or a "250ms" / "5s" string; -1 if neither. */
static int64_t ms_of(const json_t *v)
{
    int64_t value = -1;
    if (json_is_integer(v))
        value = json_integer_value(v);
    else if (!json_is_string(v) || colony_config_parse_duration(json_string_value(v), &value))
        value = -1;
    return value;
}

int colony__gw_parse_duration(gw_parse *p, const json_t *obj, const char *key, uint64_t max_ms,
                              uint64_t *ms)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    int64_t value = ms_of(v);
    if (value < 0 || (uint64_t)value > max_ms)
        return colony__gw_parse_fail(p, key,
                                     "\"%s\" must be a duration from 0 to %llus (\"30s\", or ms)",
                                     key, (unsigned long long)(max_ms / 1000));
    *ms = (uint64_t)value;
    return 0;
}

void colony__gw_strings_free(char **s, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        colony__free(s[i]);
    colony__free(s);
}

int colony__gw_parse_uint(gw_parse *p, const json_t *obj, const char *key, uint64_t min,
                          uint64_t max, uint64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) < min ||
        (uint64_t)json_integer_value(v) > max)
        return colony__gw_parse_fail(p, key, "\"%s\" must be an integer from %llu to %llu", key,
                                     (unsigned long long)min, (unsigned long long)max);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

int colony__gw_parse_interval(gw_parse *p, const json_t *obj, const char *key, uint64_t *ms)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    int64_t value = ms_of(v);
    if (value <= 0 || value > 86400000)
        return colony__gw_parse_fail(
            p, key, "\"%s\" must be a duration from 1ms to 24h (\"250ms\", \"5s\", or ms)", key);
    *ms = (uint64_t)value;
    return 0;
}
