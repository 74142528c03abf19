/* JSON configuration layers: read a file, decode it with jansson, map nested
 * objects to dotted keys and apply each value. jansson does not report where
 * a value is, so a small scanner over the (already valid) text finds the line
 * of a key when an error needs it. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "core/read_file.h"
#include "core/config_internal.h"

/* ---- line scanner ---------------------------------------------------- */

typedef struct scanner {
    const char *p, *end;
    int line;
    const char *target;
    size_t target_len;
} scanner;

static void skip_ws(scanner *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\r' || *s->p == '\n')) {
        if (*s->p == '\n') s->line++;
        s->p++;
    }
}

static int hex_value(const char *p, const char *end, unsigned *out)
{
    if (end - p < 4) return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t utf8_encode(unsigned cp, unsigned char *out)
{
    if (cp < 0x80) return out[0] = (unsigned char)cp, 1;
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes one character of a JSON string body at s->p into out; returns the
 * byte count or 0 on malformed input. */
static size_t decode_char(scanner *s, unsigned char *out)
{
    if (*s->p != '\\') return out[0] = (unsigned char)*s->p++, 1;
    if (s->end - s->p < 2) return 0;
    char c = s->p[1];
    s->p += 2;
    switch (c) {
    case 'b':
        return out[0] = '\b', 1;
    case 'f':
        return out[0] = '\f', 1;
    case 'n':
        return out[0] = '\n', 1;
    case 'r':
        return out[0] = '\r', 1;
    case 't':
        return out[0] = '\t', 1;
    case 'u':
        break;
    default:
        return out[0] = (unsigned char)c, 1; /* \" \\ \/ */
    }
    unsigned cp, low;
    if (hex_value(s->p, s->end, &cp) != 0) return 0;
    s->p += 4;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' ||
            hex_value(s->p + 2, s->end, &low) != 0 || low < 0xDC00 || low > 0xDFFF)
            return 0;
        s->p += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    return utf8_encode(cp, out);
}

/* Reads the string at s->p (its opening quote) and compares it with
 * target[pos..]. Returns how many target bytes it matched if the whole
 * string is a prefix of target[pos..], -1 if not, -2 on malformed input. */
static long scan_key(scanner *s, size_t pos)
{
    if (s->p >= s->end || *s->p != '"') return -2;
    s->p++;
    size_t k = pos;
    int match = 1;
    while (s->p < s->end && *s->p != '"') {
        unsigned char ch[4];
        size_t n = decode_char(s, ch);
        if (n == 0) return -2;
        for (size_t i = 0; i < n && match; i++) {
            if (k < s->target_len && (unsigned char)s->target[k] == ch[i])
                k++;
            else
                match = 0;
        }
    }
    if (s->p >= s->end) return -2;
    s->p++;
    return match ? (long)(k - pos) : -1;
}

static void skip_string(scanner *s)
{
    s->p++;
    while (s->p < s->end) {
        char c = *s->p;
        if (c == '\\') {
            s->p += s->end - s->p >= 2 ? 2 : 1;
        } else {
            s->p++;
            if (c == '"') return;
        }
    }
}

/* Skips one value (scalar, string, object or array), counting lines. */
static void skip_value(scanner *s)
{
    skip_ws(s);
    if (s->p >= s->end) return;
    if (*s->p == '"') {
        skip_string(s);
        return;
    }
    if (*s->p != '{' && *s->p != '[') {
        while (s->p < s->end && *s->p != ',' && *s->p != '}' && *s->p != ']' && *s->p != ' ' &&
               *s->p != '\t' && *s->p != '\r' && *s->p != '\n')
            s->p++;
        return;
    }
    long depth = 0;
    do {
        char c = *s->p;
        if (c == '"') {
            skip_string(s);
            continue;
        }
        if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']')
            depth--;
        else if (c == '\n')
            s->line++;
        s->p++;
    } while (depth > 0 && s->p < s->end);
}

static int scan_object(scanner *s, size_t base);
static int scan_array(scanner *s, size_t base);

/* Follows the value at s->p (an object or an array) with the target's rest. */
static int descend(scanner *s, size_t base)
{
    return *s->p == '{' ? scan_object(s, base) : scan_array(s, base);
}

/* At an array's '[' whose elements continue the target at base with a decimal
 * index ("routes.2.path"). Returns the line of that element (or of the key
 * below it), or 0 after consuming the array without finding it. */
static int scan_array(scanner *s, size_t base)
{
    size_t end = base, want = 0;
    while (end < s->target_len && s->target[end] >= '0' && s->target[end] <= '9' && want < 1000000)
        want = want * 10 + (size_t)(s->target[end++] - '0');
    int is_index = end > base && (end == s->target_len || s->target[end] == '.');
    s->p++;
    for (size_t i = 0;; i++) {
        skip_ws(s);
        if (s->p >= s->end) return 0;
        if (*s->p == ']') {
            s->p++;
            return 0;
        }
        if (*s->p == ',') {
            s->p++;
            skip_ws(s);
        }
        if (s->p >= s->end) return 0;
        if (is_index && i == want) {
            if (end == s->target_len) return s->line;
            if (*s->p == '{' || *s->p == '[') return descend(s, end + 1);
            return 0;
        }
        const char *before = s->p;
        skip_value(s);
        if (s->p == before) return 0; /* a stray '}' or ':': not valid JSON */
    }
}

/* At an object's '{' whose keys continue the target at base. Returns the line
 * of the target key, or 0 after consuming the object without finding it.
 * Recursion only follows objects on the target's path; each level consumes at
 * least one target byte, so the depth is bounded by the target's length. */
static int scan_object(scanner *s, size_t base)
{
    s->p++;
    for (;;) {
        skip_ws(s);
        if (s->p >= s->end) return 0;
        if (*s->p == '}') {
            s->p++;
            return 0;
        }
        if (*s->p == ',') {
            s->p++;
            continue;
        }
        int key_line = s->line;
        long matched = scan_key(s, base);
        if (matched == -2) return 0;
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':') return 0;
        s->p++;
        skip_ws(s);
        if (matched >= 0) {
            size_t end = base + (size_t)matched;
            if (end == s->target_len) return key_line;
            if (s->target[end] == '.' && s->p < s->end && (*s->p == '{' || *s->p == '[')) {
                int line = descend(s, end + 1);
                if (line) return line;
                continue;
            }
        }
        skip_value(s);
    }
}

int colony_config_json_line(const char *text, size_t len, const char *path)
{
    if (!text || !path) return 0;
    scanner s = {text, text + len, 1, path, strlen(path)};
    skip_ws(&s);
    if (s.p >= s.end || (*s.p != '{' && *s.p != '[')) return 0;
    return descend(&s, 0);
}

/* ---- applying a decoded object --------------------------------------- */

typedef struct layer {
    const colony_config *cfg;
    colony__config_value *values;
    unsigned char *seen; /* per setting: already set by this layer */
    int source;
    const char *file;
    const char *text;
    size_t len;
    colony_config_error *err;
} layer;

static int fail_at_key(layer *l, const char *path, const char *reason)
{
    int line = colony_config_json_line(l->text, l->len, path);
    colony__config_error_set(l->err, l->file, line, path, "%s", reason);
    return COLONY_EINVAL;
}

/* Applies every member of obj, whose keys continue prefix (NULL at the top).
 * Nested objects are followed only where the table has keys below them, so
 * an unknown section is reported once, by its own name. */
static int apply_object(layer *l, const json_t *obj, const char *prefix)
{
    const char *key;
    json_t *value;
    size_t prefix_len = prefix ? strlen(prefix) : 0;
    json_object_foreach((json_t *)obj, key, value)
    {
        size_t key_len = strlen(key);
        char *path = colony__malloc(prefix_len + 1 + key_len + 1);
        if (!path) {
            colony__config_error_set(l->err, l->file, 0, "", "out of memory");
            return COLONY_ENOMEM;
        }
        size_t path_len = 0;
        if (prefix) {
            memcpy(path, prefix, prefix_len);
            path[prefix_len] = '.';
            path_len = prefix_len + 1;
        }
        memcpy(path + path_len, key, key_len + 1);
        path_len += key_len;

        int rc = 0;
        long idx = colony__config_find(l->cfg, path, path_len);
        if (idx >= 0) {
            const colony_config_setting *s = &l->cfg->table[idx];
            char reason[256];
            if (l->seen[idx]) {
                rc = fail_at_key(l, path, "set twice in this file");
            } else {
                l->seen[idx] = 1;
                rc = colony__config_value_from_json(s, value, &l->values[idx], reason,
                                                    sizeof reason);
                if (rc == COLONY_EINVAL)
                    rc = fail_at_key(l, path, reason);
                else if (rc == COLONY_ENOMEM)
                    colony__config_error_set(l->err, l->file, 0, path, "out of memory");
                else
                    l->values[idx].source = l->source;
            }
        } else if (json_is_object(value) && colony__config_is_prefix(l->cfg, path, path_len)) {
            rc = apply_object(l, value, path);
        } else {
            rc = fail_at_key(l, path, "unknown setting (a typo?)");
        }
        colony__free(path);
        if (rc) return rc;
    }
    return 0;
}

static int first_token_line(const char *text, size_t len)
{
    scanner s = {text, text + len, 1, "", 0};
    skip_ws(&s);
    return s.line;
}

int colony__config_apply_json(const colony_config *cfg, colony__config_value *values, int source,
                              const char *file, const char *text, size_t len,
                              colony_config_error *err)
{
    json_error_t jerr;
    int nomem = 0;
    json_t *root = colony__json_parse(text, len, &jerr, &nomem);
    if (!root) {
        if (nomem) {
            colony__config_error_set(err, file, 0, "", "out of memory");
            return COLONY_ENOMEM;
        }
        colony__config_error_set(err, file, jerr.line > 0 ? jerr.line : 0, "", "%s",
                                 jerr.text[0] ? jerr.text : "invalid JSON");
        return COLONY_EINVAL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        colony__config_error_set(err, file, first_token_line(text, len), "",
                                 "the top level must be a JSON object");
        return COLONY_EINVAL;
    }
    layer l = {cfg, values, colony__calloc(cfg->n, 1), source, file, text, len, err};
    int rc;
    if (!l.seen) {
        colony__config_error_set(err, file, 0, "", "out of memory");
        rc = COLONY_ENOMEM;
    } else {
        rc = apply_object(&l, root, NULL);
    }
    colony__free(l.seen);
    json_decref(root);
    return rc;
}

/* ENOENT passes through so the caller can skip a missing layer. */
int colony__config_read_file(const char *path, char **out, size_t *out_len)
{
    return colony__read_file(path, COLONY__CONFIG_FILE_MAX, out, out_len);
}

int colony__config_apply_file(const colony_config *cfg, colony__config_value *values, int source,
                              const char *path, colony_config_error *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = colony__config_read_file(path, &text, &len);
    if (rc == -ENOENT) return 0;
    if (rc == COLONY_ENOMEM) {
        colony__config_error_set(err, path, 0, "", "out of memory");
        return rc;
    }
    if (rc == COLONY_E2BIG) {
        colony__config_error_set(err, path, 0, "", "file larger than %d bytes",
                                 COLONY__CONFIG_FILE_MAX);
        return COLONY_EINVAL;
    }
    if (rc != 0) {
        colony__config_error_set(err, path, 0, "", "cannot read: %s", strerror(-rc));
        return COLONY_EINVAL;
    }
    rc = colony__config_apply_json(cfg, values, source, path, text, len, err);
    colony__free(text);
    return rc;
}
