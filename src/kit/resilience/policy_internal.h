/* Shared between policy.c (the set, its origins and their state) and
 * policy_call.c (one call through a policy). */
#ifndef COLONY_KIT_POLICY_INTERNAL_H
#define COLONY_KIT_POLICY_INTERNAL_H

#include "colony/policy.h"

#define POLICY_BUCKETS 256

/* A configured origin (colony_policy_set_add) whose state may not exist yet. */
typedef struct policy_entry {
    char *origin;
    colony_policy_options opts;
    struct policy_entry *next;
} policy_entry;

/* One origin's live state, created on first use, freed with the set. */
typedef struct policy_origin {
    colony_policy_set *ps;
    char *origin;
    colony_policy_options opts; /* retry.budget points to budget */
    colony_retry_budget *budget;
    colony_breaker *breaker;
    colony_bulkhead *bulkhead;
    colony_token_bucket *limiter;
    colony_metric_series *state_gauge, *rejections, *retries;
    struct policy_origin *next; /* hash chain */
} policy_origin;

typedef struct policy_call policy_call;

struct colony_policy_set {
    uv_loop_t *loop;
    colony_clock clock;
    colony_policy_options defaults;
    colony_metrics *metrics;
    colony_metric *state_family, *rejections_family, *retries_family;
    colony_policy_breaker_cb on_breaker_change;
    void *ud;
    unsigned max_origins, norigins;
    policy_entry *entries;
    policy_origin *buckets[POLICY_BUCKETS];
    policy_call *calls;    /* undelivered calls, doubly linked */
    unsigned active;       /* calls not yet delivered */
    unsigned open_handles; /* call timers not yet closed */
    int closing;
    uv_idle_t close_sentinel; /* closed by colony_policy_set_close: frees later, never inside */
    colony_policy_closed_cb closed_cb;
    void *closed_ud;
};

/* Writes the normalised origin of url ("http://host:port", scheme and host
 * lowercased, default port added) to out. 0 or COLONY_EINVAL. */
int colony__policy_origin_of(const char *url, char *out, size_t size);
/* The state of origin, created (with its configured or the default policy)
 * on first use. NULL with *err set (COLONY_E2BIG, COLONY_ENOMEM). */
policy_origin *colony__policy_origin_get(colony_policy_set *ps, const char *origin, int *err);
/* Cancels the set's calls in progress (policy_call.c). */
void colony__policy_cancel_all(colony_policy_set *ps);
/* Frees the set if it is closing and nothing is left open. */
void colony__policy_maybe_free(colony_policy_set *ps);

#endif
