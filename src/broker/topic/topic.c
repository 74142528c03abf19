/* Bindings of topics to streams: a small table in memory, the whole of it
 * rewritten atomically on each change (bindings change rarely and are few:
 * a journal would buy nothing). Every pattern is a glob in Redis's syntax, so
 * a name without * ? [ \ matches only itself. File format, one binding per
 * line after the header, both parts hex (topics are binary):
 *   colony-bindings 1
 *   <pattern hex> <stream hex> */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "broker/pubsub.h"
#include "broker/topic/topic.h"
#include "colony/error.h"
#include "core/alloc.h"
#include "core/read_file.h"

#define MAX_BINDINGS 65536
#define MAX_NAME     4096

typedef struct binding {
    char *pattern;
    size_t pattern_len;
    char *stream;
} binding;

struct colony__btopics {
    char *path;
    binding *b;
    size_t n, cap;
};

static void binding_free(binding *b)
{
    colony__free(b->pattern);
    colony__free(b->stream);
}

void colony__btopics_close(colony__btopics *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->n; i++)
        binding_free(&t->b[i]);
    colony__free(t->b);
    colony__free(t->path);
    colony__free(t);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Decodes len hex digits into a new NUL-terminated buffer. */
static char *unhex(const char *h, size_t len, size_t *out_len)
{
    if (len % 2 || !len || len / 2 > MAX_NAME) return NULL;
    char *s = colony__malloc(len / 2 + 1);
    if (!s) return NULL;
    for (size_t i = 0; i < len / 2; i++) {
        int a = hexval(h[2 * i]), b = hexval(h[2 * i + 1]);
        if (a < 0 || b < 0) {
            colony__free(s);
            return NULL;
        }
        s[i] = (char)(a << 4 | b);
    }
    s[len / 2] = '\0';
    *out_len = len / 2;
    return s;
}

static int push(colony__btopics *t, char *pattern, size_t plen, char *stream)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 8;
        binding *nb = colony__realloc(t->b, cap * sizeof(*nb));
        if (!nb) return COLONY_ENOMEM;
        t->b = nb;
        t->cap = cap;
    }
    t->b[t->n++] = (binding){pattern, plen, stream};
    return 0;
}

static int parse(colony__btopics *t, char *text, char *msg, size_t msg_size)
{
    size_t line = 0;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        line++;
        if (line == 1) {
            if (strcmp(l, "colony-bindings 1")) goto bad;
            continue;
        }
        char *sp = strchr(l, ' ');
        if (!sp) goto bad;
        size_t plen, slen;
        char *p = unhex(l, (size_t)(sp - l), &plen);
        char *s = p ? unhex(sp + 1, strlen(sp + 1), &slen) : NULL;
        if (!s || strlen(s) != slen || t->n >= MAX_BINDINGS || push(t, p, plen, s)) {
            colony__free(p);
            colony__free(s);
            goto bad;
        }
    }
    return 0;
bad:
    snprintf(msg, msg_size,
             "%s:%zu: not a binding (want: colony-bindings 1, then <pattern hex> "
             "<stream hex> per line)",
             t->path, line);
    return COLONY_EINVAL;
}

int colony__btopics_open(colony__btopics **out, const char *path, char *msg, size_t msg_size)
{
    colony__btopics *t = colony__calloc(1, sizeof(*t));
    if (!t || !(t->path = colony__strdup(path))) {
        colony__free(t);
        return COLONY_ENOMEM;
    }
    char *buf = NULL;
    int rc = colony__read_file(path, (size_t)64 << 20, &buf, NULL);
    if (rc == -ENOENT)
        rc = 0; /* no bindings yet */
    else if (rc)
        snprintf(msg, msg_size, "%s: %s", path, colony_strerror(rc));
    else
        rc = parse(t, buf, msg, msg_size);
    colony__free(buf);
    if (rc) {
        colony__btopics_close(t);
        return rc;
    }
    *out = t;
    return 0;
}

static void put_hex(FILE *f, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        fprintf(f, "%02x", (unsigned char)s[i]);
}

/* Writes the table: temp file, fsync, rename, fsync of the directory. */
static int save(colony__btopics *t)
{
    char tmp[4200], dir[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", t->path);
    snprintf(dir, sizeof(dir), "%s", t->path);
    FILE *f = fopen(tmp, "we");
    if (!f) return -errno;
    fputs("colony-bindings 1\n", f);
    for (size_t i = 0; i < t->n; i++) {
        put_hex(f, t->b[i].pattern, t->b[i].pattern_len);
        fputc(' ', f);
        put_hex(f, t->b[i].stream, strlen(t->b[i].stream));
        fputc('\n', f);
    }
    int rc = fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -errno;
    if (fclose(f) != 0 && !rc) rc = -errno;
    if (!rc && rename(tmp, t->path) != 0) rc = -errno;
    if (!rc) {
        int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) != 0) rc = -errno;
        if (dfd >= 0) close(dfd);
    }
    if (rc) unlink(tmp);
    return rc;
}

static size_t find(const colony__btopics *t, const char *pattern, size_t plen, const char *stream)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->b[i].pattern_len == plen && !memcmp(t->b[i].pattern, pattern, plen) &&
            !strcmp(t->b[i].stream, stream))
            return i;
    return SIZE_MAX;
}

int colony__btopics_bind(colony__btopics *t, const char *pattern, size_t pattern_len,
                         const char *stream)
{
    if (!pattern_len || !stream || !*stream || pattern_len > MAX_NAME || strlen(stream) > MAX_NAME)
        return COLONY_EINVAL;
    if (find(t, pattern, pattern_len, stream) != SIZE_MAX) return COLONY_EEXIST;
    if (t->n >= MAX_BINDINGS) return COLONY_E2BIG;
    char *p = colony__malloc(pattern_len + 1), *s = colony__strdup(stream);
    int rc = p && s ? 0 : COLONY_ENOMEM;
    if (!rc) {
        memcpy(p, pattern, pattern_len);
        p[pattern_len] = '\0';
        rc = push(t, p, pattern_len, s);
    }
    if (rc) {
        colony__free(p);
        colony__free(s);
        return rc;
    }
    if ((rc = save(t))) { /* memory matches the file */
        binding_free(&t->b[--t->n]);
        return rc;
    }
    return 0;
}

int colony__btopics_unbind(colony__btopics *t, const char *pattern, size_t pattern_len,
                           const char *stream)
{
    size_t i = find(t, pattern, pattern_len, stream);
    if (i == SIZE_MAX) return COLONY_ENOENT;
    binding b = t->b[i];
    memmove(t->b + i, t->b + i + 1, (t->n - i - 1) * sizeof(binding));
    t->n--;
    int rc = save(t);
    if (rc) { /* put it back where it was */
        memmove(t->b + i + 1, t->b + i, (t->n - i) * sizeof(binding));
        t->b[i] = b;
        t->n++;
        return rc;
    }
    binding_free(&b);
    return 0;
}

int colony__btopics_next(const colony__btopics *t, size_t *pos, const char **pattern,
                         size_t *pattern_len, const char **stream)
{
    if (*pos >= t->n) return COLONY_ENOENT;
    const binding *b = &t->b[(*pos)++];
    *pattern = b->pattern;
    *pattern_len = b->pattern_len;
    *stream = b->stream;
    return 0;
}

size_t colony__btopics_count(const colony__btopics *t)
{
    return t->n;
}

/* 1 if binding i matches topic and no earlier matching binding names its stream. */
static int first_match(const colony__btopics *t, size_t i, const char *topic, size_t len)
{
    const binding *b = &t->b[i];
    if (!colony__broker_glob_match(b->pattern, b->pattern_len, topic, len)) return 0;
    for (size_t j = 0; j < i; j++)
        if (!strcmp(t->b[j].stream, b->stream) &&
            colony__broker_glob_match(t->b[j].pattern, t->b[j].pattern_len, topic, len))
            return 0;
    return 1;
}

long colony__btopics_match(const colony__btopics *t, const char *topic, size_t topic_len,
                           colony__btopic_stream_cb cb, void *ud)
{
    long n = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (!first_match(t, i, topic, topic_len)) continue;
        int rc = cb ? cb(ud, t->b[i].stream) : 0;
        if (rc < 0) return rc;
        n++;
    }
    return n;
}

long colony__btopics_publish(colony__btopics *t, colony__bdelivery *d, const char *topic,
                             size_t topic_len, const colony__bpublish *m,
                             colony__btopic_target *out, size_t max_out)
{
    long n = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (!first_match(t, i, topic, topic_len)) continue;
        colony__btopic_target tg = {t->b[i].stream, NULL, {0, 0}, 0};
        tg.err = colony__bdelivery_publish(d, tg.stream, m, &tg.id);
        if (!tg.err) tg.st = colony__bstore_get(colony__bdelivery_store(d), tg.stream);
        if ((size_t)n < max_out) out[n] = tg;
        n++;
    }
    return n;
}
