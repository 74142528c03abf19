/* Accepting connections: the connection limit across workers, and accepting
 * even when memory runs out so the listener keeps being polled. */
#include <stdio.h>
#include <sys/socket.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "http/server_internal.h"
#include "http/tls.h"

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

#define BUSY_BODY "{\"error\":\"service_unavailable\",\"message\":\"%s\"}"

/* A last answer to a connection that is not taken: one non-blocking write of
 * a 503 JSON (a fresh socket's buffer takes it), then the close. */
static void refuse(colony__conn *c, const char *why)
{
    if (c->tls) { /* no answer is readable before a handshake */
        colony__conn_close(c, 0);
        return;
    }
    char body[160], msg[320];
    int body_len = snprintf(body, sizeof(body), BUSY_BODY, why);
    int len = snprintf(msg, sizeof(msg),
                       "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                       "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                       body_len, body);
    uv_buf_t b = uv_buf_init(msg, (unsigned)len);
    uv_try_write(&c->h.stream, &b, 1);
    /* Unread input would turn the close into a reset that can destroy the
     * answer before the client reads it: take what already arrived. */
    uv_os_fd_t fd;
    if (uv_fileno(&c->h.handle, &fd) == 0)
        for (int i = 0; i < 4 && recv(fd, msg, sizeof(msg), MSG_DONTWAIT) > 0; i++)
            ;
    colony__conn_close(c, 0);
}

int colony__conn_load_peer(colony__conn *c)
{
    if (c->peer_loaded) return 0;
    if (c->is_unix) return COLONY_EINVAL;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    int rc = uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len);
    if (rc) return rc;
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, c->addr, sizeof(c->addr));
        c->peer_port = ntohs(a->sin6_port);
        c->peer_v6 = 1;
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        uv_ip4_name(a, c->addr, sizeof(c->addr));
        c->peer_port = ntohs(a->sin_port);
    }
    c->peer_loaded = 1;
    return 0;
}

/* Counts c against its peer IP. 0, COLONY_EBUSY over the limit, or
 * COLONY_ENOMEM. Unix sockets and an unknown peer are not counted. */
static int count_address(colony__conn *c)
{
    colony_server *srv = c->worker->srv;
    if (c->is_unix || srv->opts.max_connections_per_address == COLONY_SERVER_UNLIMITED) return 0;
    if (colony__conn_load_peer(c) != 0) return 0;
    int rc = 0;
    uv_mutex_lock(&srv->per_address_lock);
    uintptr_t n = (uintptr_t)colony__map_get(&srv->per_address, c->addr);
    if (n >= srv->opts.max_connections_per_address)
        rc = COLONY_EBUSY;
    else
        rc = colony__map_put(&srv->per_address, c->addr, (void *)(n + 1));
    uv_mutex_unlock(&srv->per_address_lock);
    if (rc == 0) c->addr_counted = 1;
    return rc;
}

void colony__conn_release_address(colony__conn *c)
{
    if (!c->addr_counted) return;
    colony_server *srv = c->worker->srv;
    c->addr_counted = 0;
    uv_mutex_lock(&srv->per_address_lock);
    uintptr_t n = (uintptr_t)colony__map_get(&srv->per_address, c->addr);
    if (n > 1)
        colony__map_put(&srv->per_address, c->addr, (void *)(n - 1)); /* replaces: no alloc */
    else
        colony__map_remove(&srv->per_address, c->addr);
    uv_mutex_unlock(&srv->per_address_lock);
}

/* The server is full: closes this worker's longest-idle keep-alive connection
 * and hands its slot to the new one. 0 if one was evicted. */
static int evict_idle(colony__worker *w)
{
    colony__list *node;
    while ((node = colony__list_pop_front(&w->idle))) {
        colony__conn *victim = COLONY__CONTAINER_OF(node, colony__conn, idle_link);
        if (!colony__conn_is_idle(victim)) continue; /* stale entry */
        victim->not_counted = 1;                     /* its slot goes to the new connection */
        colony__stat_inc(&w->stats.evicted);
        colony__conn_close(victim, 0);
        return 0;
    }
    return COLONY_EBUSY;
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
    c->not_counted = 1;
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
    colony__list_init(&c->idle_link);
    colony__list_init(&c->flush_link);
    colony__list_push_back(&w->conns, &c->link);
    w->num_conns++;
    if (uv_accept(server, &c->h.stream) != 0) {
        colony__conn_close(c, 0);
        return;
    }
    if (w->shutdown_started) {
        colony__conn_close(c, 0);
        return;
    }
    int rc = l->tls ? colony__tls_conn_new(c, l->tls) : 0;
    if (rc) {
        colony__conn_close(c, rc);
        return;
    }
    rc = count_address(c);
    if (rc == COLONY_EBUSY) {
        colony__stat_inc(&w->stats.rejected_per_address);
        refuse(c, "too many connections from this address");
        return;
    }
    if (rc) {
        colony__conn_close(c, rc);
        return;
    }
    unsigned before = atomic_fetch_add_explicit(&srv->active, 1, memory_order_relaxed);
    if (before >= srv->opts.max_connections && evict_idle(w) != 0) {
        atomic_fetch_sub_explicit(&srv->active, 1, memory_order_relaxed);
        colony__stat_inc(&w->stats.rejected);
        refuse(c, "too many connections");
        return;
    }
    c->not_counted = 0;
    colony__stat_inc(&w->stats.accepted);
    if (!l->is_unix) uv_tcp_nodelay(&c->h.tcp, 1);
    colony__conn_start(c);
}
