/* Rate limiters. Both use integer arithmetic only, so refill and window
 * weighting are exact and never drift: the token bucket counts micro-tokens
 * (1 token = 1e6), the sliding window compares counts scaled by window_ms. */
#include <math.h>
#include <string.h>
#include "colony/error.h"
#include "colony/ratelimit.h"
#include "core/alloc.h"

#define MICRO            1000000ull
#define MAX_RATE_PER_SEC 1e9
#define MAX_WINDOW_MS    (1ull << 31) /* keeps limit * window_ms within 64 bits */

struct colony_token_bucket {
    uint64_t rate_micro_per_ms; /* micro-tokens per ms == tokens per second * 1000 */
    uint64_t capacity;          /* micro-tokens */
    uint64_t tokens;            /* micro-tokens */
    uint64_t last_ms;
    colony_clock clock;
};

static int rate_valid(double rate_per_sec, unsigned burst)
{
    return burst > 0 && rate_per_sec >= 0 && rate_per_sec <= MAX_RATE_PER_SEC;
}

void colony_token_bucket_options_init(colony_token_bucket_options *o)
{
    *o = (colony_token_bucket_options){.rate_per_sec = 100, .burst = 100};
}

colony_token_bucket *colony_token_bucket_new(const colony_token_bucket_options *o)
{
    if (!o || !rate_valid(o->rate_per_sec, o->burst)) return NULL;
    colony_token_bucket *tb = colony__calloc(1, sizeof(*tb));
    if (!tb) return NULL;
    tb->clock = o->clock;
    tb->rate_micro_per_ms = (uint64_t)llround(o->rate_per_sec * 1000.0);
    tb->capacity = (uint64_t)o->burst * MICRO;
    tb->tokens = tb->capacity;
    tb->last_ms = colony_clock_now(&tb->clock);
    return tb;
}

void colony_token_bucket_free(colony_token_bucket *tb)
{
    colony__free(tb);
}

static void refill(colony_token_bucket *tb)
{
    uint64_t now = colony_clock_now(&tb->clock);
    if (now <= tb->last_ms) return;
    uint64_t elapsed = now - tb->last_ms;
    tb->last_ms = now;
    uint64_t room = tb->capacity - tb->tokens;
    /* elapsed * rate may overflow; compare by division first. */
    if (tb->rate_micro_per_ms && elapsed >= room / tb->rate_micro_per_ms + 1)
        tb->tokens = tb->capacity;
    else
        tb->tokens += elapsed * tb->rate_micro_per_ms;
}

int colony_token_bucket_take(colony_token_bucket *tb, unsigned n, uint64_t *retry_after_ms)
{
    refill(tb);
    uint64_t need = (uint64_t)n * MICRO;
    if (tb->tokens >= need) {
        tb->tokens -= need;
        if (retry_after_ms) *retry_after_ms = 0;
        return 0;
    }
    if (retry_after_ms) {
        uint64_t deficit = need - tb->tokens;
        if (need > tb->capacity || tb->rate_micro_per_ms == 0)
            *retry_after_ms = UINT64_MAX;
        else
            *retry_after_ms = (deficit + tb->rate_micro_per_ms - 1) / tb->rate_micro_per_ms;
    }
    return COLONY_EBUSY;
}

unsigned colony_token_bucket_available(colony_token_bucket *tb)
{
    refill(tb);
    return (unsigned)(tb->tokens / MICRO);
}

int colony_token_bucket_set_rate(colony_token_bucket *tb, double rate_per_sec, unsigned burst)
{
    if (!rate_valid(rate_per_sec, burst)) return COLONY_EINVAL;
    refill(tb); /* time so far is paid at the old rate */
    tb->rate_micro_per_ms = (uint64_t)llround(rate_per_sec * 1000.0);
    tb->capacity = (uint64_t)burst * MICRO;
    if (tb->tokens > tb->capacity) tb->tokens = tb->capacity;
    return 0;
}

/* ---------------------------------------------------------- sliding window */

struct colony_sliding_window {
    uint64_t limit;
    uint64_t window_ms;
    uint64_t current_start; /* aligned to window_ms */
    uint64_t current;
    uint64_t previous;
    colony_clock clock;
};

void colony_sliding_window_options_init(colony_sliding_window_options *o)
{
    *o = (colony_sliding_window_options){.limit = 100, .window_ms = 1000};
}

colony_sliding_window *colony_sliding_window_new(const colony_sliding_window_options *o)
{
    if (!o || o->limit == 0 || o->window_ms == 0 || o->window_ms > MAX_WINDOW_MS) return NULL;
    colony_sliding_window *sw = colony__calloc(1, sizeof(*sw));
    if (!sw) return NULL;
    sw->limit = o->limit;
    sw->window_ms = o->window_ms;
    sw->clock = o->clock;
    uint64_t now = colony_clock_now(&sw->clock);
    sw->current_start = now - now % sw->window_ms;
    return sw;
}

void colony_sliding_window_free(colony_sliding_window *sw)
{
    colony__free(sw);
}

/* Moves the windows forward to now; returns ms elapsed in the current window. */
static uint64_t roll(colony_sliding_window *sw)
{
    uint64_t now = colony_clock_now(&sw->clock);
    uint64_t start = now - now % sw->window_ms;
    if (start > sw->current_start) {
        sw->previous = start - sw->current_start == sw->window_ms ? sw->current : 0;
        sw->current = 0;
        sw->current_start = start;
    }
    return now > sw->current_start ? now - sw->current_start : 0;
}

/* The estimate times window_ms: previous * (W - elapsed) + current * W. */
static uint64_t scaled_estimate(const colony_sliding_window *sw, uint64_t elapsed)
{
    return sw->previous * (sw->window_ms - elapsed) + sw->current * sw->window_ms;
}

/* How long until n more units fit, solving the estimate for time. Called only
 * when they do not fit now and n <= limit. */
static uint64_t wait_ms(const colony_sliding_window *sw, uint64_t elapsed, uint64_t n)
{
    uint64_t w = sw->window_ms;
    uint64_t to_next = w - elapsed;
    if (sw->current + n <= sw->limit) {
        /* Fits in this window once previous's weight drops to
         * previous * (W - e - t) <= (limit - current - n) * W. */
        uint64_t allowed = (sw->limit - sw->current - n) * w / sw->previous;
        return to_next > allowed ? to_next - allowed : 0;
    }
    /* Next window: current becomes previous; need current * (W - e2) <= (limit - n) * W. */
    uint64_t allowed = (sw->limit - n) * w / sw->current;
    return to_next + (w > allowed ? w - allowed : 0);
}

int colony_sliding_window_take(colony_sliding_window *sw, unsigned n, uint64_t *retry_after_ms)
{
    uint64_t elapsed = roll(sw);
    if (scaled_estimate(sw, elapsed) + (uint64_t)n * sw->window_ms <= sw->limit * sw->window_ms) {
        sw->current += n;
        if (retry_after_ms) *retry_after_ms = 0;
        return 0;
    }
    if (retry_after_ms) *retry_after_ms = n > sw->limit ? UINT64_MAX : wait_ms(sw, elapsed, n);
    return COLONY_EBUSY;
}

unsigned colony_sliding_window_count(colony_sliding_window *sw)
{
    uint64_t elapsed = roll(sw);
    return (unsigned)(scaled_estimate(sw, elapsed) / sw->window_ms);
}
