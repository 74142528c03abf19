/* Per-origin resilience policies for the HTTP client: a colony_policy_set maps
 * origins ("http://host:port") to a policy — timeouts, a total deadline,
 * retries with full-jitter backoff and a retry budget, a circuit breaker, a
 * bulkhead, a token-bucket rate limit and a fallback hook — and
 * colony_policy_call() runs one HTTP call through it. Origins not listed use
 * the set's default policy. Per-origin state (breaker, budget, bulkhead,
 * limiter) is created on first use and lives as long as the set.
 *
 * One set belongs to one loop and is used only from that loop's thread (no
 * locks), like colony_client. Behaviour and composition order:
 * docs/resilience.md, "Per-origin policies".
 *
 *   colony_policy_set *ps = colony_policy_set_new(&(colony_policy_set_options){.loop = loop});
 *   colony_policy_options o;
 *   colony_policy_options_init(&o);
 *   o.retry.max_attempts = 4;
 *   colony_policy_set_add(ps, "http://payments:8080", &o);
 *   colony_policy_call(ps, client, &req, on_done, ud);
 */
#ifndef COLONY_POLICY_H
#define COLONY_POLICY_H

#include <stdint.h>
#include <uv.h>
#include "clock.h"
#include "export.h"
#include "http_client.h"
#include "metrics.h"
#include "ratelimit.h"
#include "resilience.h"

typedef struct colony_policy_set colony_policy_set;

/* Produces a substitute response for a call that failed (err != 0, or a final
 * 5xx response with err 0 and status set) or was rejected (err COLONY_EBUSY).
 * Fill *out (its strings must stay valid until the call's callback returns,
 * e.g. static or owned by ud) and return 0 to deliver it to the caller with
 * err 0; return nonzero to deliver the original outcome. */
typedef int (*colony_policy_fallback_fn)(const char *origin, int err, int status,
                                         colony_client_response *out, void *ud);

/* Reports a breaker state change of one origin, after the change. */
typedef void (*colony_policy_breaker_cb)(const char *origin, colony_breaker_state old_state,
                                         colony_breaker_state new_state, void *ud);

/* One origin's policy: plain options, copied. The clock fields of the nested
 * options are ignored (the set's clock is used); so are retry.budget and
 * breaker.name (the policy makes one budget and names the breaker after the
 * origin). */
typedef struct colony_policy_options {
    uint64_t attempt_timeout_ms; /* 0: each attempt may use what the deadline leaves */
    uint64_t deadline_ms;        /* 0: none; total for all attempts and backoff waits.
                                    A request's own timeout_ms also caps the total. */
    int propagate_deadline;      /* 1: send X-Colony-Deadline-Ms with what is left */
    colony_retry_policy retry;   /* max_attempts 1 disables retries */
    int use_budget;              /* 1: one retry budget per origin */
    colony_retry_budget_options budget;
    int use_breaker; /* 1 */
    colony_breaker_options breaker;
    int use_bulkhead;                 /* 0 */
    colony_bulkhead_options bulkhead; /* queue_timeout_ms is enforced by the policy */
    int use_rate_limit;               /* 0: a token bucket per origin, one token per call */
    colony_token_bucket_options rate_limit;
    colony_policy_fallback_fn fallback; /* NULL = none */
    void *fallback_ud;
    unsigned fallback_on; /* COLONY_FALLBACK_ON_REJECT | ON_FAILURE; 0 = both */
} colony_policy_options;

/* Defaults: no deadline, propagate it, retry defaults (3 attempts, 100 ms base,
 * 10 s cap, idempotent methods only), budget on, breaker on (its defaults),
 * bulkhead and rate limit off, no fallback. */
COLONY_API void colony_policy_options_init(colony_policy_options *o);

typedef struct colony_policy_set_options {
    uv_loop_t *loop;                       /* required: the loop of the clients used with the set */
    const colony_policy_options *defaults; /* NULL: colony_policy_options_init() */
    colony_clock clock;      /* zeroed = system clock (breaker, budget, limiter, deadline) */
    colony_metrics *metrics; /* NULL: no metrics; must outlive the set */
    colony_policy_breaker_cb on_breaker_change; /* may be NULL */
    void *ud;
    unsigned max_origins; /* 1024: origins with state; calls to more fail COLONY_E2BIG */
} colony_policy_set_options;
/* Fills o with the defaults above (loop stays NULL: set it). */
COLONY_API void colony_policy_set_options_init(colony_policy_set_options *o);

/* A new set, or NULL on allocation failure or bad options (no loop, invalid
 * default options). With metrics it registers colony_breaker_state{origin}
 * (gauge: 0 closed, 1 open, 2 half-open), colony_breaker_rejections_total{origin}
 * and colony_retries_total{origin}. Close with colony_policy_set_close(). */
COLONY_API colony_policy_set *colony_policy_set_new(const colony_policy_set_options *o);

/* Sets the policy of one origin (scheme://host[:port], no path; the default
 * port is implied). Options are validated and copied. COLONY_EINVAL for a bad
 * origin or options, COLONY_EEXIST once the origin has been used (its state
 * exists), COLONY_ENOMEM. Adding it again before first use replaces it. */
COLONY_API int colony_policy_set_add(colony_policy_set *ps, const char *origin,
                                     const colony_policy_options *o);

/* Runs r through its origin's policy and calls cb exactly once with the final
 * outcome, always from the loop and never from inside this function:
 *   - rejections come through cb with COLONY_EBUSY and call NULL (rate limit,
 *     bulkhead full, breaker open), unless the fallback answers;
 *   - a response that ends the call (success, non-retryable status, or the
 *     last retryable one) comes through cb with err 0 and call set to the last
 *     attempt; a retried attempt's response is never seen;
 *   - a deadline that passes gives COLONY_ETIMEDOUT.
 * Returns 0, or COLONY_EINVAL (bad URL), COLONY_E2BIG (too many origins),
 * COLONY_ESHUTDOWN (the set is closing), COLONY_ENOMEM; cb then never runs.
 * Method, URL, headers and body are copied once per call and reused by
 * retries. Calls with a streamed request body (body_cb) or response
 * (head_cb/data_cb) are never retried. client must belong to the set's loop. */
COLONY_API int colony_policy_call(colony_policy_set *ps, colony_client *client,
                                  const colony_client_request *r, colony_client_done_cb cb,
                                  void *ud);

/* The breaker state of an origin, or -1 if it has no state (never called, or
 * its policy has no breaker). Does not perform the lazy open -> half-open step. */
COLONY_API int colony_policy_breaker_state(colony_policy_set *ps, const char *origin);

/* Calls in progress (queued, in flight or waiting to retry). */
COLONY_API unsigned colony_policy_set_active(const colony_policy_set *ps);

/* Cancels every call in progress (each cb gets COLONY_ECANCELED), then frees
 * the set once their handles are closed and runs cb (may be NULL). cb always
 * runs from the loop, after this function has returned. */
typedef void (*colony_policy_closed_cb)(void *ud);
COLONY_API void colony_policy_set_close(colony_policy_set *ps, colony_policy_closed_cb cb,
                                        void *ud);

#endif
