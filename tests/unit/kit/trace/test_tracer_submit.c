/* colony__tracer_submit's wake-up and the tracer's stop: the wake-up is sent
 * while the tracer's lock is held, so it cannot race with a stop that closes
 * the wake handle; once stopping, ended spans are dropped (counted) and no
 * wake-up is sent. Includes tracer.c to watch its uv_async_send calls. */
#include "test_support.h"
#include <errno.h>
#include <uv.h>
#include "colony/log.h"

static int wakes_sent, wakes_unlocked_while_running;
static pthread_mutex_t *watched_lock;
static volatile int *watched_stopping;

/* Counts wake-ups; one sent without the lock held while the tracer was not
 * stopping could race with colony_tracer_free closing the handle. */
static int watch_async_send(uv_async_t *async)
{
    if (watched_lock) {
        wakes_sent++;
        if (pthread_mutex_trylock(watched_lock) == 0) {
            if (!*watched_stopping) wakes_unlocked_while_running++;
            pthread_mutex_unlock(watched_lock);
        }
    }
    return uv_async_send(async);
}

#define uv_async_send watch_async_send
#include "kit/trace/tracer.c"
#undef uv_async_send

static colony_tracer *watched_tracer(void)
{
    /* Nothing listens on port 1: exports fail, which is fine here. */
    colony_tracer_options o = {.sample_ratio = 1,
                               .endpoint = "http://127.0.0.1:1/v1/traces",
                               .max_batch = 2,
                               .flush_interval_ms = 3600000};
    colony_tracer *t = colony_tracer_new(&o);
    assert_non_null(t);
    watched_lock = &t->lock;
    watched_stopping = (volatile int *)&t->stopping;
    wakes_sent = wakes_unlocked_while_running = 0;
    return t;
}

static void wake_is_sent_under_the_lock(void **state)
{
    (void)state;
    colony_tracer *t = watched_tracer();
    for (int i = 0; i < 4; i++)
        colony_span_end(colony_span_start(t, "x", COLONY_SPAN_SERVER, NULL));
    assert_true(wakes_sent >= 1);
    assert_int_equal(wakes_unlocked_while_running, 0);
    watched_lock = NULL;
    colony_tracer_free(t, 100);
}

static void spans_ended_while_stopping_are_dropped_without_wake(void **state)
{
    (void)state;
    colony_tracer *t = watched_tracer();
    request_stop(t, 100); /* the first step of colony_tracer_free */
    for (int i = 0; i < 4; i++)
        colony_span_end(colony_span_start(t, "x", COLONY_SPAN_SERVER, NULL));
    assert_int_equal(wakes_sent, 0);
    colony_tracer_stats st;
    colony_tracer_get_stats(t, &st);
    assert_int_equal(st.dropped, 4);
    watched_lock = NULL;
    colony_tracer_free(t, 100);
}

int main(void)
{
    colony_log_set_level(COLONY_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wake_is_sent_under_the_lock),
        cmocka_unit_test(spans_ended_while_stopping_are_dropped_without_wake),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
