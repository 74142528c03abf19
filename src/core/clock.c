#include "colony/clock.h"
#include <stddef.h>
#include <time.h>

static uint64_t system_now_ms(void *ud)
{
    (void)ud;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

colony_clock colony_clock_system(void)
{
    return (colony_clock){.now_ms = system_now_ms, .ud = NULL};
}

uint64_t colony_clock_now(const colony_clock *c)
{
    if (!c || !c->now_ms) return system_now_ms(NULL);
    return c->now_ms(c->ud);
}

static uint64_t fake_now_ms(void *ud)
{
    return ((const colony_fake_clock *)ud)->now_ms;
}

void colony_fake_clock_init(colony_fake_clock *f, uint64_t start_ms)
{
    f->now_ms = start_ms;
}

colony_clock colony_clock_fake(colony_fake_clock *f)
{
    return (colony_clock){.now_ms = fake_now_ms, .ud = f};
}

void colony_fake_clock_advance(colony_fake_clock *f, uint64_t ms)
{
    f->now_ms += ms;
}

void colony_fake_clock_set(colony_fake_clock *f, uint64_t now_ms)
{
    f->now_ms = now_ms;
}
