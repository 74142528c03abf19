#include "test_support.h"
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* cmocka writes its results to stdout (CMOCKA_MESSAGE_OUTPUT=stdout), which is
 * block-buffered in a pipe: when ctest kills a test that hangs, the buffered
 * "[  ERROR   ]" lines that say what failed first were lost with it. Line
 * buffering keeps every finished line. */
__attribute__((constructor)) static void line_buffered_stdout(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
}

static void count_open(uv_handle_t *h, void *arg)
{
    int *open = arg;
    if (!uv_is_closing(h)) {
        fprintf(stderr, "leaked libuv handle: %s\n", uv_handle_type_name(uv_handle_get_type(h)));
        (*open)++;
        uv_close(h, NULL);
    }
}

void colony_test_loop_close(uv_loop_t *loop)
{
    /* Let pending close callbacks run first. */
    for (int i = 0; i < 100 && uv_run(loop, UV_RUN_NOWAIT); i++) {
    }
    int open = 0;
    uv_walk(loop, count_open, &open);
    for (int i = 0; i < 100 && uv_run(loop, UV_RUN_NOWAIT); i++) {
    }
    assert_int_equal(open, 0);
    assert_int_equal(uv_loop_close(loop), 0);
}

typedef struct run_deadline {
    uint64_t end; /* loop time at which the wait gives up */
    int expired;
} run_deadline;

static void on_tick(uv_timer_t *t)
{
    run_deadline *d = t->data;
    if (uv_now(t->loop) >= d->end) d->expired = 1;
}

/* A repeating tick, not a one-shot deadline: UV_RUN_ONCE runs the timers that
 * are due *before* it polls, so a one-shot deadline (or a timer that sets
 * *flag) firing at the start of uv_run left the poll with no timer at all,
 * and it blocked for good (unit_test_config_reload hung in CI that way). The
 * tick keeps a timer armed, so no poll waits longer than COLONY_TEST_TICK_MS. */
int colony_test_run_until(uv_loop_t *loop, volatile int *flag, uint64_t timeout_ms)
{
    uv_timer_t tick;
    run_deadline d = {0, 0};
    uv_update_time(loop);
    d.end = uv_now(loop) + timeout_ms;
    uv_timer_init(loop, &tick);
    tick.data = &d;
    uv_timer_start(&tick, on_tick, COLONY_TEST_TICK_MS, COLONY_TEST_TICK_MS);
    while (!*flag && !d.expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag;
}

static void on_wake(uv_timer_t *t)
{
    (void)t;
}

void colony_test_run_once(uv_loop_t *loop)
{
    uv_timer_t wake;
    uv_update_time(loop);
    uv_timer_init(loop, &wake);
    uv_timer_start(&wake, on_wake, COLONY_TEST_TICK_MS, COLONY_TEST_TICK_MS);
    uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&wake, NULL);
    uv_run(loop, UV_RUN_NOWAIT); /* finishes the close: wake lives on this stack */
}

char *colony_test_guarded_copy(const void *data, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (len + page - 1) / page + 1;
    unsigned char *base =
        mmap(NULL, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(base != MAP_FAILED);
    unsigned char *guard = base + (pages - 1) * page;
    assert_int_equal(mprotect(guard, page, PROT_NONE), 0);
    unsigned char *p = guard - len;
    if (len) memcpy(p, data, len);
    return (char *)p;
}

void colony_test_guarded_free(char *p, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *guard = (unsigned char *)p + len;
    size_t pages = (len + page - 1) / page + 1;
    munmap(guard - (pages - 1) * page, pages * page);
}

uint64_t colony_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
