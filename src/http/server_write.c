/* The write path: a connection's output buffer goes out with uv_try_write,
 * falling back to uv_write for what the kernel did not take. Pipelined
 * responses queued while a write is in flight coalesce into the next write. A
 * large body is offered to the kernel from the handler's memory first. */
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "http/server_internal.h"
#include "http/tls.h"

#define CONTINUE_LINE   "HTTP/1.1 100 Continue\r\n\r\n"
#define DIRECT_BODY_MIN (64 * 1024) /* bodies this large go to the kernel uncopied */

/* Appends to the output and counts it in the stream offset. */
int colony__conn_append(colony__conn *c, const void *data, size_t len)
{
    int rc = colony_buf_append(&c->out, data, len);
    if (rc == 0) c->out_queued += len;
    return rc;
}

static void on_write(uv_write_t *wr, int status)
{
    colony__conn *c = wr->data;
    c->writing = 0;
    if (c->closing) return;
    if (status < 0) {
        colony__conn_close(c, status);
        return;
    }
    if (c->writing_held) {
        c->writing_held = 0;
        c->out_written += c->held.len - c->held_off;
        colony_buf_free(&c->held);
        c->held_off = 0;
    } else {
        c->out_written += c->inflight.len - c->inflight_off;
        colony_buf_reset(&c->inflight);
    }
    colony__conn_account_output(c);
    c->timer_mode = COLONY__TIMER_NONE; /* progress: restart the write timeout */
    colony__conn_after_write(c);
}

/* Sends what is queued: uv_try_write first (the common case writes it all
 * with one syscall), then uv_write for the rest. Streaming write callbacks
 * made due by a uv_try_write run on the loop's next turn, never inside the
 * call that queued them (a proxy's write callback resumes its upstream). A
 * uv_write would do the same but costs an epoll_ctl per response: libuv
 * re-arms the socket's events when its write queue drains. */
static void flush_now(colony__conn *c);

/* Writes the held body (colony_respond_buf) from its own memory; it comes
 * before anything in c->out, which was empty when it was taken. */
/* uv_try_write of b: the bytes written (0 when the socket would block), or a
 * negative error after which the connection is closing. */
static int try_write(colony__conn *c, uv_buf_t *b)
{
    int n = uv_try_write(&c->h.stream, b, 1);
    if (n == UV_EAGAIN || n == UV_ENOSYS) n = 0;
    if (n < 0) {
        colony__conn_close(c, n);
        return n;
    }
    c->out_written += (uint64_t)n;
    return n;
}

/* Hands b to uv_write; held says it is the held body. 0, or a negative error
 * after which the connection is closing. */
static int start_write(colony__conn *c, uv_buf_t b, int held)
{
    c->write_req.data = c;
    int rc = uv_write(&c->write_req, &c->h.stream, &b, 1, on_write);
    if (rc < 0) {
        colony__conn_close(c, rc);
        return rc;
    }
    c->writing = 1;
    c->writing_held = held;
    colony__conn_update_timer(c);
    return 0;
}

/* Writes the held body (colony_respond_buf) from its own memory; it comes
 * before anything in c->out, which was empty when it was taken. */
static void flush_held(colony__conn *c)
{
    uv_buf_t b = uv_buf_init(c->held.data + c->held_off, (unsigned)(c->held.len - c->held_off));
    if (c->wcbs_len == 0) {
        int n = try_write(c, &b);
        if (n < 0) return;
        c->held_off += (size_t)n;
        if (c->held_off == c->held.len) {
            colony_buf_free(&c->held);
            c->held_off = 0;
            flush_now(c);
            return;
        }
        b = uv_buf_init(c->held.data + c->held_off, (unsigned)(c->held.len - c->held_off));
    }
    start_write(c, b, 1);
}

static void flush_now(colony__conn *c)
{
    if (c->tls) { /* records are written by tls.c */
        colony__tls_flush(c);
        return;
    }
    if (c->closing || c->writing) return;
    if (c->held.len) {
        flush_held(c);
        return;
    }
    if (c->out.len == 0) { /* a direct write may have sent everything already */
        colony__list *first = colony__list_first(&c->awaiting);
        if ((first &&
             COLONY__CONTAINER_OF(first, colony_request, link)->end_offset <= c->out_written) ||
            (c->wcbs_len && c->wcbs[0].end <= c->out_written))
            colony__conn_after_write(c);
        return;
    }
    uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    int n = c->out.len > UINT32_MAX ? 0 : try_write(c, &b);
    if (n < 0) return;
    if ((size_t)n == c->out.len) {
        colony_buf_reset(&c->out);
        if (c->wcbs_len)
            colony__conn_defer_flush(c); /* the callbacks, from the loop */
        else
            colony__conn_after_write(c);
        return;
    }
    size_t off = (size_t)n;
    colony_buf tmp = c->inflight;
    c->inflight = c->out;
    c->out = tmp;
    c->inflight_off = off;
    start_write(c, uv_buf_init(c->inflight.data + off, (unsigned)(c->inflight.len - off)), 0);
}

void colony__conn_flush(colony__conn *c)
{
    flush_now(c);
    if (!c->closing) colony__conn_account_output(c);
}

/* Appends a large body after the head already in c->out, first offering
 * both to the kernel straight from the handler's memory when nothing else is
 * being written: only what the kernel did not take is copied (once). With
 * owned (the body's own buffer), the rest is not copied but held when the
 * kernel took all of c->out: owned is then left empty. */
int colony__conn_append_body(colony__conn *c, const char *body, size_t len, colony_buf *owned)
{
    if (len < DIRECT_BODY_MIN || len > UINT32_MAX || c->writing || c->wcbs_len || c->held.len ||
        c->tls)
        return colony__conn_append(c, body, len);
    uv_buf_t b[2] = {uv_buf_init(c->out.data, (unsigned)c->out.len),
                     uv_buf_init((char *)body, (unsigned)len)};
    int n = c->out.len > UINT32_MAX ? UV_EAGAIN : uv_try_write(&c->h.stream, b, 2);
    if (n == UV_EAGAIN || n == UV_ENOSYS) n = 0;
    if (n < 0) return n;
    size_t taken = (size_t)n, body_taken = 0;
    if (taken < c->out.len) {
        colony_buf_consume(&c->out, taken);
    } else {
        body_taken = taken - c->out.len;
        colony_buf_reset(&c->out);
    }
    c->out_written += taken;
    c->out_queued += len;
    if (owned && c->out.len == 0 && body_taken < len) { /* all that came before is sent */
        c->held = *owned;                               /* the write path frees it once written */
        c->held_off = body_taken;
        colony_buf_init(owned, owned->max);
        return 0;
    }
    return colony_buf_append(&c->out, body + body_taken, len - body_taken);
}

/* Queues "100 Continue" ahead of the final response. */
int colony__conn_send_continue(colony__conn *c)
{
    return colony__conn_append(c, CONTINUE_LINE, sizeof(CONTINUE_LINE) - 1);
}
