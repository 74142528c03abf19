/* Typed parsing of configuration values, from text (defaults, environment,
 * flags) and from JSON (files), into one canonical form per type so a reload
 * can tell a real change from a rewrite ("1s" and 1000 are the same). */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "core/config_internal.h"

#define GOT_MAX 64

typedef struct unit {
    const char *name;
    uint64_t factor;
} unit;

static const unit duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"", 1},
};
static const unit size_units[] = {
    {"b", 1}, {"kb", 1024}, {"mb", 1024 * 1024}, {"gb", 1024 * 1024 * 1024}, {"", 1},
};

void colony__config_error_set(colony_config_error *err, const char *file, int line, const char *key,
                              const char *fmt, ...)
{
    if (!err) return;
    snprintf(err->file, sizeof err->file, "%s", file ? file : "");
    err->line = line;
    snprintf(err->key, sizeof err->key, "%s", key ? key : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->reason, sizeof err->reason, fmt, ap);
    va_end(ap);
}

const char *colony__config_type_name(colony_config_type type)
{
    switch (type) {
    case COLONY_CONFIG_STRING:
        return "string";
    case COLONY_CONFIG_INT:
        return "int";
    case COLONY_CONFIG_BOOL:
        return "bool";
    case COLONY_CONFIG_DOUBLE:
        return "double";
    case COLONY_CONFIG_DURATION:
        return "duration";
    case COLONY_CONFIG_SIZE:
        return "size";
    }
    return "unknown";
}

/* Parses digits[.digits]unit with integer arithmetic (no float rounding
 * surprises): the fraction is scaled by the unit and rounded down. */
static int parse_scaled(const char *text, const unit *units, size_t nunits, int64_t *out)
{
    if (!text) return COLONY_EINVAL;
    const char *p = text;
    uint64_t whole = 0, frac = 0, frac_scale = 1;
    int digits = 0;
    while (*p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p - '0');
        if (whole > ((uint64_t)INT64_MAX - d) / 10) return COLONY_EINVAL;
        whole = whole * 10 + d;
        digits++;
        p++;
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (frac_scale < 1000000000000000000ULL) { /* 18 digits are plenty */
                frac = frac * 10 + (uint64_t)(*p - '0');
                frac_scale *= 10;
            }
            digits++;
            p++;
        }
    }
    if (digits == 0) return COLONY_EINVAL;
    for (size_t i = 0; i < nunits; i++) {
        if (strcasecmp(p, units[i].name) != 0) continue;
        uint64_t f = units[i].factor;
        if (whole > (uint64_t)INT64_MAX / f) return COLONY_EINVAL;
        unsigned __int128 part = (unsigned __int128)frac * f / frac_scale;
        unsigned __int128 total = (unsigned __int128)whole * f + part;
        if (total > (unsigned __int128)INT64_MAX) return COLONY_EINVAL;
        *out = (int64_t)total;
        return 0;
    }
    return COLONY_EINVAL;
}

int colony_config_parse_duration(const char *text, int64_t *ms)
{
    return parse_scaled(text, duration_units, sizeof duration_units / sizeof duration_units[0], ms);
}

int colony_config_parse_size(const char *text, int64_t *bytes)
{
    return parse_scaled(text, size_units, sizeof size_units / sizeof size_units[0], bytes);
}

static int parse_int(const char *text, int64_t *out)
{
    if (!text || !*text || isspace((unsigned char)text[0])) return COLONY_EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end) return COLONY_EINVAL;
    *out = v;
    return 0;
}

static int parse_bool(const char *text, int64_t *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    if (!text) return COLONY_EINVAL;
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) return *out = 1, 0;
        if (strcasecmp(text, no[i]) == 0) return *out = 0, 0;
    }
    return COLONY_EINVAL;
}

static int parse_double(const char *text, double *out)
{
    if (!text || !*text || isspace((unsigned char)text[0])) return COLONY_EINVAL;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (*end || !isfinite(v) || (errno == ERANGE && fabs(v) > 1)) return COLONY_EINVAL;
    *out = v;
    return 0;
}

static int has_bounds(const colony_config_setting *s)
{
    return !(s->min == 0 && s->max == 0);
}

/* "expected an integer between 1 and 65535": what the setting accepts. */
static void describe_expected(const colony_config_setting *s, int from_json, char *out, size_t size)
{
    const char *what = "a value";
    switch (s->type) {
    case COLONY_CONFIG_STRING:
        what = "a string";
        break;
    case COLONY_CONFIG_INT:
        what = "an integer";
        break;
    case COLONY_CONFIG_BOOL:
        what = from_json ? "true or false" : "true/false, 1/0, yes/no or on/off";
        break;
    case COLONY_CONFIG_DOUBLE:
        what = "a number";
        break;
    case COLONY_CONFIG_DURATION:
        what = "a duration (ms, or a string like 250ms, 1.5s, 2m, 1h)";
        break;
    case COLONY_CONFIG_SIZE:
        what = "a size (bytes, or a string like 512b, 64kb, 8mb, 1gb)";
        break;
    }
    if (has_bounds(s) && s->type != COLONY_CONFIG_STRING && s->type != COLONY_CONFIG_BOOL)
        snprintf(out, size, "expected %s between %" PRId64 " and %" PRId64, what, s->min, s->max);
    else
        snprintf(out, size, "expected %s", what);
}

/* Quotes text for a reason, shortened and with control bytes replaced. */
static void quote_text(const char *text, char *out, size_t size)
{
    size_t o = 0, i = 0, len = strlen(text);
    out[o++] = '"';
    for (; i < len && o + 5 < size; i++)
        out[o++] = (unsigned char)text[i] < 0x20 ? '?' : text[i];
    if (i < len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = '\0';
}

static void describe_json(const json_t *v, char *out, size_t size)
{
    if (json_is_object(v)) {
        snprintf(out, size, "an object");
    } else if (json_is_array(v)) {
        snprintf(out, size, "an array");
    } else if (json_is_string(v)) {
        quote_text(json_string_value(v), out, size);
    } else {
        char *dump = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        snprintf(out, size, "%s", dump ? dump : "?");
        free(dump); /* jansson's allocator is the default malloc */
    }
}

static int in_bounds_int(const colony_config_setting *s, int64_t v)
{
    return !has_bounds(s) || (v >= s->min && v <= s->max);
}

/* Formats v canonically and stores it in out (replacing out->text). */
static int store(const colony_config_setting *s, colony__config_value *out, int64_t i, double d,
                 const char *str)
{
    char buf[64];
    const char *text = buf;
    switch (s->type) {
    case COLONY_CONFIG_STRING:
        text = str;
        break;
    case COLONY_CONFIG_INT:
    case COLONY_CONFIG_SIZE:
        snprintf(buf, sizeof buf, "%" PRId64, i);
        break;
    case COLONY_CONFIG_BOOL:
        text = i ? "true" : "false";
        break;
    case COLONY_CONFIG_DURATION:
        snprintf(buf, sizeof buf, "%" PRId64 "ms", i);
        break;
    case COLONY_CONFIG_DOUBLE:
        snprintf(buf, sizeof buf, "%.15g", d);
        if (strtod(buf, NULL) != d) snprintf(buf, sizeof buf, "%.17g", d);
        break;
    }
    char *copy = NULL;
    if (text) {
        copy = colony__strdup(text);
        if (!copy) return COLONY_ENOMEM;
    }
    colony__free(out->text);
    out->text = copy;
    out->i = i;
    out->d = d;
    return 0;
}

/* Checks bounds and stores; shared by the text and JSON paths. got describes
 * the input for the error. */
static int check_and_store(const colony_config_setting *s, colony__config_value *out, int64_t i,
                           double d, const char *got, int from_json, char *reason, size_t rsize)
{
    int ok = 1;
    if (s->type == COLONY_CONFIG_DOUBLE)
        ok = !has_bounds(s) || (d >= (double)s->min && d <= (double)s->max);
    else if (s->type != COLONY_CONFIG_BOOL && s->type != COLONY_CONFIG_STRING)
        ok = in_bounds_int(s, i);
    if (!ok) {
        char expected[160];
        describe_expected(s, from_json, expected, sizeof expected);
        snprintf(reason, rsize, "%s, got %s", expected, got);
        return COLONY_EINVAL;
    }
    return store(s, out, i, d, NULL);
}

int colony__config_value_from_text(const colony_config_setting *s, const char *text,
                                   colony__config_value *out, char *reason, size_t reason_size)
{
    if (s->type == COLONY_CONFIG_STRING) return store(s, out, 0, 0, text);
    char got[GOT_MAX + 8];
    quote_text(text ? text : "", got, sizeof got);
    int64_t i = 0;
    double d = 0;
    int rc = COLONY_EINVAL;
    switch (s->type) {
    case COLONY_CONFIG_INT:
        rc = parse_int(text, &i);
        break;
    case COLONY_CONFIG_BOOL:
        rc = parse_bool(text, &i);
        break;
    case COLONY_CONFIG_DOUBLE:
        rc = parse_double(text, &d);
        break;
    case COLONY_CONFIG_DURATION:
        rc = colony_config_parse_duration(text, &i);
        break;
    case COLONY_CONFIG_SIZE:
        rc = colony_config_parse_size(text, &i);
        break;
    case COLONY_CONFIG_STRING:
        break;
    }
    if (rc != 0) {
        char expected[160];
        describe_expected(s, 0, expected, sizeof expected);
        snprintf(reason, reason_size, "%s, got %s", expected, got);
        return COLONY_EINVAL;
    }
    return check_and_store(s, out, i, d, got, 0, reason, reason_size);
}

/* A non-negative JSON number of ms or bytes, rounded down. */
static int json_whole_amount(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < 0) return COLONY_EINVAL;
        *out = (int64_t)n;
        return 0;
    }
    double d = json_real_value(v);
    if (!isfinite(d) || d < 0 || d >= 9223372036854775807.0) return COLONY_EINVAL;
    *out = (int64_t)d;
    return 0;
}

int colony__config_value_from_json(const colony_config_setting *s, const json_t *v,
                                   colony__config_value *out, char *reason, size_t reason_size)
{
    char got[GOT_MAX + 8];
    describe_json(v, got, sizeof got);
    int64_t i = 0;
    double d = 0;
    int rc = COLONY_EINVAL;
    switch (s->type) {
    case COLONY_CONFIG_STRING:
        if (json_is_string(v)) return store(s, out, 0, 0, json_string_value(v));
        if (json_is_null(v)) return store(s, out, 0, 0, NULL);
        break;
    case COLONY_CONFIG_INT:
        if (json_is_integer(v)) i = (int64_t)json_integer_value(v), rc = 0;
        break;
    case COLONY_CONFIG_BOOL:
        if (json_is_boolean(v)) i = json_is_true(v), rc = 0;
        break;
    case COLONY_CONFIG_DOUBLE:
        if (json_is_number(v)) d = json_number_value(v), rc = isfinite(d) ? 0 : COLONY_EINVAL;
        break;
    case COLONY_CONFIG_DURATION:
        if (json_is_number(v))
            rc = json_whole_amount(v, &i);
        else if (json_is_string(v))
            rc = colony_config_parse_duration(json_string_value(v), &i);
        break;
    case COLONY_CONFIG_SIZE:
        if (json_is_number(v))
            rc = json_whole_amount(v, &i);
        else if (json_is_string(v))
            rc = colony_config_parse_size(json_string_value(v), &i);
        break;
    }
    if (rc != 0) {
        char expected[160];
        describe_expected(s, 1, expected, sizeof expected);
        snprintf(reason, reason_size, "%s, got %s", expected, got);
        return COLONY_EINVAL;
    }
    return check_and_store(s, out, i, d, got, 1, reason, reason_size);
}

void colony__config_values_free(colony__config_value *values, size_t n)
{
    if (!values) return;
    for (size_t i = 0; i < n; i++)
        colony__free(values[i].text);
    colony__free(values);
}
