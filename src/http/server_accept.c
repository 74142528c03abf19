/* Accepting connections: the connection limit across workers, and accepting
 * even when memory runs out so the listener keeps being polled. */
#include "colony/error.h"
#include "core/alloc.h"
#include "http/server_internal.h"

#define OUT_MAX ((size_t)1 << 40) /* output is the handler's; only memory bounds it */

static void on_spare_closed(uv_handle_t *h)
{
    colony__listener *l = h->data;
    l->spare_busy = 0;
    if (l->accept_pending && !uv_is_closing(&l->h.handle)) {
        l->accept_pending = 0;
        colony__listener_on_connection(&l->h.stream, 0);
    }
}

/* Out of memory: accept into the listener's spare handle and close it, so the
 * listener keeps being polled. If the spare is busy, accept after it closed. */
static void reject_without_memory(colony__listener *l)
{
    if (l->spare_busy) {
        l->accept_pending = 1;
        return;
    }
    uv_loop_t *loop = l->worker->loop;
    if (l->is_unix)
        uv_pipe_init(loop, &l->spare.pipe, 0);
    else
        uv_tcp_init(loop, &l->spare.tcp);
    l->spare.handle.data = l;
    l->spare_busy = 1;
    uv_accept(&l->h.stream, (uv_stream_t *)&l->spare.handle);
    uv_close(&l->spare.handle, on_spare_closed);
}

void colony__listener_on_connection(uv_stream_t *server, int status)
{
    colony__listener *l = server->data;
    colony__worker *w = l->worker;
    colony_server *srv = w->srv;
    if (status < 0) return;
    colony__conn *c = colony__calloc(1, sizeof(*c));
    if (!c) {
        reject_without_memory(l);
        return;
    }
    c->worker = w;
    c->is_unix = l->is_unix;
    if (l->is_unix)
        uv_pipe_init(w->loop, &c->h.pipe, 0);
    else
        uv_tcp_init(w->loop, &c->h.tcp);
    c->h.handle.data = c;
    uv_timer_init(w->loop, &c->timer);
    c->timer.data = c;
    colony_buf_init(&c->out, OUT_MAX);
    colony_buf_init(&c->inflight, OUT_MAX);
    colony__list_init(&c->awaiting);
    colony__list_push_back(&w->conns, &c->link);
    w->num_conns++;
    if (uv_accept(server, &c->h.stream) != 0) {
        c->rejected = 1;
        colony__conn_close(c, 0);
        return;
    }
    unsigned before = atomic_fetch_add_explicit(&srv->active, 1, memory_order_relaxed);
    if (before >= srv->opts.max_connections || w->shutdown_started) {
        atomic_fetch_sub_explicit(&srv->active, 1, memory_order_relaxed);
        c->rejected = 1;
        colony__stat_inc(&w->stats.rejected);
        colony__conn_close(c, 0);
        return;
    }
    colony__stat_inc(&w->stats.accepted);
    if (!l->is_unix) uv_tcp_nodelay(&c->h.tcp, 1);
    colony__conn_start(c);
}
