/* The client side of an Upgrade (http_client.h, "Upgrade"): a call whose
 * request had Upgrade and whose answer is 101 hands its connection over as a
 * raw byte tunnel. The connection leaves its origin at once (it never returns
 * to the pool and no longer counts against max_per_origin); the tunnel reads
 * with its own callbacks into the connection's input buffer, writes with one
 * uv_write per piece, and closes through colony__client_conn_close. */
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "http/client_internal.h"

#define TUNNEL_READ_MIN    16384
#define TUNNEL_MAX_PENDING (1u << 20) /* unwritten bytes before writes get EBUSY */

struct colony_client_tunnel {
    colony__list link; /* client->tunnels */
    colony__client_conn *conn;
    colony_client_tunnel_data_cb on_data;
    colony_client_tunnel_close_cb on_close;
    void *ud;
    colony__list writes; /* tunnel_write in flight, oldest first */
    size_t pending;      /* their bytes */
    size_t leftover;     /* bytes after the 101 head, at the start of conn->in */
    uv_shutdown_t shutdown_req;
    unsigned taken : 1;
    unsigned reading : 1;
    unsigned read_paused : 1;
    unsigned deliver_pending : 1;
    unsigned peer_eof : 1;
    unsigned close_requested : 1;
    unsigned shutdown_issued : 1;
    unsigned ended : 1;
};

typedef struct tunnel_write {
    uv_write_t req;
    colony__list link;
    colony_client_tunnel *t;
    colony_client_tunnel_write_cb cb; /* NULL once reported */
    void *ud;
    size_t len;
    char data[];
} tunnel_write;

static void update_reading(colony_client_tunnel *t);

/* Ends the tunnel: pending write callbacks fail, on_close runs, the conn closes. */
static void end_tunnel(colony_client_tunnel *t, int err)
{
    if (t->ended) return;
    t->ended = 1;
    colony__list_remove(&t->link);
    int fail = err ? err : COLONY_ECONNRESET;
    for (colony__list *l = t->writes.next; l != &t->writes; l = l->next) {
        tunnel_write *w = COLONY__CONTAINER_OF(l, tunnel_write, link);
        colony_client_tunnel_write_cb cb = w->cb;
        w->cb = NULL;
        if (cb && t->taken) cb(t, fail, w->ud);
    }
    if (t->taken) t->on_close(t, err, t->ud);
    colony__client_conn_close(t->conn); /* t is freed with the conn */
}

static void on_shutdown(uv_shutdown_t *sr, int status)
{
    colony_client_tunnel *t = sr->data;
    end_tunnel(t, status < 0 && status != UV_ECANCELED ? status : 0);
}

/* After the peer's EOF or a close request, once every write completed. */
static void maybe_finish(colony_client_tunnel *t)
{
    if (t->ended || t->pending || !colony__list_empty(&t->writes)) return;
    if (t->peer_eof) {
        end_tunnel(t, 0);
        return;
    }
    if (!t->close_requested || t->shutdown_issued) return;
    t->shutdown_issued = 1;
    t->shutdown_req.data = t;
    int rc = uv_shutdown(&t->shutdown_req, &t->conn->io.stream, on_shutdown);
    if (rc < 0) end_tunnel(t, rc);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    colony__client_conn *conn = h->data;
    conn->in.len = 0;
    if (colony__client_bytes_reserve(&conn->in, TUNNEL_READ_MIN, SIZE_MAX / 2) != 0) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init(conn->in.data, (unsigned)conn->in.cap);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    colony__client_conn *conn = s->data;
    colony_client_tunnel *t = conn->tunnel;
    if (nread == 0 || t->ended) return;
    if (conn->ssl && nread > 0) { /* https: decrypted in place at in.data */
        int eof = 0;
        nread = colony__client_tls_read(conn, (size_t)nread, &eof);
        if (nread == 0 && eof) nread = UV_EOF;
        if (nread == 0) return;
    }
    if (nread > 0) {
        t->on_data(t, conn->in.data, (size_t)nread, t->ud);
        return;
    }
    if (nread != UV_EOF) {
        end_tunnel(t, nread == UV_ENOBUFS ? COLONY_ENOMEM : (int)nread);
        return;
    }
    t->peer_eof = 1;
    update_reading(t);
    maybe_finish(t);
}

static void update_reading(colony_client_tunnel *t)
{
    if (t->ended) return;
    int want =
        t->taken && !t->read_paused && !t->deliver_pending && !t->peer_eof && !t->close_requested;
    if (want == (int)t->reading) return;
    if (want) {
        int rc = uv_read_start(&t->conn->io.stream, on_alloc, on_read);
        if (rc) {
            end_tunnel(t, rc);
            return;
        }
    } else {
        uv_read_stop(&t->conn->io.stream);
    }
    t->reading = (unsigned)want;
}

/* The bytes that came with the 101 head, delivered from the loop. */
static void on_deliver(uv_timer_t *timer)
{
    colony__client_conn *conn = timer->data;
    colony_client_tunnel *t = conn->tunnel;
    if (t->ended || !t->deliver_pending || t->read_paused) return; /* resume re-arms */
    t->deliver_pending = 0;
    size_t n = t->leftover;
    t->leftover = 0;
    if (n) t->on_data(t, conn->in.data, n, t->ud);
    conn->in.len = 0;
    update_reading(t);
}

void colony__client_tunnel_switch(colony__client_conn *conn, colony_client_call *call)
{
    colony_client *c = conn->client;
    colony__client_origin *o = conn->origin;
    uv_read_stop(&conn->io.stream);
    uv_timer_stop(&conn->timer);
    conn->call = NULL;
    call->conn = NULL;
    colony_client_tunnel *t = colony__calloc(1, sizeof(*t));
    if (!t) {
        colony__client_conn_close(conn);
        colony__client_call_complete(call, COLONY_ENOMEM, NULL);
        return;
    }
    /* Out of the pool for good: the origin forgets it and may open another. */
    colony__list_remove(&conn->all_link);
    o->n_conns--;
    conn->state = COLONY__CONN_TUNNEL;
    conn->tunnel = t;
    t->conn = conn;
    colony__list_init(&t->writes);
    colony__list_push_back(&c->tunnels, &t->link);
    t->leftover = conn->in.len - conn->head_len;
    colony__client_bytes_free(&conn->body); /* an earlier response's, up to max_response_body */
    colony__client_pool_dispatch(o);
    colony__client_origin_check_empty(o);

    colony_client_response res = {.status = conn->res.status,
                                  .version_minor = conn->res.msg.version_minor,
                                  .headers = conn->headers,
                                  .num_headers = conn->res.msg.num_headers};
    call->tunnel = t;
    colony__client_call_complete(call, 0, &res); /* done_cb may take t */
    if (t->ended) return;
    if (!t->taken) {
        end_tunnel(t, COLONY_ECANCELED);
        return;
    }
    if (t->leftover) {
        memmove(conn->in.data, conn->in.data + conn->head_len, t->leftover);
        t->deliver_pending = 1;
        uv_timer_start(&conn->timer, on_deliver, 0, 0);
    }
    update_reading(t);
}

int colony_client_call_tunnel(colony_client_call *call, colony_client_tunnel_data_cb on_data,
                              colony_client_tunnel_close_cb on_close, void *ud,
                              colony_client_tunnel **out)
{
    if (out) *out = NULL;
    if (!call || !on_data || !on_close || !out) return COLONY_EINVAL;
    colony_client_tunnel *t = call->tunnel;
    if (!t || t->taken || t->ended || call->state != COLONY__CALL_DONE) return COLONY_EINVAL;
    t->taken = 1;
    t->on_data = on_data;
    t->on_close = on_close;
    t->ud = ud;
    *out = t;
    return 0;
}

static void on_write(uv_write_t *req, int status)
{
    tunnel_write *w = COLONY__CONTAINER_OF(req, tunnel_write, req);
    colony_client_tunnel *t = w->t;
    colony__list_remove(&w->link);
    t->pending -= w->len;
    colony_client_tunnel_write_cb cb = w->cb;
    void *ud = w->ud;
    colony__free(w);
    if (t->ended) return;
    if (status < 0) {
        if (cb) cb(t, status, ud);
        end_tunnel(t, status);
        return;
    }
    if (cb) cb(t, 0, ud);
    maybe_finish(t);
}

static int usable(const colony_client_tunnel *t)
{
    return t && t->taken && !t->ended;
}

int colony_client_tunnel_write(colony_client_tunnel *t, const void *data, size_t len,
                               colony_client_tunnel_write_cb cb, void *ud)
{
    if (!usable(t) || t->close_requested) return COLONY_ESHUTDOWN;
    if (!data && len) return COLONY_EINVAL;
    if (len > UINT32_MAX) return COLONY_E2BIG;
    if (t->pending > TUNNEL_MAX_PENDING) return COLONY_EBUSY;
    tunnel_write *w = colony__malloc(sizeof(*w) + len);
    if (!w) return COLONY_ENOMEM;
    if (len) memcpy(w->data, data, len);
    w->t = t;
    w->cb = cb;
    w->ud = ud;
    w->len = len;
    int rc = colony__client_conn_write(t->conn, &w->req, w->data, len, on_write);
    if (rc) {
        colony__free(w);
        return rc;
    }
    colony__list_push_back(&t->writes, &w->link);
    t->pending += len;
    return 0;
}

size_t colony_client_tunnel_pending(const colony_client_tunnel *t)
{
    return usable(t) ? t->pending : 0;
}

int colony_client_tunnel_pause(colony_client_tunnel *t)
{
    if (!usable(t)) return COLONY_ESHUTDOWN;
    t->read_paused = 1;
    update_reading(t);
    return 0;
}

int colony_client_tunnel_resume(colony_client_tunnel *t)
{
    if (!usable(t)) return COLONY_ESHUTDOWN;
    t->read_paused = 0;
    if (t->deliver_pending) uv_timer_start(&t->conn->timer, on_deliver, 0, 0);
    update_reading(t);
    return 0;
}

void colony_client_tunnel_close(colony_client_tunnel *t)
{
    if (!usable(t) || t->close_requested) return;
    t->close_requested = 1;
    update_reading(t);
    if (!t->ended) maybe_finish(t); /* the peer's EOF waits for writes: no re-entry here */
}

void colony__client_tunnels_close(colony_client *c)
{
    while (!colony__list_empty(&c->tunnels))
        end_tunnel(COLONY__CONTAINER_OF(c->tunnels.next, colony_client_tunnel, link),
                   COLONY_ECANCELED);
}
