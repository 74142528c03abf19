/* One instance's life (runtime.h): spawn with its environment and pipes, exit
 * and the restart decision, stop with SIGTERM then SIGKILL. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "supervisor/pidfile.h"
#include "supervisor/runtime.h"

extern char **environ;

static uint64_t now_ms(const sup *s)
{
    return colony_clock_now(&s->clock);
}

const char *colony__sup_status_name(sup_status st)
{
    switch (st) {
    case SUP_WAITING:
        return "waiting";
    case SUP_LAUNCHING:
        return "launching";
    case SUP_ONLINE:
        return "online";
    case SUP_RESTARTING:
        return "waiting restart";
    case SUP_STOPPING:
        return "stopping";
    case SUP_STOPPED:
        return "stopped";
    case SUP_ERRORED:
        return "errored";
    }
    return "unknown";
}

int colony__sup_instance_init(sup *s, sup_app_rt *app, int index)
{
    sup_instance *inst = app->instances[index];
    inst->app = app;
    inst->index = index;
    inst->status = SUP_WAITING;
    inst->want_running = 1;
    uv_timer_init(s->loop, &inst->timer);
    inst->timer.data = inst;
    uv_timer_init(s->loop, &inst->probe_timer);
    inst->probe_timer.data = inst;
    uv_timer_init(s->loop, &inst->handover_timer);
    inst->handover_timer.data = inst;
    s->open_handles += 3;
    return colony__sup_logs_open(inst);
}

static void timer_closed(uv_handle_t *h)
{
    sup_instance *inst = h->data;
    colony__sup_handle_released(inst->app->sup);
}

void colony__sup_instance_close(sup_instance *inst)
{
    uv_close((uv_handle_t *)&inst->timer, timer_closed);
    uv_close((uv_handle_t *)&inst->probe_timer, timer_closed);
    uv_close((uv_handle_t *)&inst->handover_timer, timer_closed);
}

/* ---- output: split into lines, tag, write ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    static char chunk[65536]; /* one loop thread: reads never overlap */
    *buf = uv_buf_init(chunk, sizeof(chunk));
}

static void run_handle_closed(uv_handle_t *h)
{
    sup_run *run = h->data;
    if (--run->open_handles > 0) return;
    sup *s = run->inst->app->sup;
    colony__list_remove(&run->node);
    colony__free(run);
    s->open_runs--;
    colony__sup_pump(s);
}

static void flush_partial(sup_run *run, int is_err)
{
    char *line = is_err ? run->err_line : run->out_line;
    size_t *len = is_err ? &run->err_len : &run->out_len;
    if (*len) colony__sup_log_line(run->inst, is_err, line, *len);
    *len = 0;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sup_run *run = stream->data;
    int is_err = stream == (uv_stream_t *)&run->err;
    if (nread < 0) {
        flush_partial(run, is_err);
        uv_close((uv_handle_t *)stream, run_handle_closed);
        return;
    }
    char *line = is_err ? run->err_line : run->out_line;
    size_t *len = is_err ? &run->err_len : &run->out_len;
    const char *p = buf->base, *end = buf->base + nread;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t take = (size_t)((nl ? nl : end) - p);
        size_t room = sizeof(run->out_line) - *len;
        if (take > room) take = room;
        memcpy(line + *len, p, take);
        *len += take;
        p += take;
        if (nl && p == nl) {
            p++;
            flush_partial(run, is_err);
        } else if (*len == sizeof(run->out_line)) {
            flush_partial(run, is_err); /* a very long line is cut, not held */
        }
    }
}

/* ---- exit and the restart decision ---- */

static void spawn_timer_cb(uv_timer_t *t)
{
    sup_instance *inst = t->data;
    if (inst->status == SUP_RESTARTING && inst->want_running) colony__sup_instance_spawn(inst);
}

/* The run ended (or could not start): decide what comes next. */
static void ended(sup_instance *inst, int exit_code, int signal_no)
{
    sup *s = inst->app->sup;
    sup_app *app = inst->app->conf;
    inst->last_exit_code = exit_code;
    inst->last_signal = signal_no;
    if (inst->successor)
        colony__sup_handover_abort(inst, "abandoned: the instance it replaces exited");
    uv_timer_stop(&inst->timer);
    colony__sup_ready_stop(inst);
    if (inst->pid) colony__sup_pidfile_remove(s->state_dir, app->name, inst->index);
    inst->pid = 0;
    if (signal_no)
        colony__sup_log_event(inst, "exited on signal %d", signal_no);
    else
        colony__sup_log_event(inst, "exited with code %d", exit_code);
    if (inst->restart_after_stop && !s->shutting_down) {
        inst->restart_after_stop = 0;
        inst->want_running = 1;
        inst->restart.restarts++;
        colony__sup_instance_spawn(inst);
        return;
    }
    if (!inst->want_running || s->shutting_down) {
        inst->status = SUP_STOPPED;
        colony__sup_pump(s);
        return;
    }
    uint64_t delay;
    sup_next next = colony__sup_restart_on_exit(&inst->app->policy, &inst->restart, now_ms(s),
                                                signal_no ? -1 : exit_code, &delay);
    if (next == SUP_NEXT_RESTART) {
        inst->status = SUP_RESTARTING;
        colony__sup_log_event(inst, "restart %u in %llu ms", inst->restart.restarts,
                              (unsigned long long)delay);
        uv_timer_start(&inst->timer, spawn_timer_cb, delay, 0);
    } else if (next == SUP_NEXT_ERRORED) {
        inst->status = SUP_ERRORED;
        colony__sup_log_event(inst,
                              "errored: %u unstable restarts (each up less than %lld ms); "
                              "not restarted",
                              inst->restart.unstable, (long long)app->min_uptime_ms);
        COLONY_LOG_ERROR("app errored: too many unstable restarts", COLONY_LF_STR("app", app->name),
                         COLONY_LF_INT("instance", inst->index),
                         COLONY_LF_INT("restarts", inst->restart.restarts));
    } else {
        inst->status = SUP_STOPPED;
    }
    colony__sup_pump(s);
}

static void on_process_exit(uv_process_t *proc, int64_t exit_status, int term_signal)
{
    sup_run *run = proc->data;
    sup_instance *inst = run->inst;
    run->exited = 1;
    uv_close((uv_handle_t *)proc, run_handle_closed);
    if (run->role != SUP_RUN_CURRENT) {
        colony__sup_handover_exited(inst, run, (int)exit_status, term_signal);
        return;
    }
    if (inst->run == run) inst->run = NULL;
    ended(inst, (int)exit_status, term_signal);
}

/* The child's environment: ours, then the app's, then its instance's; a
 * variable set again by a later layer is taken from that layer only. */
static char **child_env(const sup_instance *inst, const char *service_id)
{
    const sup_app *app = inst->app->conf;
    char extra[5][192];
    size_t nextra = 0;
    snprintf(extra[nextra++], sizeof(extra[0]), "COLONY_INSTANCE=%d", inst->index);
    snprintf(extra[nextra++], sizeof(extra[0]), "NODE_APP_INSTANCE=%d", inst->index);
    snprintf(extra[nextra++], sizeof(extra[0]), "COLONY_APP=%s", app->name);
    if (app->port) snprintf(extra[nextra++], sizeof(extra[0]), "PORT=%d", app->port + inst->index);
    if (*service_id)
        snprintf(extra[nextra++], sizeof(extra[0]), "COLONY_SERVICE_ID=%s", service_id);
    size_t n = 0;
    while (environ[n])
        n++;
    size_t total = n + app->nenv + nextra;
    const char **all = colony__calloc(total, sizeof(char *));
    char **env = colony__calloc(total + 1, sizeof(char *));
    if (!all || !env) goto fail;
    for (size_t i = 0; i < total; i++)
        all[i] = i < n               ? environ[i]
                 : i < n + app->nenv ? app->env[i - n]
                                     : extra[i - n - app->nenv];
    size_t k = 0;
    for (size_t i = 0; i < total; i++) {
        size_t klen = strcspn(all[i], "=");
        int overridden = 0;
        for (size_t j = i + 1; j < total && !overridden; j++)
            overridden = strncmp(all[j], all[i], klen) == 0 && all[j][klen] == '=';
        if (overridden) continue;
        if (!(env[k++] = colony__strdup(all[i]))) goto fail;
    }
    colony__free(all);
    return env;
fail:
    for (size_t f = 0; env && env[f]; f++)
        colony__free(env[f]);
    colony__free(env);
    colony__free(all);
    return NULL;
}

static void free_env(char **env)
{
    for (char **p = env; p && *p; p++)
        colony__free(*p);
    colony__free(env);
}

/* Spawns a process for the instance with its output pipes read and tagged;
 * on failure logs why and returns the libuv error (nothing left open). */
int colony__sup_run_start(sup_instance *inst, int role, sup_run **out)
{
    sup *s = inst->app->sup;
    sup_app *app = inst->app->conf;
    *out = NULL;
    sup_run *run = colony__calloc(1, sizeof(*run));
    if (run) colony__sup_service_id(inst, run->service_id, sizeof(run->service_id));
    char **env = run ? child_env(inst, run->service_id) : NULL;
    if (!run || !env) {
        colony__free(run);
        free_env(env);
        colony__sup_log_event(inst, "cannot start: out of memory");
        return UV_ENOMEM;
    }
    run->inst = inst;
    run->role = role;
    uv_pipe_init(s->loop, &run->out, 0);
    uv_pipe_init(s->loop, &run->err, 0);
    run->out.data = run->err.data = run->proc.data = run;
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&run->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&run->err;
    uv_process_options_t po;
    memset(&po, 0, sizeof(po));
    po.exit_cb = on_process_exit;
    po.file = app->argv[0];
    po.args = app->argv;
    po.env = env;
    po.cwd = app->cwd;
    /* Its own session: a Ctrl-C at the terminal reaches the supervisor only,
     * which stops instances in order; a stop signals the whole group. */
    po.flags = UV_PROCESS_DETACHED;
    po.stdio_count = 3;
    po.stdio = stdio;
    s->open_runs++;
    colony__list_push_back(&s->runs, &run->node);
    int rc = uv_spawn(s->loop, &run->proc, &po);
    free_env(env);
    if (rc) {
        run->open_handles = 2;
        uv_close((uv_handle_t *)&run->out, run_handle_closed);
        uv_close((uv_handle_t *)&run->err, run_handle_closed);
        colony__sup_log_event(inst, "cannot start %s: %s", app->argv[0], uv_strerror(rc));
        return rc;
    }
    run->open_handles = 3;
    run->pid = run->proc.pid;
    uv_read_start((uv_stream_t *)&run->out, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&run->err, on_alloc, on_read);
    *out = run;
    return 0;
}

void colony__sup_instance_spawn(sup_instance *inst)
{
    sup *s = inst->app->sup;
    sup_app *app = inst->app->conf;
    inst->generation++;
    inst->status = SUP_LAUNCHING;
    colony__sup_restart_started(&inst->restart, now_ms(s));
    sup_run *run;
    if (colony__sup_run_start(inst, SUP_RUN_CURRENT, &run) != 0) {
        ended(inst, 127, 0);
        return;
    }
    inst->run = run;
    inst->pid = run->pid;
    inst->cpu_ticks = 0;
    inst->cpu_sampled_ms = 0;
    inst->cpu_percent = 0;
    colony__sup_pidfile_write(s->state_dir, app->name, inst->index, inst->pid);
    colony__sup_log_event(inst, "started pid %d", inst->pid);
    colony__sup_ready_begin(inst);
}

void colony__sup_close_lingering_runs(sup *s)
{
    colony__list *n, *tmp;
    COLONY__LIST_FOREACH_SAFE(n, tmp, &s->runs)
    {
        sup_run *run = COLONY__CONTAINER_OF(n, sup_run, node);
        if (!run->exited) continue;
        /* The group outlives its leader while a member holds the pipe, so
         * the leader's pid still names that group and no other process. */
        if (run->pid > 0) kill(-run->pid, SIGKILL);
        if (!uv_is_closing((uv_handle_t *)&run->out))
            uv_close((uv_handle_t *)&run->out, run_handle_closed);
        if (!uv_is_closing((uv_handle_t *)&run->err))
            uv_close((uv_handle_t *)&run->err, run_handle_closed);
    }
}

/* ---- stop ---- */

static void kill_timer_cb(uv_timer_t *t)
{
    sup_instance *inst = t->data;
    if (!inst->run || !inst->pid) return;
    colony__sup_log_event(inst, "still running after %lld ms: SIGKILL",
                          (long long)inst->app->conf->kill_timeout_ms);
    kill(-inst->pid, SIGKILL);
    kill(inst->pid, SIGKILL);
}

void colony__sup_instance_stop(sup_instance *inst)
{
    inst->want_running = 0;
    if (inst->successor) colony__sup_handover_abort(inst, "abandoned: the instance is stopping");
    switch (inst->status) {
    case SUP_LAUNCHING:
    case SUP_ONLINE:
        inst->status = SUP_STOPPING;
        colony__sup_ready_stop(inst);
        /* The group (its own session) so a shell's children stop too. */
        if (kill(-inst->pid, SIGTERM) != 0) kill(inst->pid, SIGTERM);
        uv_timer_start(&inst->timer, kill_timer_cb, (uint64_t)inst->app->conf->kill_timeout_ms, 0);
        break;
    case SUP_RESTARTING:
    case SUP_WAITING:
        uv_timer_stop(&inst->timer);
        inst->status = SUP_STOPPED;
        break;
    case SUP_STOPPING:
    case SUP_STOPPED:
    case SUP_ERRORED:
        break;
    }
}
