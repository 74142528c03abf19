/* Instance output into log files (runtime.h): one line at a time, tagged
 * "TIME [app:i]" (stderr lines "[app:i err]"), appended with O_APPEND so
 * instances sharing a merged file never tear each other's lines. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "colony/error.h"
#include "colony/log.h"
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

int colony__sup_logs_open(sup_instance *inst)
{
    sup *s = inst->app->sup;
    char path[PATH_MAX];
    for (int is_err = 0; is_err < 2; is_err++) {
        int rc = colony__sup_log_path(s, inst->app->conf, inst->index, is_err, path, sizeof(path));
        int fd = rc ? -1 : open_log(path);
        if (fd < 0) {
            COLONY_LOG_ERROR("cannot open a log file", COLONY_LF_STR("path", path),
                             COLONY_LF_STR("error", strerror(errno)));
            return rc ? rc : -errno;
        }
        if (is_err)
            inst->err_fd = fd;
        else
            inst->out_fd = fd;
    }
    return 0;
}

void colony__sup_logs_close(sup_instance *inst)
{
    if (inst->out_fd >= 0) close(inst->out_fd);
    if (inst->err_fd >= 0) close(inst->err_fd);
    inst->out_fd = inst->err_fd = -1;
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
    write_all(is_err ? inst->err_fd : inst->out_fd, out, total);
    sup *s = inst->app->sup;
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
