/* When an instance exits, what next: restart after a delay, stay stopped, or
 * end as errored. Pure (no I/O, time passed in), so the schedule is tested
 * exactly. PM2's rules:
 * - an exit code listed in stop_exit_codes, or autorestart false: stopped;
 * - a run shorter than min_uptime is unstable; max_restarts unstable runs in
 *   a row: errored (a stable run starts the count again);
 * - the delay is restart_delay, or with exp_backoff_restart_delay: that
 *   delay, then x1.5 per restart, capped at 15 s, back to the start after a
 *   run of 30 s or more. */
#ifndef COLONY_SUPERVISOR_RESTART_H
#define COLONY_SUPERVISOR_RESTART_H

#include <stddef.h>
#include <stdint.h>

#define SUP_BACKOFF_CAP_MS   15000
#define SUP_BACKOFF_RESET_MS 30000

typedef struct sup_restart_policy {
    int autorestart;
    int max_restarts;
    uint64_t min_uptime_ms;
    uint64_t restart_delay_ms;
    uint64_t exp_backoff_ms; /* 0 = fixed restart_delay_ms */
    const int *stop_exit_codes;
    size_t nstop_exit_codes;
} sup_restart_policy;

typedef struct sup_restart_state {
    uint64_t started_at_ms; /* when the current run began */
    unsigned restarts;      /* restarts so far (what `ps` shows) */
    unsigned unstable;      /* unstable runs in a row */
    uint64_t last_delay_ms; /* the exponential backoff's last delay, 0 = none yet */
} sup_restart_state;

typedef enum sup_next { SUP_NEXT_RESTART, SUP_NEXT_STOPPED, SUP_NEXT_ERRORED } sup_next;

/* A run begins now (the first start or a restart). */
void colony__sup_restart_started(sup_restart_state *st, uint64_t now_ms);
/* The run ended now: exit_code >= 0 for an exit, -1 for a signal. Returns
 * what to do; for SUP_NEXT_RESTART, *delay_ms is how long to wait first. */
sup_next colony__sup_restart_on_exit(const sup_restart_policy *p, sup_restart_state *st,
                                     uint64_t now_ms, int exit_code, uint64_t *delay_ms);
/* A start asked for by a user (colony start/restart): a fresh count. */
void colony__sup_restart_reset(sup_restart_state *st);

#endif
