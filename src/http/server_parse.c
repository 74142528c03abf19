/* Parse and dispatch: turns the bytes in a connection's read buffer into a
 * request (head, then a fixed or chunked body, buffered or streamed) and calls
 * the head hook and the handler. Called only by conn_process (server_conn.c);
 * answers go out through server_response.c. */
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "http/server_internal.h"

#define DISCARD_BODY_MAX (64 * 1024) /* body bytes skipped after an early response */

static colony_server *conn_server(const colony__conn *c)
{
    return c->worker->srv;
}

/* Ends a request that failed before its handler ran (framing error, body too
 * large, body timeout): the connection owns it, so it is released here. */
static void abort_request(colony__conn *c, int err)
{
    colony_request *req = c->req;
    if (!req) return;
    c->req = NULL;
    colony__request_finish(req, err);
    colony__request_detach(req);
}

void colony__conn_fail_request(colony__conn *c, int status, const char *message, int err)
{
    if (c->req && c->req->started) { /* a response is streaming: no room for another */
        colony__conn_close(c, err);
        return;
    }
    abort_request(c, err);
    colony__conn_send_error(c, status, colony__error_code_for_status(status), message);
}

static void call_handler(colony__conn *c, colony_request *req)
{
    colony_server *srv = conn_server(c);
    c->phase = COLONY__PHASE_HANDLER;
    req->handler_called = 1;
    const colony_log_context *prev = colony_log_set_context(&req->log_ctx);
    req->pinned++;
    srv->handler(req, srv->handler_ud);
    colony_log_set_context(prev);
    colony__request_unpin(req);
}

/* The response ended before the body was read whole (answered from the body
 * callback, or by a handler that paused the body): the rest is not read. A
 * small body already buffered is skipped and the connection lives on; else it
 * closes after the response (should_close saw the pending body). */
static int answered_mid_body(colony__conn *c, colony_request *req)
{
    req->handler_called = 1;
    c->phase = COLONY__PHASE_HANDLER;
    if (c->body_pending && c->body_discardable && !c->body_is_chunked) {
        c->rpos += (size_t)c->body_remaining;
        c->body_pending = 0;
    }
    return 1;
}

/* Reads body bytes from the buffer, unless the body is paused. Returns 1
 * when the phase changed. */
int colony__conn_read_body(colony__conn *c)
{
    colony_request *req = c->req;
    colony_server *srv = conn_server(c);
    if (req->ended) return answered_mid_body(c, req);
    while (c->rpos < c->rlen && !c->body_paused) {
        const char *in = c->rbuf + c->rpos;
        size_t avail = c->rlen - c->rpos;
        const char *data = in;
        size_t data_len;
        int done;
        if (!c->body_is_chunked) {
            data_len = avail < c->body_remaining ? avail : (size_t)c->body_remaining;
            c->rpos += data_len;
            c->body_remaining -= data_len;
            done = c->body_remaining == 0;
        } else {
            size_t consumed = 0;
            colony_http_limits lim = srv->opts.limits;
            if (req->body_cb) lim.max_body = UINT64_MAX;
            int rc = colony_http_chunked_decode(&c->chunked, in, avail, &consumed, &data, &data_len,
                                                &lim);
            if (rc < 0) {
                colony_http_error e = c->chunked.error;
                colony__conn_fail_request(c, colony_http_error_status(e),
                                          colony_http_error_message(e), COLONY_EPROTO);
                return 0;
            }
            c->rpos += consumed;
            done = rc == 1;
            if (!done && consumed == 0 && data_len == 0) break;
        }
        if (done) c->body_pending = 0; /* before a body callback may answer */
        if (data_len) {
            if (req->body_cb) {
                const colony_log_context *prev = colony_log_set_context(&req->log_ctx);
                req->pinned++;
                req->body_cb(req, data, data_len, req->body_ud);
                colony_log_set_context(prev);
                if (c->closing) {
                    colony__request_unpin(req);
                    return 0;
                }
                req->pinned--;
                /* A response that only started lets the body flow on (a proxy
                 * answering while it still forwards the body). */
                if (req->ended) return answered_mid_body(c, req);
            } else {
                int rc = colony_buf_append(&req->body, data, data_len);
                if (rc == COLONY_E2BIG) {
                    colony__conn_fail_request(c, 413,
                                              colony_http_error_message(COLONY_HTTP_BODY_TOO_LARGE),
                                              COLONY_E2BIG);
                    return 0;
                }
                if (rc) {
                    colony__conn_close(c, rc);
                    return 0;
                }
            }
        }
        if (done) {
            call_handler(c, req);
            return 1;
        }
    }
    return 0;
}

static void call_head_hook(colony__conn *c, colony_request *req)
{
    colony_server *srv = conn_server(c);
    const colony_log_context *prev = colony_log_set_context(&req->log_ctx);
    req->in_head_hook = 1;
    req->pinned++;
    srv->head_hook(req, srv->head_hook_ud);
    req->in_head_hook = 0;
    colony_log_set_context(prev);
    colony__request_unpin(req);
}

/* Parses the next head in the buffer. Returns 1 when the phase changed. */
int colony__conn_parse_head(colony__conn *c)
{
    colony__worker *w = c->worker;
    colony_server *srv = w->srv;
    const char *in = c->rbuf + c->rpos;
    size_t avail = c->rlen - c->rpos;
    if (c->phase == COLONY__PHASE_IDLE) {
        c->phase = COLONY__PHASE_HEAD;
        c->head_deadline = uv_now(w->loop) + srv->opts.header_timeout_ms;
    }
    colony_http_request parsed;
    int n = colony_http_parse_request(in, avail, &parsed, w->scratch_headers,
                                      srv->opts.limits.max_headers, &srv->parse_limits);
    if (n == COLONY_EAGAIN) {
        if (avail > srv->opts.limits.max_header_bytes)
            colony__conn_send_error(c, 431, "header_fields_too_large",
                                    colony_http_error_message(COLONY_HTTP_HEADERS_TOO_LARGE));
        return 0;
    }
    if (n < 0) {
        colony_http_error e = parsed.msg.error;
        int status = colony_http_error_status(e);
        colony__conn_send_error(c, status, colony__error_code_for_status(status),
                                colony_http_error_message(e));
        return 0;
    }
    colony_request *req = colony__request_acquire(w);
    if (!req) {
        colony__conn_close(c, COLONY_ENOMEM);
        return 0;
    }
    req->conn = c;
    c->req = req;
    int status;
    const char *why;
    int rc = colony__request_load_head(req, in, (size_t)n, &parsed, &status, &why);
    if (rc == COLONY_EPROTO) {
        colony__conn_fail_request(c, status, why, COLONY_EPROTO);
        return 0;
    }
    if (rc) {
        colony__conn_close(c, COLONY_ENOMEM);
        return 0;
    }
    c->rpos += (size_t)n;
    c->requests++;
    colony__stat_inc(&w->stats.requests);
    if (!req->keep_alive) c->close_after = 1;
    if (srv->opts.max_requests_per_conn && c->requests >= srv->opts.max_requests_per_conn)
        c->close_after = 1;

    int kind = parsed.msg.body_kind;
    uint64_t length = parsed.msg.content_length;
    int has_body = kind == COLONY_HTTP_BODY_CHUNKED || (kind == COLONY_HTTP_BODY_LENGTH && length);
    c->body_is_chunked = kind == COLONY_HTTP_BODY_CHUNKED;
    c->body_remaining = kind == COLONY_HTTP_BODY_LENGTH ? length : 0;
    c->body_pending = has_body;
    c->body_discardable = !c->body_is_chunked && length <= DISCARD_BODY_MAX &&
                          length <= (uint64_t)(c->rlen - c->rpos);
    if (c->body_is_chunked) colony_http_chunked_init(&c->chunked);
    c->body_paused = c->continue_pending = 0;

    if (srv->head_hook) {
        call_head_hook(c, req);
        if (c->closing) return 0;
        if (req->started) { /* answered before the body: skip it if cheap, else close */
            req->handler_called = 1;
            c->phase = COLONY__PHASE_HANDLER;
            if (has_body && c->body_discardable) {
                c->rpos += (size_t)length;
                c->body_pending = 0;
            }
            return 1;
        }
    }
    if (has_body && !req->body_cb && !c->body_is_chunked && length > srv->opts.limits.max_body) {
        c->body_pending = 0;
        colony__conn_fail_request(c, 413, colony_http_error_message(COLONY_HTTP_BODY_TOO_LARGE),
                                  COLONY_E2BIG);
        return 0;
    }
    if (!has_body) {
        c->body_pending = 0;
        call_handler(c, req);
        return 1;
    }
    if (!req->body_cb && !c->body_is_chunked && colony_buf_reserve(&req->body, (size_t)length)) {
        colony__conn_close(c, COLONY_ENOMEM);
        return 0;
    }
    /* 100 Continue once the body is wanted: now, or when a paused body is
     * resumed (colony_request_resume_body), so a request refused meanwhile
     * never makes the client send its body. */
    if (parsed.expect_continue && c->rpos == c->rlen) {
        if (c->body_paused)
            c->continue_pending = 1;
        else if (colony__conn_send_continue(c)) {
            colony__conn_close(c, COLONY_ENOMEM);
            return 0;
        }
    }
    c->phase = COLONY__PHASE_BODY;
    c->timer_mode = COLONY__TIMER_NONE;
    return 1;
}
