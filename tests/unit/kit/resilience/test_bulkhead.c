/* Bulkhead: the concurrency limit, FIFO hand-over on release, rejection when
 * the queue is full, queue timeouts via the fake clock, cancel and free. */
#include "test_support.h"
#include <string.h>
#include "colony/error.h"
#include "colony/resilience.h"
#include "core/alloc.h"

typedef struct event_log {
    int ids[64];
    int errs[64];
    int n;
} event_log;

static event_log events;

typedef struct waiter_ctx {
    int id;
} waiter_ctx;

static void on_slot(colony_bulkhead *b, int err, void *ud)
{
    (void)b;
    waiter_ctx *w = ud;
    events.ids[events.n] = w->id;
    events.errs[events.n] = err;
    events.n++;
}

static colony_fake_clock fake;

static colony_bulkhead *make(unsigned concurrent, unsigned queued, uint64_t timeout)
{
    memset(&events, 0, sizeof(events));
    colony_fake_clock_init(&fake, 100);
    colony_bulkhead_options o;
    colony_bulkhead_options_init(&o);
    o.max_concurrent = concurrent;
    o.max_queued = queued;
    o.queue_timeout_ms = timeout;
    o.clock = colony_clock_fake(&fake);
    colony_bulkhead *b = colony_bulkhead_new(&o);
    assert_non_null(b);
    return b;
}

static void limit_queue_fifo_and_rejection(void **state)
{
    (void)state;
    colony_bulkhead *b = make(2, 3, 0);
    waiter_ctx w[8];
    for (int i = 0; i < 8; i++)
        w[i].id = i;
    assert_int_equal(colony_bulkhead_acquire(b, on_slot, &w[0]), 0);
    assert_int_equal(colony_bulkhead_acquire(b, on_slot, &w[1]), 0);
    assert_int_equal(events.n, 2); /* ran at once */
    for (int i = 2; i < 5; i++)
        assert_int_equal(colony_bulkhead_acquire(b, on_slot, &w[i]), 0);
    assert_int_equal(events.n, 2); /* queued */
    assert_int_equal(colony_bulkhead_acquire(b, on_slot, &w[5]), COLONY_EBUSY);
    assert_int_equal(events.n, 2); /* a rejected caller's cb never runs */
    colony_bulkhead_stats st;
    colony_bulkhead_get_stats(b, &st);
    assert_int_equal(st.active, 2);
    assert_int_equal(st.queued, 3);
    assert_int_equal(st.rejected, 1);
    /* Each release hands the slot to the oldest waiter. */
    colony_bulkhead_release(b);
    assert_int_equal(events.n, 3);
    assert_int_equal(events.ids[2], 2);
    assert_int_equal(events.errs[2], 0);
    colony_bulkhead_release(b);
    colony_bulkhead_release(b);
    assert_int_equal(events.n, 5);
    assert_int_equal(events.ids[3], 3);
    assert_int_equal(events.ids[4], 4);
    colony_bulkhead_get_stats(b, &st);
    assert_int_equal(st.active, 2);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.acquired, 5);
    /* A newcomer does not overtake: with the queue empty it waits like others. */
    assert_int_equal(colony_bulkhead_acquire(b, on_slot, &w[6]), 0);
    assert_int_equal(events.n, 5);
    colony_bulkhead_release(b);
    colony_bulkhead_release(b);
    colony_bulkhead_release(b);
    colony_bulkhead_release(b); /* unbalanced: ignored */
    colony_bulkhead_get_stats(b, &st);
    assert_int_equal(st.active, 0);
    assert_int_equal(events.ids[5], 6);
    colony_bulkhead_free(b);
}

static void no_queue_rejects_at_once(void **state)
{
    (void)state;
    colony_bulkhead *b = make(1, 0, 0);
    waiter_ctx a = {1}, c = {2};
    assert_int_equal(colony_bulkhead_acquire(b, on_slot, &a), 0);
    assert_int_equal(colony_bulkhead_acquire(b, on_slot, &c), COLONY_EBUSY);
    colony_bulkhead_release(b);
    assert_int_equal(colony_bulkhead_acquire(b, on_slot, &c), 0);
    assert_int_equal(events.n, 2);
    colony_bulkhead_release(b);
    assert_int_equal(colony_bulkhead_acquire(b, NULL, &c), COLONY_EINVAL);
    colony_bulkhead_free(b);
}

static void queue_timeout_expires_waiters(void **state)
{
    (void)state;
    colony_bulkhead *b = make(1, 4, 500);
    waiter_ctx w[4] = {{0}, {1}, {2}, {3}};
    assert_int_equal(colony_bulkhead_acquire(b, on_slot, &w[0]), 0);
    assert_int_equal(colony_bulkhead_next_expiry_ms(b), UINT64_MAX);
    assert_int_equal(colony_bulkhead_acquire(b, on_slot, &w[1]), 0); /* queued at 100 */
    colony_fake_clock_advance(&fake, 200);
    assert_int_equal(colony_bulkhead_acquire(b, on_slot, &w[2]), 0); /* queued at 300 */
    assert_int_equal(colony_bulkhead_next_expiry_ms(b), 300);
    colony_fake_clock_advance(&fake, 299);
    assert_int_equal(colony_bulkhead_expire(b), 0);
    colony_fake_clock_advance(&fake, 1);
    assert_int_equal(colony_bulkhead_next_expiry_ms(b), 0);
    assert_int_equal(colony_bulkhead_expire(b), 1); /* waiter 1 timed out */
    assert_int_equal(events.n, 2);
    assert_int_equal(events.ids[1], 1);
    assert_int_equal(events.errs[1], COLONY_ETIMEDOUT);
    assert_int_equal(colony_bulkhead_next_expiry_ms(b), 200);
    /* Release after waiter 2's timeout, without an expire() call: the release
     * skips it (ETIMEDOUT) and hands the slot to waiter 3. */
    assert_int_equal(colony_bulkhead_acquire(b, on_slot, &w[3]), 0); /* queued at 600 */
    colony_fake_clock_advance(&fake, 250);
    colony_bulkhead_release(b);
    assert_int_equal(events.n, 4);
    assert_int_equal(events.ids[2], 2);
    assert_int_equal(events.errs[2], COLONY_ETIMEDOUT);
    assert_int_equal(events.ids[3], 3);
    assert_int_equal(events.errs[3], 0);
    colony_bulkhead_stats st;
    colony_bulkhead_get_stats(b, &st);
    assert_int_equal(st.expired, 2);
    assert_int_equal(st.active, 1);
    colony_bulkhead_release(b);
    colony_bulkhead_free(b);
}

static void cancel_and_free(void **state)
{
    (void)state;
    colony_bulkhead *b = make(1, 3, 0);
    waiter_ctx w[4] = {{0}, {1}, {2}, {3}};
    for (int i = 0; i < 4; i++)
        assert_int_equal(colony_bulkhead_acquire(b, on_slot, &w[i]), 0);
    assert_int_equal(colony_bulkhead_cancel(b, on_slot, &w[2]), 0);
    assert_int_equal(colony_bulkhead_cancel(b, on_slot, &w[2]), COLONY_ENOENT);
    colony_bulkhead_release(b);
    assert_int_equal(events.ids[1], 1);
    /* Freeing cancels the rest in order. */
    colony_bulkhead_free(b);
    assert_int_equal(events.n, 3);
    assert_int_equal(events.ids[2], 3);
    assert_int_equal(events.errs[2], COLONY_ECANCELED);
    colony_bulkhead_free(NULL);
}

/* A waiter that, given the slot, releases it at once: re-entrancy through release. */
static colony_bulkhead *reentrant_b;
static int reentrant_runs;
static void release_immediately(colony_bulkhead *b, int err, void *ud)
{
    (void)ud;
    assert_ptr_equal(b, reentrant_b);
    if (err == 0) {
        reentrant_runs++;
        colony_bulkhead_release(b);
    }
}

static void reentrant_release_drains_queue(void **state)
{
    (void)state;
    colony_bulkhead *b = make(1, 8, 0);
    reentrant_b = b;
    reentrant_runs = 0;
    waiter_ctx holder = {0};
    assert_int_equal(colony_bulkhead_acquire(b, on_slot, &holder), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(colony_bulkhead_acquire(b, release_immediately, NULL), 0);
    colony_bulkhead_release(b);
    assert_int_equal(reentrant_runs, 5);
    colony_bulkhead_stats st;
    colony_bulkhead_get_stats(b, &st);
    assert_int_equal(st.active, 0);
    assert_int_equal(st.queued, 0);
    colony_bulkhead_free(b);
}

static void bad_options_and_alloc_failures(void **state)
{
    (void)state;
    colony_bulkhead_options o;
    colony_bulkhead_options_init(&o);
    o.max_concurrent = 0;
    assert_null(colony_bulkhead_new(&o));
    o.max_concurrent = 1;
    o.max_queued = 10;
    for (long n = 0; n < 2; n++) {
        colony__alloc_fail_after(n);
        assert_null(colony_bulkhead_new(&o));
        colony__alloc_fail_reset();
    }
    colony_bulkhead *b = colony_bulkhead_new(NULL);
    assert_non_null(b);
    colony_bulkhead_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(limit_queue_fifo_and_rejection),
        cmocka_unit_test(no_queue_rejects_at_once),
        cmocka_unit_test(queue_timeout_expires_waiters),
        cmocka_unit_test(cancel_and_free),
        cmocka_unit_test(reentrant_release_drains_queue),
        cmocka_unit_test(bad_options_and_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
