/* Live reload of the layered config: a colony_reload_watch on its files
 * (SIGHUP or a change, debounced) reloads it once per burst and logs what
 * changed, or why the new config was refused. */
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "core/config_internal.h"

typedef struct colony__config_watch {
    colony_config *cfg;
    colony_reload_watch *trigger;
    colony_config_reloaded_cb cb;
    void *ud;
    int applied; /* changes applied by the reload in progress */
} colony__config_watch;

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

static void on_trigger(void *ud)
{
    colony__config_watch *w = ud;
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

int colony_config_watch(colony_config *cfg, uv_loop_t *loop, colony_config_reloaded_cb cb, void *ud)
{
    if (!cfg || !loop || !cfg->loaded || cfg->plan.from_memory) return COLONY_EINVAL;
    if (cfg->watch) return COLONY_EBUSY;
    colony__config_watch *w = colony__calloc(1, sizeof *w);
    if (!w) return COLONY_ENOMEM;
    w->cfg = cfg;
    w->cb = cb;
    w->ud = ud;
    const char *files[COLONY__CONFIG_FILE_LAYERS];
    size_t n = 0;
    for (int i = 0; i < COLONY__CONFIG_FILE_LAYERS; i++)
        if (cfg->plan.files[i]) files[n++] = cfg->plan.files[i];
    int rc = colony_reload_watch_start(loop, files, n, on_trigger, w, &w->trigger);
    if (rc) {
        colony__free(w);
        return rc;
    }
    cfg->watch = w;
    return 0;
}

/* The trigger never calls back after its stop, so w goes at once; the
 * trigger's handles close on their own and free it. */
void colony__config_watch_detach(colony_config *cfg)
{
    colony__config_watch *w = cfg->watch;
    if (!w) return;
    cfg->watch = NULL;
    colony_reload_watch_stop(w->trigger);
    colony__free(w);
}

void colony_config_unwatch(colony_config *cfg)
{
    if (cfg) colony__config_watch_detach(cfg);
}
