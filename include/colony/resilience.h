/* Resilience primitives for calls to other services: deadlines that
 * propagate, retries with jittered backoff and a retry budget, a circuit
 * breaker, a bulkhead and a fallback hook. Each works on its own and reads
 * time only through an injectable colony_clock (clock.h); none uses threads
 * or locks, so each object belongs to one loop thread. Rate limiters are in
 * ratelimit.h. Behaviour, defaults and comparisons: docs/resilience.md. */
#ifndef COLONY_RESILIENCE_H
#define COLONY_RESILIENCE_H

#include <stddef.h>
#include <stdint.h>
#include "clock.h"
#include "export.h"

/* ---------------------------------------------------------------- deadlines */

/* Name of the header that carries a deadline between services: the remaining
 * time in whole milliseconds, as a decimal ("X-Colony-Deadline-Ms: 1850").
 * Remaining time rather than an absolute timestamp, so hosts need no
 * synchronised clocks (gRPC's grpc-timeout does the same). */
#define COLONY_DEADLINE_HEADER "X-Colony-Deadline-Ms"

/* A point in time on a clock, after which the work is pointless. Value type. */
typedef struct colony_deadline {
    uint64_t at_ms; /* absolute, on clock; UINT64_MAX = no deadline */
    colony_clock clock;
} colony_deadline;

/* A deadline timeout_ms from now on clock (NULL = system clock). */
COLONY_API colony_deadline colony_deadline_in(const colony_clock *clock, uint64_t timeout_ms);
/* No deadline: remaining() is UINT64_MAX and it never expires. */
COLONY_API colony_deadline colony_deadline_none(const colony_clock *clock);
/* Milliseconds left: 0 once expired, UINT64_MAX without a deadline. */
COLONY_API uint64_t colony_deadline_remaining(const colony_deadline *d);
/* 1 if the deadline has passed, else 0. */
COLONY_API int colony_deadline_expired(const colony_deadline *d);
/* The timeout to give an outgoing call: min(remaining, local_timeout_ms), where
 * local_timeout_ms 0 means "none of my own". 0 means already expired. */
COLONY_API uint64_t colony_deadline_timeout_ms(const colony_deadline *d, uint64_t local_timeout_ms);
/* Parses a COLONY_DEADLINE_HEADER value (value[0..len), surrounding spaces and
 * tabs allowed) into a deadline on clock. Values over max_ms (0 = no cap) are
 * clamped to max_ms, so a caller cannot pin our resources for a day. Returns 0,
 * or COLONY_EINVAL for anything but 1-12 ASCII digits. */
COLONY_API int colony_deadline_from_header(const colony_clock *clock, const char *value, size_t len,
                                           uint64_t max_ms, colony_deadline *out);
/* Same for a gRPC "grpc-timeout" value: 1-8 digits then H, M, S, m, u or n. */
COLONY_API int colony_deadline_from_grpc_timeout(const colony_clock *clock, const char *value,
                                                 size_t len, uint64_t max_ms, colony_deadline *out);
/* Writes the remaining milliseconds as a NUL-terminated header value. Returns
 * the length, COLONY_ENOENT when d has no deadline (send no header),
 * COLONY_ETIMEDOUT when it has expired (do not make the call) or COLONY_E2BIG
 * when out is too small (21 bytes always suffice). */
COLONY_API int colony_deadline_to_header(const colony_deadline *d, char *out, size_t size);

/* ------------------------------------------------------------------ retries */

/* A source of 64 random bits, injectable so tests are deterministic. */
typedef uint64_t (*colony_random_fn)(void *ud);

/* A small seeded generator (splitmix64) usable as a colony_random_fn: ud
 * points to a caller-owned uint64_t state, set it to any seed. Not for crypto. */
COLONY_API uint64_t colony_random_splitmix64(void *state);

/* The largest delay before retry number `attempt` (0 = the first retry):
 * min(cap_ms, base_ms * 2^attempt), without overflow. */
COLONY_API uint64_t colony_backoff_ceiling(uint64_t base_ms, uint64_t cap_ms, unsigned attempt);
/* "Full jitter" (AWS architecture blog): a delay uniform in
 * [0, colony_backoff_ceiling(base_ms, cap_ms, attempt)] drawn from random_bits. */
COLONY_API uint64_t colony_backoff_full_jitter(uint64_t base_ms, uint64_t cap_ms, unsigned attempt,
                                               uint64_t random_bits);

/* Failure kinds a policy may retry (bit mask). */
enum {
    COLONY_RETRY_ON_CONNECT = 1 << 0, /* ECONNREFUSED, ECONNRESET before a response */
    COLONY_RETRY_ON_TIMEOUT = 1 << 1, /* ETIMEDOUT */
    COLONY_RETRY_ON_GATEWAY = 1 << 2, /* HTTP 502, 503, 504 */
    COLONY_RETRY_ON_429 = 1 << 3,     /* HTTP 429 (off by default) */
};

typedef struct colony_retry_budget colony_retry_budget;

/* A retry policy: plain options, copied by value. */
typedef struct colony_retry_policy {
    unsigned max_attempts;    /* 3: tries in all, the first one included; 1 = never retry */
    uint64_t base_ms;         /* 100: backoff base */
    uint64_t cap_ms;          /* 10000: backoff cap */
    unsigned retry_on;        /* CONNECT | TIMEOUT | GATEWAY */
    int allow_non_idempotent; /* 0: only GET HEAD OPTIONS PUT DELETE TRACE are retried */
    colony_random_fn random;  /* NULL: a per-thread generator seeded from the clock */
    void *random_ud;
    colony_retry_budget *budget; /* NULL: no budget; not owned */
} colony_retry_policy;

COLONY_API void colony_retry_policy_init(colony_retry_policy *p);

/* What colony_retry_next() decided. Only COLONY_RETRY_GO means retry. */
typedef enum colony_retry_verdict {
    COLONY_RETRY_GO = 0,        /* wait *delay_ms, then try again */
    COLONY_RETRY_SUCCESS,       /* the attempt succeeded (err 0, status 0 or below 400) */
    COLONY_RETRY_NOT_RETRYABLE, /* this failure kind is not in retry_on */
    COLONY_RETRY_NOT_IDEMPOTENT,
    COLONY_RETRY_EXHAUSTED, /* max_attempts reached */
    COLONY_RETRY_NO_BUDGET, /* the retry budget refused */
    COLONY_RETRY_DEADLINE,  /* the deadline would pass before the retry starts */
} colony_retry_verdict;

/* Decides after attempt number `attempts_done` (1 = the first try) ended with
 * err (0 or a COLONY_E* code) and HTTP status (0 if none). On GO, *delay_ms is
 * the full-jitter delay for this retry and the budget (if any) has counted it.
 * deadline may be NULL. */
COLONY_API colony_retry_verdict colony_retry_next(const colony_retry_policy *p, const char *method,
                                                  unsigned attempts_done, int err, int status,
                                                  const colony_deadline *deadline,
                                                  uint64_t *delay_ms);
/* "GO", "SUCCESS", "NOT_RETRYABLE", ... Static; never NULL. */
COLONY_API const char *colony_retry_verdict_name(colony_retry_verdict v);

/* A retry budget (Finagle's RetryBudget, Envoy's retry_budget): over a sliding
 * window, retries may be at most `percent` of requests, plus a floor of
 * min_retries_per_sec * window seconds so low-traffic callers can still retry. */
typedef struct colony_retry_budget_options {
    unsigned percent;             /* 20 */
    unsigned min_retries_per_sec; /* 10 (0 = no floor) */
    uint64_t window_ms;           /* 10000, counted in 10 buckets */
    colony_clock clock;           /* zeroed = system clock */
} colony_retry_budget_options;

COLONY_API void colony_retry_budget_options_init(colony_retry_budget_options *o);
/* NULL opts = defaults. Returns NULL on allocation failure or bad options
 * (window_ms 0). Free with colony_retry_budget_free(). */
COLONY_API colony_retry_budget *colony_retry_budget_new(const colony_retry_budget_options *o);
COLONY_API void colony_retry_budget_free(colony_retry_budget *b);
/* Counts one original request (not a retry); call it for every first attempt. */
COLONY_API void colony_retry_budget_record_request(colony_retry_budget *b);
/* 0 if a retry may be made now (and counts it), COLONY_EBUSY if over budget. */
COLONY_API int colony_retry_budget_allow(colony_retry_budget *b);
/* Requests and retries currently inside the window. */
COLONY_API void colony_retry_budget_counts(colony_retry_budget *b, uint64_t *requests,
                                           uint64_t *retries);

/* ---------------------------------------------------------- circuit breaker */

typedef struct colony_breaker colony_breaker;

typedef enum colony_breaker_state {
    COLONY_BREAKER_CLOSED = 0, /* calls flow; outcomes are counted */
    COLONY_BREAKER_OPEN,       /* calls are rejected until open_ms passes */
    COLONY_BREAKER_HALF_OPEN,  /* a few trial calls decide: close or open again */
} colony_breaker_state;

/* Called on every state change, after the change. May not free b. */
typedef void (*colony_breaker_state_cb)(colony_breaker *b, colony_breaker_state old_state,
                                        colony_breaker_state new_state, void *ud);

/* The window holds the last window_calls outcomes, each forgotten window_ms
 * after it was recorded (both limits apply). With window_calls 0 it is a pure
 * time window of window_buckets buckets over window_ms (for high call rates).
 * A call slower than slow_call_ms is "slow"; slow calls trip the breaker on
 * their own rate (resilience4j semantics); a slow failure counts as both. */
typedef struct colony_breaker_options {
    const char *name;                        /* "breaker": in logs (copied) */
    unsigned failure_rate_percent;           /* 50: trips at failures*100/calls >= this; 0 = off */
    unsigned slow_rate_percent;              /* 100: trips at slow*100/calls >= this; 0 = off */
    uint64_t slow_call_ms;                   /* 60000: duration > this is slow */
    unsigned minimum_calls;                  /* 20: never trips with fewer calls in the window */
    unsigned window_calls;                   /* 100: count window (max 100000); 0 = time only */
    uint64_t window_ms;                      /* 60000: time window; 0 = count only */
    unsigned window_buckets;                 /* 10: for the time-only window */
    uint64_t open_ms;                        /* 30000: how long OPEN rejects before HALF_OPEN */
    unsigned half_open_calls;                /* 5: trial calls admitted in HALF_OPEN */
    colony_clock clock;                      /* zeroed = system clock */
    colony_breaker_state_cb on_state_change; /* may be NULL */
    void *ud;
} colony_breaker_options;

/* Counters for metrics: cumulative since creation, plus the current window. */
typedef struct colony_breaker_stats {
    colony_breaker_state state;
    uint64_t calls; /* outcomes recorded */
    uint64_t failures;
    uint64_t slow;
    uint64_t rejected;    /* allow() refusals */
    uint64_t transitions; /* state changes */
    uint64_t window_calls;
    uint64_t window_failures;
    uint64_t window_slow;
} colony_breaker_stats;

COLONY_API void colony_breaker_options_init(colony_breaker_options *o);
/* NULL opts = defaults. NULL on allocation failure or invalid options (no
 * window at all, percent > 100, half_open_calls 0). Free with colony_breaker_free(). */
COLONY_API colony_breaker *colony_breaker_new(const colony_breaker_options *o);
COLONY_API void colony_breaker_free(colony_breaker *b);
/* Asks to make a call: 0 = go ahead (then report it with colony_breaker_record),
 * COLONY_EBUSY = rejected (OPEN, or HALF_OPEN with all trials handed out).
 * OPEN turns HALF_OPEN here, lazily, once open_ms has passed. */
COLONY_API int colony_breaker_allow(colony_breaker *b);
/* Reports the outcome of an allowed call. In HALF_OPEN any failed or slow
 * outcome re-opens the breaker; it closes once as many successes as trials
 * admitted reach half_open_calls (extra late successes are ignored). */
COLONY_API void colony_breaker_record(colony_breaker *b, int ok, uint64_t duration_ms);
/* Current state (without the lazy OPEN -> HALF_OPEN step). */
COLONY_API colony_breaker_state colony_breaker_get_state(const colony_breaker *b);
COLONY_API void colony_breaker_get_stats(const colony_breaker *b, colony_breaker_stats *out);
/* "closed", "open", "half_open". Static; never NULL. */
COLONY_API const char *colony_breaker_state_name(colony_breaker_state s);

/* ----------------------------------------------------------------- bulkhead */

typedef struct colony_bulkhead colony_bulkhead;

/* err 0: the caller holds a slot and must call colony_bulkhead_release() when
 * done. COLONY_ETIMEDOUT: it waited longer than queue_timeout_ms and holds no
 * slot. COLONY_ECANCELED: the bulkhead is being freed (do not touch b). */
typedef void (*colony_bulkhead_cb)(colony_bulkhead *b, int err, void *ud);

typedef struct colony_bulkhead_options {
    unsigned max_concurrent;   /* 10 (at least 1) */
    unsigned max_queued;       /* 0: no queue, reject at once when full */
    uint64_t queue_timeout_ms; /* 0: waiters never time out */
    colony_clock clock;        /* zeroed = system clock */
} colony_bulkhead_options;

typedef struct colony_bulkhead_stats {
    unsigned active; /* slots held now */
    unsigned queued; /* waiters now */
    uint64_t acquired;
    uint64_t rejected;
    uint64_t expired;
} colony_bulkhead_stats;

COLONY_API void colony_bulkhead_options_init(colony_bulkhead_options *o);
/* NULL opts = defaults. NULL on allocation failure or max_concurrent 0. The
 * queue is allocated here: acquire never allocates. */
COLONY_API colony_bulkhead *colony_bulkhead_new(const colony_bulkhead_options *o);
/* Runs cb(ECANCELED) for every waiter still queued, then frees b. */
COLONY_API void colony_bulkhead_free(colony_bulkhead *b);
/* Runs cb(b, 0, ud) before returning if a slot is free; else queues it (FIFO)
 * and returns 0; or returns COLONY_EBUSY when the queue is full, and cb never runs. */
COLONY_API int colony_bulkhead_acquire(colony_bulkhead *b, colony_bulkhead_cb cb, void *ud);
/* Gives a slot back. Hands it to the oldest queued waiter that has not timed
 * out (its cb runs from inside this call); expired waiters get ETIMEDOUT. */
COLONY_API void colony_bulkhead_release(colony_bulkhead *b);
/* Fails queued waiters whose queue_timeout_ms has passed with ETIMEDOUT.
 * Call it from a timer (see colony_bulkhead_next_expiry_ms). Returns how many. */
COLONY_API unsigned colony_bulkhead_expire(colony_bulkhead *b);
/* Milliseconds until the oldest waiter times out (0 = already), or UINT64_MAX
 * when nothing queued can time out: the delay for a uv timer. */
COLONY_API uint64_t colony_bulkhead_next_expiry_ms(const colony_bulkhead *b);
/* Removes the first queued waiter with this cb and ud without calling it (the
 * caller gave up). 0, or COLONY_ENOENT if not queued. */
COLONY_API int colony_bulkhead_cancel(colony_bulkhead *b, colony_bulkhead_cb cb, void *ud);
COLONY_API void colony_bulkhead_get_stats(const colony_bulkhead *b, colony_bulkhead_stats *out);

/* ----------------------------------------------------------------- fallback */

/* Produces a substitute result for a failed or rejected call, writing it
 * wherever ud points. Returns 0 if it did, or an error (often err itself). */
typedef int (*colony_fallback_fn)(void *ud, int err);

enum {
    COLONY_FALLBACK_ON_REJECT = 1 << 0,  /* COLONY_EBUSY: breaker open, bulkhead or limiter full */
    COLONY_FALLBACK_ON_FAILURE = 1 << 1, /* any other error, timeouts included */
};

typedef struct colony_fallback {
    colony_fallback_fn fn; /* NULL = no fallback */
    void *ud;
    unsigned on; /* COLONY_FALLBACK_ON_*; 0 means both */
} colony_fallback;

/* The error a caller should act on: 0 stays 0; an error the fallback covers is
 * replaced by what fn returns (0 when it substituted a result); any other
 * error, or a NULL f or fn, is returned unchanged. */
COLONY_API int colony_fallback_apply(const colony_fallback *f, int err);

#endif
