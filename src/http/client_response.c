/* The response side of a client connection (client_conn.c opens it and
 * writes the request): read into the connection's reused buffer, parse the
 * head (skipping 1xx), frame the body (Content-Length, chunked,
 * close-delimited, none) and hand it to the call, then give the conn back to
 * the pool. */
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "http/client_internal.h"

#define READ_CHUNK 16384
#define READ_SLACK 65536 /* bytes beyond the head limit one read may bring */

static void reset_response(colony__client_conn *conn)
{
    colony_client_call *call = conn->call;
    colony_client *c = conn->client;
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

void colony__client_conn_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
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
    colony_client_call *call = colony__client_conn_detach_call(conn);
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
    int rc = colony__client_bytes_reserve(&conn->body, n, conn->client->opts.max_response_body);
    if (rc) {
        colony__client_conn_exchange_failed(conn, rc);
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
    colony_client *c = conn->client;
    for (;;) {
        int r = colony_http_parse_response(conn->in.data, conn->in.len, &conn->res, conn->headers,
                                           conn->max_headers, call->is_head, &conn->limits);
        if (r == COLONY_EAGAIN) {
            if (conn->in.len >= conn->limits.max_header_bytes)
                colony__client_conn_exchange_failed(conn, COLONY_EPROTO);
            return 0;
        }
        if (r < 0) {
            colony__client_conn_exchange_failed(conn, parse_error_code(conn->res.msg.error));
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
            colony__client_conn_exchange_failed(conn, COLONY_EPROTO);
            return 0;
        }
        memmove(conn->in.data, conn->in.data + r, conn->in.len - (size_t)r); /* skip 1xx */
        conn->in.len -= (size_t)r;
    }
    conn->body_remaining = conn->res.msg.content_length;
    if (!call->data_cb && conn->res.msg.body_kind == COLONY_HTTP_BODY_LENGTH &&
        conn->res.msg.content_length > c->opts.max_response_body) {
        colony__client_conn_exchange_failed(conn, COLONY_E2BIG);
        return 0;
    }
    if (!call->data_cb && conn->res.msg.body_kind == COLONY_HTTP_BODY_LENGTH) {
        /* one allocation for the whole body (kept for the next response) */
        int rc = colony__client_bytes_reserve(&conn->body, (size_t)conn->res.msg.content_length,
                                              c->opts.max_response_body);
        if (rc) {
            colony__client_conn_exchange_failed(conn, rc);
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
            colony__client_conn_detach_call(conn);
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
                colony__client_conn_exchange_failed(conn, parse_error_code(conn->chunked.error));
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

void colony__client_conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    colony__client_conn *conn = s->data;
    if (nread == 0 || conn->state == COLONY__CONN_CLOSING) return;
    if (conn->state == COLONY__CONN_CONNECTING) { /* https: the handshake */
        int rc = colony__client_tls_handshake(conn, nread);
        if (rc < 0) colony__client_conn_connect_failed(conn, rc);
        if (rc == 1) {
            conn->state = COLONY__CONN_BUSY;
            colony__client_conn_send_request(conn);
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
            colony__client_conn_exchange_failed(conn, nread == UV_ENOBUFS ? conn->read_buf_err
                                                                          : (int)nread);
        return;
    }
    conn->in.len += (size_t)nread;
    conn->got_bytes = 1;
    conn->last_activity = uv_now(conn->client->loop);
    if (conn->head_len == 0 && !process_head(conn, call)) return;
    process_body(conn, call);
}
