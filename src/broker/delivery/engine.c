/* The engine's handle: open and close, its clock, the backoff formulas, and
 * the streams a call wrote besides the one it named (the caller waits on
 * them). */
#include "broker/delivery/internal.h"
#include "colony/error.h"
#include "core/alloc.h"

int colony__bdelivery_open(colony__bdelivery **out, const colony__bdelivery_options *o)
{
    if (!o || !o->store) return COLONY_EINVAL;
    colony__bdelivery *d = colony__calloc(1, sizeof(*d));
    bd_life *life = colony__calloc(1, sizeof(*life));
    if (!d || !life) {
        colony__free(d);
        colony__free(life);
        return COLONY_ENOMEM;
    }
    d->store = o->store;
    d->commit = o->commit;
    d->clock = o->clock;
    life->d = d;
    life->refs = 1;
    d->life = life;
    d->rng = o->seed ? o->seed : colony__bdelivery_now(d) * 0x9E3779B97F4A7C15ull + 1;
    *out = d;
    return 0;
}

void colony__bdelivery_close(colony__bdelivery *d)
{
    if (!d) return;
    colony__bd_pols_free(d);
    d->life->d = NULL;
    if (--d->life->refs == 0) colony__free(d->life);
    colony__free(d);
}

uint64_t colony__bdelivery_now(const colony__bdelivery *d)
{
    return d->clock.now_ms ? colony_clock_now(&d->clock) : colony__bstore_now(d->store);
}

colony__bstore *colony__bdelivery_store(const colony__bdelivery *d)
{
    return d->store;
}

void colony__bd_touch(colony__bdelivery *d, colony__bstream *st)
{
    for (size_t i = 0; i < d->ntouched; i++)
        if (d->touched[i] == st) return;
    if (d->ntouched < BD_TOUCHED_MAX) d->touched[d->ntouched++] = st;
}

colony__bstream *colony__bdelivery_touched(const colony__bdelivery *d, size_t i)
{
    return i < d->ntouched ? d->touched[i] : NULL;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

/* fixed: delay; linear: delay × count; exponential: delay × 2^(count-1);
 * then the cap, then jitter lowers it by up to jitter_pct percent. */
uint64_t colony__bdelivery_backoff(colony__bdelivery *d, const colony__bbackoff *b, uint64_t count)
{
    if (!count) count = 1;
    uint64_t ms = b->delay_ms;
    if (b->kind == COLONY__BBACKOFF_LINEAR) ms = sat_mul(ms, count);
    if (b->kind == COLONY__BBACKOFF_EXPONENTIAL)
        ms = count > 64 ? (ms ? UINT64_MAX : 0)
                        : sat_mul(ms, count == 64 ? UINT64_MAX : 1ull << (count - 1));
    if (b->cap_ms && ms > b->cap_ms) ms = b->cap_ms;
    uint32_t pct = b->jitter_pct > 100 ? 100 : b->jitter_pct;
    if (pct && ms) {
        d->rng ^= d->rng << 13; /* xorshift64 */
        d->rng ^= d->rng >> 7;
        d->rng ^= d->rng << 17;
        uint64_t span = ms / 100 * pct + ms % 100 * pct / 100;
        ms -= span ? d->rng % (span + 1) : 0;
    }
    return ms;
}
