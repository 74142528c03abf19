/* The set of streams in a data dir:
 *   <dir>/broker.lock           flock'ed while a broker uses the dir; holds its pid
 *   <dir>/streams/<name>/       one folder per stream (name %-escaped)
 *       <ms>-<seq>.seg          segment files, named by their first entry id
 *       groups.jnl              the group journal */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "broker/store/stream.h"
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "core/dir_lock.h"

#define BSTORE_PATH 4096

uint64_t colony__bstore_now(const colony__bstore *s)
{
    if (s->o.clock.now_ms) return s->o.clock.now_ms(s->o.clock.ud);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Stream names become folder names: [A-Za-z0-9_-] and inner dots stay, the
 * rest is %XX, so any name is one safe path component. */
static int encode_name(const char *name, char *out, size_t size)
{
    size_t w = 0;
    if (!*name) return COLONY_EINVAL;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        int keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                   (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
                   (*p == '.' && p != (const unsigned char *)name);
        if (w + 4 > size) return COLONY_E2BIG;
        if (keep)
            out[w++] = (char)*p;
        else
            w += (size_t)snprintf(out + w, 4, "%%%02X", *p);
    }
    out[w] = '\0';
    return 0;
}

static int decode_name(const char *enc, char *out, size_t size)
{
    size_t w = 0;
    for (const char *p = enc; *p; p++) {
        if (w + 1 >= size) return COLONY_E2BIG;
        unsigned v;
        if (*p == '%') {
            if (sscanf(p + 1, "%2X", &v) != 1 || !v) return COLONY_EINVAL;
            out[w++] = (char)v;
            p += 2;
        } else {
            out[w++] = *p;
        }
    }
    out[w] = '\0';
    return 0;
}

static int take_lock(colony__bstore *s, const char *dir, char *msg, size_t msg_size)
{
    int fd = colony__dir_lock(dir, "broker", msg, msg_size);
    if (fd < 0) return fd;
    s->lock_fd = fd;
    return 0;
}

static int make_dir(const char *path, char *msg, size_t msg_size)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST) return 0;
    int err = -errno;
    snprintf(msg, msg_size, "cannot create %s: %s", path, colony_strerror(err));
    return err;
}

static int open_streams(colony__bstore *s, char *msg, size_t msg_size)
{
    DIR *d = opendir(s->dir);
    if (!d) {
        int err = -errno;
        snprintf(msg, msg_size, "cannot read %s: %s", s->dir, colony_strerror(err));
        return err;
    }
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char name[1024], path[BSTORE_PATH];
        if (decode_name(e->d_name, name, sizeof(name))) {
            COLONY_LOG_WARN("broker store: not a stream folder, skipped",
                            COLONY_LF_STR("dir", s->dir), COLONY_LF_STR("name", e->d_name));
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", s->dir, e->d_name);
        colony__bstream *st;
        rc = colony__bstream_open(s, name, path, 0, &st, msg, msg_size);
        if (rc == COLONY_EIO) { /* damaged: this stream stays closed, the others open */
            COLONY_LOG_ERROR("broker store: stream damaged, not opened",
                             COLONY_LF_STR("stream", name), COLONY_LF_STR("error", msg));
            char *why = colony__strdup(msg);
            rc = why && !colony__map_put(&s->damaged, name, why) ? 0 : COLONY_ENOMEM;
            if (rc) colony__free(why);
            *msg = '\0';
            continue;
        }
        if (!rc && (rc = colony__map_put(&s->streams, name, st))) {
            colony__bstream_free(st);
            snprintf(msg, msg_size, "out of memory");
        }
    }
    closedir(d);
    return rc;
}

int colony__bstore_open(colony__bstore **out, const colony__bstore_options *opts, char *msg,
                        size_t msg_size)
{
    *msg = '\0';
    colony__bstore *s = colony__calloc(1, sizeof(*s));
    if (!s) return COLONY_ENOMEM;
    s->lock_fd = -1;
    s->o = *opts;
    if (!s->o.segment_bytes) s->o.segment_bytes = 64u << 20;
    if (!s->o.index_every) s->o.index_every = 64;
    if (!s->o.max_record) s->o.max_record = 16u << 20;
    if (!s->o.journal_compact_bytes) s->o.journal_compact_bytes = 4u << 20;
    size_t n = strlen(opts->dir) + 16;
    int rc = (s->dir = colony__malloc(n)) ? 0 : COLONY_ENOMEM;
    if (!rc) {
        snprintf(s->dir, n, "%s/streams", opts->dir);
        rc = make_dir(opts->dir, msg, msg_size);
    }
    if (!rc) rc = take_lock(s, opts->dir, msg, msg_size);
    if (!rc && s->o.prealloc_bytes && (rc = colony__bprealloc_new(&s->pa, s->o.prealloc_bytes)))
        snprintf(msg, msg_size, "cannot start the preallocation thread: %s", colony_strerror(rc));
    if (!rc) rc = make_dir(s->dir, msg, msg_size);
    if (!rc) rc = open_streams(s, msg, msg_size);
    if (rc) {
        if (rc == COLONY_ENOMEM && !*msg) snprintf(msg, msg_size, "out of memory");
        colony__bstore_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void colony__bstore_close(colony__bstore *s)
{
    if (!s) return;
    colony__bprealloc_free(s->pa); /* first: it may be writing to a file of a stream */
    size_t pos = 0;
    colony__map_slot *sl;
    while ((sl = colony__map_next(&s->streams, &pos)))
        colony__bstream_free(sl->value);
    colony__map_free(&s->streams);
    pos = 0;
    while ((sl = colony__map_next(&s->damaged, &pos)))
        colony__free(sl->value);
    colony__map_free(&s->damaged);
    if (s->lock_fd >= 0) close(s->lock_fd);
    colony__benc_free(&s->enc);
    colony__free(s->strs);
    colony__free(s->dir);
    colony__free(s);
}

colony__bstream *colony__bstore_get(colony__bstore *s, const char *name)
{
    return colony__map_get(&s->streams, name);
}

colony__bstream *colony__bstore_next(const colony__bstore *s, size_t *pos)
{
    colony__map_slot *sl = colony__map_next(&s->streams, pos);
    return sl ? sl->value : NULL;
}

/* Removes a stream's folder and what is in it (no subfolders). */
static int remove_stream_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[BSTORE_PATH];
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d) closedir(d);
    return rmdir(dir) == 0 ? 0 : -errno;
}

const char *colony__bstore_damaged(const colony__bstore *s, const char *name)
{
    return colony__map_get(&s->damaged, name);
}

const char *colony__bstore_damaged_next(const colony__bstore *s, size_t *pos, const char **why)
{
    colony__map_slot *sl = colony__map_next(&s->damaged, pos);
    if (!sl) return NULL;
    if (why) *why = sl->value;
    return sl->key;
}

int colony__bstore_create(colony__bstore *s, const char *name, colony__bstream **out)
{
    if (colony__map_get(&s->streams, name)) return COLONY_EEXIST;
    if (colony__map_get(&s->damaged, name)) return COLONY_EIO;
    char enc[1024], path[BSTORE_PATH], msg[256] = "";
    int rc = encode_name(name, enc, sizeof(enc));
    if (rc) return rc;
    snprintf(path, sizeof(path), "%s/%s", s->dir, enc);
    colony__bstream *st;
    if ((rc = colony__bstream_open(s, name, path, 1, &st, msg, sizeof(msg)))) {
        if (rc != -EEXIST) remove_stream_dir(path);
        return rc;
    }
    if ((rc = colony__map_put(&s->streams, name, st))) {
        colony__bstream_free(st);
        remove_stream_dir(path);
        return rc;
    }
    if (out) *out = st;
    return 0;
}

int colony__bstore_drop(colony__bstore *s, const char *name)
{
    colony__bstream *st = colony__map_remove(&s->streams, name);
    char *why = st ? NULL : colony__map_remove(&s->damaged, name);
    if (why) { /* an operator removes a damaged stream knowingly */
        colony__free(why);
        char enc[1024], path[BSTORE_PATH];
        if (encode_name(name, enc, sizeof(enc))) return COLONY_EINVAL;
        snprintf(path, sizeof(path), "%s/%s", s->dir, enc);
        int rc = remove_stream_dir(path);
        return rc ? rc : colony__bdir_sync(s->dir);
    }
    if (!st) return COLONY_ENOENT;
    int rc = remove_stream_dir(st->dir);
    if (!rc) rc = colony__bdir_sync(s->dir);
    colony__bstream_free(st);
    return rc;
}
