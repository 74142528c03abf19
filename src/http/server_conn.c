/* One HTTP connection's life: read into a capped buffer, run the state
 * machine that hands the bytes to server_parse.c (heads, bodies, dispatch),
 * answer pipelined requests in order, stop reading while the output backlog is
 * full, one timer for whichever timeout applies now, the idle LRU, and a
 * lingering close so a final error response is not lost to a reset. */
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "http/server_internal.h"
#include "http/tls.h"

#define AWAITING_MAX      16 /* answered requests held until written: each keeps its arena */
#define LINGER_MS         2000
#define FRESH_GRACE_MS    2000 /* at shutdown: a new connection's wait for its first request */
#define OUT_KEEP_CAPACITY (256 * 1024) /* output buffer kept between responses */

static void conn_process(colony__conn *c);
static void update_reading(colony__conn *c);

static void on_timer(uv_timer_t *t);

static colony_server *conn_server(const colony__conn *c)
{
    return c->worker->srv;
}

/* How long an idle connection may stay idle. During a shutdown, one that has
 * not sent its first request yet gets FRESH_GRACE_MS for it. */
static uint64_t idle_limit_ms(const colony__conn *c)
{
    uint64_t ms = conn_server(c)->opts.idle_timeout_ms;
    return c->close_after && c->requests == 0 && ms > FRESH_GRACE_MS ? FRESH_GRACE_MS : ms;
}

static void on_close(uv_handle_t *h)
{
    colony__conn *c = h->data;
    if (--c->close_refs > 0) return;
    colony__worker *w = c->worker;
    colony__list_remove(&c->link);
    w->num_conns--;
    c->out_queued = c->out_written;
    colony__conn_account_output(c);
    if (c->paused) colony__stat_add(&w->stats.paused, (uint64_t)-1);
    if (!c->not_counted) atomic_fetch_sub_explicit(&w->srv->active, 1, memory_order_relaxed);
    colony__conn_release_address(c);
    colony__free(c->rbuf);
    colony_buf_free(&c->out);
    colony_buf_free(&c->inflight);
    colony_buf_free(&c->held);
    colony__free(c->wcbs);
    colony__free(c->tunnel);
    colony__tls_conn_free(c);
    colony__free(c);
    colony__worker_maybe_done(w);
}

/* Tears the connection down now. Requests whose response was not fully
 * written finish with an error; a request a handler still holds is orphaned
 * and freed when its response ends. */
void colony__conn_close(colony__conn *c, int err)
{
    if (c->closing) return;
    c->closing = 1;
    colony__list_remove(&c->idle_link);
    colony__list_remove(&c->flush_link);
    int fail = err ? err : COLONY_ECONNRESET;
    if (c->reading) uv_read_stop(&c->h.stream);
    c->reading = 0;
    uv_timer_stop(&c->timer);
    if (c->tunnel) colony__tunnel_closing(c, err);

    colony_request *cur = c->req;
    if (cur) cur->pinned++;
    for (size_t i = 0; i < c->wcbs_len; i++) {
        colony__write_cb_entry e = c->wcbs[i];
        e.req->pinned++;
        e.cb(e.req, fail, e.ud);
        e.req->pinned--;
    }
    c->wcbs_len = 0;
    colony__list *node;
    while ((node = colony__list_pop_front(&c->awaiting))) {
        colony_request *r = COLONY__CONTAINER_OF(node, colony_request, link);
        c->awaiting_count--;
        colony__request_finish(r, fail);
        colony__request_detach(r);
    }
    c->req = NULL;
    if (cur) {
        colony__request_finish(cur, fail);
        cur->pinned--;
        colony__request_detach(cur);
    }
    c->close_refs = 2;
    uv_close(&c->h.handle, on_close);
    uv_close((uv_handle_t *)&c->timer, on_close);
}

static void on_linger_shutdown(uv_shutdown_t *sr, int status)
{
    colony__conn *c = sr->data;
    if (c->closing) return;
    if (status < 0) {
        colony__conn_close(c, 0);
        return;
    }
    c->phase = COLONY__PHASE_LINGER;
    c->rpos = c->rlen = 0;
    update_reading(c);
    colony__conn_update_timer(c);
}

/* After the last response is written: FIN, then drain input until the peer
 * closes (or LINGER_MS), so unread request bytes do not turn into a reset
 * that destroys the response before the client read it. */
static void begin_linger(colony__conn *c)
{
    if (c->shutting || c->closing) return;
    c->shutting = 1;
    if (c->tls) colony__tls_close_notify(c);
    if (c->reading) uv_read_stop(&c->h.stream);
    c->reading = 0;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, &c->h.stream, on_linger_shutdown) < 0)
        colony__conn_close(c, 0);
}

int colony__conn_backlog_full(const colony__conn *c)
{
    return c->out_queued - c->out_written > conn_server(c)->opts.max_output_backlog ||
           c->awaiting_count >= AWAITING_MAX;
}

void colony__conn_account_output(colony__conn *c)
{
    uint64_t now = c->out_queued - c->out_written;
    if (now == c->out_accounted) return;
    colony__stat_add(&c->worker->stats.out_buffered, now - c->out_accounted);
    c->out_accounted = now;
}

static int drained(const colony__conn *c)
{
    return !c->writing && c->out.len == 0 && c->held.len == 0;
}

int colony__conn_is_idle(const colony__conn *c)
{
    return !c->closing && !c->shutting && !c->final_sent && c->phase == COLONY__PHASE_IDLE &&
           !c->req && c->rpos == c->rlen && drained(c);
}

/* Keeps the worker's idle LRU in step: a connection joins at the back when it
 * becomes idle and leaves when it is not. */
static void update_idle_lru(colony__conn *c)
{
    int idle = colony__conn_is_idle(c);
    int linked = colony__list_linked(&c->idle_link);
    if (idle && !linked)
        colony__list_push_back(&c->worker->idle, &c->idle_link);
    else if (!idle && linked)
        colony__list_remove(&c->idle_link);
}

void colony__conn_after_write(colony__conn *c)
{
    while (!c->closing && c->wcbs_len && c->wcbs[0].end <= c->out_written) {
        colony__write_cb_entry e = c->wcbs[0];
        memmove(c->wcbs, c->wcbs + 1, (c->wcbs_len - 1) * sizeof(*c->wcbs));
        c->wcbs_len--;
        e.req->pinned++;
        e.cb(e.req, 0, e.ud);
        colony__request_unpin(e.req);
    }
    colony__list *node;
    while (!c->closing && (node = colony__list_first(&c->awaiting)) &&
           COLONY__CONTAINER_OF(node, colony_request, link)->end_offset <= c->out_written) {
        colony_request *r = COLONY__CONTAINER_OF(node, colony_request, link);
        colony__list_remove(node);
        c->awaiting_count--;
        colony__request_finish(r, 0);
        colony__request_detach(r);
    }
    if (c->closing) return;
    if (c->tunnel) {
        colony__tunnel_after_write(c);
        return;
    }
    if (!drained(c)) {
        colony__conn_flush(c);
        return;
    }
    if (c->out.cap > OUT_KEEP_CAPACITY) colony_buf_free(&c->out); /* after a big response */
    if (c->inflight.cap > OUT_KEEP_CAPACITY) colony_buf_free(&c->inflight);
    if (c->in_process) return; /* conn_process finishes the job */
    if (c->final_sent) {
        begin_linger(c);
        return;
    }
    if (!c->req && c->rpos < c->rlen) {
        conn_process(c); /* requests held back by the output backlog */
        return;
    }
    update_reading(c);
    colony__conn_update_timer(c);
}

void colony__conn_update_timer(colony__conn *c)
{
    if (c->closing) return;
    update_idle_lru(c);
    const colony_server_options *o = &conn_server(c)->opts;
    int mode;
    uint64_t ms = 0;
    if (c->phase == COLONY__PHASE_TUNNEL) {
        ms = colony__tunnel_timer_ms(c);
        mode = ms == UINT64_MAX ? COLONY__TIMER_NONE : COLONY__TIMER_TUNNEL;
    } else if (c->kick_pending) {
        mode = COLONY__TIMER_KICK; /* the other timers are re-armed after the kick */
    } else if (c->writing) {
        mode = COLONY__TIMER_WRITE;
        ms = o->write_timeout_ms;
    } else if (c->final_sent && c->phase != COLONY__PHASE_LINGER) {
        mode = COLONY__TIMER_NONE; /* closing once the shutdown completes */
    } else {
        switch (c->phase) {
        case COLONY__PHASE_IDLE:
            mode = c->final_sent ? COLONY__TIMER_NONE : COLONY__TIMER_IDLE;
            ms = idle_limit_ms(c);
            break;
        case COLONY__PHASE_HEAD: {
            mode = COLONY__TIMER_HEAD;
            uint64_t now = uv_now(c->worker->loop);
            ms = c->head_deadline > now ? c->head_deadline - now : 1;
            break;
        }
        case COLONY__PHASE_BODY:
            /* A paused body waits on the handler, not on the client. */
            mode = c->body_paused ? COLONY__TIMER_NONE : COLONY__TIMER_BODY;
            ms = o->body_timeout_ms;
            break;
        case COLONY__PHASE_LINGER:
            mode = COLONY__TIMER_LINGER;
            ms = o->idle_timeout_ms < LINGER_MS ? o->idle_timeout_ms : LINGER_MS;
            break;
        default:
            mode = COLONY__TIMER_NONE;
        }
    }
    if (mode == c->timer_mode) return;
    c->timer_mode = mode;
    /* Lazy timer: a keep-alive request goes idle -> none -> idle, and starting
     * and stopping the libuv timer for each costs two heap operations per
     * request. "None" leaves the timer armed (on_timer ignores it), and "idle"
     * keeps an armed timer that is due no later than the idle limit: its
     * handler re-arms for what is left of the limit (idle_since). */
    if (mode == COLONY__TIMER_NONE) return;
    if (mode == COLONY__TIMER_IDLE) {
        c->idle_since = uv_now(c->worker->loop);
        if (uv_is_active((uv_handle_t *)&c->timer) && uv_timer_get_due_in(&c->timer) <= ms) return;
    }
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void on_timer(uv_timer_t *t)
{
    colony__conn *c = t->data;
    int mode = c->timer_mode;
    c->timer_mode = COLONY__TIMER_NONE;
    switch (mode) {
    case COLONY__TIMER_NONE: /* left armed by colony__conn_update_timer */
        return;
    case COLONY__TIMER_HEAD:
        colony__conn_send_error(c, 408, "request_timeout", "request head not received in time");
        break;
    case COLONY__TIMER_BODY:
        if (c->req && c->req->started) {
            colony__conn_close(c, COLONY_ETIMEDOUT);
            return;
        }
        colony__conn_fail_request(c, 408, "request body not received in time", COLONY_ETIMEDOUT);
        break;
    case COLONY__TIMER_WRITE:
        colony__conn_close(c, COLONY_ETIMEDOUT);
        return;
    case COLONY__TIMER_KICK:
        c->kick_pending = 0;
        if (!c->in_process) conn_process(c);
        return;
    case COLONY__TIMER_TUNNEL:
        colony__tunnel_on_timer(c);
        return;
    case COLONY__TIMER_IDLE: {
        uint64_t now = uv_now(c->worker->loop);
        uint64_t due = c->idle_since + idle_limit_ms(c);
        if (now < due) { /* requests came since it was armed */
            c->timer_mode = COLONY__TIMER_IDLE;
            uv_timer_start(&c->timer, on_timer, due - now, 0);
            return;
        }
        colony__conn_close(c, 0);
        return;
    }
    default: /* linger */
        colony__conn_close(c, 0);
        return;
    }
    if (!c->closing) {
        update_reading(c);
        colony__conn_update_timer(c);
    }
}

/* The current response has ended: queue the request for its on_finish and go
 * on with the next one, or stop if the connection closes after it. */
static void complete_request(colony__conn *c)
{
    colony_request *req = c->req;
    c->req = NULL;
    colony__list_push_back(&c->awaiting, &req->link);
    c->awaiting_count++;
    if (req->resp_close || c->body_pending) {
        c->final_sent = 1;
    } else {
        c->phase = COLONY__PHASE_IDLE;
        /* A fresh idle timeout, without re-arming the timer per request: an
         * armed idle timer that fires early re-arms itself (on_timer). */
        c->idle_since = uv_now(c->worker->loop);
    }
}

void colony__conn_response_ended(colony__conn *c, colony_request *req)
{
    req->end_offset = c->out_queued;
    if (c->in_process || c->req != req) return;
    conn_process(c);
}

/* The state machine: runs until it needs input, a response, or the
 * connection is done. Re-entrant calls (a handler answering synchronously)
 * only record state; the outer call carries on. */
static void conn_process(colony__conn *c)
{
    c->in_process++;
    for (;;) {
        if (c->closing || c->final_sent) break;
        if (c->phase == COLONY__PHASE_HANDLER) {
            if (!c->req->ended) break;
            complete_request(c);
            continue;
        }
        if (c->phase == COLONY__PHASE_BODY) {
            if (!colony__conn_read_body(c)) break;
            continue;
        }
        if (c->phase == COLONY__PHASE_LINGER) break;
        if (c->rpos == c->rlen) {
            if (c->phase == COLONY__PHASE_IDLE && c->peer_eof) c->final_sent = 1;
            break;
        }
        if (colony__conn_backlog_full(c)) break;
        if (!colony__conn_parse_head(c)) break;
    }
    if (!c->closing && c->rpos > 0) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    /* Nothing unread: a buffer grown for a large head goes (the next read
     * starts small), and so does the buffer of a connection between requests,
     * as nginx frees a keep-alive connection's header buffer: an idle
     * keep-alive connection holds no read buffer (16 KiB by default; on_alloc
     * takes a new one when the next request arrives). TLS keeps its own. */
    if (c->rlen == 0 && c->rbuf &&
        (c->rcap > conn_server(c)->opts.read_buffer_size ||
         (c->phase == COLONY__PHASE_IDLE && !c->req && !c->tls))) {
        colony__free(c->rbuf);
        c->rbuf = NULL;
        c->rcap = 0;
    }
    colony__conn_flush(c);
    c->in_process--;
    if (c->closing || c->in_process) return;
    if (c->phase == COLONY__PHASE_IDLE && !c->req && !c->tls && drained(c)) {
        /* the output buffers' room goes too: the next response takes its own */
        colony_buf_free(&c->out);
        colony_buf_free(&c->inflight);
    }
    if (c->final_sent && drained(c)) {
        begin_linger(c);
        return;
    }
    update_reading(c);
    colony__conn_update_timer(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    colony__conn *c = h->data;
    colony_server *srv = conn_server(c);
    if (c->phase == COLONY__PHASE_LINGER) c->rlen = c->rpos = 0;
    if (!c->rbuf) {
        c->rbuf = colony__malloc(srv->opts.read_buffer_size);
        c->rcap = c->rbuf ? srv->opts.read_buffer_size : 0;
    } else if (c->rlen == c->rcap) {
        size_t max = srv->opts.limits.max_header_bytes + 1;
        if (c->phase <= COLONY__PHASE_HEAD && c->rcap < max) {
            size_t cap = c->rcap * 2 < max ? c->rcap * 2 : max;
            char *p = colony__realloc(c->rbuf, cap);
            if (p) {
                c->rbuf = p;
                c->rcap = cap;
            }
        }
    }
    *buf = uv_buf_init(c->rbuf ? c->rbuf + c->rlen : NULL, (unsigned)(c->rcap - c->rlen));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    colony__conn *c = s->data;
    if (c->closing) return;
    /* TLS (tls.c): the ciphertext just read becomes plaintext in place. */
    if (nread > 0 && c->tls && c->phase != COLONY__PHASE_LINGER) {
        nread = colony__tls_on_read(c, (size_t)nread);
        if (c->closing) return;
        if (nread == 0) {
            colony__conn_update_timer(c);
            return;
        }
    }
    /* A tunnel (server_tunnel.c) takes every read result after a 101. */
    if (c->tunnel) {
        colony__tunnel_on_read(c, nread);
        return;
    }
    if (nread > 0) {
        if (c->phase == COLONY__PHASE_LINGER) return; /* discarded */
        colony__list_remove(&c->idle_link);           /* busy: back of the LRU when idle again */
        c->rlen += (size_t)nread;
        if (c->phase == COLONY__PHASE_BODY) c->timer_mode = COLONY__TIMER_NONE;
        conn_process(c);
        return;
    }
    if (nread == 0) return;
    if (nread == UV_ENOBUFS) {
        if (!c->rbuf) {
            colony__conn_close(c, COLONY_ENOMEM);
            return;
        }
        if (c->phase <= COLONY__PHASE_HEAD) {
            colony__conn_send_error(c, 431, "header_fields_too_large",
                                    colony_http_error_message(COLONY_HTTP_HEADERS_TOO_LARGE));
            if (!c->closing && drained(c)) begin_linger(c);
        } else {
            colony__conn_close(c, COLONY_ENOMEM);
        }
        return;
    }
    /* EOF or error. A request being handled still gets its response. */
    if (nread == UV_EOF && c->phase != COLONY__PHASE_LINGER &&
        (c->phase == COLONY__PHASE_HANDLER ||
         (c->phase == COLONY__PHASE_IDLE && c->rpos == c->rlen && !drained(c)))) {
        c->peer_eof = 1;
        c->close_after = 1;
        if (c->phase == COLONY__PHASE_IDLE) c->final_sent = 1;
        update_reading(c);
        return;
    }
    int idle = c->phase == COLONY__PHASE_IDLE || c->phase == COLONY__PHASE_LINGER;
    colony__conn_close(c, nread == UV_EOF ? (idle ? 0 : COLONY_ECONNRESET) : (int)nread);
}

static void update_reading(colony__conn *c)
{
    int want, paused = 0;
    if (c->closing || c->peer_eof || (c->shutting && c->phase != COLONY__PHASE_LINGER))
        want = 0;
    else if (c->phase == COLONY__PHASE_LINGER)
        want = 1;
    else if (c->tunnel)
        want = colony__tunnel_wants_read(c);
    else if (c->final_sent)
        want = 0;
    else if (c->phase == COLONY__PHASE_HANDLER)
        want = c->rpos == c->rlen; /* notice a hang-up, but buffer no pipelined flood */
    else if (c->phase == COLONY__PHASE_BODY && c->body_paused)
        want = 0;
    else if (colony__conn_backlog_full(c))
        want = 0, paused = 1;
    else
        want = 1;
    if (paused != c->paused) {
        c->paused = (unsigned)paused;
        colony__stat_add(&c->worker->stats.paused, paused ? 1 : (uint64_t)-1);
    }
    if (want == c->reading) return;
    if (want) {
        if (uv_read_start(&c->h.stream, on_alloc, on_read) == 0) c->reading = 1;
    } else {
        uv_read_stop(&c->h.stream);
        c->reading = 0;
    }
}

void colony__conn_body_flow(colony__conn *c)
{
    if (c->closing) return;
    if (!c->body_paused) c->kick_pending = 1;
    if (c->in_process) return; /* conn_process updates reading and the timer as it ends */
    update_reading(c);
    colony__conn_update_timer(c);
}

void colony__conn_update_reading(colony__conn *c)
{
    update_reading(c);
}

void colony__conn_shutdown(colony__conn *c)
{
    if (c->closing) return;
    c->close_after = 1;
    if (c->phase == COLONY__PHASE_IDLE && !c->req && c->rpos == c->rlen) {
        if (c->requests == 0 && drained(c)) {
            /* Accepted before the listener closed: its first request may be
             * on the way (a client that connects and sends at once), and
             * closing now would reset it. It is answered, with Connection:
             * close; one that sends nothing goes after FRESH_GRACE_MS. */
            c->timer_mode = COLONY__TIMER_NONE; /* re-armed with the shorter limit */
            colony__conn_update_timer(c);
            return;
        }
        if (drained(c))
            colony__conn_close(c, 0);
        else
            c->final_sent = 1;
    }
}

void colony__conn_start(colony__conn *c)
{
    c->phase = COLONY__PHASE_IDLE;
    update_reading(c);
    colony__conn_update_timer(c);
}
