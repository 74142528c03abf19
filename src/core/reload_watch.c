/* A reload trigger (config.h): SIGHUP, or a change to a watched file, starts a
 * short timer; when it fires the callback runs once. Editors often write a
 * file several times (truncate, write, rename), and the timer folds those into
 * one reload. Files are watched through their folder, so a file replaced by a
 * rename is still seen. The watch frees itself once its handles are closed. */
#include <signal.h>
#include <string.h>
#include "colony/config.h"
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "core/closer.h"

#define DEBOUNCE_MS 100
#define MAX_WATCHED 4

typedef struct watched_file {
    uv_fs_event_t event;
    char *dir, *base;
    int started;
} watched_file;

struct colony_reload_watch {
    uv_loop_t *loop;
    uv_signal_t sighup;
    uv_timer_t debounce;
    watched_file files[MAX_WATCHED];
    size_t nfiles;
    colony_reload_cb cb; /* NULL once stopped */
    void *ud;
    colony__closer closer;
};

static void watch_freed(void *ud)
{
    colony_reload_watch *w = ud;
    for (size_t i = 0; i < w->nfiles; i++) {
        colony__free(w->files[i].dir);
        colony__free(w->files[i].base);
    }
    colony__free(w);
}

static void on_debounced(uv_timer_t *t)
{
    colony_reload_watch *w = t->data;
    if (w->cb) w->cb(w->ud);
}

static void on_sighup(uv_signal_t *s, int signum)
{
    (void)signum;
    colony_reload_watch *w = s->data;
    uv_timer_start(&w->debounce, on_debounced, 0, 0);
}

static void on_dir_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    (void)events;
    colony_reload_watch *w = h->data;
    const watched_file *f = (const watched_file *)h;
    if (status < 0 || !w->cb) return;
    /* only our file matters; editors' swap and backup files are ignored */
    if (!filename || strcmp(filename, f->base) == 0)
        uv_timer_start(&w->debounce, on_debounced, DEBOUNCE_MS, 0);
}

static int split_path(watched_file *f, const char *path)
{
    const char *slash = strrchr(path, '/');
    f->dir = slash ? colony__strndup(path, slash == path ? 1 : (size_t)(slash - path))
                   : colony__strdup(".");
    f->base = colony__strdup(slash ? slash + 1 : path);
    return f->dir && f->base ? 0 : COLONY_ENOMEM;
}

void colony_reload_watch_stop(colony_reload_watch *w)
{
    if (!w || !w->cb) return;
    w->cb = NULL;
    colony__closer_init(&w->closer, watch_freed, w);
    colony__closer_close(&w->closer, (uv_handle_t *)&w->debounce);
    colony__closer_close(&w->closer, (uv_handle_t *)&w->sighup);
    for (size_t i = 0; i < w->nfiles; i++)
        if (w->files[i].started)
            colony__closer_close(&w->closer, (uv_handle_t *)&w->files[i].event);
    colony__closer_finish(&w->closer, w->loop);
}

int colony_reload_watch_start(uv_loop_t *loop, const char *const *files, size_t n,
                              colony_reload_cb cb, void *ud, colony_reload_watch **out)
{
    *out = NULL;
    if (!loop || !cb || n > MAX_WATCHED) return COLONY_EINVAL;
    colony_reload_watch *w = colony__calloc(1, sizeof(*w));
    if (!w) return COLONY_ENOMEM;
    w->loop = loop;
    w->cb = cb;
    w->ud = ud;
    uv_timer_init(loop, &w->debounce); /* timers and signals only link the handle */
    uv_signal_init(loop, &w->sighup);
    w->debounce.data = w->sighup.data = w;
    int rc = uv_signal_start(&w->sighup, on_sighup, SIGHUP);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        watched_file *f = &w->files[w->nfiles++];
        rc = split_path(f, files[i]);
        if (rc == 0) rc = uv_fs_event_init(loop, &f->event);
        if (rc == 0) {
            f->started = 1; /* initialised: it must be closed */
            f->event.data = w;
            rc = uv_fs_event_start(&f->event, on_dir_event, f->dir, 0);
            if (rc == UV_ENOENT) {
                /* No such folder (a config folder that was never made):
                 * nothing to watch there; SIGHUP still triggers. */
                COLONY_LOG_DEBUG("folder not found, not watched", COLONY_LF_STR("dir", f->dir));
                rc = 0;
            }
        }
    }
    if (rc) {
        colony_reload_watch_stop(w);
        return rc;
    }
    *out = w;
    return 0;
}
