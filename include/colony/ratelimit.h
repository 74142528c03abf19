/* Single-instance rate limiters driven by an injectable clock (clock.h): a
 * token bucket (smooth rate with bursts) and a sliding window counter (a
 * limit per window, Cloudflare's two-window approximation). Per-key maps and
 * shared (Redis) limits belong to the gateway. One limiter belongs to one
 * thread. Behaviour and comparisons: docs/resilience.md. */
#ifndef COLONY_RATELIMIT_H
#define COLONY_RATELIMIT_H

#include <stdint.h>
#include "clock.h"
#include "export.h"

/* ------------------------------------------------------------ token bucket */

typedef struct colony_token_bucket colony_token_bucket;

typedef struct colony_token_bucket_options {
    double rate_per_sec; /* tokens added per second, resolution 0.001; 0 = never refills */
    unsigned burst;      /* bucket size, and the tokens it starts with (at least 1) */
    colony_clock clock;  /* zeroed = system clock */
} colony_token_bucket_options;
/* Fills o with the defaults: 100 tokens a second, a burst of 100, system clock. */
COLONY_API void colony_token_bucket_options_init(colony_token_bucket_options *o);

/* NULL on allocation failure or bad options (burst 0, negative or huge rate).
 * Free with colony_token_bucket_free(). */
COLONY_API colony_token_bucket *colony_token_bucket_new(const colony_token_bucket_options *o);
COLONY_API void colony_token_bucket_free(colony_token_bucket *tb);
/* Takes n tokens: 0, or COLONY_EBUSY with *retry_after_ms (may be NULL) set to
 * when n tokens will be there (UINT64_MAX if never: n > burst or rate 0).
 * Refill is fractional and exact: 1.5 tokens/s gives 3 tokens in 2 s. */
COLONY_API int colony_token_bucket_take(colony_token_bucket *tb, unsigned n,
                                        uint64_t *retry_after_ms);
/* Whole tokens available now. */
COLONY_API unsigned colony_token_bucket_available(colony_token_bucket *tb);
/* Changes rate and burst (config reload) keeping the tokens, capped at the new
 * burst. 0 or COLONY_EINVAL. */
COLONY_API int colony_token_bucket_set_rate(colony_token_bucket *tb, double rate_per_sec,
                                            unsigned burst);

/* ---------------------------------------------------------- sliding window */

typedef struct colony_sliding_window colony_sliding_window;

/* At most `limit` units per window_ms, estimated as
 *   previous_window_count * (1 - elapsed_in_current / window_ms) + current_count
 * (Cloudflare's approach: O(1) memory, smooth at window edges, exact when the
 * previous window's traffic was evenly spread). */
typedef struct colony_sliding_window_options {
    unsigned limit;     /* at least 1 */
    uint64_t window_ms; /* at least 1 */
    colony_clock clock; /* zeroed = system clock */
} colony_sliding_window_options;
/* Fills o with the defaults: 100 per second, system clock. */
COLONY_API void colony_sliding_window_options_init(colony_sliding_window_options *o);

/* NULL on allocation failure or bad options. Free with colony_sliding_window_free(). */
COLONY_API colony_sliding_window *colony_sliding_window_new(const colony_sliding_window_options *o);
COLONY_API void colony_sliding_window_free(colony_sliding_window *sw);
/* Counts n units if the estimate stays within the limit: 0, or COLONY_EBUSY
 * with *retry_after_ms (may be NULL) set to when it would (UINT64_MAX if
 * n > limit). */
COLONY_API int colony_sliding_window_take(colony_sliding_window *sw, unsigned n,
                                          uint64_t *retry_after_ms);
/* The current estimate (rounded down) of units in the last window_ms. */
COLONY_API unsigned colony_sliding_window_count(colony_sliding_window *sw);

#endif
