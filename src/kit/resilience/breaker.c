/* Circuit breaker: CLOSED counts outcomes in a rolling window and trips to
 * OPEN on a failure or slow-call rate; OPEN rejects for open_ms; HALF_OPEN
 * admits a fixed number of trials that close it (all succeed) or re-open it
 * (any fails or is slow). */
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "colony/resilience.h"
#include "core/alloc.h"
#include "kit/resilience/rolling_internal.h"

enum { FIELD_CALLS = 0, FIELD_FAILURES = 1, FIELD_SLOW = 2, MAX_WINDOW_CALLS = 100000 };

typedef struct call_outcome {
    uint64_t at_ms;
    unsigned char failed;
    unsigned char slow;
} call_outcome;

struct colony_breaker {
    colony_breaker_options opts;
    char *name;
    colony_breaker_state state;
    uint64_t opened_at;
    unsigned trials_admitted;
    unsigned trials_succeeded;
    /* Count window (window_calls > 0): a ring of the last outcomes, oldest at head. */
    call_outcome *ring;
    unsigned ring_head;
    unsigned ring_len;
    uint64_t ring_failures;
    uint64_t ring_slow;
    /* Time-only window (window_calls == 0). */
    colony__rolling rolling;
    colony_breaker_stats totals;
};

void colony_breaker_options_init(colony_breaker_options *o)
{
    memset(o, 0, sizeof(*o));
    o->name = "breaker";
    o->failure_rate_percent = 50;
    o->slow_rate_percent = 100;
    o->slow_call_ms = 60000;
    o->minimum_calls = 20;
    o->window_calls = 100;
    o->window_ms = 60000;
    o->window_buckets = 10;
    o->open_ms = 30000;
    o->half_open_calls = 5;
}

static int options_valid(const colony_breaker_options *o)
{
    if (o->window_calls == 0 && o->window_ms == 0) return 0;
    if (o->window_calls > MAX_WINDOW_CALLS) return 0;
    if (o->failure_rate_percent > 100 || o->slow_rate_percent > 100) return 0;
    return o->half_open_calls > 0;
}

colony_breaker *colony_breaker_new(const colony_breaker_options *o)
{
    colony_breaker_options defaults;
    if (!o) {
        colony_breaker_options_init(&defaults);
        o = &defaults;
    }
    if (!options_valid(o)) return NULL;
    colony_breaker *b = colony__calloc(1, sizeof(*b));
    if (!b) return NULL;
    b->opts = *o;
    b->name = colony__strdup(o->name ? o->name : "breaker");
    if (!b->name) goto fail;
    b->opts.name = b->name;
    if (o->window_calls) {
        b->ring = colony__calloc(o->window_calls, sizeof(*b->ring));
        if (!b->ring) goto fail;
    } else if (colony__rolling_init(&b->rolling, o->window_ms, o->window_buckets) != 0) {
        goto fail;
    }
    b->state = COLONY_BREAKER_CLOSED;
    return b;
fail:
    colony__free(b->name);
    colony__free(b);
    return NULL;
}

void colony_breaker_free(colony_breaker *b)
{
    if (!b) return;
    colony__free(b->ring);
    colony__rolling_free(&b->rolling);
    colony__free(b->name);
    colony__free(b);
}

static uint64_t now_ms(const colony_breaker *b)
{
    return colony_clock_now(&b->opts.clock);
}

static void ring_pop_oldest(colony_breaker *b)
{
    const call_outcome *c = &b->ring[b->ring_head];
    b->ring_failures -= c->failed;
    b->ring_slow -= c->slow;
    b->ring_head = (b->ring_head + 1) % b->opts.window_calls;
    b->ring_len--;
}

/* Forgets outcomes older than window_ms (the ring is in time order). */
static void ring_expire(colony_breaker *b, uint64_t now)
{
    if (!b->opts.window_ms) return;
    while (b->ring_len && now >= b->ring[b->ring_head].at_ms &&
           now - b->ring[b->ring_head].at_ms >= b->opts.window_ms)
        ring_pop_oldest(b);
}

static void window_clear(colony_breaker *b)
{
    if (b->ring) {
        b->ring_head = b->ring_len = 0;
        b->ring_failures = b->ring_slow = 0;
    } else {
        colony__rolling_clear(&b->rolling);
    }
}

static void window_add(colony_breaker *b, uint64_t now, int failed, int slow)
{
    if (b->ring) {
        ring_expire(b, now);
        if (b->ring_len == b->opts.window_calls) ring_pop_oldest(b);
        unsigned tail = (b->ring_head + b->ring_len) % b->opts.window_calls;
        b->ring[tail] = (call_outcome){
            .at_ms = now, .failed = (unsigned char)failed, .slow = (unsigned char)slow};
        b->ring_len++;
        b->ring_failures += (uint64_t)failed;
        b->ring_slow += (uint64_t)slow;
    } else {
        colony__rolling_add(&b->rolling, now, FIELD_CALLS, 1);
        colony__rolling_add(&b->rolling, now, FIELD_FAILURES, (uint64_t)failed);
        colony__rolling_add(&b->rolling, now, FIELD_SLOW, (uint64_t)slow);
    }
}

/* Sums the window at now without changing it: expired ring entries form a
 * prefix, skipped here and dropped by the next window_add. */
static void window_sums(const colony_breaker *b, uint64_t now,
                        uint64_t sums[COLONY__ROLLING_FIELDS])
{
    if (!b->ring) {
        colony__rolling_sum(&b->rolling, now, sums);
        return;
    }
    sums[FIELD_CALLS] = b->ring_len;
    sums[FIELD_FAILURES] = b->ring_failures;
    sums[FIELD_SLOW] = b->ring_slow;
    for (unsigned i = 0; i < b->ring_len && b->opts.window_ms; i++) {
        const call_outcome *c = &b->ring[(b->ring_head + i) % b->opts.window_calls];
        if (now < c->at_ms || now - c->at_ms < b->opts.window_ms) break;
        sums[FIELD_CALLS]--;
        sums[FIELD_FAILURES] -= c->failed;
        sums[FIELD_SLOW] -= c->slow;
    }
}

static void set_state(colony_breaker *b, colony_breaker_state next, uint64_t now)
{
    colony_breaker_state old = b->state;
    if (old == next) return;
    b->state = next;
    b->totals.transitions++;
    b->trials_admitted = b->trials_succeeded = 0;
    if (next == COLONY_BREAKER_OPEN) {
        b->opened_at = now;
        COLONY_LOG_WARN("circuit breaker open", COLONY_LF_STR("breaker", b->name),
                        COLONY_LF_STR("from", colony_breaker_state_name(old)),
                        COLONY_LF_INT("open_ms", b->opts.open_ms));
    } else {
        COLONY_LOG_INFO("circuit breaker state change", COLONY_LF_STR("breaker", b->name),
                        COLONY_LF_STR("from", colony_breaker_state_name(old)),
                        COLONY_LF_STR("to", colony_breaker_state_name(next)));
    }
    /* A closed breaker starts from a clean window: old failures led to the trip. */
    if (next == COLONY_BREAKER_CLOSED) window_clear(b);
    if (b->opts.on_state_change) b->opts.on_state_change(b, old, next, b->opts.ud);
}

int colony_breaker_allow(colony_breaker *b)
{
    uint64_t now = now_ms(b);
    if (b->state == COLONY_BREAKER_OPEN && now >= b->opened_at &&
        now - b->opened_at >= b->opts.open_ms)
        set_state(b, COLONY_BREAKER_HALF_OPEN, now);
    switch (b->state) {
    case COLONY_BREAKER_CLOSED:
        return 0;
    case COLONY_BREAKER_HALF_OPEN:
        if (b->trials_admitted < b->opts.half_open_calls) {
            b->trials_admitted++;
            return 0;
        }
        break;
    case COLONY_BREAKER_OPEN:
        break;
    }
    b->totals.rejected++;
    return COLONY_EBUSY;
}

/* Trips when the window holds at least minimum_calls and either rate reaches
 * its threshold (rates compared as integers: x*100 >= percent*calls). */
static int should_trip(const colony_breaker *b, const uint64_t sums[COLONY__ROLLING_FIELDS])
{
    uint64_t calls = sums[FIELD_CALLS];
    if (calls == 0 || calls < b->opts.minimum_calls) return 0;
    if (b->opts.failure_rate_percent &&
        sums[FIELD_FAILURES] * 100u >= (uint64_t)b->opts.failure_rate_percent * calls)
        return 1;
    if (b->opts.slow_rate_percent &&
        sums[FIELD_SLOW] * 100u >= (uint64_t)b->opts.slow_rate_percent * calls)
        return 1;
    return 0;
}

void colony_breaker_record(colony_breaker *b, int ok, uint64_t duration_ms)
{
    uint64_t now = now_ms(b);
    int failed = !ok;
    int slow = duration_ms > b->opts.slow_call_ms;
    b->totals.calls++;
    b->totals.failures += (uint64_t)failed;
    b->totals.slow += (uint64_t)slow;
    switch (b->state) {
    case COLONY_BREAKER_CLOSED: {
        window_add(b, now, failed, slow);
        uint64_t sums[COLONY__ROLLING_FIELDS];
        window_sums(b, now, sums);
        if (should_trip(b, sums)) set_state(b, COLONY_BREAKER_OPEN, now);
        break;
    }
    case COLONY_BREAKER_HALF_OPEN:
        /* Outcomes are not matched to permits: a success beyond the trials
         * handed out is a late pre-trip call and proves nothing. */
        if (failed || slow) {
            set_state(b, COLONY_BREAKER_OPEN, now);
        } else if (b->trials_succeeded < b->trials_admitted &&
                   ++b->trials_succeeded >= b->opts.half_open_calls) {
            set_state(b, COLONY_BREAKER_CLOSED, now);
        }
        break;
    case COLONY_BREAKER_OPEN:
        /* A call admitted before the trip finished late: counted, no effect. */
        break;
    }
}

colony_breaker_state colony_breaker_get_state(const colony_breaker *b)
{
    return b->state;
}

void colony_breaker_get_stats(const colony_breaker *b, colony_breaker_stats *out)
{
    uint64_t sums[COLONY__ROLLING_FIELDS];
    window_sums(b, now_ms(b), sums);
    *out = b->totals;
    out->state = b->state;
    out->window_calls = sums[FIELD_CALLS];
    out->window_failures = sums[FIELD_FAILURES];
    out->window_slow = sums[FIELD_SLOW];
}

const char *colony_breaker_state_name(colony_breaker_state s)
{
    switch (s) {
    case COLONY_BREAKER_CLOSED:
        return "closed";
    case COLONY_BREAKER_OPEN:
        return "open";
    case COLONY_BREAKER_HALF_OPEN:
        return "half_open";
    }
    return "unknown";
}
