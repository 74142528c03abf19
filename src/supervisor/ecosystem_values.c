/* The ecosystem file's values (ecosystem_parse.h): string lists, words split
 * as PM2 splits args, and scalars read with PM2's and Colony's spellings
 * (durations, sizes). Shared by the app parser (ecosystem_app.c). */
#include <limits.h>
#include <string.h>
#include "core/alloc.h"
#include "supervisor/ecosystem_parse.h"

/* ---- string lists ---- */

void colony__sup_strv_free(char **v)
{
    if (!v) return;
    for (char **p = v; *p; p++)
        colony__free(*p);
    colony__free(v);
}

/* Appends a copy of s (n bytes) to a NULL-terminated vector of *len entries. */
static int strv_push(char ***v, size_t *len, const char *s, size_t n)
{
    if (*len >= MAX_LIST) return COLONY_E2BIG;
    char **grown = colony__realloc(*v, (*len + 2) * sizeof(char *));
    if (!grown) return COLONY_ENOMEM;
    *v = grown;
    if (!(grown[*len] = colony__strndup(s, n))) {
        grown[*len] = NULL;
        return COLONY_ENOMEM;
    }
    grown[++*len] = NULL;
    return 0;
}

int colony__sup_strv_push_str(char ***v, size_t *len, const char *s)
{
    return strv_push(v, len, s, strlen(s));
}

/* A JSON scalar as the text a child sees in argv or its environment. */
int colony__sup_scalar_text(const json_t *v, char *buf, size_t size, const char **out)
{
    if (json_is_string(v))
        *out = json_string_value(v);
    else if (json_is_integer(v))
        snprintf(buf, size, "%lld", (long long)json_integer_value(v)), *out = buf;
    else if (json_is_real(v))
        snprintf(buf, size, "%.17g", json_real_value(v)), *out = buf;
    else if (json_is_boolean(v))
        *out = json_is_true(v) ? "true" : "false";
    else
        return COLONY_EINVAL;
    return 0;
}

/* "a 'b c' \"d\"": split on blanks, quotes group (PM2 splits a string args). */
static int split_words(const char *s, char ***v, size_t *len)
{
    char word[4096];
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == '\n')
            s++;
        if (!*s) break;
        size_t n = 0;
        char quote = 0;
        while (*s && (quote || (*s != ' ' && *s != '\t' && *s != '\n'))) {
            if (!quote && (*s == '\'' || *s == '"'))
                quote = *s;
            else if (quote && *s == quote)
                quote = 0;
            else if (n + 1 < sizeof(word))
                word[n++] = *s;
            else
                return COLONY_E2BIG;
            s++;
        }
        if (quote) return COLONY_EINVAL;
        int rc = strv_push(v, len, word, n);
        if (rc) return rc;
    }
    return 0;
}

/* args / interpreter_args / node_args: a string split into words, or an array. */
int colony__sup_read_words(parse_ctx *c, const json_t *v, char ***out, size_t *len)
{
    int rc = 0;
    if (json_is_string(v)) {
        rc = split_words(json_string_value(v), out, len);
        if (rc == COLONY_EINVAL) return fail(c, "unbalanced quote");
    } else if (json_is_array(v)) {
        size_t i;
        const json_t *item;
        json_array_foreach(v, i, item)
        {
            char buf[64];
            const char *text;
            if (colony__sup_scalar_text(item, buf, sizeof(buf), &text))
                return fail(c, "item %zu: expected a string or a number", i);
            if ((rc = colony__sup_strv_push_str(out, len, text))) break;
        }
    } else {
        return fail(c, "expected a string or an array of strings");
    }
    if (rc == COLONY_E2BIG) return fail(c, "more than %d words", MAX_LIST);
    return rc == COLONY_ENOMEM ? nomem(c) : rc;
}

/* ---- scalars ---- */

int colony__sup_read_string(parse_ctx *c, const json_t *v, char **out)
{
    if (!json_is_string(v) || !*json_string_value(v)) return fail(c, "expected a non-empty string");
    colony__free(*out);
    if (!(*out = colony__strdup(json_string_value(v)))) return nomem(c);
    return 0;
}

int colony__sup_read_bool(parse_ctx *c, const json_t *v, int *out)
{
    if (!json_is_boolean(v)) return fail(c, "expected true or false");
    *out = json_is_true(v);
    return 0;
}

int colony__sup_read_count(parse_ctx *c, const json_t *v, int lo, int hi, int *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return fail(c, "expected a whole number from %d to %d", lo, hi);
    *out = (int)json_integer_value(v);
    return 0;
}

/* A number of ms (PM2) or "1.5s", "2m" (Colony's durations). */
int colony__sup_read_duration(parse_ctx *c, const json_t *v, int64_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = json_integer_value(v);
        return 0;
    }
    if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 1e15) {
        *out = (int64_t)json_real_value(v);
        return 0;
    }
    if (json_is_string(v) && colony_config_parse_duration(json_string_value(v), out) == 0) return 0;
    return fail(c, "expected milliseconds or a duration such as \"1.5s\"");
}

/* A number of bytes, PM2's "200M" / "1G" / "150K", or Colony's "200mb". */
int colony__sup_read_size(parse_ctx *c, const json_t *v, int64_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = json_integer_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char buf[64];
        size_t n = strlen(s);
        if (n > 0 && n < sizeof(buf) - 1 && strchr("kKmMgG", s[n - 1])) {
            snprintf(buf, sizeof(buf), "%sb", s); /* "200M" -> "200Mb" */
            s = buf;
        }
        if (colony_config_parse_size(s, out) == 0) return 0;
    }
    return fail(c, "expected bytes or a size such as \"200M\"");
}
