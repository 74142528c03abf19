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
#include "supervisor/ecosystem.h"
#include "supervisor/restart.h"

typedef struct sup sup;
typedef struct sup_app_rt sup_app_rt;
typedef struct sup_instance sup_instance;

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

/* One child process and its output pipes; freed when all three are closed. */
typedef struct sup_run {
    colony__list node; /* in sup.runs */
    int pid;
    int exited; /* the process is gone; its pipes may outlive it */
    uv_process_t proc;
    uv_pipe_t out, err;
    int open_handles;
    sup_instance *inst;
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
    unsigned probe_generation; /* the run an HTTP probe in flight asks about */
    uint64_t ready_deadline_ms;
    uint64_t online_since_ms;
    sup_restart_state restart;
    int last_exit_code; /* -1: killed by a signal */
    int last_signal;
    int out_fd, err_fd; /* log files, O_APPEND */
    uint64_t cpu_ticks; /* last sample, for cpu_percent */
    uint64_t cpu_sampled_ms;
    double cpu_percent;
};

struct sup_app_rt {
    sup *sup;
    sup_app *conf;
    sup_restart_policy policy;
    sup_instance *instances;
    int started;        /* its instances were launched once */
    int ever_ready;     /* every instance was ready once: dependents may start */
    size_t *dependents; /* indexes of apps that depend on this one */
    size_t ndependents;
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
    int open_probes; /* TCP probes not yet closed */
    int closing;     /* handles are being closed */
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

int colony__sup_logs_open(sup_instance *inst);
void colony__sup_logs_close(sup_instance *inst);
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

void colony__sup_ready_begin(sup_instance *inst);
void colony__sup_ready_stop(sup_instance *inst);

/* /proc readings: start time (clock ticks after boot), CPU ticks, RSS bytes. */
int colony__sup_proc_starttime(int pid, uint64_t *ticks);
int colony__sup_proc_usage(int pid, uint64_t *cpu_ticks, uint64_t *rss_bytes);

#endif
