/* The closer of closer.h. */
#include "core/closer.h"

void colony__closer_init(colony__closer *c, void (*done)(void *ud), void *ud)
{
    c->pending = 1;
    c->done = done;
    c->ud = ud;
}

void colony__closer_hold(colony__closer *c)
{
    c->pending++;
}

void colony__closer_release(colony__closer *c)
{
    if (--c->pending == 0) c->done(c->ud);
}

static void child_closed(uv_handle_t *h)
{
    colony__closer_release(h->data);
}

void colony__closer_close(colony__closer *c, uv_handle_t *h)
{
    if (uv_is_closing(h)) return;
    c->pending++;
    h->data = c;
    uv_close(h, child_closed);
}

void colony__closer_finish(colony__closer *c, uv_loop_t *loop)
{
    uv_idle_init(loop, &c->sentinel); /* cannot fail: it only links the handle */
    colony__closer_close(c, (uv_handle_t *)&c->sentinel);
    colony__closer_release(c); /* the reference init took; sentinel keeps it > 0 */
}
