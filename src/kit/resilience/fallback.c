#include "colony/error.h"
#include "colony/resilience.h"

int colony_fallback_apply(const colony_fallback *f, int err)
{
    if (err == 0 || !f || !f->fn) return err;
    unsigned on = f->on ? f->on : COLONY_FALLBACK_ON_REJECT | COLONY_FALLBACK_ON_FAILURE;
    unsigned kind = err == COLONY_EBUSY ? COLONY_FALLBACK_ON_REJECT : COLONY_FALLBACK_ON_FAILURE;
    if (!(on & kind)) return err;
    return f->fn(f->ud, err);
}
