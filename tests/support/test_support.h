/* Shared helpers for Colony's tests (cmocka). */
#ifndef COLONY_TEST_SUPPORT_H
#define COLONY_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <uv.h>

/* Closes every handle still open on loop, runs it until they are closed and
 * fails the test if any handle was still open (a leaked handle) or the loop
 * cannot be closed. Call at the end of each test that used a loop. */
void colony_test_loop_close(uv_loop_t *loop);

/* A wait loop around UV_RUN_ONCE must keep a timer armed (see
 * colony_test_run_until): no poll then blocks longer than this. */
#define COLONY_TEST_TICK_MS 10

/* Runs loop until *flag becomes nonzero or timeout_ms passes; returns *flag. */
int colony_test_run_until(uv_loop_t *loop, volatile int *flag, uint64_t timeout_ms);

/* One uv_run(UV_RUN_ONCE) that blocks at most COLONY_TEST_TICK_MS, for loops
 * that check a condition or a wall-clock bound between turns: a bare
 * UV_RUN_ONCE whose due timers ran before its poll can block forever. */
void colony_test_run_once(uv_loop_t *loop);

/* A copy of data[0..len) placed so that its last byte is the last byte before
 * an inaccessible page: reading past the end crashes the test. Free with
 * colony_test_guarded_free(). */
char *colony_test_guarded_copy(const void *data, size_t len);
void colony_test_guarded_free(char *p, size_t len);

/* Monotonic milliseconds. */
uint64_t colony_test_now_ms(void);

#endif
