/* The server object: options, listening sockets (one SO_REUSEPORT socket per
 * worker for TCP, one shared socket for Unix paths), worker threads each with
 * its own loop, graceful shutdown and stats. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <netinet/in.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "http/address.h"
#include "http/server_internal.h"
#include "http/sigpipe.h"
#include "http/tls.h"

#define LISTEN_BACKLOG 511

void colony_server_options_init(colony_server_options *o)
{
    colony_http_limits_init(&o->limits);
    if (!o->header_timeout_ms) o->header_timeout_ms = 10000;
    if (!o->body_timeout_ms) o->body_timeout_ms = 30000;
    if (!o->idle_timeout_ms) o->idle_timeout_ms = 60000;
    if (!o->write_timeout_ms) o->write_timeout_ms = 30000;
    if (!o->max_connections) o->max_connections = 10000;
    if (!o->workers) o->workers = 1;
    if (!o->read_buffer_size) o->read_buffer_size = 16384;
    if (!o->max_output_backlog) o->max_output_backlog = 1024 * 1024;
    if (!o->max_connections_per_address) o->max_connections_per_address = 256;
    if (!o->tunnel_idle_timeout_ms) o->tunnel_idle_timeout_ms = 300000;
}

colony_server *colony_server_new(uv_loop_t *loop, const colony_server_options *opts,
                                 colony_handler_cb handler, void *ud)
{
    if (!loop || !handler) return NULL;
    colony__ignore_sigpipe();
    colony_server *srv = colony__calloc(1, sizeof(*srv));
    if (!srv) return NULL;
    if (opts) srv->opts = *opts;
    colony_server_options_init(&srv->opts);
    if (srv->opts.workers > 256) srv->opts.workers = 256;
    if (srv->opts.read_buffer_size < 1024) srv->opts.read_buffer_size = 1024;
    srv->loop = loop;
    srv->handler = handler;
    srv->handler_ud = ud;
    srv->parse_limits = srv->opts.limits;
    srv->parse_limits.max_body = UINT64_MAX; /* checked after the head hook chose */
    atomic_init(&srv->active, 0);
    uv_mutex_init(&srv->per_address_lock);
    atomic_init(&srv->shutting_down, 0);
    atomic_init(&srv->workers_finished, 0);
    if (srv->opts.server_header) {
        srv->server_header = colony__strdup(srv->opts.server_header);
        if (!srv->server_header) goto fail;
        srv->opts.server_header = srv->server_header;
    }
    srv->num_workers = srv->opts.workers;
    srv->workers = colony__calloc(srv->num_workers, sizeof(*srv->workers));
    if (!srv->workers) goto fail;
    for (unsigned i = 0; i < srv->num_workers; i++) {
        colony__worker *w = &srv->workers[i];
        w->srv = srv;
        w->index = i;
        w->loop = i == 0 ? loop : &w->own_loop;
        w->scratch_headers =
            colony__calloc(srv->opts.limits.max_headers, sizeof(*w->scratch_headers));
        if (!w->scratch_headers) goto fail;
        colony__list_init(&w->conns);
        colony__list_init(&w->flush_pending);
        colony__list_init(&w->idle);
        colony__list_init(&w->pool);
        uv_mutex_init(&w->lock);
    }
    return srv;
fail:
    colony_server_free(srv);
    return NULL;
}

void colony_server_set_head_hook(colony_server *srv, colony_head_cb hook, void *ud)
{
    srv->head_hook = hook;
    srv->head_hook_ud = ud;
}

/* ---- addresses and sockets ---- */

typedef struct listen_address {
    struct sockaddr_storage ss;
    socklen_t len;
    const char *unix_path;
} listen_address;

static int parse_address(const char *address, listen_address *out)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(address, "unix:", 5) == 0) {
        const char *path = address + 5;
        if (!*path || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return COLONY_EINVAL;
        out->unix_path = path;
        return 0;
    }
    return colony__address_parse_tcp(address, &out->ss, &out->len);
}

static int tcp_socket(const listen_address *a, int reuseport)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) goto fail;
    if (a->ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0) goto fail;
    if (listen(fd, LISTEN_BACKLOG) < 0) goto fail;
    return fd;
fail:;
    int err = -errno;
    close(fd);
    return err;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return 0;
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Binds a Unix socket, replacing a stale socket file nobody listens on. */
static int unix_socket(const char *path)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, path);
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) return -errno;
        if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
            if (listen(fd, LISTEN_BACKLOG) == 0) return fd;
            int err = -errno;
            close(fd);
            return err;
        }
        int err = -errno;
        close(fd);
        if (err != -EADDRINUSE || attempt) return err;
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISSOCK(st.st_mode)) return err;
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0) return err;
        int live =
            connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0 || errno != ECONNREFUSED;
        close(probe);
        if (live) return err;
        unlink(path);
    }
    return COLONY_EADDRINUSE;
}

/* ---- listeners ---- */

static void listener_closed(uv_handle_t *h)
{
    colony__listener *l = h->data;
    colony__worker *w = l->worker;
    colony__tls_ctx_unref(l->tls);
    colony__free(l);
    w->num_listeners--;
    colony__worker_maybe_done(w);
}

/* Opens a listening fd on the worker's loop (on that loop's thread). Returns 0,
 * or an error after which the listener (and its fd) is being closed. */
static int open_listener(colony__worker *w, colony__listener *l)
{
    int rc;
    l->worker = w;
    if (l->is_unix) {
        uv_pipe_init(w->loop, &l->h.pipe, 0);
        rc = uv_pipe_open(&l->h.pipe, l->fd);
    } else {
        uv_tcp_init(w->loop, &l->h.tcp);
        rc = uv_tcp_open(&l->h.tcp, l->fd);
    }
    if (rc != 0) close(l->fd); /* not adopted by the handle */
    l->h.handle.data = l;
    l->next = w->listeners;
    w->listeners = l;
    w->num_listeners++;
    if (rc == 0) rc = uv_listen(&l->h.stream, LISTEN_BACKLOG, colony__listener_on_connection);
    if (rc != 0) {
        COLONY_LOG_ERROR("server: cannot listen", COLONY_LF_STR("error", uv_strerror(rc)));
        for (colony__listener **pp = &w->listeners; *pp; pp = &(*pp)->next) {
            if (*pp == l) {
                *pp = l->next;
                break;
            }
        }
        if (!uv_is_closing(&l->h.handle)) uv_close(&l->h.handle, listener_closed);
    }
    return rc;
}

static void begin_worker_shutdown(colony__worker *w);

static void worker_async(uv_async_t *a)
{
    colony__worker *w = a->data;
    uv_mutex_lock(&w->lock);
    colony__listener *pending = w->pending;
    w->pending = NULL;
    uv_mutex_unlock(&w->lock);
    int stopping = atomic_load(&w->srv->shutting_down);
    while (pending) {
        colony__listener *l = pending;
        pending = l->next;
        if (stopping) {
            close(l->fd);
            colony__tls_ctx_unref(l->tls);
            colony__free(l);
        } else {
            open_listener(w, l); /* a socket that listens already: failure is logged */
        }
    }
    if (stopping && !w->shutdown_started) begin_worker_shutdown(w);
}

static void worker_main(void *arg)
{
    colony__worker *w = arg;
    uv_run(w->loop, UV_RUN_DEFAULT);
    uv_loop_close(w->loop);
    colony_server *srv = w->srv;
    atomic_fetch_add(&srv->workers_finished, 1);
    uv_async_send(&srv->done_async);
}

static void server_check_done(colony_server *srv);

static void done_async_cb(uv_async_t *a)
{
    server_check_done(a->data);
}

/* Starts worker threads 1..N-1; a thread that cannot start is dropped (the
 * server runs with fewer workers) rather than failing the listen. */
static int start_workers(colony_server *srv)
{
    int rc = uv_async_init(srv->loop, &srv->done_async, done_async_cb);
    if (rc) return rc;
    srv->done_async.data = srv;
    srv->done_async_open = 1;
    uv_unref((uv_handle_t *)&srv->done_async);
    for (unsigned i = 1; i < srv->num_workers; i++) {
        colony__worker *w = &srv->workers[i];
        rc = uv_loop_init(&w->own_loop);
        if (rc == 0) {
            rc = uv_async_init(&w->own_loop, &w->async, worker_async);
            if (rc == 0) {
                w->async.data = w;
                w->async_open = 1;
                rc = uv_thread_create(&w->thread, worker_main, w);
                if (rc) uv_close((uv_handle_t *)&w->async, NULL);
            }
            if (rc) {
                uv_run(&w->own_loop, UV_RUN_NOWAIT);
                uv_loop_close(&w->own_loop);
            }
        }
        if (rc) {
            COLONY_LOG_WARN("server: worker thread not started", COLONY_LF_INT("worker", i),
                            COLONY_LF_STR("error", uv_strerror(rc)));
            for (unsigned j = i; j < srv->num_workers; j++) {
                colony__free(srv->workers[j].scratch_headers);
                srv->workers[j].scratch_headers = NULL;
                uv_mutex_destroy(&srv->workers[j].lock);
            }
            srv->num_workers = i;
            break;
        }
        w->thread_started = 1;
    }
    srv->started = 1;
    return 0;
}

/* Binds one socket per worker (or dups one Unix socket), then opens worker 0's
 * listener here and hands the others to their loops. Every allocation happens
 * before any listener is handed out, and worker 0's listen result is returned:
 * a failed listen leaves no half-open address behind. */
static int listen_on(colony_server *srv, const char *address, colony_tls_ctx *tls)
{
    if (!srv || !address) return COLONY_EINVAL;
    if (atomic_load(&srv->shutting_down)) return COLONY_ESHUTDOWN;
    listen_address a;
    int rc = parse_address(address, &a);
    if (rc) return rc;
    unsigned n = srv->opts.workers; /* before threads may have been dropped */
    if (srv->started) n = srv->num_workers;
    int *fds = colony__calloc(n, sizeof(int));
    colony__listener **ls = colony__calloc(n, sizeof(*ls));
    char *path_copy = NULL;
    int port = 0;
    unsigned made = 0;
    if (!fds || !ls) {
        rc = COLONY_ENOMEM;
        goto fail;
    }
    if (a.unix_path) {
        if (srv->num_unix_paths == sizeof(srv->unix_paths) / sizeof(srv->unix_paths[0])) {
            rc = COLONY_E2BIG;
            goto fail;
        }
        path_copy = colony__strdup(a.unix_path);
        if (!path_copy) {
            rc = COLONY_ENOMEM;
            goto fail;
        }
        rc = unix_socket(a.unix_path);
        if (rc < 0) goto fail;
        fds[made++] = rc;
        for (; made < n; made++) {
            fds[made] = fcntl(fds[0], F_DUPFD_CLOEXEC, 0);
            if (fds[made] < 0) {
                rc = -errno;
                goto fail;
            }
        }
    } else {
        for (; made < n; made++) {
            rc = tcp_socket(&a, n > 1);
            if (rc < 0) goto fail;
            fds[made] = rc;
            if (made == 0) {
                port = bound_port(fds[0]);
                if (a.ss.ss_family == AF_INET6)
                    ((struct sockaddr_in6 *)&a.ss)->sin6_port = htons((uint16_t)port);
                else
                    ((struct sockaddr_in *)&a.ss)->sin_port = htons((uint16_t)port);
            }
        }
    }
    if (!srv->started && (rc = start_workers(srv)) != 0) goto fail;
    for (; made > srv->num_workers; made--)
        close(fds[made - 1]); /* a worker thread could not start */
    for (unsigned i = 0; i < made; i++) {
        ls[i] = colony__calloc(1, sizeof(*ls[i]));
        if (!ls[i]) {
            rc = COLONY_ENOMEM;
            goto fail;
        }
        ls[i]->fd = fds[i];
        ls[i]->is_unix = a.unix_path != NULL;
        ls[i]->tls = tls;
        if (tls) colony__tls_ctx_ref(tls);
    }
    rc = open_listener(&srv->workers[0], ls[0]);
    if (rc) {
        ls[0] = NULL; /* closing with its fd */
        fds[0] = -1;
        goto fail;
    }
    for (unsigned i = 1; i < made; i++) {
        colony__worker *w = &srv->workers[i];
        colony__listener *l = ls[i];
        l->worker = w;
        uv_mutex_lock(&w->lock);
        l->next = w->pending;
        w->pending = l;
        uv_mutex_unlock(&w->lock);
        uv_async_send(&w->async);
    }
    if (path_copy) srv->unix_paths[srv->num_unix_paths++] = path_copy;
    if (!srv->port) srv->port = port;
    colony__free(ls);
    colony__free(fds);
    return 0;
fail:
    for (unsigned i = 0; i < made; i++) {
        if (fds[i] >= 0) close(fds[i]);
        if (ls && ls[i]) colony__tls_ctx_unref(ls[i]->tls);
        if (ls) colony__free(ls[i]);
    }
    if (a.unix_path && made) unlink(a.unix_path);
    colony__free(path_copy);
    colony__free(ls);
    colony__free(fds);
    return rc;
}

int colony_server_listen(colony_server *srv, const char *address)
{
    return listen_on(srv, address, NULL);
}

int colony_server_listen_tls(colony_server *srv, const char *address, colony_tls_ctx *tls)
{
    if (!tls || colony_tls_ctx_count(tls) == 0) return COLONY_EINVAL;
    return listen_on(srv, address, tls);
}

int colony_server_port(const colony_server *srv)
{
    return srv->port;
}

/* ---- shutdown ---- */

static void on_deadline(uv_timer_t *t)
{
    colony__worker *w = t->data;
    colony__list *node, *tmp;
    COLONY__LIST_FOREACH_SAFE(node, tmp, &w->conns)
    colony__conn_close(COLONY__CONTAINER_OF(node, colony__conn, link), COLONY_ESHUTDOWN);
}

static void begin_worker_shutdown(colony__worker *w)
{
    w->shutdown_started = 1;
    if (w->async_open) {
        uv_close((uv_handle_t *)&w->async, NULL);
        w->async_open = 0;
    }
    for (colony__listener *l = w->listeners; l; l = l->next)
        if (!uv_is_closing(&l->h.handle)) uv_close(&l->h.handle, listener_closed);
    w->listeners = NULL;
    colony__list *node, *tmp;
    COLONY__LIST_FOREACH_SAFE(node, tmp, &w->conns)
    colony__conn_shutdown(COLONY__CONTAINER_OF(node, colony__conn, link));
    uv_timer_init(w->loop, &w->deadline);
    w->deadline.data = w;
    w->deadline_open = 1;
    uv_timer_start(&w->deadline, on_deadline, w->srv->deadline_ms, 0);
    colony__worker_maybe_done(w);
}

static void worker0_deadline_closed(uv_handle_t *h)
{
    colony__worker *w = h->data;
    atomic_fetch_add(&w->srv->workers_finished, 1);
    server_check_done(w->srv);
}

void colony__worker_maybe_done(colony__worker *w)
{
    if (!w->shutdown_started || w->done || w->num_listeners || w->num_conns || w->orphans) return;
    w->done = 1;
    w->deadline_open = 0;
    if (w->flush_idle_open) {
        uv_close((uv_handle_t *)&w->flush_idle, NULL);
        w->flush_idle_open = 0;
    }
    uv_close((uv_handle_t *)&w->deadline, w->index == 0 ? worker0_deadline_closed : NULL);
}

static void done_async_closed(uv_handle_t *h)
{
    colony_server *srv = h->data;
    srv->done_async_open = 0;
    srv->closed = 1;
    for (unsigned i = 0; i < srv->num_unix_paths; i++)
        unlink(srv->unix_paths[i]);
    if (srv->closed_cb) srv->closed_cb(srv, srv->closed_ud);
}

static void server_check_done(colony_server *srv)
{
    if (srv->closed || !srv->done_async_open || uv_is_closing((uv_handle_t *)&srv->done_async))
        return;
    if (!atomic_load(&srv->shutting_down)) return;
    if (atomic_load(&srv->workers_finished) < srv->num_workers) return;
    for (unsigned i = 1; i < srv->num_workers; i++) {
        if (srv->workers[i].thread_started) {
            uv_thread_join(&srv->workers[i].thread);
            srv->workers[i].thread_started = 0;
        }
    }
    uv_close((uv_handle_t *)&srv->done_async, done_async_closed);
}

void colony_server_shutdown(colony_server *srv, uint64_t deadline_ms, colony_server_closed_cb cb,
                            void *ud)
{
    if (atomic_exchange(&srv->shutting_down, 1)) return;
    srv->closed_cb = cb;
    srv->closed_ud = ud;
    srv->deadline_ms = deadline_ms;
    if (!srv->started) {
        if (uv_async_init(srv->loop, &srv->done_async, done_async_cb) != 0) return;
        srv->done_async.data = srv;
        srv->done_async_open = 1;
        atomic_store(&srv->workers_finished, srv->num_workers);
        uv_async_send(&srv->done_async);
        return;
    }
    uv_ref((uv_handle_t *)&srv->done_async);
    for (unsigned i = 1; i < srv->num_workers; i++)
        uv_async_send(&srv->workers[i].async);
    begin_worker_shutdown(&srv->workers[0]);
}

int colony_server_is_shutting_down(const colony_server *srv)
{
    return atomic_load_explicit(&((colony_server *)srv)->shutting_down, memory_order_relaxed);
}

void colony_server_free(colony_server *srv)
{
    if (!srv) return;
    if ((srv->started || srv->done_async_open) && !srv->closed) {
        COLONY_LOG_ERROR("server: colony_server_free before shutdown completed; leaking it");
        return;
    }
    if (srv->workers) {
        for (unsigned i = 0; i < srv->num_workers; i++) {
            colony__worker *w = &srv->workers[i];
            colony__worker_free_pool(w);
            if (w->scratch_headers) {
                colony__free(w->scratch_headers);
                uv_mutex_destroy(&w->lock);
            }
        }
        colony__free(srv->workers);
    }
    for (unsigned i = 0; i < srv->num_unix_paths; i++)
        colony__free(srv->unix_paths[i]);
    colony__map_free(&srv->per_address);
    uv_mutex_destroy(&srv->per_address_lock);
    colony__free(srv->server_header);
    colony__free(srv);
}

void colony_server_get_stats(const colony_server *srv, colony_server_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < srv->num_workers; i++) {
        colony__worker_stats *s = &srv->workers[i].stats;
        out->connections_accepted += atomic_load_explicit(&s->accepted, memory_order_relaxed);
        out->connections_rejected += atomic_load_explicit(&s->rejected, memory_order_relaxed);
        out->connections_evicted += atomic_load_explicit(&s->evicted, memory_order_relaxed);
        out->connections_rejected_per_address +=
            atomic_load_explicit(&s->rejected_per_address, memory_order_relaxed);
        out->requests += atomic_load_explicit(&s->requests, memory_order_relaxed);
        out->protocol_errors += atomic_load_explicit(&s->protocol_errors, memory_order_relaxed);
        out->output_bytes_buffered += atomic_load_explicit(&s->out_buffered, memory_order_relaxed);
        out->connections_paused += atomic_load_explicit(&s->paused, memory_order_relaxed);
    }
    out->active_connections =
        atomic_load_explicit(&((colony_server *)srv)->active, memory_order_relaxed);
}
