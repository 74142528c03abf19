/* A rolling time window of counters, kept in fixed buckets: the sum over the
 * last `count` buckets of `width_ms` each. Used by the retry budget and the
 * breaker's time-only window. Fixed memory, O(buckets) per sum. */
#ifndef COLONY_KIT_ROLLING_INTERNAL_H
#define COLONY_KIT_ROLLING_INTERNAL_H

#include <stdint.h>

#define COLONY__ROLLING_FIELDS 3

typedef struct colony__rolling_bucket {
    uint64_t epoch; /* now_ms / width_ms when the bucket was last reset */
    uint64_t n[COLONY__ROLLING_FIELDS];
} colony__rolling_bucket;

typedef struct colony__rolling {
    colony__rolling_bucket *buckets;
    unsigned count;
    uint64_t width_ms;
} colony__rolling;

/* Splits window_ms into `count` buckets (at least 1 ms wide). 0 or COLONY_ENOMEM. */
int colony__rolling_init(colony__rolling *r, uint64_t window_ms, unsigned count);
void colony__rolling_free(colony__rolling *r);
/* Adds delta to counter `field` at time now. */
void colony__rolling_add(colony__rolling *r, uint64_t now, unsigned field, uint64_t delta);
/* Sums each counter over the buckets still inside the window at now. */
void colony__rolling_sum(const colony__rolling *r, uint64_t now,
                         uint64_t out[COLONY__ROLLING_FIELDS]);
/* Forgets everything. */
void colony__rolling_clear(colony__rolling *r);

#endif
