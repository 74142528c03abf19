/* Live reload: SIGHUP, or a change to one of the config files, starts a short
 * timer; when it fires the config is reloaded once. Editors often write a
 * file several times (truncate, write, rename), and the timer folds those
 * into a single reload. The watcher owns its handles and frees itself in the
 * last close callback, so it can outlive the config it watched. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "core/config_internal.h"

#define DEBOUNCE_MS 100

typedef struct colony__config_watch {
    colony_config *cfg; /* NULL once detached */
    uv_signal_t sighup;
    uv_fs_event_t dir_event;
    uv_timer_t debounce;
    int open_handles;
    colony_config_reloaded_cb cb;
    void *ud;
    int applied; /* changes applied by the reload in progress */
} colony__config_watch;

static void on_handle_closed(uv_handle_t *h)
{
    colony__config_watch *w = h->data;
    if (--w->open_handles == 0) colony__free(w);
}

static void close_handle(colony__config_watch *w, uv_handle_t *h)
{
    if (h->data != w || uv_is_closing(h)) return;
    uv_close(h, on_handle_closed);
}

static void close_all(colony__config_watch *w)
{
    close_handle(w, (uv_handle_t *)&w->debounce);
    close_handle(w, (uv_handle_t *)&w->sighup);
    close_handle(w, (uv_handle_t *)&w->dir_event);
}

static void log_change(const colony_config_setting *s, const char *old_text, const char *new_text,
                       int applied, void *ud)
{
    colony__config_watch *w = ud;
    if (applied) {
        w->applied++;
        COLONY_LOG_INFO("config changed", COLONY_LF_STR("key", s->key),
                        COLONY_LF_STR("old", old_text), COLONY_LF_STR("new", new_text));
    } else {
        COLONY_LOG_WARN("config change needs a restart", COLONY_LF_STR("key", s->key),
                        COLONY_LF_STR("old", old_text), COLONY_LF_STR("new", new_text));
    }
}

static void on_debounced(uv_timer_t *t)
{
    colony__config_watch *w = t->data;
    if (!w->cfg) return;
    colony_config_error err;
    w->applied = 0;
    int rc = colony_config_reload(w->cfg, &err, log_change, w);
    if (rc) {
        char text[768];
        colony_config_error_format(&err, text, sizeof text);
        COLONY_LOG_ERROR("config reload refused, keeping the running config",
                         COLONY_LF_STR("error", text), COLONY_LF_STR("file", err.file),
                         COLONY_LF_INT("line", err.line), COLONY_LF_STR("key", err.key),
                         COLONY_LF_STR("reason", err.reason));
        return;
    }
    if (w->applied && w->cb) w->cb(w->cfg, w->ud);
}

static void schedule(colony__config_watch *w, uint64_t delay_ms)
{
    uv_timer_start(&w->debounce, on_debounced, delay_ms, 0);
}

static void on_sighup(uv_signal_t *s, int signum)
{
    colony__config_watch *w = s->data;
    if (w->cfg) schedule(w, 0);
}

/* Only our own files matter; editors' swap and backup files are ignored. */
static int is_config_file(const colony_config *cfg, const char *filename)
{
    if (!filename) return 1;
    for (int i = 0; i < COLONY__CONFIG_FILE_LAYERS; i++) {
        const char *path = cfg->plan.files[i];
        if (!path) continue;
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (strcmp(base, filename) == 0) return 1;
    }
    return 0;
}

static void on_dir_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    colony__config_watch *w = h->data;
    if (!w->cfg || status < 0) return;
    if (is_config_file(w->cfg, filename)) schedule(w, DEBOUNCE_MS);
}

int colony_config_watch(colony_config *cfg, uv_loop_t *loop, colony_config_reloaded_cb cb, void *ud)
{
    if (!cfg || !loop || !cfg->loaded || cfg->plan.from_memory) return COLONY_EINVAL;
    if (cfg->watch) return COLONY_EBUSY;
    colony__config_watch *w = colony__calloc(1, sizeof *w);
    if (!w) return COLONY_ENOMEM;
    w->cb = cb;
    w->ud = ud;
    int rc = uv_timer_init(loop, &w->debounce);
    if (rc) {
        colony__free(w);
        return rc;
    }
    w->debounce.data = w;
    w->open_handles = 1;
    rc = uv_signal_init(loop, &w->sighup);
    if (rc == 0) {
        w->sighup.data = w;
        w->open_handles++;
        rc = uv_signal_start(&w->sighup, on_sighup, SIGHUP);
    }
    if (rc == 0) rc = uv_fs_event_init(loop, &w->dir_event);
    if (rc == 0) {
        w->dir_event.data = w;
        w->open_handles++;
        rc = uv_fs_event_start(&w->dir_event, on_dir_event, cfg->plan.dir, 0);
        if (rc == UV_ENOENT) {
            /* No config folder: the normal case on embedded defaults; nothing
             * to watch, but SIGHUP still reloads. */
            COLONY_LOG_DEBUG("config folder not found, watching SIGHUP only",
                             COLONY_LF_STR("dir", cfg->plan.dir));
            rc = 0;
        }
    }
    if (rc) {
        close_all(w); /* the close callbacks free w */
        return rc;
    }
    w->cfg = cfg;
    cfg->watch = w;
    return 0;
}

void colony__config_watch_detach(colony_config *cfg)
{
    colony__config_watch *w = cfg->watch;
    if (!w) return;
    cfg->watch = NULL;
    w->cfg = NULL;
    close_all(w);
}

void colony_config_unwatch(colony_config *cfg)
{
    if (cfg) colony__config_watch_detach(cfg);
}
