/* One client connection: resolve (libuv thread pool), connect trying each
 * address in order (then the TLS handshake of an https conn, client_tls.c),
 * write a request (one uv_write for head and fixed body; the streamed body's
 * pieces are client.c's), and the connect / read / idle timer. Reading and
 * framing the response is client_response.c's. Buffers live in the
 * connection and are reused across requests. conn->client, not
 * conn->origin->client, everywhere: a closing conn may outlive its origin. */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "http/client_internal.h"

static void on_timer(uv_timer_t *t);
static void on_io_closed(uv_handle_t *h);
static void on_connect(uv_connect_t *req, int status);

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
    colony_client *c = conn->client;
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

colony_client_call *colony__client_conn_detach_call(colony__client_conn *conn)
{
    colony_client_call *call = conn->call;
    conn->call = NULL;
    if (call) call->conn = NULL;
    return call;
}

/* Connecting failed for good (all addresses, or timeout): the bound call fails. */
void colony__client_conn_connect_failed(colony__client_conn *conn, int err)
{
    colony_client_call *call = colony__client_conn_detach_call(conn);
    colony__client_conn_close(conn);
    if (call) colony__client_call_complete(call, err, NULL);
}

static void connect_addr(colony__client_conn *conn, const struct sockaddr *sa)
{
    int rc = uv_tcp_init(conn->client->loop, &conn->io.tcp);
    if (rc) {
        colony__client_conn_connect_failed(conn, rc);
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
    colony__client_conn_connect_failed(conn,
                                       conn->connect_err ? conn->connect_err : COLONY_ECONNREFUSED);
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
        colony__client_conn_connect_failed(conn, status);
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
            colony__client_conn_connect_failed(conn, rc);
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
            colony__client_conn_connect_failed(conn, rc);
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
void colony__client_conn_exchange_failed(colony__client_conn *conn, int err)
{
    if (conn->ssl && err != COLONY_ETIMEDOUT) colony__client_tls_exchange_failed(conn, err);
    colony_client_call *call = colony__client_conn_detach_call(conn);
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
        colony__client_conn_exchange_failed(conn, status);
        return;
    }
    conn->last_activity = uv_now(conn->client->loop);
    colony_client_call *call = conn->call;
    if (call && call->body_cb && !call->body_ended && conn->writes_pending == 0)
        call->body_cb(call, call->ud);
}

static void on_head_written(uv_write_t *req, int status)
{
    colony__client_conn_write_done(req->data, status);
}

void colony__client_conn_send_request(colony__client_conn *conn)
{
    colony_client_call *call = conn->call;
    colony_client *c = conn->client;
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
            colony__client_conn_exchange_failed(conn, n);
            return;
        }
        if (n > 0) buf = uv_buf_init(call->req + n, (unsigned)(call->req_len - (size_t)n));
    }
    conn->writes_pending++;
    int rc = colony__client_conn_write(conn, &conn->write_req, buf.base, buf.len, on_head_written);
    if (rc) {
        conn->writes_pending--;
        colony__client_conn_exchange_failed(conn, rc);
        return;
    }
    conn->last_activity = uv_now(c->loop);
    timer_set_lazy(conn, call->read_timeout_ms);
}

void colony__client_conn_start(colony__client_conn *conn, colony_client_call *call)
{
    if (conn->paused && uv_read_start(&conn->io.stream, colony__client_conn_on_alloc,
                                      colony__client_conn_on_read) == 0)
        conn->paused = 0;
    conn->state = COLONY__CONN_BUSY;
    conn->call = call;
    call->conn = conn;
    call->state = COLONY__CALL_BOUND;
    conn->origin->reused++;
    uv_ref((uv_handle_t *)&conn->timer);
    uv_ref(&conn->io.handle);
    colony__client_conn_send_request(conn);
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
    int rc =
        uv_read_start(&conn->io.stream, colony__client_conn_on_alloc, colony__client_conn_on_read);
    if (!rc && conn->origin->url.is_https) rc = colony__client_tls_start(conn);
    if (rc) {
        colony__client_conn_connect_failed(conn, rc);
        return;
    }
    if (conn->ssl)
        return; /* connecting until the handshake is done (colony__client_conn_on_read) */
    conn->state = COLONY__CONN_BUSY;
    colony__client_conn_send_request(conn);
}

/* An idle pooled connection does not keep the loop alive (like Node's agent):
 * a program whose work is done exits instead of waiting out the idle timeout. */
void colony__client_conn_idle_timer_start(colony__client_conn *conn)
{
    conn->last_activity = uv_now(conn->client->loop); /* idle since */
    timer_set_lazy(conn, conn->client->opts.idle_timeout_ms);
    uv_unref((uv_handle_t *)&conn->timer);
    uv_unref(&conn->io.handle);
}

static void on_timer(uv_timer_t *t)
{
    colony__client_conn *conn = t->data;
    colony_client *c = conn->client;
    switch (conn->state) {
    case COLONY__CONN_CONNECTING:
        colony__client_conn_connect_failed(conn, COLONY_ETIMEDOUT);
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
            colony__client_conn_exchange_failed(conn, COLONY_ETIMEDOUT);
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
        rc = uv_read_start(&conn->io.stream, colony__client_conn_on_alloc,
                           colony__client_conn_on_read);
    if (rc) return rc;
    conn->paused = pause ? 1 : 0;
    conn->last_activity = uv_now(conn->client->loop);
    return 0;
}
