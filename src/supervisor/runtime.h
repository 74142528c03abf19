/* The running supervisor: apps and their instances, started in dependency
 * order, watched, restarted, stopped in reverse order. One libuv loop; every
 * handle is closed before colony__sup_free(). */
#ifndef COLONY_SUPERVISOR_RUNTIME_H
#define COLONY_SUPERVISOR_RUNTIME_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>
#include "colony/clock.h"
#include "colony/http_client.h"
#include "core/list.h"
#include "core/map.h"
#include "supervisor/ecosystem.h"
#include "supervisor/restart.h"

typedef struct sup sup;
typedef struct sup_app_rt sup_app_rt;
typedef struct sup_instance sup_instance;

/* One log file, shared by every instance that writes to it (merge_logs, an
 * out_file named twice) so that a rotation moves every writer to the new
 * file at once. Opened O_APPEND; size is what it held at open plus what we
 * wrote since. */
typedef struct sup_logfile {
    char *path;
    int fd;
    uint64_t size;
    int64_t max_size; /* rotate before a line would take it past this; 0 = never */
    int retain;       /* rotated files kept: path.1 (newest) .. path.retain */
    int kept;         /* rotated files there now (at most retain) */
    int refs;
} sup_logfile;

typedef enum sup_status {
    SUP_WAITING,    /* not started: its dependencies are not ready yet */
    SUP_LAUNCHING,  /* running, not ready yet */
    SUP_ONLINE,     /* running and ready */
    SUP_RESTARTING, /* exited; restarts after its delay */
    SUP_STOPPING,   /* SIGTERM sent; SIGKILL after kill_timeout */
    SUP_STOPPED,
    SUP_ERRORED, /* crash loop: max_restarts unstable runs */
} sup_status;

const char *colony__sup_status_name(sup_status s);

enum {
    SUP_RUN_CURRENT,   /* inst->run: the instance's process */
    SUP_RUN_SUCCESSOR, /* a reload's replacement, not ready yet (inst->successor) */
    SUP_RUN_RETIRED,   /* replaced by a reload, draining (inst->retiring) */
};

/* One child process and its output pipes; freed when all three are closed. */
typedef struct sup_run {
    colony__list node; /* in sup.runs */
    int pid;
    int exited; /* the process is gone; its pipes may outlive it */
    uv_process_t proc;
    uv_pipe_t out, err;
    int open_handles;
    sup_instance *inst;
    int role;             /* SUP_RUN_CURRENT, or a reload's successor or retired run */
    char service_id[160]; /* COLONY_SERVICE_ID given to it (app with a registry), or "" */
    char out_line[4096], err_line[4096]; /* a partial line waiting for its end */
    size_t out_len, err_len;
} sup_run;

struct sup_instance {
    sup_app_rt *app;
    int index;
    sup_status status;
    sup_run *run; /* the live process, or NULL */
    int pid;
    unsigned generation; /* counts spawns: a probe of an older run is ignored */
    int want_running;    /* 0 once stopped by a user or by shutdown */
    int restart_after_stop;
    uv_timer_t timer;          /* restart delay, or the kill timeout */
    uv_timer_t probe_timer;    /* readiness polling */
    int probing;               /* a probe is in flight */
    int port_ready;            /* the port (or ready path) answered; the registry is next */
    int registry_probing;      /* a reload's registry probe is in flight */
    unsigned probe_generation; /* the run an HTTP probe in flight asks about */
    uint64_t ready_deadline_ms;
    uint64_t online_since_ms;
    sup_restart_state restart;
    int last_exit_code; /* -1: killed by a signal */
    int last_signal;
    sup_logfile *out_log, *err_log; /* NULL until opened */
    int retired_slot;               /* scaled down: not shown, started again by a scale up */
    /* A reload's handover (reload.c): the successor runs beside inst->run
     * until it listens, then inst->run retires (SIGTERM, SIGKILL after
     * kill_timeout) and the next instance's turn comes when it has exited. */
    sup_run *successor;
    sup_run *retiring;
    uv_timer_t handover_timer; /* successor's readiness polls, then retiree's kill timeout */
    uint64_t handover_deadline_ms;
    uint64_t cpu_ticks; /* last sample, for cpu_percent */
    uint64_t cpu_sampled_ms;
    double cpu_percent;
};

struct sup_app_rt {
    sup *sup;
    sup_app *conf;
    sup_restart_policy policy;
    sup_instance **instances; /* ninstances slots; a scale up adds some */
    int ninstances;
    int started;        /* its instances were launched once */
    int ever_ready;     /* every instance was ready once: dependents may start */
    size_t *dependents; /* indexes of apps that depend on this one */
    size_t ndependents;
    /* `colony reload`: one instance at a time, from reload_next up. */
    int reloading;
    int reload_next;
    int reload_done;          /* instances handed over so far */
    int reload_failed;        /* the last reload ended in failure */
    char reload_message[320]; /* how the last (or current) reload went */
};

typedef struct sup_options {
    const char *state_dir; /* absolute; logs/ and pids/ inside exist */
    int echo;              /* copy every tagged line to stdout */
    colony_clock clock;    /* zeroed: the system clock */
} sup_options;

typedef void (*sup_done_cb)(sup *s, void *ud);

struct sup {
    uv_loop_t *loop;
    sup_ecosystem eco;
    sup_app_rt *apps; /* eco order: dependencies first */
    size_t napps;
    char *state_dir;
    int echo;
    colony_clock clock;
    colony_client *client; /* readiness GETs; created on first need */
    uv_timer_t sampler;    /* CPU and memory samples every second */
    uv_timer_t linger;     /* shutdown: grace for pipes that outlive their process */
    int shutting_down;
    int open_runs; /* sup_run not yet freed */
    colony__list runs;
    int open_probes;         /* TCP probes not yet closed */
    unsigned long spawn_seq; /* numbers each process's service ID */
    int closing;             /* handles are being closed */
    colony__map logfiles;    /* path -> sup_logfile, the apps' files */
    sup_logfile *combined;   /* logs/colony.log: every app's tagged lines */
    int open_handles;
    sup_done_cb done;
    void *done_ud;
    /* Sees every tagged line written to a log file (`colony logs -f`). */
    void (*line_hook)(void *ud, const sup_instance *inst, const char *line, size_t len);
    void *line_hook_ud;
};

/* Takes eco (zeroed on success). */
int colony__sup_new(uv_loop_t *loop, sup_ecosystem *eco, const sup_options *o, sup **out);
/* Starts the apps whose dependencies are ready, and the others as theirs become. */
void colony__sup_start(sup *s);
/* Stops everything, dependents before what they depend on (SIGTERM, SIGKILL
 * after kill_timeout), closes every handle, then calls done once. */
void colony__sup_shutdown(sup *s, sup_done_cb done, void *ud);
/* After done: frees everything. */
void colony__sup_free(sup *s);

/* colony stop|start|restart <app|all>: the number of instances acted on, or
 * COLONY_ENOENT for an unknown app, COLONY_ESHUTDOWN while shutting down. */
int colony__sup_stop(sup *s, const char *target);
int colony__sup_start_app(sup *s, const char *target);
int colony__sup_restart(sup *s, const char *target);
/* colony reload <app|all>: begins a zero-downtime reload of each app (one
 * instance at a time; reload.c); returns the number of instances, or
 * COLONY_ENOENT, COLONY_ESHUTDOWN, COLONY_EBUSY (a reload of it runs). Its
 * progress and outcome are in the ps document's "reloads". */
int colony__sup_reload(sup *s, const char *target);
/* colony scale <app> <n>: starts instances up to n or stops the highest
 * indexes above it; returns the previous count, or COLONY_ENOENT,
 * COLONY_EINVAL (n outside 0..SUP_SCALE_MAX), COLONY_EBUSY (a reload runs),
 * COLONY_ENOMEM, COLONY_ESHUTDOWN. */
#define SUP_SCALE_MAX 1024
int colony__sup_scale(sup *s, const char *target, int n);
/* The instance slots an app shows (not scaled away). */
int colony__sup_app_count(const sup_app_rt *app);
/* The `ps` document: {"apps": [{name, instance, pid, status, uptime_ms,
 * restarts, unstable_restarts, exit_code, cpu, memory}]}. New reference. */
json_t *colony__sup_ps(sup *s);

/* ---- parts (instance.c, logs.c, ready.c) ---- */
int colony__sup_instance_init(sup *s, sup_app_rt *app, int index);
void colony__sup_instance_spawn(sup_instance *inst);
void colony__sup_instance_stop(sup_instance *inst);
void colony__sup_instance_close(sup_instance *inst);
/* Shutdown, nothing running: a run whose process exited but whose output
 * pipes are still held (by something it left in the background) has its
 * process group killed and its pipes closed. */
void colony__sup_close_lingering_runs(sup *s);
/* Re-evaluates what may start or stop now (after any change of status). */
void colony__sup_pump(sup *s);
/* One of the supervisor's handles finished closing. */
void colony__sup_handle_released(sup *s);

/* The combined log (state/logs/colony.log), rotated at the largest
 * max_size of the apps, keeping the largest retain; closed by
 * colony__sup_logs_shutdown. */
int colony__sup_logs_init(sup *s);
void colony__sup_logs_shutdown(sup *s);
int colony__sup_combined_log_path(const sup *s, char *buf, size_t size);
/* Opens (or shares) the instance's out and error files. */
int colony__sup_logs_open(sup_instance *inst);
void colony__sup_logs_close(sup_instance *inst);
/* Writes one whole line to f, rotating first when the line would take it
 * past max_size: the line lands in one file, never split. */
void colony__sup_logfile_write(sup_logfile *f, const char *line, size_t len);
/* Writes one line of the instance's stdout (is_err 0) or stderr, tagged. */
void colony__sup_log_line(sup_instance *inst, int is_err, const char *line, size_t len);
/* A line from the supervisor itself about an instance, to its error log. */
void colony__sup_log_event(sup_instance *inst, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The log files of an instance (PM2's names; -<i> unless merge_logs). */
int colony__sup_log_path(const sup *s, const sup_app *app, int index, int is_err, char *buf,
                         size_t size);
/* Formats now as log_date_format (moment.js tokens), or ISO 8601 UTC. */
size_t colony__sup_format_time(const char *fmt, char *buf, size_t size);

/* reload.c: the instance is being stopped, or its current run ended: a
 * handover in progress is abandoned (the successor is killed). */
void colony__sup_handover_abort(sup_instance *inst, const char *why);
/* reload.c: a successor or retired run's process exited. */
void colony__sup_handover_exited(sup_instance *inst, sup_run *run, int exit_code, int signal_no);
/* Starts a process for the instance as role, without changing its status. */
int colony__sup_run_start(sup_instance *inst, int role, sup_run **out);

/* The registry's view of run (ready.c): GET <registry>/v1/health/service/
 * <service>?passing, then cb(inst, run_pid, passing) where passing is 1 when
 * an entry with run's service ID (or, for a run without one, the instance's
 * port) is in it. cb runs once, unless the send fails (nonzero return). */
typedef void (*sup_registry_cb)(sup_instance *inst, int run_pid, int passing);
int colony__sup_registry_probe(sup_instance *inst, const sup_run *run, sup_registry_cb cb);
/* The service ID a new process of inst registers under (COLONY_SERVICE_ID). */
void colony__sup_service_id(sup_instance *inst, char *buf, size_t size);

void colony__sup_ready_begin(sup_instance *inst);
void colony__sup_ready_stop(sup_instance *inst);

/* /proc readings: start time (clock ticks after boot), CPU ticks, RSS bytes. */
int colony__sup_proc_starttime(int pid, uint64_t *ticks);
int colony__sup_proc_usage(int pid, uint64_t *cpu_ticks, uint64_t *rss_bytes);

#endif
