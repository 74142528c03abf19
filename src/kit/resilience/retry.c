/* Retries: full-jitter exponential backoff, the retry decision, and a retry
 * budget over a sliding window. */
#include <string.h>
#include "colony/error.h"
#include "colony/http_parser.h"
#include "colony/resilience.h"
#include "core/alloc.h"
#include "kit/resilience/rolling_internal.h"

uint64_t colony_random_splitmix64(void *state)
{
    uint64_t *s = state;
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The default source: one generator per thread, seeded lazily from the clock
 * and the state's address so two threads do not share a sequence. */
static uint64_t default_random(void *ud)
{
    (void)ud;
    static _Thread_local uint64_t state;
    static _Thread_local int seeded;
    if (!seeded) {
        state = colony_clock_now(NULL) ^ (uint64_t)(uintptr_t)&state;
        seeded = 1;
    }
    return colony_random_splitmix64(&state);
}

uint64_t colony_backoff_ceiling(uint64_t base_ms, uint64_t cap_ms, unsigned attempt)
{
    if (base_ms == 0) return 0;
    /* base * 2^attempt > cap  <=>  attempt >= 64 or base > cap >> attempt. */
    if (attempt >= 64 || base_ms > (cap_ms >> attempt)) return cap_ms;
    return base_ms << attempt;
}

uint64_t colony_backoff_full_jitter(uint64_t base_ms, uint64_t cap_ms, unsigned attempt,
                                    uint64_t random_bits)
{
    uint64_t ceiling = colony_backoff_ceiling(base_ms, cap_ms, attempt);
    if (ceiling == UINT64_MAX) return random_bits;
    /* Modulo bias is at most ceiling/2^64: irrelevant for delays. */
    return random_bits % (ceiling + 1);
}

void colony_retry_policy_init(colony_retry_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->max_attempts = 3;
    p->base_ms = 100;
    p->cap_ms = 10000;
    p->retry_on = COLONY_RETRY_ON_CONNECT | COLONY_RETRY_ON_TIMEOUT | COLONY_RETRY_ON_GATEWAY;
}

/* The retry_on bit an outcome falls under, 0 for success, -1 for a failure
 * no policy can retry (bad request, cancelled, ...). */
static int failure_kind(int err, int status)
{
    switch (err) {
    case 0:
        break;
    case COLONY_ECONNREFUSED:
    case COLONY_ECONNRESET:
        return COLONY_RETRY_ON_CONNECT;
    case COLONY_ETIMEDOUT:
        return COLONY_RETRY_ON_TIMEOUT;
    default:
        return -1;
    }
    if (status == 502 || status == 503 || status == 504) return COLONY_RETRY_ON_GATEWAY;
    if (status == 429) return COLONY_RETRY_ON_429;
    return status >= 400 ? -1 : 0;
}

colony_retry_verdict colony_retry_next(const colony_retry_policy *p, const char *method,
                                       unsigned attempts_done, int err, int status,
                                       const colony_deadline *deadline, uint64_t *delay_ms)
{
    *delay_ms = 0;
    int kind = failure_kind(err, status);
    if (kind == 0) return COLONY_RETRY_SUCCESS;
    if (kind < 0 || !(p->retry_on & (unsigned)kind)) return COLONY_RETRY_NOT_RETRYABLE;
    if (!p->allow_non_idempotent && !colony_http_method_idempotent(method))
        return COLONY_RETRY_NOT_IDEMPOTENT;
    if (attempts_done == 0 || attempts_done >= p->max_attempts) return COLONY_RETRY_EXHAUSTED;
    colony_random_fn random = p->random ? p->random : default_random;
    uint64_t delay =
        colony_backoff_full_jitter(p->base_ms, p->cap_ms, attempts_done - 1, random(p->random_ud));
    /* Checked before the budget so a pointless retry does not spend it. */
    if (deadline && delay >= colony_deadline_remaining(deadline)) return COLONY_RETRY_DEADLINE;
    if (p->budget && colony_retry_budget_allow(p->budget) != 0) return COLONY_RETRY_NO_BUDGET;
    *delay_ms = delay;
    return COLONY_RETRY_GO;
}

const char *colony_retry_verdict_name(colony_retry_verdict v)
{
    switch (v) {
    case COLONY_RETRY_GO:
        return "GO";
    case COLONY_RETRY_SUCCESS:
        return "SUCCESS";
    case COLONY_RETRY_NOT_RETRYABLE:
        return "NOT_RETRYABLE";
    case COLONY_RETRY_NOT_IDEMPOTENT:
        return "NOT_IDEMPOTENT";
    case COLONY_RETRY_EXHAUSTED:
        return "EXHAUSTED";
    case COLONY_RETRY_NO_BUDGET:
        return "NO_BUDGET";
    case COLONY_RETRY_DEADLINE:
        return "DEADLINE";
    }
    return "UNKNOWN";
}

/* ------------------------------------------------------------ retry budget */

enum { BUDGET_REQUESTS = 0, BUDGET_RETRIES = 1, BUDGET_BUCKETS = 10 };

struct colony_retry_budget {
    colony_retry_budget_options opts;
    colony__rolling window;
};

void colony_retry_budget_options_init(colony_retry_budget_options *o)
{
    memset(o, 0, sizeof(*o));
    o->percent = 20;
    o->min_retries_per_sec = 10;
    o->window_ms = 10000;
}

colony_retry_budget *colony_retry_budget_new(const colony_retry_budget_options *o)
{
    colony_retry_budget_options defaults;
    if (!o) {
        colony_retry_budget_options_init(&defaults);
        o = &defaults;
    }
    if (o->window_ms == 0) return NULL;
    colony_retry_budget *b = colony__calloc(1, sizeof(*b));
    if (!b) return NULL;
    b->opts = *o;
    if (colony__rolling_init(&b->window, o->window_ms, BUDGET_BUCKETS) != 0) {
        colony__free(b);
        return NULL;
    }
    return b;
}

void colony_retry_budget_free(colony_retry_budget *b)
{
    if (!b) return;
    colony__rolling_free(&b->window);
    colony__free(b);
}

void colony_retry_budget_record_request(colony_retry_budget *b)
{
    colony__rolling_add(&b->window, colony_clock_now(&b->opts.clock), BUDGET_REQUESTS, 1);
}

/* Allowed retries in the window = percent of requests (rounded down) plus
 * the floor, min_retries_per_sec for each second of the window. */
int colony_retry_budget_allow(colony_retry_budget *b)
{
    uint64_t now = colony_clock_now(&b->opts.clock);
    uint64_t sums[COLONY__ROLLING_FIELDS];
    colony__rolling_sum(&b->window, now, sums);
    uint64_t allowed = sums[BUDGET_REQUESTS] * b->opts.percent / 100u;
    allowed += (uint64_t)b->opts.min_retries_per_sec * b->opts.window_ms / 1000u;
    if (sums[BUDGET_RETRIES] >= allowed) return COLONY_EBUSY;
    colony__rolling_add(&b->window, now, BUDGET_RETRIES, 1);
    return 0;
}

void colony_retry_budget_counts(colony_retry_budget *b, uint64_t *requests, uint64_t *retries)
{
    uint64_t sums[COLONY__ROLLING_FIELDS];
    colony__rolling_sum(&b->window, colony_clock_now(&b->opts.clock), sums);
    if (requests) *requests = sums[BUDGET_REQUESTS];
    if (retries) *retries = sums[BUDGET_RETRIES];
}
