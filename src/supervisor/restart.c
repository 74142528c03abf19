/* The restart decision (restart.h). */
#include "supervisor/restart.h"
#include <string.h>

void colony__sup_restart_started(sup_restart_state *st, uint64_t now_ms)
{
    st->started_at_ms = now_ms;
}

void colony__sup_restart_reset(sup_restart_state *st)
{
    st->unstable = 0;
    st->last_delay_ms = 0;
}

static int listed(const sup_restart_policy *p, int code)
{
    for (size_t i = 0; i < p->nstop_exit_codes; i++)
        if (p->stop_exit_codes[i] == code) return 1;
    return 0;
}

sup_next colony__sup_restart_on_exit(const sup_restart_policy *p, sup_restart_state *st,
                                     uint64_t now_ms, int exit_code, uint64_t *delay_ms)
{
    *delay_ms = 0;
    if (!p->autorestart || (exit_code >= 0 && listed(p, exit_code))) return SUP_NEXT_STOPPED;
    uint64_t uptime = now_ms >= st->started_at_ms ? now_ms - st->started_at_ms : 0;
    if (uptime < p->min_uptime_ms)
        st->unstable++;
    else
        st->unstable = 0;
    if (st->unstable > 0 && st->unstable >= (unsigned)p->max_restarts) return SUP_NEXT_ERRORED;
    if (p->exp_backoff_ms) {
        if (uptime >= SUP_BACKOFF_RESET_MS) st->last_delay_ms = 0;
        uint64_t next = st->last_delay_ms ? st->last_delay_ms * 3 / 2 : p->exp_backoff_ms;
        if (next > SUP_BACKOFF_CAP_MS) next = SUP_BACKOFF_CAP_MS;
        st->last_delay_ms = next;
        *delay_ms = next;
    } else {
        *delay_ms = p->restart_delay_ms;
    }
    st->restarts++;
    return SUP_NEXT_RESTART;
}
