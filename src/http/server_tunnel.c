/* Connection takeover after 101 Switching Protocols (request.h, "connection
 * takeover"): the server stops parsing HTTP on the connection and hands raw
 * bytes both ways. Reads still come from on_read() (server_conn.c) and writes
 * still go through the write path (server_write.c), so the output backlog
 * limit and TLS apply to every byte. The connection's timer becomes the
 * tunnel's idle timer (lazily re-armed from last_activity) and first delivers
 * the bytes the client sent after the request head. */
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "http/parser_internal.h"
#include "http/server_internal.h"

#define SWITCHING_LINE  "HTTP/1.1 101 Switching Protocols\r\n"
#define TUNNEL_KEEP_OUT (64 * 1024) /* output buffer capacity kept while idle */
#define CONN_UPGRADE    "Connection: Upgrade\r\n"

typedef struct tunnel_wcb {
    uint64_t end; /* conn output offset after the write */
    colony_tunnel_write_cb cb;
    void *ud;
} tunnel_wcb;

struct colony_tunnel {
    colony__conn *conn;
    colony_request *req;
    colony_tunnel_data_cb on_data;
    colony_tunnel_close_cb on_close;
    void *ud;
    tunnel_wcb *wcbs; /* oldest first */
    size_t wcbs_len, wcbs_cap;
    uint64_t last_activity;       /* loop ms of the last read or write progress */
    unsigned read_paused : 1;     /* colony_tunnel_pause */
    unsigned deliver_pending : 1; /* bytes after the head wait for the first on_data */
    unsigned peer_eof : 1;        /* the peer closed its side: close once drained */
    unsigned close_requested : 1; /* colony_tunnel_close: close once drained */
    unsigned shutdown_issued : 1; /* uv_shutdown in flight */
    unsigned ended : 1;           /* on_close ran or runs */
};

static const colony_server_options *opts_of(const colony__conn *c)
{
    return &c->worker->srv->opts;
}

static int drained(const colony__conn *c)
{
    return !c->writing && c->out.len == 0 && c->held.len == 0;
}

static int usable(const colony_tunnel *t)
{
    return t && !t->ended && t->conn && !t->conn->closing;
}

int colony__tunnel_wants_read(const colony__conn *c)
{
    const colony_tunnel *t = c->tunnel;
    return !t->read_paused && !t->deliver_pending && !t->peer_eof && !t->close_requested &&
           !t->ended;
}

uint64_t colony__tunnel_timer_ms(const colony__conn *c)
{
    const colony_tunnel *t = c->tunnel;
    if (t->deliver_pending && !t->read_paused) return 0;
    uint64_t timeout = opts_of(c)->tunnel_idle_timeout_ms;
    if (timeout == UINT64_MAX) return UINT64_MAX;
    uint64_t idle = uv_now(c->worker->loop) - t->last_activity;
    return idle < timeout ? timeout - idle : 1;
}

/* Hands [rpos, rlen) of the read buffer to on_data and empties it. */
static void deliver(colony__conn *c)
{
    colony_tunnel *t = c->tunnel;
    size_t len = c->rlen - c->rpos;
    if (len == 0) return;
    const char *data = c->rbuf + c->rpos;
    t->last_activity = uv_now(c->worker->loop);
    const colony_log_context *prev = colony_log_set_context(&t->req->log_ctx);
    t->on_data(t, data, len, t->ud);
    colony_log_set_context(prev);
    c->rpos = c->rlen = 0; /* the connection memory outlives a close inside the call */
}

static void on_shutdown(uv_shutdown_t *sr, int status)
{
    colony__conn *c = sr->data;
    if (c->closing) return;
    colony__conn_close(c, status < 0 && status != UV_ECANCELED ? status : 0);
}

/* After a close request or the peer's EOF, once what was queued is written:
 * FIN (for a local close, so the peer reads everything) and close. */
static void maybe_finish(colony__conn *c)
{
    colony_tunnel *t = c->tunnel;
    if (c->closing || !drained(c)) return;
    if (t->peer_eof) {
        colony__conn_close(c, 0);
        return;
    }
    if (!t->close_requested || t->shutdown_issued) return;
    t->shutdown_issued = 1;
    c->shutdown_req.data = c;
    int rc = uv_shutdown(&c->shutdown_req, &c->h.stream, on_shutdown);
    if (rc < 0) colony__conn_close(c, rc);
}

void colony__tunnel_on_read(colony__conn *c, ssize_t nread)
{
    colony_tunnel *t = c->tunnel;
    if (nread > 0) {
        c->rlen += (size_t)nread;
        deliver(c);
        return;
    }
    if (nread == 0) return;
    if (nread == UV_ENOBUFS) {
        colony__conn_close(c, COLONY_ENOMEM);
        return;
    }
    if (nread != UV_EOF) {
        colony__conn_close(c, (int)nread);
        return;
    }
    t->peer_eof = 1;
    colony__conn_update_reading(c);
    maybe_finish(c);
}

void colony__tunnel_after_write(colony__conn *c)
{
    colony_tunnel *t = c->tunnel;
    t->last_activity = uv_now(c->worker->loop);
    while (!c->closing && t->wcbs_len && t->wcbs[0].end <= c->out_written) {
        tunnel_wcb e = t->wcbs[0];
        memmove(t->wcbs, t->wcbs + 1, (t->wcbs_len - 1) * sizeof(*t->wcbs));
        t->wcbs_len--;
        e.cb(t, 0, e.ud);
    }
    if (c->closing) return;
    if (!drained(c)) {
        colony__conn_flush(c);
        return;
    }
    /* A burst grew the buffers: an idle tunnel (thousands of them may be
     * open) keeps little memory. */
    if (c->out.cap > TUNNEL_KEEP_OUT) colony_buf_free(&c->out);
    if (c->inflight.cap > TUNNEL_KEEP_OUT) colony_buf_free(&c->inflight);
    maybe_finish(c);
    if (c->closing) return;
    colony__conn_update_reading(c);
    colony__conn_update_timer(c);
}

void colony__tunnel_on_timer(colony__conn *c)
{
    colony_tunnel *t = c->tunnel;
    if (t->deliver_pending && !t->read_paused) {
        t->deliver_pending = 0;
        deliver(c);
        if (c->closing) return;
        colony__conn_update_reading(c);
    } else if (opts_of(c)->tunnel_idle_timeout_ms != UINT64_MAX &&
               uv_now(c->worker->loop) - t->last_activity >= opts_of(c)->tunnel_idle_timeout_ms) {
        colony__conn_close(c, COLONY_ETIMEDOUT);
        return;
    }
    colony__conn_update_timer(c); /* re-arms for the rest of the idle time */
}

void colony__tunnel_closing(colony__conn *c, int err)
{
    colony_tunnel *t = c->tunnel;
    if (t->ended) return;
    t->ended = 1;
    int fail = err ? err : COLONY_ECONNRESET;
    colony_request *req = t->req;
    req->pinned++;
    const colony_log_context *prev = colony_log_set_context(&req->log_ctx);
    for (size_t i = 0; i < t->wcbs_len; i++)
        t->wcbs[i].cb(t, fail, t->wcbs[i].ud);
    t->wcbs_len = 0;
    t->on_close(t, err, t->ud);
    colony_log_set_context(prev);
    colony__free(t->wcbs);
    t->wcbs = NULL;
    t->conn = NULL;
    /* The request is over with the tunnel: its response "ended" with it. */
    c->req = NULL;
    req->ended = 1;
    colony__request_finish(req, err);
    req->pinned--;
    colony__request_detach(req);
}

static int is_token(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!COLONY__HTTP_IS(*s, COLONY__CC_TCHAR) && *s != '/') return 0; /* "websocket", "h2c" */
    return 1;
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/* Queues the 101 head: status line, Server, the handler's headers,
 * Connection: Upgrade and Upgrade: protocol. 0 or ENOMEM (nothing queued). */
static int queue_head(colony__conn *c, colony_request *req, const char *protocol)
{
    const char *server = c->worker->srv->server_header;
    size_t need = sizeof(SWITCHING_LINE) + sizeof(CONN_UPGRADE) + 2;
    if (server) need += strlen(server) + 10;
    if (protocol) need += strlen(protocol) + 12;
    colony__list *node, *tmp;
    COLONY__LIST_FOREACH_SAFE(node, tmp, &req->resp_headers)
    {
        colony__resp_header *h = COLONY__CONTAINER_OF(node, colony__resp_header, link);
        need += h->name_len + h->value_len + 4;
    }
    int rc = colony_buf_reserve(&c->out, need);
    if (rc) return rc;
    char *start = c->out.data + c->out.len, *p = start;
    p = put(p, SWITCHING_LINE, sizeof(SWITCHING_LINE) - 1);
    if (server) {
        p = put(p, "Server: ", 8);
        p = put(p, server, strlen(server));
        p = put(p, "\r\n", 2);
    }
    COLONY__LIST_FOREACH_SAFE(node, tmp, &req->resp_headers)
    {
        colony__resp_header *h = COLONY__CONTAINER_OF(node, colony__resp_header, link);
        p = put(p, h->name, h->name_len);
        p = put(p, ": ", 2);
        p = put(p, h->value, h->value_len);
        p = put(p, "\r\n", 2);
    }
    p = put(p, CONN_UPGRADE, sizeof(CONN_UPGRADE) - 1);
    if (protocol) {
        p = put(p, "Upgrade: ", 9);
        p = put(p, protocol, strlen(protocol));
        p = put(p, "\r\n", 2);
    }
    p = put(p, "\r\n", 2);
    size_t n = (size_t)(p - start);
    c->out.len += n;
    c->out_queued += n;
    return 0;
}

int colony_request_upgrade(colony_request *req, const char *protocol, colony_tunnel_data_cb on_data,
                           colony_tunnel_close_cb on_close, void *ud, colony_tunnel **out)
{
    if (out) *out = NULL;
    if (!req || !on_data || !on_close || !out) return COLONY_EINVAL;
    if (req->started || req->ended || req->in_head_hook) return COLONY_EINVAL;
    colony__conn *c = req->conn;
    if (!c || c->closing || c->peer_eof) return COLONY_ECONNRESET;
    if (c->req != req || c->body_pending || req->version_minor < 1) return COLONY_EINVAL;
    if (protocol && !is_token(protocol)) return COLONY_EINVAL;
    if (colony_server_is_shutting_down(c->worker->srv)) return COLONY_ESHUTDOWN;
    colony_tunnel *t = colony__calloc(1, sizeof(*t));
    if (!t) return COLONY_ENOMEM;
    req->status = 101;
    colony__request_run_response_hooks(req);
    if (req->started || req->ended || !req->conn || c->closing) { /* a hook answered */
        colony__free(t);
        return COLONY_EINVAL;
    }
    int rc = queue_head(c, req, protocol);
    if (rc) {
        colony__free(t);
        return rc;
    }
    t->conn = c;
    t->req = req;
    t->on_data = on_data;
    t->on_close = on_close;
    t->ud = ud;
    t->last_activity = uv_now(c->worker->loop);
    t->deliver_pending = c->rpos < c->rlen;
    req->started = 1;
    c->tunnel = t;
    c->phase = COLONY__PHASE_TUNNEL;
    c->close_after = 0;
    colony__list_remove(&c->idle_link);
    colony__conn_update_reading(c);
    c->timer_mode = COLONY__TIMER_NONE;
    colony__conn_update_timer(c);
    colony__conn_schedule_flush(c);
    *out = t;
    return 0;
}

int colony_tunnel_write(colony_tunnel *t, const void *data, size_t len, colony_tunnel_write_cb cb,
                        void *ud)
{
    if (!usable(t) || t->close_requested) return COLONY_ESHUTDOWN;
    if (!data && len) return COLONY_EINVAL;
    colony__conn *c = t->conn;
    if (c->out_queued - c->out_written > opts_of(c)->max_output_backlog) return COLONY_EBUSY;
    if (cb && t->wcbs_len == t->wcbs_cap) {
        size_t cap = t->wcbs_cap ? t->wcbs_cap * 2 : 8;
        tunnel_wcb *n = colony__realloc(t->wcbs, cap * sizeof(*n));
        if (!n) return COLONY_ENOMEM;
        t->wcbs = n;
        t->wcbs_cap = cap;
    }
    if (len) {
        int rc = colony__conn_append(c, data, len);
        if (rc) return rc;
    }
    if (cb) t->wcbs[t->wcbs_len++] = (tunnel_wcb){c->out_queued, cb, ud};
    colony__conn_schedule_flush(c);
    return 0;
}

size_t colony_tunnel_pending(const colony_tunnel *t)
{
    if (!usable(t)) return 0;
    return (size_t)(t->conn->out_queued - t->conn->out_written);
}

static int set_paused(colony_tunnel *t, int paused)
{
    if (!usable(t)) return COLONY_ESHUTDOWN;
    t->read_paused = paused ? 1 : 0;
    colony__conn_update_reading(t->conn);
    if (t->deliver_pending) { /* the early bytes wait for the resume: re-arm the timer */
        t->conn->timer_mode = COLONY__TIMER_NONE;
        colony__conn_update_timer(t->conn);
    }
    return 0;
}

int colony_tunnel_pause(colony_tunnel *t)
{
    return set_paused(t, 1);
}

int colony_tunnel_resume(colony_tunnel *t)
{
    return set_paused(t, 0);
}

void colony_tunnel_close(colony_tunnel *t)
{
    if (!usable(t) || t->close_requested) return;
    t->close_requested = 1;
    colony__conn *c = t->conn;
    colony__conn_update_reading(c);
    if (drained(c) && c->out_queued == c->out_written)
        maybe_finish(c); /* uv_shutdown: on_close comes from its callback */
    else
        colony__conn_schedule_flush(c);
}

colony_request *colony_tunnel_request(const colony_tunnel *t)
{
    return t ? t->req : NULL;
}
