/* The control API (control.h). Routes:
 *   GET  /v1/ps                         the instances, as colony__sup_ps
 *   POST /v1/apps/<app|all>/<stop|start|restart>
 *   POST /v1/apps/<app|all>/reload      202: begun; GET /v1/ps "reloads" says
 *                                       how it goes (409 while one runs)
 *   POST /v1/apps/<app>/scale?instances=N
 *   GET  /v1/logs?app=NAME&lines=N      the tails of the log files; with
 *                                       follow=1 the response stays open and
 *                                       carries every new line (chunked)
 *   POST /v1/down                       stop everything and exit
 *   GET  /metrics                       Prometheus text: per instance and the
 *                                       supervisor's own process_* */
#include "supervisor/control.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "colony/error.h"
#include "colony/metrics.h"
#include "colony/request.h"
#include "core/alloc.h"
#include "core/list.h"

#define TAIL_MAX_BYTES (256 * 1024) /* read from the end of each file */
#define LOGS_MAX_LINES 10000

/* A `colony logs -f`: a response left open that new lines are written to. */
typedef struct follower {
    colony__list node;
    colony_request *req;
    char app[72];     /* "" = every app */
    uint64_t dropped; /* lines not sent: the reader was too slow */
} follower;

struct sup_control {
    sup *sup;
    colony__list followers;
    colony_server *server;
    char path[PATH_MAX];
    sup_down_cb down;
    void *down_ud;
    void (*closed)(void *ud);
    void *closed_ud;
};

/* ---- log tails ---- */

typedef struct text_out {
    char *data;
    size_t len, cap;
} text_out;

static int append(text_out *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *grown = colony__realloc(t->data, cap);
        if (!grown) return COLONY_ENOMEM;
        t->data = grown;
        t->cap = cap;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
    return 0;
}

static int tail_file(text_out *t, const char *path, int lines)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    struct stat st;
    char *buf = NULL;
    int rc = 0;
    if (fstat(fd, &st) != 0 || st.st_size == 0) goto out;
    size_t want = st.st_size > TAIL_MAX_BYTES ? TAIL_MAX_BYTES : (size_t)st.st_size;
    if (!(buf = colony__malloc(want))) {
        rc = COLONY_ENOMEM;
        goto out;
    }
    ssize_t got = pread(fd, buf, want, st.st_size - (off_t)want);
    if (got <= 0) goto out;
    size_t end = (size_t)got;
    if (end && buf[end - 1] == '\n') end--;
    size_t start = end;
    int seen = 0;
    while (start > 0 && seen < lines) {
        if (buf[start - 1] == '\n' && ++seen == lines) break;
        start--;
    }
    char head[PATH_MAX + 16];
    int n = snprintf(head, sizeof(head), "==> %s <==\n", path);
    if ((rc = append(t, head, (size_t)n))) goto out;
    if (end > start && ((rc = append(t, buf + start, end - start)) || (rc = append(t, "\n", 1))))
        goto out;
out:
    colony__free(buf);
    close(fd);
    return rc;
}

int colony__sup_logs_tail(const sup *s, const char *app, int lines, char **out, size_t *len)
{
    text_out t = {0};
    int rc = append(&t, "", 0);
    char combined[PATH_MAX];
    if (!rc && !app && colony__sup_combined_log_path(s, combined, sizeof(combined)) == 0)
        rc = tail_file(&t, combined, lines); /* every app: the combined log */
    for (size_t a = 0; !rc && app && a < s->napps; a++) {
        const sup_app *conf = s->apps[a].conf;
        if (app && strcmp(conf->name, app) != 0) continue;
        int files = conf->merge_logs || conf->instances == 1 ? 1 : s->apps[a].ninstances;
        for (int i = 0; !rc && i < files; i++) {
            for (int is_err = 0; !rc && is_err < 2; is_err++) {
                char path[PATH_MAX];
                if (colony__sup_log_path(s, conf, i, is_err, path, sizeof(path)) == 0)
                    rc = tail_file(&t, path, lines);
            }
        }
    }
    if (rc) {
        colony__free(t.data);
        return rc;
    }
    *out = t.data;
    *len = t.len;
    return 0;
}

/* ---- requests ---- */

static void respond_json_new(colony_request *req, int status, json_t *doc)
{
    if (!doc) {
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    colony_respond_json(req, status, doc);
    json_decref(doc);
}

static void do_action(sup_control *c, colony_request *req, const char *rest)
{
    char app[128];
    const char *slash = strchr(rest, '/');
    if (!slash || (size_t)(slash - rest) >= sizeof(app) || slash == rest) {
        colony_respond_error(req, 404, "not_found", "POST /v1/apps/<app|all>/<stop|start|restart>");
        return;
    }
    snprintf(app, sizeof(app), "%.*s", (int)(slash - rest), rest);
    const char *action = slash + 1;
    int rc, status = 200;
    if (strcmp(action, "scale") == 0) {
        const char *text = colony_request_query_param(req, "instances");
        char *end = NULL;
        long n = text && *text ? strtol(text, &end, 10) : -1;
        if (!end || *end || n < 0 || n > SUP_SCALE_MAX) {
            colony_respond_error(req, 400, "bad_request", "instances is 0 to 1024");
            return;
        }
        rc = colony__sup_scale(c->sup, app, (int)n);
        if (rc >= 0) {
            respond_json_new(req, 200,
                             json_pack("{s:s, s:s, s:i, s:i}", "app", app, "action", action,
                                       "before", rc, "instances", (int)n));
            return;
        }
    } else if (strcmp(action, "reload") == 0) {
        rc = colony__sup_reload(c->sup, app);
        status = 202;
    } else if (strcmp(action, "stop") == 0)
        rc = colony__sup_stop(c->sup, app);
    else if (strcmp(action, "start") == 0)
        rc = colony__sup_start_app(c->sup, app);
    else if (strcmp(action, "restart") == 0)
        rc = colony__sup_restart(c->sup, app);
    else {
        colony_respond_error(req, 404, "not_found",
                             "the actions are stop, start, restart, reload and scale");
        return;
    }
    if (rc == COLONY_ENOENT) {
        char msg[200];
        snprintf(msg, sizeof(msg), "no app is named \"%s\"", app);
        colony_respond_error(req, 404, "unknown_app", msg);
        return;
    }
    if (rc == COLONY_EBUSY) {
        colony_respond_error(req, 409, "busy", "a reload of that app is still running");
        return;
    }
    if (rc == COLONY_ENOMEM) {
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    if (rc < 0) {
        colony_respond_error(req, 503, "shutting_down", "the supervisor is stopping");
        return;
    }
    respond_json_new(req, status,
                     json_pack("{s:s, s:s, s:i}", "app", app, "action", action, "instances", rc));
}

static void follower_finished(colony_request *req, int status, void *ud)
{
    (void)req;
    (void)status;
    follower *f = ud;
    colony__list_remove(&f->node);
    colony__free(f);
}

static void on_line(void *ud, const sup_instance *inst, const char *line, size_t len)
{
    sup_control *c = ud;
    colony__list *n, *tmp;
    COLONY__LIST_FOREACH_SAFE(n, tmp, &c->followers)
    {
        follower *f = COLONY__CONTAINER_OF(n, follower, node);
        if (f->app[0] && strcmp(f->app, inst->app->conf->name) != 0) continue;
        /* A reader that does not keep up loses lines rather than growing our memory. */
        if (colony_response_write(f->req, line, len, NULL, NULL) == COLONY_EBUSY) f->dropped++;
    }
}

/* Sends text and keeps the response open for the lines that follow. */
static void start_follow(sup_control *c, colony_request *req, const char *app, const char *text,
                         size_t len)
{
    follower *f = colony__calloc(1, sizeof(*f));
    if (!f) {
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    f->req = req;
    snprintf(f->app, sizeof(f->app), "%s", app ? app : "");
    if (colony_request_on_finish(req, follower_finished, f) != 0) {
        colony__free(f);
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    colony__list_push_back(&c->followers, &f->node);
    colony_response_header(req, "Content-Type", "text/plain; charset=utf-8");
    colony_response_start(req, 200);
    if (len) colony_response_write(req, text, len, NULL, NULL);
}

static void do_logs(sup_control *c, colony_request *req)
{
    const char *app = colony_request_query_param(req, "app");
    const char *lines_text = colony_request_query_param(req, "lines");
    int lines = lines_text ? atoi(lines_text) : 15;
    if (lines <= 0 || lines > LOGS_MAX_LINES) {
        colony_respond_error(req, 400, "bad_request", "lines is 1 to 10000");
        return;
    }
    if (app && *app && strcmp(app, "all") != 0) {
        int known = 0;
        for (size_t a = 0; a < c->sup->napps; a++)
            known |= strcmp(c->sup->apps[a].conf->name, app) == 0;
        if (!known) {
            colony_respond_error(req, 404, "unknown_app", "no app of that name");
            return;
        }
    } else {
        app = NULL;
    }
    char *text;
    size_t len;
    if (colony__sup_logs_tail(c->sup, app, lines, &text, &len) != 0) {
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    const char *follow = colony_request_query_param(req, "follow");
    if (follow && strcmp(follow, "1") == 0)
        start_follow(c, req, app, text, len);
    else
        colony_respond(req, 200, "text/plain; charset=utf-8", text, len);
    colony__free(text);
}

/* A registry built for each scrape from the live state: counters start at
 * the instance's total, so nothing is kept between scrapes. */
static void do_metrics(sup_control *c, colony_request *req)
{
    static const char *const inst_labels[] = {"app", "instance", NULL};
    static const char *const status_labels[] = {"app", "instance", "status", NULL};
    colony_metrics *m = colony_metrics_new();
    colony_metric *restarts =
        m ? colony_metrics_counter(m, "colony_supervisor_instance_restarts_total",
                                   "Restarts of each instance (crashes, memory, users).",
                                   inst_labels)
          : NULL;
    colony_metric *status =
        m ? colony_metrics_gauge(m, "colony_supervisor_instance_status",
                                 "1 for the status each instance is in.", status_labels)
          : NULL;
    colony_metric *memory =
        m ? colony_metrics_gauge(m, "colony_supervisor_instance_memory_bytes",
                                 "Resident memory of each instance.", inst_labels)
          : NULL;
    colony_metric *cpu =
        m ? colony_metrics_gauge(m, "colony_supervisor_instance_cpu_percent",
                                 "CPU use of each instance over the last second.", inst_labels)
          : NULL;
    colony_buf out;
    colony_buf_init(&out, 4u << 20); /* 4 MiB: far more than 1024 instances need */
    int rc =
        restarts && status && memory && cpu ? colony_metrics_register_process(m) : COLONY_ENOMEM;
    for (size_t a = 0; !rc && a < c->sup->napps; a++) {
        for (int i = 0; i < c->sup->apps[a].ninstances; i++) {
            const sup_instance *inst = c->sup->apps[a].instances[i];
            if (inst->retired_slot && inst->status == SUP_STOPPED) continue;
            const char *name = c->sup->apps[a].conf->name;
            char index[16];
            snprintf(index, sizeof(index), "%d", i);
            uint64_t ticks = 0, rss = 0;
            if (inst->pid) colony__sup_proc_usage(inst->pid, &ticks, &rss);
            colony_metric_inc(colony_metric_with(restarts, name, index), inst->restart.restarts);
            colony_metric_set(
                colony_metric_with(status, name, index, colony__sup_status_name(inst->status)), 1);
            colony_metric_set(colony_metric_with(memory, name, index), (double)rss);
            colony_metric_set(colony_metric_with(cpu, name, index), inst->cpu_percent);
        }
    }
    if (!rc) rc = colony_metrics_write(m, &out);
    if (rc)
        colony_respond_error(req, 500, "internal", colony_strerror(rc));
    else
        colony_respond_buf(req, 200, COLONY_METRICS_CONTENT_TYPE, &out);
    colony_buf_free(&out);
    colony_metrics_free(m);
}

static void handle(colony_request *req, void *ud)
{
    sup_control *c = ud;
    const char *method = colony_request_method(req);
    const char *path = colony_request_path(req);
    int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    if (get && strcmp(path, "/v1/ps") == 0) {
        respond_json_new(req, 200, colony__sup_ps(c->sup));
    } else if (post && strncmp(path, "/v1/apps/", 9) == 0) {
        do_action(c, req, path + 9);
    } else if (get && strcmp(path, "/v1/logs") == 0) {
        do_logs(c, req);
    } else if (post && strcmp(path, "/v1/down") == 0) {
        respond_json_new(req, 202, json_pack("{s:s}", "status", "stopping"));
        if (c->down) c->down(c->down_ud);
    } else if (get && strcmp(path, "/metrics") == 0) {
        do_metrics(c, req);
    } else if (get && strcmp(path, "/health") == 0) {
        respond_json_new(req, 200, json_pack("{s:s}", "status", "ok"));
    } else {
        colony_respond_error(req, 404, "not_found", "see docs/supervisor.md for the control API");
    }
}

int colony__sup_control_start(sup *s, const char *dir, sup_down_cb down, void *ud,
                              sup_control **out)
{
    *out = NULL;
    sup_control *c = colony__calloc(1, sizeof(*c));
    if (!c) return COLONY_ENOMEM;
    c->sup = s;
    colony__list_init(&c->followers);
    c->down = down;
    c->down_ud = ud;
    int n = snprintf(c->path, sizeof(c->path), "%s/control.sock", dir);
    if (n <= 0 || (size_t)n >= 100) { /* sun_path holds 108 bytes */
        colony__free(c);
        return COLONY_EINVAL;
    }
    colony_server_options so;
    memset(&so, 0, sizeof(so));
    colony_server_options_init(&so);
    so.max_connections = 64;
    c->server = colony_server_new(s->loop, &so, handle, c);
    if (!c->server) {
        colony__free(c);
        return COLONY_ENOMEM;
    }
    unlink(c->path); /* left by a killed supervisor: no live one holds dir */
    char address[PATH_MAX + 8];
    snprintf(address, sizeof(address), "unix:%s", c->path);
    mode_t old = umask(0077); /* owner only from the first moment */
    int rc = colony_server_listen(c->server, address);
    umask(old);
    if (!rc && chmod(c->path, 0600) != 0) rc = -errno;
    if (rc) {
        colony_server_free(c->server);
        colony__free(c);
        return rc;
    }
    s->line_hook = on_line;
    s->line_hook_ud = c;
    *out = c;
    return 0;
}

static void server_closed(colony_server *srv, void *ud)
{
    sup_control *c = ud;
    colony_server_free(srv);
    void (*cb)(void *) = c->closed;
    void *cb_ud = c->closed_ud;
    colony__free(c);
    if (cb) cb(cb_ud);
}

void colony__sup_control_close(sup_control *c, void (*cb)(void *ud), void *ud)
{
    c->closed = cb;
    c->closed_ud = ud;
    c->sup->line_hook = NULL;
    /* End the followed streams: their readers see a complete response. */
    colony__list *n, *tmp;
    COLONY__LIST_FOREACH_SAFE(n, tmp, &c->followers)
    {
        colony_response_end(COLONY__CONTAINER_OF(n, follower, node)->req);
    }
    unlink(c->path);
    colony_server_shutdown(c->server, 1000, server_closed, c);
}
