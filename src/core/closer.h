/* "Close these handles, then call me once": a count of children still closing
 * and the function to call when the last one is gone. Owners that close
 * several libuv handles (and other children with close callbacks) use it
 * instead of counting by hand. done always runs from a libuv close callback,
 * never inside colony__closer_finish(), so a close function that finishes the
 * closer has returned before its caller's callback runs. */
#ifndef COLONY_CORE_CLOSER_H
#define COLONY_CORE_CLOSER_H

#include <uv.h>

typedef struct colony__closer {
    unsigned pending; /* children still closing, + 1 until finish */
    void (*done)(void *ud);
    void *ud;
    uv_idle_t sentinel; /* closed by finish, so done is always deferred */
} colony__closer;

/* Starts a closer: done(ud) runs once, after finish and after every child. */
void colony__closer_init(colony__closer *c, void (*done)(void *ud), void *ud);
/* Closes h (if not already closing) as a child of c. h->data is taken over. */
void colony__closer_close(colony__closer *c, uv_handle_t *h);
/* A child that is not a handle (a client, a tracer): hold before starting its
 * close, release from its close callback. */
void colony__closer_hold(colony__closer *c);
void colony__closer_release(colony__closer *c);
/* No more children will be added; done runs once all have closed. */
void colony__closer_finish(colony__closer *c, uv_loop_t *loop);

#endif
