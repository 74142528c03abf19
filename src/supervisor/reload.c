/* Zero-downtime reload (runtime.h), one instance at a time: a successor is
 * spawned beside the running process with the same PORT (the app shares the
 * port with SO_REUSEPORT, as a Colony service with workers >= 2 does); once
 * the successor's own process listens on that port it becomes the instance,
 * and the old process gets SIGTERM (it deregisters and drains), SIGKILL
 * after kill_timeout. The next instance's turn comes when the old one has
 * exited.
 *
 * Not one connection is lost on the way: before the SIGTERM, the old
 * process's listening sockets on the port get a socket filter that drops
 * SYNs (the supervisor takes a copy of each with pidfd_getfd). New clients'
 * SYNs to those sockets go unanswered and are sent again after a second, by
 * when the sockets are closed and the kernel hands them to the successor;
 * what the old sockets had queued is accepted by the old process in the
 * FENCE_MS before its SIGTERM. Without the filter, closing a SO_REUSEPORT
 * socket resets the connections in its accept queue. A successor not listening within
 * listen_timeout is killed and the old process keeps serving: the reload stops there, failed. */
#include <dirent.h>
#include <linux/filter.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "colony/error.h"
#include "colony/log.h"
#include "supervisor/pidfile.h"
#include "supervisor/runtime.h"

#define HANDOVER_POLL_MS 50
#define MAX_LISTENERS    64 /* listening sockets on one port that we look at */
#define FENCE_MS         50 /* from the SYN filter to the SIGTERM: the queue drains */

static uint64_t now_ms(const sup *s)
{
    return colony_clock_now(&s->clock);
}

/* ---- does this process listen on the port? ---- */

/* The inodes of the TCP sockets in LISTEN state on port (v4 and v6). */
static size_t listening_inodes(int port, unsigned long *inodes, size_t max)
{
    static const char *const tables[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    size_t n = 0;
    for (size_t t = 0; t < 2; t++) {
        FILE *f = fopen(tables[t], "re");
        if (!f) continue;
        char line[512];
        while (fgets(line, sizeof(line), f) && n < max) {
            unsigned lport, state;
            unsigned long inode;
            if (sscanf(line, " %*d: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x %*s %*s %*s %*d %*d %lu",
                       &lport, &state, &inode) == 3 &&
                state == 0x0A && (int)lport == port && inode)
                inodes[n++] = inode;
        }
        fclose(f);
    }
    return n;
}

/* With a listening socket found: 1 = stop; fd is the holder's number. */
typedef int (*listener_fn)(int pid, int fd, void *ud);

/* Calls fn (when not NULL) for each of pid's descriptors that is one of the
 * sockets; returns how many there are (fn may stop the walk early). */
static int each_listener(int pid, const unsigned long *inodes, size_t n, listener_fn fn, void *ud)
{
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0, stop = 0;
    struct dirent *e;
    while (!stop && (e = readdir(d))) {
        char path[384], target[64];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        ssize_t len = readlink(path, target, sizeof(target) - 1);
        if (len <= 0) continue;
        target[len] = '\0';
        unsigned long inode;
        if (sscanf(target, "socket:[%lu]", &inode) != 1) continue;
        for (size_t i = 0; i < n; i++) {
            if (inodes[i] != inode) continue;
            found++;
            stop = fn ? fn(pid, atoi(e->d_name), ud) : 1;
            break;
        }
    }
    closedir(d);
    return found;
}

/* Calls each_listener for pid and its children (a shell that did not exec);
 * returns how many listening sockets on port they hold. */
static int tree_listeners(int pid, int port, listener_fn fn, void *ud)
{
    unsigned long inodes[MAX_LISTENERS];
    size_t n = listening_inodes(port, inodes, MAX_LISTENERS);
    if (!n) return 0;
    int found = each_listener(pid, inodes, n, fn, ud);
    if (found && !fn) return found;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
    FILE *f = fopen(path, "re");
    if (!f) return found;
    int child;
    while (fscanf(f, "%d", &child) == 1)
        found += each_listener(child, inodes, n, fn, ud);
    fclose(f);
    return found;
}

/* pid, or a child of it, holds a socket listening on port. The shared port
 * cannot tell the old process from the new by connecting to it, so we ask
 * the kernel whose socket it is. */
static int tree_listens_on(int pid, int port)
{
    return tree_listeners(pid, port, NULL, NULL) > 0;
}

/* Attaches the SYN-dropping filter to pid's descriptor fd (a copy taken with
 * pidfd_getfd, closed again: the filter stays on the socket). */
static int fence_one(int pid, int fd, void *ud)
{
    int *fenced = ud;
    /* TCP header at offset 0: flags at byte 13; SYN without ACK -> drop. */
    static struct sock_filter drop_syn[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
        BPF_STMT(BPF_RET | BPF_K, 0),
    };
    struct sock_fprog prog = {.len = sizeof(drop_syn) / sizeof(drop_syn[0]), .filter = drop_syn};
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) return 0;
    int copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    close(pidfd);
    if (copy < 0) return 0;
    if (setsockopt(copy, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) == 0) (*fenced)++;
    close(copy);
    return 0;
}

/* Fences every socket of pid (and children) listening on port: the number
 * fenced, and in *found the number there are. */
static int fence_listeners(int pid, int port, int *found)
{
    int fenced = 0;
    *found = tree_listeners(pid, port, fence_one, &fenced);
    return fenced;
}

/* ---- the reload of one app ---- */

static void reload_step(sup_app_rt *app);

static void finish(sup_app_rt *app, int failed, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void finish(sup_app_rt *app, int failed, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(app->reload_message, sizeof(app->reload_message), fmt, ap);
    va_end(ap);
    app->reloading = 0;
    app->reload_failed = failed;
    if (failed)
        COLONY_LOG_ERROR("reload failed", COLONY_LF_STR("app", app->conf->name),
                         COLONY_LF_STR("reason", app->reload_message));
    else
        COLONY_LOG_INFO("reloaded", COLONY_LF_STR("app", app->conf->name),
                        COLONY_LF_INT("instances", app->reload_done));
}

static void retiree_kill(uv_timer_t *t)
{
    sup_instance *inst = t->data;
    if (!inst->retiring || inst->retiring->exited) return;
    int pid = inst->retiring->pid;
    colony__sup_log_event(inst, "reload: old pid %d still running after %lld ms: SIGKILL", pid,
                          (long long)inst->app->conf->kill_timeout_ms);
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
}

/* FENCE_MS after the fence: the old process's queue is empty; SIGTERM. */
static void retiree_term(uv_timer_t *t)
{
    sup_instance *inst = t->data;
    sup_run *old = inst->retiring;
    if (!old || old->exited) return;
    if (kill(-old->pid, SIGTERM) != 0) kill(old->pid, SIGTERM);
    uv_timer_start(&inst->handover_timer, retiree_kill, (uint64_t)inst->app->conf->kill_timeout_ms,
                   0);
}

/* The successor is ready: it becomes the instance; the old process drains. */
static void switch_over(sup_instance *inst)
{
    sup *s = inst->app->sup;
    sup_run *old = inst->run, *next = inst->successor;
    inst->successor = NULL;
    next->role = SUP_RUN_CURRENT;
    inst->run = next;
    inst->pid = next->pid;
    inst->generation++; /* a probe of the old run is stale */
    inst->restart.restarts++;
    colony__sup_restart_started(&inst->restart, now_ms(s));
    inst->cpu_ticks = 0;
    inst->cpu_sampled_ms = 0;
    inst->cpu_percent = 0;
    inst->app->reload_done++;
    colony__sup_pidfile_write(s->state_dir, inst->app->conf->name, inst->index, inst->pid);
    colony__sup_log_event(inst, "reload: pid %d ready; stopping old pid %d", next->pid,
                          old ? old->pid : 0);
    if (!old) { /* cannot happen: the old run's end abandons the handover */
        reload_step(inst->app);
        return;
    }
    old->role = SUP_RUN_RETIRED;
    inst->retiring = old;
    int port = inst->app->conf->port ? inst->app->conf->port + inst->index : 0;
    int found = 0, fenced = port ? fence_listeners(old->pid, port, &found) : 0;
    if (fenced < found)
        colony__sup_log_event(inst,
                              "reload: could not filter new connections off %d of the old "
                              "process's %d listening sockets (pidfd_getfd): connections queued "
                              "on them when it closes them are reset",
                              found - fenced, found);
    uv_timer_start(&inst->handover_timer, retiree_term, fenced ? FENCE_MS : 0, 0);
}

/* The registry's answer about the successor: passing there, it takes over. */
static void successor_registry_result(sup_instance *inst, int pid, int passing)
{
    inst->registry_probing = 0;
    if (!inst->successor || inst->successor->pid != pid || inst->successor->exited) return;
    if (passing) {
        uv_timer_stop(&inst->handover_timer);
        switch_over(inst);
    }
}

static void successor_poll(uv_timer_t *t)
{
    sup_instance *inst = t->data;
    sup *s = inst->app->sup;
    sup_run *next = inst->successor;
    if (!next || next->exited) return;
    int port = inst->app->conf->port ? inst->app->conf->port + inst->index : 0;
    if (!port || tree_listens_on(next->pid, port)) {
        if (!inst->app->conf->registry_url) {
            switch_over(inst);
            return;
        }
        /* Listening is not enough: the gateway finds it through the registry. */
        if (!inst->registry_probing) {
            inst->registry_probing = 1;
            if (colony__sup_registry_probe(inst, next, successor_registry_result) != 0)
                inst->registry_probing = 0;
        }
    }
    if (now_ms(s) >= inst->handover_deadline_ms) {
        char why[160];
        snprintf(why, sizeof(why), "not %s port %d within listen_timeout %lld ms",
                 inst->app->conf->registry_url ? "passing in the registry and listening on"
                                               : "listening on",
                 port, (long long)inst->app->conf->listen_timeout_ms);
        colony__sup_handover_abort(inst, why);
        return;
    }
    uv_timer_start(t, successor_poll, HANDOVER_POLL_MS, 0);
}

void colony__sup_handover_abort(sup_instance *inst, const char *why)
{
    sup_run *next = inst->successor;
    if (!next) return;
    sup_app_rt *app = inst->app;
    uv_timer_stop(&inst->handover_timer);
    inst->successor = NULL;
    /* Killed now; it stays counted as running (retiring) until it exits. */
    next->role = SUP_RUN_RETIRED;
    inst->retiring = next;
    kill(-next->pid, SIGKILL);
    kill(next->pid, SIGKILL);
    /* The old process still serves unless it is the one that ended or stops. */
    int serving = inst->run && inst->want_running;
    char rest[64] = "";
    if (serving) snprintf(rest, sizeof(rest), ", the old pid %d keeps serving", inst->pid);
    colony__sup_log_event(inst, "reload: replacement pid %d was %s: killed%s", next->pid, why,
                          rest);
    if (app->reloading)
        finish(app, 1,
               "%s instance %d: the replacement (pid %d) was %s; killed%s; %d of the "
               "instances reloaded before it",
               app->conf->name, inst->index, next->pid, why, rest, app->reload_done);
}

void colony__sup_handover_exited(sup_instance *inst, sup_run *run, int exit_code, int signal_no)
{
    sup_app_rt *app = inst->app;
    sup *s = app->sup;
    if (run == inst->successor) {
        uv_timer_stop(&inst->handover_timer);
        inst->successor = NULL;
        colony__sup_log_event(inst, "reload: replacement pid %d exited (%s %d) before it was ready",
                              run->pid, signal_no ? "signal" : "code",
                              signal_no ? signal_no : exit_code);
        if (app->reloading)
            finish(app, 1,
                   "%s instance %d: the replacement (pid %d) exited with %s %d before it was "
                   "ready; the old pid %d keeps serving",
                   app->conf->name, inst->index, run->pid, signal_no ? "signal" : "code",
                   signal_no ? signal_no : exit_code, inst->pid);
    } else if (run == inst->retiring) {
        uv_timer_stop(&inst->handover_timer);
        inst->retiring = NULL;
        colony__sup_log_event(inst, "reload: old pid %d exited (%s %d)", run->pid,
                              signal_no ? "signal" : "code", signal_no ? signal_no : exit_code);
        if (app->reloading) {
            app->reload_next = inst->index + 1;
            reload_step(app);
        }
    }
    colony__sup_pump(s);
}

/* Starts the handover of the next online instance, or ends the reload. */
static void reload_step(sup_app_rt *app)
{
    sup *s = app->sup;
    if (s->shutting_down) {
        finish(app, 1, "%s: the supervisor is stopping", app->conf->name);
        return;
    }
    for (int i = app->reload_next; i < app->ninstances; i++) {
        sup_instance *inst = app->instances[i];
        if (inst->retired_slot || inst->status != SUP_ONLINE || !inst->run) continue;
        sup_run *next;
        if (colony__sup_run_start(inst, SUP_RUN_SUCCESSOR, &next) != 0) {
            finish(app, 1, "%s instance %d: the replacement could not start (see its log)",
                   app->conf->name, i);
            return;
        }
        inst->successor = next;
        inst->handover_deadline_ms = now_ms(s) + (uint64_t)app->conf->listen_timeout_ms;
        colony__sup_log_event(inst, "reload: replacement pid %d started beside pid %d", next->pid,
                              inst->pid);
        uv_timer_start(&inst->handover_timer, successor_poll, HANDOVER_POLL_MS, 0);
        return;
    }
    finish(app, 0, "%s: %d instance%s reloaded", app->conf->name, app->reload_done,
           app->reload_done == 1 ? "" : "s");
}

static int busy(const sup_app_rt *app)
{
    if (app->reloading) return 1;
    for (int i = 0; i < app->ninstances; i++)
        if (app->instances[i]->successor || app->instances[i]->retiring) return 1;
    return 0;
}

int colony__sup_reload(sup *s, const char *target)
{
    if (s->shutting_down) return COLONY_ESHUTDOWN;
    int all = strcmp(target, "all") == 0, found = 0;
    for (size_t a = 0; a < s->napps; a++) {
        if (!all && strcmp(s->apps[a].conf->name, target) != 0) continue;
        found = 1;
        if (busy(&s->apps[a])) return COLONY_EBUSY;
    }
    if (!found) return COLONY_ENOENT;
    int count = 0;
    for (size_t a = 0; a < s->napps; a++) {
        sup_app_rt *app = &s->apps[a];
        if (!all && strcmp(app->conf->name, target) != 0) continue;
        app->reloading = 1;
        app->reload_next = 0;
        app->reload_done = 0;
        app->reload_failed = 0;
        snprintf(app->reload_message, sizeof(app->reload_message), "%s: reloading",
                 app->conf->name);
        count += colony__sup_app_count(app);
        reload_step(app);
    }
    return count;
}
