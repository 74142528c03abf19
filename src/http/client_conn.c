/* One client connection: resolve (libuv thread pool), connect trying each
 * address in order (then the TLS handshake of an https conn, client_tls.c),
 * write a request (one uv_write for head and fixed body; the streamed body's
 * pieces are client.c's), read and frame the response
 * (Content-Length, chunked, close-delimited, none), and the connect / read /
 * idle timer. Buffers live in the connection and are reused across requests. */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "http/client_internal.h"

#define READ_CHUNK 16384
#define READ_SLACK 65536 /* bytes beyond the head limit one read may bring */

static void on_timer(uv_timer_t *t);
static void on_io_closed(uv_handle_t *h);
static void on_connect(uv_connect_t *req, int status);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* The client, not conn->origin->client: a closing conn may outlive its origin. */
static colony_client *conn_client(const colony__client_conn *conn)
{
    return conn->client;
}

static void timer_set(colony__client_conn *conn, uint64_t ms)
{
    if (ms)
        uv_timer_start(&conn->timer, on_timer, ms, 0);
    else
        uv_timer_stop(&conn->timer);
}

/* The read and idle timeouts are lazy: a pooled conn goes busy -> idle ->
 * busy for each request, and restarting the libuv timer each time costs heap
 * operations per request. A timer already due within ms is left alone; when
 * it fires, on_timer measures from last_activity and re-arms for the rest. */
static void timer_set_lazy(colony__client_conn *conn, uint64_t ms)
{
    if (ms && uv_is_active((uv_handle_t *)&conn->timer) && uv_timer_get_due_in(&conn->timer) <= ms)
        return;
    timer_set(conn, ms);
}

static void maybe_free(colony__client_conn *conn)
{
    if (conn->refs) return;
    colony_client *c = conn_client(conn);
    if (conn->addrs) uv_freeaddrinfo(conn->addrs);
    colony__client_tls_free(conn);
    colony__client_bytes_free(&conn->in);
    colony__client_bytes_free(&conn->body);
    colony__free(conn->headers);
    colony__free(conn->tunnel);
    colony__free(conn);
    c->live_conns--;
    colony__client_maybe_finish(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    colony__client_conn *conn = h->data;
    conn->refs--;
    maybe_free(conn);
}

void colony__client_conn_close(colony__client_conn *conn)
{
    if (conn->state == COLONY__CONN_CLOSING) return;
    if (conn->state == COLONY__CONN_TUNNEL) { /* out of its origin already */
        conn->state = COLONY__CONN_CLOSING;
        uv_close((uv_handle_t *)&conn->timer, on_timer_closed);
        if (conn->io_open && !uv_is_closing(&conn->io.handle))
            uv_close(&conn->io.handle, on_io_closed);
        return;
    }
    colony__client_origin *o = conn->origin;
    if (conn->state == COLONY__CONN_IDLE) {
        colony__list_remove(&conn->idle_link);
        o->n_idle--;
    }
    colony__list_remove(&conn->all_link);
    o->n_conns--;
    colony__client_tls_close_notify(conn);
    conn->state = COLONY__CONN_CLOSING;
    uv_close((uv_handle_t *)&conn->timer, on_timer_closed);
    if (conn->io_open && !uv_is_closing(&conn->io.handle)) uv_close(&conn->io.handle, on_io_closed);
    if (conn->resolving) uv_cancel((uv_req_t *)&conn->resolve_req);
    colony__client_pool_dispatch(o); /* a slot is free */
}

static colony_client_call *detach_call(colony__client_conn *conn)
{
    colony_client_call *call = conn->call;
    conn->call = NULL;
    if (call) call->conn = NULL;
    return call;
}

/* Connecting failed for good (all addresses, or timeout): the bound call fails. */
static void connect_failed(colony__client_conn *conn, int err)
{
    colony_client_call *call = detach_call(conn);
    colony__client_conn_close(conn);
    if (call) colony__client_call_complete(call, err, NULL);
}

static void connect_addr(colony__client_conn *conn, const struct sockaddr *sa)
{
    int rc = uv_tcp_init(conn_client(conn)->loop, &conn->io.tcp);
    if (rc) {
        connect_failed(conn, rc);
        return;
    }
    conn->io.handle.data = conn;
    conn->io_open = 1;
    conn->refs++;
    rc = uv_tcp_connect(&conn->connect_req, &conn->io.tcp, sa, on_connect);
    if (rc) {
        conn->connect_err = rc;
        uv_close(&conn->io.handle, on_io_closed); /* then the next address */
    }
}

static void try_next_address(colony__client_conn *conn)
{
    while (conn->next_addr) {
        struct addrinfo *ai = conn->next_addr;
        conn->next_addr = ai->ai_next;
        if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6) {
            connect_addr(conn, ai->ai_addr);
            return;
        }
    }
    connect_failed(conn, conn->connect_err ? conn->connect_err : COLONY_ECONNREFUSED);
}

/* The stream closes either because the conn is closing or because a connect
 * attempt failed and the next address is to be tried on a fresh handle. */
static void on_io_closed(uv_handle_t *h)
{
    colony__client_conn *conn = h->data;
    conn->io_open = 0;
    conn->refs--;
    if (conn->state == COLONY__CONN_CLOSING)
        maybe_free(conn);
    else
        try_next_address(conn);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    colony__client_conn *conn = req->data;
    conn->resolving = 0;
    conn->refs--;
    if (conn->state == COLONY__CONN_CLOSING) {
        if (res) uv_freeaddrinfo(res);
        maybe_free(conn);
        return;
    }
    if (status < 0) {
        connect_failed(conn, status);
        return;
    }
    conn->addrs = res;
    conn->next_addr = res;
    try_next_address(conn);
}

int colony__client_conn_open(colony__client_origin *o, colony_client_call *call)
{
    colony_client *c = o->client;
    colony__client_conn *conn = colony__calloc(1, sizeof(*conn));
    if (!conn) return COLONY_ENOMEM;
    conn->limits = c->opts.limits;
    conn->max_headers = conn->limits.max_headers;
    conn->headers = colony__calloc(conn->max_headers, sizeof(*conn->headers));
    if (!conn->headers || uv_timer_init(c->loop, &conn->timer) != 0) {
        colony__free(conn->headers);
        colony__free(conn);
        return COLONY_ENOMEM;
    }
    conn->timer.data = conn;
    conn->refs = 1;
    conn->origin = o;
    conn->client = c;
    conn->state = COLONY__CONN_CONNECTING;
    colony__list_init(&conn->idle_link);
    colony__list_push_back(&o->conns, &conn->all_link);
    o->n_conns++;
    c->live_conns++;
    conn->call = call;
    call->conn = conn;
    call->state = COLONY__CALL_BOUND;
    timer_set(conn, call->connect_timeout_ms);

    if (o->url.is_unix) {
        int rc = uv_pipe_init(c->loop, &conn->io.pipe, 0);
        if (rc) {
            connect_failed(conn, rc);
            return 0;
        }
        conn->io.handle.data = conn;
        conn->io_open = 1;
        conn->refs++;
        uv_pipe_connect(&conn->connect_req, &conn->io.pipe, o->url.host, on_connect);
    } else if (o->has_numeric_addr) {
        connect_addr(conn, (const struct sockaddr *)&o->numeric_addr);
    } else {
        char port[8];
        snprintf(port, sizeof(port), "%u", (unsigned)o->url.port);
        struct addrinfo hints;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        conn->resolve_req.data = conn;
        int rc =
            uv_getaddrinfo(c->loop, &conn->resolve_req, on_resolved, o->url.host, port, &hints);
        if (rc) {
            connect_failed(conn, rc);
            return 0;
        }
        conn->resolving = 1;
        conn->refs++;
    }
    return 0;
}

/* ---- request ---- */

static int is_retryable(const colony__client_conn *conn, const colony_client_call *call, int err)
{
    return (err == UV_EOF || err == UV_ECONNRESET || err == UV_EPIPE) && !conn->got_bytes &&
           conn->requests_done > 0 && call->idempotent && !call->body_cb && !call->retried;
}

/* The exchange on a connected conn failed: close the conn; retry the call once
 * on a fresh connection when a reused conn turned out dead before answering,
 * else fail it. */
static void exchange_failed(colony__client_conn *conn, int err)
{
    if (conn->ssl && err != COLONY_ETIMEDOUT) colony__client_tls_exchange_failed(conn, err);
    colony_client_call *call = detach_call(conn);
    if (call && is_retryable(conn, call, err)) {
        colony__client_pool_requeue_for_retry(call);
        colony__client_conn_close(conn); /* dispatches the retry */
        return;
    }
    colony__client_conn_close(conn);
    if (err == UV_EOF || err == UV_EPIPE) err = COLONY_ECONNRESET;
    if (call) colony__client_call_complete(call, err, NULL);
}

/* A write of the request (head or body chunk) finished: it counts as
 * activity, and a streamed body is asked for more once all writes are out. */
void colony__client_conn_write_done(colony__client_conn *conn, int status)
{
    conn->writes_pending--;
    if (status == UV_ECANCELED || conn->state == COLONY__CONN_CLOSING) return;
    if (status < 0) {
        exchange_failed(conn, status);
        return;
    }
    conn->last_activity = uv_now(conn_client(conn)->loop);
    colony_client_call *call = conn->call;
    if (call && call->body_cb && !call->body_ended && conn->writes_pending == 0)
        call->body_cb(call, call->ud);
}

static void on_head_written(uv_write_t *req, int status)
{
    colony__client_conn_write_done(req->data, status);
}

static void send_request(colony__client_conn *conn)
{
    colony_client_call *call = conn->call;
    colony_client *c = conn_client(conn);
    call->sent = 1;
    conn->reset_pending = 1; /* the previous response stays readable until the next read */
    conn->got_bytes = 0;
    call->body_ended = !call->body_cb;
    conn->write_req.data = conn;
    uv_buf_t buf = uv_buf_init(call->req, (unsigned)call->req_len);
    if (!call->body_cb && !conn->ssl) {
        /* Most requests fit the socket buffer: writing them at once spares
         * uv_write's completion round trip (and an epoll_ctl per request). */
        int n = uv_try_write(&conn->io.stream, &buf, 1);
        if (n == (int)call->req_len) {
            conn->last_activity = uv_now(c->loop);
            timer_set_lazy(conn, call->read_timeout_ms);
            return;
        }
        if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS) {
            exchange_failed(conn, n);
            return;
        }
        if (n > 0) buf = uv_buf_init(call->req + n, (unsigned)(call->req_len - (size_t)n));
    }
    conn->writes_pending++;
    int rc = colony__client_conn_write(conn, &conn->write_req, buf.base, buf.len, on_head_written);
    if (rc) {
        conn->writes_pending--;
        exchange_failed(conn, rc);
        return;
    }
    conn->last_activity = uv_now(c->loop);
    timer_set_lazy(conn, call->read_timeout_ms);
}

void colony__client_conn_start(colony__client_conn *conn, colony_client_call *call)
{
    if (conn->paused && uv_read_start(&conn->io.stream, on_alloc, on_read) == 0) conn->paused = 0;
    conn->state = COLONY__CONN_BUSY;
    conn->call = call;
    call->conn = conn;
    call->state = COLONY__CALL_BOUND;
    conn->origin->reused++;
    uv_ref((uv_handle_t *)&conn->timer);
    uv_ref(&conn->io.handle);
    send_request(conn);
}

static void on_connect(uv_connect_t *req, int status)
{
    colony__client_conn *conn = req->handle->data;
    if (status == UV_ECANCELED || conn->state == COLONY__CONN_CLOSING) return;
    if (status < 0) {
        conn->connect_err = status;
        uv_close(&conn->io.handle, on_io_closed); /* then the next address */
        return;
    }
    if (conn->addrs) {
        uv_freeaddrinfo(conn->addrs);
        conn->addrs = conn->next_addr = NULL;
    }
    if (!conn->origin->url.is_unix) uv_tcp_nodelay(&conn->io.tcp, 1);
    conn->origin->connects++;
    int rc = uv_read_start(&conn->io.stream, on_alloc, on_read);
    if (!rc && conn->origin->url.is_https) rc = colony__client_tls_start(conn);
    if (rc) {
        connect_failed(conn, rc);
        return;
    }
    if (conn->ssl) return; /* connecting until the handshake is done (on_read) */
    conn->state = COLONY__CONN_BUSY;
    send_request(conn);
}

/* An idle pooled connection does not keep the loop alive (like Node's agent):
 * a program whose work is done exits instead of waiting out the idle timeout. */
void colony__client_conn_idle_timer_start(colony__client_conn *conn)
{
    conn->last_activity = uv_now(conn_client(conn)->loop); /* idle since */
    timer_set_lazy(conn, conn_client(conn)->opts.idle_timeout_ms);
    uv_unref((uv_handle_t *)&conn->timer);
    uv_unref(&conn->io.handle);
}

/* ---- response ---- */

static void reset_response(colony__client_conn *conn)
{
    colony_client_call *call = conn->call;
    colony_client *c = conn_client(conn);
    conn->reset_pending = 0;
    conn->in.len = 0;
    conn->body.len = 0;
    conn->head_len = 0;
    conn->got_bytes = 0;
    colony_http_chunked_init(&conn->chunked);
    conn->limits.max_body = call && call->data_cb ? UINT64_MAX : c->opts.max_response_body;
}

/* The parsed head stays at the start of `in` until done_cb, and the header
 * slices point into it. When the buffer grows while the body is read (a big
 * head leaves little room after it), the head moves: parse it again so the
 * slices follow. This happens at most once per response, as the grown buffer
 * has room for a full read after the head. */
static void rebind_head(colony__client_conn *conn)
{
    colony_http_parse_response(conn->in.data, conn->head_len, &conn->res, conn->headers,
                               conn->max_headers, conn->call->is_head, &conn->limits);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    colony__client_conn *conn = h->data;
    if (conn->reset_pending) reset_response(conn);
    size_t max = conn->limits.max_header_bytes + READ_SLACK;
    size_t room = conn->in.cap - conn->in.len;
    if (room < READ_CHUNK / 4) {
        size_t want = READ_CHUNK;
        if (want > max - conn->in.len && max > conn->in.len) want = max - conn->in.len;
        size_t old_cap = conn->in.cap;
        int rc =
            conn->in.len >= max ? COLONY_E2BIG : colony__client_bytes_reserve(&conn->in, want, max);
        if (rc) {
            conn->read_buf_err = rc == COLONY_ENOMEM ? rc : COLONY_EPROTO; /* head too big */
            *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
            return;
        }
        if (conn->in.cap != old_cap && conn->head_len && conn->call) rebind_head(conn);
        room = conn->in.cap - conn->in.len;
    }
    *buf = uv_buf_init(conn->in.data + conn->in.len, (unsigned)room);
}

static void fill_response(colony__client_conn *conn, colony_client_response *out, int streamed)
{
    out->status = conn->res.status;
    out->version_minor = conn->res.msg.version_minor;
    out->headers = conn->headers;
    out->num_headers = conn->res.msg.num_headers;
    if (streamed) {
        out->body = NULL;
        out->body_len = 0;
    } else {
        if (conn->body.data) conn->body.data[conn->body.len] = '\0';
        out->body = conn->body.data ? conn->body.data : "";
        out->body_len = conn->body.len;
    }
}

/* The response is complete: the call is done and the conn goes back to the
 * pool if nothing about the exchange forbids reuse. The pool may hand the conn
 * to another call before done_cb runs; its buffers are only rewritten at the
 * next read, so the response stays valid during done_cb. */
static void response_complete(colony__client_conn *conn, int leftover)
{
    colony_client_call *call = detach_call(conn);
    int reusable = conn->res.msg.keep_alive && !leftover && !call->close_requested &&
                   call->body_ended && conn->writes_pending == 0 &&
                   conn->res.msg.body_kind != COLONY_HTTP_BODY_EOF;
    conn->requests_done++;
    colony_client_response res;
    fill_response(conn, &res, call->data_cb != NULL);
    colony__client_pool_release(conn, reusable); /* idle (timer left armed) or closed */
    colony__client_call_complete(call, 0, &res);
}

/* Hands body bytes to the call; returns 0, or nonzero if the call is gone. */
static int deliver(colony__client_conn *conn, colony_client_call *call, const char *p, size_t n)
{
    if (n == 0) return 0;
    if (call->data_cb) {
        call->data_cb(call, p, n, call->ud);
        return conn->call != call;
    }
    int rc =
        colony__client_bytes_reserve(&conn->body, n, conn_client(conn)->opts.max_response_body);
    if (rc) {
        exchange_failed(conn, rc);
        return 1;
    }
    memcpy(conn->body.data + conn->body.len, p, n);
    conn->body.len += n;
    return 0;
}

static int parse_error_code(colony_http_error e)
{
    return e == COLONY_HTTP_BODY_TOO_LARGE ? COLONY_E2BIG : COLONY_EPROTO;
}

/* Parses heads (skipping 1xx). Returns 1 when the final head is in and the
 * call still wants the body, 0 when more input is needed or the call ended. */
static int process_head(colony__client_conn *conn, colony_client_call *call)
{
    colony_client *c = conn_client(conn);
    for (;;) {
        int r = colony_http_parse_response(conn->in.data, conn->in.len, &conn->res, conn->headers,
                                           conn->max_headers, call->is_head, &conn->limits);
        if (r == COLONY_EAGAIN) {
            if (conn->in.len >= conn->limits.max_header_bytes) exchange_failed(conn, COLONY_EPROTO);
            return 0;
        }
        if (r < 0) {
            exchange_failed(conn, parse_error_code(conn->res.msg.error));
            return 0;
        }
        if (conn->res.status >= 200) {
            conn->head_len = (size_t)r;
            break;
        }
        if (conn->res.status == 101 && call->upgrade_requested) {
            conn->head_len = (size_t)r;
            colony__client_tunnel_switch(conn, call);
            return 0;
        }
        if (conn->res.status == 101) { /* switching protocols nobody asked for */
            exchange_failed(conn, COLONY_EPROTO);
            return 0;
        }
        memmove(conn->in.data, conn->in.data + r, conn->in.len - (size_t)r); /* skip 1xx */
        conn->in.len -= (size_t)r;
    }
    conn->body_remaining = conn->res.msg.content_length;
    if (!call->data_cb && conn->res.msg.body_kind == COLONY_HTTP_BODY_LENGTH &&
        conn->res.msg.content_length > c->opts.max_response_body) {
        exchange_failed(conn, COLONY_E2BIG);
        return 0;
    }
    if (!call->data_cb && conn->res.msg.body_kind == COLONY_HTTP_BODY_LENGTH) {
        /* one allocation for the whole body (kept for the next response) */
        int rc = colony__client_bytes_reserve(&conn->body, (size_t)conn->res.msg.content_length,
                                              c->opts.max_response_body);
        if (rc) {
            exchange_failed(conn, rc);
            return 0;
        }
    }
    if (call->timeout_to_head) colony__client_deadline_clear(call); /* the body: read timeout */
    if (call->head_cb) {
        colony_client_response res;
        fill_response(conn, &res, 1);
        int abort_it = call->head_cb(call, &res, call->ud);
        if (conn->call != call) return 0; /* cancelled or closed inside head_cb */
        if (abort_it) {
            detach_call(conn);
            colony__client_conn_close(conn);
            colony__client_call_complete(call, COLONY_ECANCELED, NULL);
            return 0;
        }
    }
    if (conn->res.msg.body_kind == COLONY_HTTP_BODY_NONE) {
        response_complete(conn, conn->in.len > conn->head_len);
        return 0;
    }
    return 1;
}

/* Frames body bytes after the head; they are consumed as they are handled. */
static void process_body(colony__client_conn *conn, colony_client_call *call)
{
    char *p = conn->in.data + conn->head_len;
    size_t avail = conn->in.len - conn->head_len;
    conn->in.len = conn->head_len; /* every byte is handled below */
    switch (conn->res.msg.body_kind) {
    case COLONY_HTTP_BODY_LENGTH: {
        size_t take = avail < conn->body_remaining ? avail : (size_t)conn->body_remaining;
        if (deliver(conn, call, p, take)) return;
        conn->body_remaining -= take;
        if (conn->body_remaining == 0) response_complete(conn, avail > take);
        return;
    }
    case COLONY_HTTP_BODY_CHUNKED: {
        size_t off = 0;
        for (;;) {
            size_t used = 0, data_len = 0;
            const char *data = NULL;
            int r = colony_http_chunked_decode(&conn->chunked, p + off, avail - off, &used, &data,
                                               &data_len, &conn->limits);
            if (r < 0) {
                exchange_failed(conn, parse_error_code(conn->chunked.error));
                return;
            }
            off += used;
            if (deliver(conn, call, data, data_len)) return;
            if (r == 1) {
                response_complete(conn, off < avail);
                return;
            }
            if (off >= avail || (used == 0 && data_len == 0)) return;
        }
    }
    case COLONY_HTTP_BODY_EOF:
        deliver(conn, call, p, avail);
        return;
    default:
        return;
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    colony__client_conn *conn = s->data;
    if (nread == 0 || conn->state == COLONY__CONN_CLOSING) return;
    if (conn->state == COLONY__CONN_CONNECTING) { /* https: the handshake */
        int rc = colony__client_tls_handshake(conn, nread);
        if (rc < 0) connect_failed(conn, rc);
        if (rc == 1) {
            conn->state = COLONY__CONN_BUSY;
            send_request(conn);
        }
        return;
    }
    if (conn->ssl && nread > 0) {
        char *before = conn->in.data;
        int eof = 0;
        nread = colony__client_tls_read(conn, (size_t)nread, &eof);
        if (nread == 0 && eof) nread = UV_EOF;
        if (nread == 0) return;
        if (conn->in.data != before && conn->head_len && conn->call) rebind_head(conn);
    }
    if (conn->state == COLONY__CONN_IDLE || !conn->call) {
        colony__client_conn_close(conn); /* closed by the server, or bytes nobody asked for */
        return;
    }
    if (conn->reset_pending) reset_response(conn);
    colony_client_call *call = conn->call;
    if (nread < 0) {
        if (nread == UV_EOF && conn->head_len && conn->res.msg.body_kind == COLONY_HTTP_BODY_EOF)
            response_complete(conn, 0);
        else
            exchange_failed(conn, nread == UV_ENOBUFS ? conn->read_buf_err : (int)nread);
        return;
    }
    conn->in.len += (size_t)nread;
    conn->got_bytes = 1;
    conn->last_activity = uv_now(conn_client(conn)->loop);
    if (conn->head_len == 0 && !process_head(conn, call)) return;
    process_body(conn, call);
}

static void on_timer(uv_timer_t *t)
{
    colony__client_conn *conn = t->data;
    colony_client *c = conn_client(conn);
    switch (conn->state) {
    case COLONY__CONN_CONNECTING:
        connect_failed(conn, COLONY_ETIMEDOUT);
        break;
    case COLONY__CONN_BUSY: {
        /* lazy re-arm: reads only stamp last_activity, the timer checks it;
         * a call paused by its caller is not silent on the server's part */
        if (conn->paused) conn->last_activity = uv_now(c->loop);
        uint64_t idle = uv_now(c->loop) - conn->last_activity;
        uint64_t limit = conn->call ? conn->call->read_timeout_ms : c->opts.read_timeout_ms;
        if (idle < limit)
            timer_set(conn, limit - idle);
        else
            exchange_failed(conn, COLONY_ETIMEDOUT);
        break;
    }
    case COLONY__CONN_IDLE: {
        uint64_t idle = uv_now(c->loop) - conn->last_activity;
        if (idle < c->opts.idle_timeout_ms)
            timer_set(conn, c->opts.idle_timeout_ms - idle); /* armed while busy */
        else
            colony__client_conn_close(conn);
        break;
    }
    default:
        break;
    }
}

int colony__client_conn_pause(colony__client_conn *conn, int pause)
{
    if (conn->state != COLONY__CONN_BUSY || !conn->io_open) return COLONY_EINVAL;
    if (pause == (int)conn->paused) return 0;
    int rc = 0;
    if (pause)
        uv_read_stop(&conn->io.stream);
    else
        rc = uv_read_start(&conn->io.stream, on_alloc, on_read);
    if (rc) return rc;
    conn->paused = pause ? 1 : 0;
    conn->last_activity = uv_now(conn_client(conn)->loop);
    return 0;
}
