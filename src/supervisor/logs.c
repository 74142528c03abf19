/* Instance output into log files (runtime.h): one line at a time, tagged
 * "TIME [app:i]" (stderr lines "[app:i err]"), appended with O_APPEND to the
 * app's file and to the combined log; a file about to pass its max_size is
 * rotated first (path.1 .. path.retain), so a line is never split. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "supervisor/runtime.h"

/* moment.js tokens PM2 users write in log_date_format, longest first. */
size_t colony__sup_format_time(const char *fmt, char *buf, size_t size)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    size_t n = 0;
    if (!fmt) {
        gmtime_r(&tv.tv_sec, &tm);
        n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
        n += (size_t)snprintf(buf + n, size - n, ".%03dZ", (int)(tv.tv_usec / 1000));
        return n < size ? n : size - 1;
    }
    localtime_r(&tv.tv_sec, &tm);
    static const struct {
        const char *token;
        const char *spec;
    } map[] = {{"YYYY", "%Y"}, {"YY", "%y"}, {"MM", "%m"}, {"DD", "%d"}, {"HH", "%H"},
               {"mm", "%M"},   {"ss", "%S"}, {"ZZ", "%z"}, {"Z", "%z"},  {"SSS", NULL}};
    buf[0] = '\0';
    for (const char *p = fmt; *p && n + 8 < size;) {
        size_t i = 0, count = sizeof(map) / sizeof(map[0]);
        while (i < count && strncmp(p, map[i].token, strlen(map[i].token)) != 0)
            i++;
        if (i == count) {
            buf[n++] = *p++;
            continue;
        }
        if (!map[i].spec) {
            n += (size_t)snprintf(buf + n, size - n, "%03d", (int)(tv.tv_usec / 1000));
        } else {
            char part[32];
            size_t len = strftime(part, sizeof(part), map[i].spec, &tm);
            if (strcmp(map[i].token, "Z") == 0 && len == 5) { /* +0100 -> +01:00 */
                memmove(part + 4, part + 3, 3);
                part[3] = ':';
                len = 6;
            }
            if (n + len >= size) break;
            memcpy(buf + n, part, len);
            n += len;
        }
        p += strlen(map[i].token);
    }
    buf[n] = '\0';
    return n;
}

int colony__sup_log_path(const sup *s, const sup_app *app, int index, int is_err, char *buf,
                         size_t size)
{
    const char *given = is_err ? app->error_file : app->out_file;
    int per_instance = !app->merge_logs && app->instances > 1;
    int n;
    if (given) {
        char full[PATH_MAX];
        if (given[0] == '/')
            snprintf(full, sizeof(full), "%s", given);
        else
            snprintf(full, sizeof(full), "%s/%s", s->eco.dir, given);
        size_t len = strlen(full);
        if (!per_instance) {
            n = snprintf(buf, size, "%s", full);
        } else if (len > 4 && strcmp(full + len - 4, ".log") == 0) {
            n = snprintf(buf, size, "%.*s-%d.log", (int)(len - 4), full, index);
        } else {
            n = snprintf(buf, size, "%s-%d", full, index);
        }
    } else if (per_instance) {
        n = snprintf(buf, size, "%s/logs/%s-%s-%d.log", s->state_dir, app->name,
                     is_err ? "error" : "out", index);
    } else {
        n = snprintf(buf, size, "%s/logs/%s-%s.log", s->state_dir, app->name,
                     is_err ? "error" : "out");
    }
    return n > 0 && (size_t)n < size ? 0 : COLONY_EINVAL;
}

static int open_log(const char *path)
{
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

/* Opens path as a log file. Only a regular file is ever rotated: an out_file
 * of /dev/null or a FIFO is written to as it is. */
static int logfile_new(const char *path, int64_t max_size, int retain, sup_logfile **out)
{
    sup_logfile *f = colony__calloc(1, sizeof(*f));
    if (!f || !(f->path = colony__strdup(path))) {
        colony__free(f);
        return COLONY_ENOMEM;
    }
    if ((f->fd = open_log(path)) < 0) {
        int rc = -errno;
        COLONY_LOG_ERROR("cannot open a log file", COLONY_LF_STR("path", path),
                         COLONY_LF_STR("error", strerror(errno)));
        colony__free(f->path);
        colony__free(f);
        return rc;
    }
    struct stat st;
    int regular = fstat(f->fd, &st) == 0 && S_ISREG(st.st_mode);
    f->size = regular ? (uint64_t)st.st_size : 0;
    f->max_size = regular ? max_size : 0;
    f->retain = retain;
    f->refs = 1;
    /* The rotated files a previous run left: a rotation renames only those. */
    char old[PATH_MAX + 16];
    while (f->max_size && f->kept < retain &&
           snprintf(old, sizeof(old), "%s.%d", path, f->kept + 1) > 0 && access(old, F_OK) == 0)
        f->kept++;
    *out = f;
    return 0;
}

static void logfile_free(sup_logfile *f)
{
    if (!f) return;
    close(f->fd);
    colony__free(f->path);
    colony__free(f);
}

/* path -> path.1 -> path.2 ... -> path.retain (the oldest is replaced by the
 * rename, so nothing is unlinked on the loop), then a fresh path. A few
 * renames are all the loop waits for. If the new file cannot be opened the
 * old descriptor keeps writing (to path.1): lines are kept, not dropped. */
static void rotate(sup_logfile *f)
{
    char from[PATH_MAX + 16], to[PATH_MAX + 16];
    if (f->retain > 0) {
        for (int k = f->kept < f->retain ? f->kept : f->retain - 1; k >= 1; k--) {
            snprintf(from, sizeof(from), "%s.%d", f->path, k);
            snprintf(to, sizeof(to), "%s.%d", f->path, k + 1);
            rename(from, to); /* ENOENT: fewer files so far */
        }
        snprintf(to, sizeof(to), "%s.1", f->path);
        if (rename(f->path, to) != 0) {
            f->max_size = 0; /* cannot rotate (moved, read-only folder): stop trying */
            return;
        }
    } else if (unlink(f->path) != 0) {
        f->max_size = 0;
        return;
    }
    int fd = open_log(f->path);
    if (fd < 0) {
        COLONY_LOG_ERROR("cannot open a log file after rotation", COLONY_LF_STR("path", f->path),
                         COLONY_LF_STR("error", strerror(errno)));
        f->max_size = 0;
        return;
    }
    close(f->fd);
    f->fd = fd;
    f->size = 0;
    if (f->kept < f->retain) f->kept++;
}

static void write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return; /* a full disk loses log lines, never the supervisor */
        p += w;
        len -= (size_t)w;
    }
}

void colony__sup_logfile_write(sup_logfile *f, const char *line, size_t len)
{
    if (!f) return;
    if (f->max_size > 0 && f->size > 0 && f->size + len > (uint64_t)f->max_size) rotate(f);
    write_all(f->fd, line, len);
    f->size += len;
}

int colony__sup_combined_log_path(const sup *s, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/logs/colony.log", s->state_dir);
    return n > 0 && (size_t)n < size ? 0 : COLONY_EINVAL;
}

int colony__sup_logs_init(sup *s)
{
    int64_t max_size = 0;
    int retain = 0;
    for (size_t a = 0; a < s->eco.napps; a++) {
        if (s->eco.apps[a].log_max_size > max_size) max_size = s->eco.apps[a].log_max_size;
        if (s->eco.apps[a].log_retain > retain) retain = s->eco.apps[a].log_retain;
    }
    char path[PATH_MAX];
    int rc = colony__sup_combined_log_path(s, path, sizeof(path));
    return rc ? rc : logfile_new(path, max_size, retain, &s->combined);
}

void colony__sup_logs_shutdown(sup *s)
{
    logfile_free(s->combined);
    s->combined = NULL;
    colony__map_free(&s->logfiles);
}

/* The file at path, shared with whoever writes to it already. */
static int logfile_get(sup *s, const sup_app *app, const char *path, sup_logfile **out)
{
    sup_logfile *f = colony__map_get(&s->logfiles, path);
    if (f) {
        f->refs++;
        *out = f;
        return 0;
    }
    int rc = logfile_new(path, app->log_max_size, app->log_retain, &f);
    if (rc) return rc;
    if ((rc = colony__map_put(&s->logfiles, path, f)) != 0) {
        logfile_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

static void logfile_put(sup *s, sup_logfile *f)
{
    if (!f || --f->refs > 0) return;
    colony__map_remove(&s->logfiles, f->path);
    logfile_free(f);
}

int colony__sup_logs_open(sup_instance *inst)
{
    sup *s = inst->app->sup;
    char path[PATH_MAX];
    for (int is_err = 0; is_err < 2; is_err++) {
        sup_logfile **slot = is_err ? &inst->err_log : &inst->out_log;
        int rc = colony__sup_log_path(s, inst->app->conf, inst->index, is_err, path, sizeof(path));
        if (!rc) rc = logfile_get(s, inst->app->conf, path, slot);
        if (rc) return rc;
    }
    return 0;
}

void colony__sup_logs_close(sup_instance *inst)
{
    sup *s = inst->app->sup;
    logfile_put(s, inst->out_log);
    logfile_put(s, inst->err_log);
    inst->out_log = inst->err_log = NULL;
}

void colony__sup_log_line(sup_instance *inst, int is_err, const char *line, size_t len)
{
    const sup_app *app = inst->app->conf;
    char head[192];
    size_t n = colony__sup_format_time(app->log_date_format, head, sizeof(head) - 100);
    n += (size_t)snprintf(head + n, sizeof(head) - n, " [%s:%d%s] ", app->name, inst->index,
                          is_err ? " err" : "");
    if (len && line[len - 1] == '\r') len--;
    char out[8192];
    size_t total = n + len + 1;
    if (total > sizeof(out)) len = sizeof(out) - n - 1, total = sizeof(out);
    memcpy(out, head, n);
    memcpy(out + n, line, len);
    out[total - 1] = '\n';
    sup *s = inst->app->sup;
    colony__sup_logfile_write(is_err ? inst->err_log : inst->out_log, out, total);
    colony__sup_logfile_write(s->combined, out, total);
    if (s->echo) write_all(STDOUT_FILENO, out, total);
    if (s->line_hook) s->line_hook(s->line_hook_ud, inst, out, total);
}

void colony__sup_log_event(sup_instance *inst, const char *fmt, ...)
{
    char text[512];
    int n = snprintf(text, sizeof(text), "colony: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text + n, sizeof(text) - (size_t)n, fmt, ap);
    va_end(ap);
    colony__sup_log_line(inst, 1, text, strlen(text));
}
