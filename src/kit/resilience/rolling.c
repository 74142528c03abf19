#include "kit/resilience/rolling_internal.h"
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"

int colony__rolling_init(colony__rolling *r, uint64_t window_ms, unsigned count)
{
    if (count == 0) count = 1;
    r->width_ms = window_ms / count;
    if (r->width_ms == 0) r->width_ms = 1;
    r->count = count;
    r->buckets = colony__calloc(count, sizeof(*r->buckets));
    if (!r->buckets) return COLONY_ENOMEM;
    colony__rolling_clear(r);
    return 0;
}

void colony__rolling_free(colony__rolling *r)
{
    colony__free(r->buckets);
    r->buckets = NULL;
}

void colony__rolling_clear(colony__rolling *r)
{
    /* UINT64_MAX never equals a real epoch and is never "inside" a window. */
    for (unsigned i = 0; i < r->count; i++) {
        memset(&r->buckets[i], 0, sizeof(r->buckets[i]));
        r->buckets[i].epoch = UINT64_MAX;
    }
}

void colony__rolling_add(colony__rolling *r, uint64_t now, unsigned field, uint64_t delta)
{
    uint64_t epoch = now / r->width_ms;
    colony__rolling_bucket *b = &r->buckets[epoch % r->count];
    if (b->epoch != epoch) {
        memset(b->n, 0, sizeof(b->n));
        b->epoch = epoch;
    }
    b->n[field] += delta;
}

void colony__rolling_sum(const colony__rolling *r, uint64_t now,
                         uint64_t out[COLONY__ROLLING_FIELDS])
{
    memset(out, 0, sizeof(uint64_t) * COLONY__ROLLING_FIELDS);
    uint64_t epoch = now / r->width_ms;
    for (unsigned i = 0; i < r->count; i++) {
        const colony__rolling_bucket *b = &r->buckets[i];
        /* Inside the window: one of the last `count` epochs, the current included. */
        if (b->epoch == UINT64_MAX || b->epoch > epoch || epoch - b->epoch >= r->count) continue;
        for (unsigned f = 0; f < COLONY__ROLLING_FIELDS; f++)
            out[f] += b->n[f];
    }
}
