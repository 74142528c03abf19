/* Bulkhead: at most max_concurrent calls at once, then a bounded FIFO queue,
 * then rejection. Loop-friendly: no threads or locks; callbacks run from
 * acquire (slot free), release (slot handed over) or expire (timed out). The
 * queue is a ring allocated up front so acquiring never allocates. */
#include <string.h>
#include "colony/error.h"
#include "colony/resilience.h"
#include "core/alloc.h"

typedef struct waiter {
    colony_bulkhead_cb cb;
    void *ud;
    uint64_t queued_at;
} waiter;

struct colony_bulkhead {
    colony_bulkhead_options opts;
    waiter *queue; /* ring of opts.max_queued, oldest at head */
    unsigned head;
    unsigned queued;
    unsigned active;
    colony_bulkhead_stats totals;
};

void colony_bulkhead_options_init(colony_bulkhead_options *o)
{
    memset(o, 0, sizeof(*o));
    o->max_concurrent = 10;
}

colony_bulkhead *colony_bulkhead_new(const colony_bulkhead_options *o)
{
    colony_bulkhead_options defaults;
    if (!o) {
        colony_bulkhead_options_init(&defaults);
        o = &defaults;
    }
    if (o->max_concurrent == 0) return NULL;
    colony_bulkhead *b = colony__calloc(1, sizeof(*b));
    if (!b) return NULL;
    b->opts = *o;
    if (o->max_queued) {
        b->queue = colony__calloc(o->max_queued, sizeof(*b->queue));
        if (!b->queue) {
            colony__free(b);
            return NULL;
        }
    }
    return b;
}

static waiter pop_front(colony_bulkhead *b)
{
    waiter w = b->queue[b->head];
    b->head = (b->head + 1) % b->opts.max_queued;
    b->queued--;
    return w;
}

void colony_bulkhead_free(colony_bulkhead *b)
{
    if (!b) return;
    while (b->queued) {
        waiter w = pop_front(b);
        w.cb(b, COLONY_ECANCELED, w.ud);
    }
    colony__free(b->queue);
    colony__free(b);
}

int colony_bulkhead_acquire(colony_bulkhead *b, colony_bulkhead_cb cb, void *ud)
{
    if (!cb) return COLONY_EINVAL;
    /* A free slot goes to the queue first: newcomers never overtake waiters. */
    if (b->active < b->opts.max_concurrent && b->queued == 0) {
        b->active++;
        b->totals.acquired++;
        cb(b, 0, ud);
        return 0;
    }
    if (b->queued >= b->opts.max_queued) {
        b->totals.rejected++;
        return COLONY_EBUSY;
    }
    unsigned tail = (b->head + b->queued) % b->opts.max_queued;
    b->queue[tail] = (waiter){.cb = cb, .ud = ud, .queued_at = colony_clock_now(&b->opts.clock)};
    b->queued++;
    return 0;
}

static int timed_out(const colony_bulkhead *b, const waiter *w, uint64_t now)
{
    return b->opts.queue_timeout_ms && now >= w->queued_at &&
           now - w->queued_at >= b->opts.queue_timeout_ms;
}

void colony_bulkhead_release(colony_bulkhead *b)
{
    if (b->active == 0) return; /* unbalanced release: ignore rather than underflow */
    b->active--;
    uint64_t now = colony_clock_now(&b->opts.clock);
    /* State is updated before each callback, which may acquire or release again. */
    while (b->queued && b->active < b->opts.max_concurrent) {
        waiter w = pop_front(b);
        if (timed_out(b, &w, now)) {
            b->totals.expired++;
            w.cb(b, COLONY_ETIMEDOUT, w.ud);
            continue;
        }
        b->active++;
        b->totals.acquired++;
        w.cb(b, 0, w.ud);
        break;
    }
}

unsigned colony_bulkhead_expire(colony_bulkhead *b)
{
    uint64_t now = colony_clock_now(&b->opts.clock);
    unsigned n = 0;
    /* FIFO with one timeout: the oldest waiter always times out first. */
    while (b->queued && timed_out(b, &b->queue[b->head], now)) {
        waiter w = pop_front(b);
        b->totals.expired++;
        n++;
        w.cb(b, COLONY_ETIMEDOUT, w.ud);
    }
    return n;
}

uint64_t colony_bulkhead_next_expiry_ms(const colony_bulkhead *b)
{
    if (!b->queued || !b->opts.queue_timeout_ms) return UINT64_MAX;
    uint64_t now = colony_clock_now(&b->opts.clock);
    uint64_t due = b->queue[b->head].queued_at + b->opts.queue_timeout_ms;
    return now >= due ? 0 : due - now;
}

int colony_bulkhead_cancel(colony_bulkhead *b, colony_bulkhead_cb cb, void *ud)
{
    for (unsigned i = 0; i < b->queued; i++) {
        unsigned at = (b->head + i) % b->opts.max_queued;
        if (b->queue[at].cb != cb || b->queue[at].ud != ud) continue;
        /* Close the gap by shifting the younger waiters one place forward. */
        for (unsigned j = i; j + 1 < b->queued; j++) {
            unsigned to = (b->head + j) % b->opts.max_queued;
            unsigned from = (b->head + j + 1) % b->opts.max_queued;
            b->queue[to] = b->queue[from];
        }
        b->queued--;
        return 0;
    }
    return COLONY_ENOENT;
}

void colony_bulkhead_get_stats(const colony_bulkhead *b, colony_bulkhead_stats *out)
{
    *out = b->totals;
    out->active = b->active;
    out->queued = b->queued;
}
