/* An injectable millisecond clock. Everything time-driven in libcolony
 * (deadlines, retries, breakers, bulkheads, rate limits) reads time through a
 * colony_clock, so tests drive it with a fake clock and never sleep.
 *
 *   colony_fake_clock fake;
 *   colony_fake_clock_init(&fake, 1000);
 *   opts.clock = colony_clock_fake(&fake);
 *   colony_fake_clock_advance(&fake, 250);
 */
#ifndef COLONY_CLOCK_H
#define COLONY_CLOCK_H

#include <stdint.h>
#include "export.h"

/* Returns monotonic milliseconds; the origin is arbitrary but fixed. */
typedef uint64_t (*colony_clock_now_fn)(void *ud);

/* A value type: copy it freely. A zeroed clock (now_ms NULL) means the system clock. */
typedef struct colony_clock {
    colony_clock_now_fn now_ms;
    void *ud;
} colony_clock;

/* The process's monotonic clock (CLOCK_MONOTONIC, milliseconds). */
COLONY_API colony_clock colony_clock_system(void);
/* Reads c; NULL or a zeroed clock reads the system clock. */
COLONY_API uint64_t colony_clock_now(const colony_clock *c);

/* A clock that moves only when told to. Public so services' own tests can use
 * it; the caller owns the struct and it must outlive every clock made from it. */
typedef struct colony_fake_clock {
    uint64_t now_ms;
} colony_fake_clock;

COLONY_API void colony_fake_clock_init(colony_fake_clock *f, uint64_t start_ms);
/* A colony_clock that reads f. */
COLONY_API colony_clock colony_clock_fake(colony_fake_clock *f);
COLONY_API void colony_fake_clock_advance(colony_fake_clock *f, uint64_t ms);
COLONY_API void colony_fake_clock_set(colony_fake_clock *f, uint64_t now_ms);

#endif
