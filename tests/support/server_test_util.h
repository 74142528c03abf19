/* Helpers for the HTTP server integration tests: the server runs on the test's
 * loop; the client side is plain blocking sockets in a helper thread, which
 * wakes the loop through a uv_async when it is done. */
#ifndef COLONY_SERVER_TEST_UTIL_H
#define COLONY_SERVER_TEST_UTIL_H

#include "test_support.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "colony/colony.h"

#define TC_TIMEOUT_MS 5000

/* ---- blocking client ---- */

typedef struct tconn {
    int fd;
    char buf[1 << 16];
    size_t len; /* unconsumed bytes in buf */
} tconn;

typedef struct tresp {
    int status;
    char head[8192];
    char body[1 << 16];
    size_t body_len;
    int chunked;
    int has_length;
} tresp;

static inline void tc_set_timeout(int fd, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static inline int tc_open_fd(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        close(fd);
        return -1;
    }
    tc_set_timeout(fd, TC_TIMEOUT_MS);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static inline tconn *tc_connect(int port)
{
    int fd = tc_open_fd(port);
    if (fd < 0) return NULL;
    tconn *c = calloc(1, sizeof(*c));
    c->fd = fd;
    return c;
}

static inline tconn *tc_wrap(int fd)
{
    tc_set_timeout(fd, TC_TIMEOUT_MS);
    tconn *c = calloc(1, sizeof(*c));
    c->fd = fd;
    return c;
}

static inline void tc_close(tconn *c)
{
    if (!c) return;
    close(c->fd);
    free(c);
}

static inline int tc_send(tconn *c, const char *s)
{
    size_t len = strlen(s), off = 0;
    while (off < len) {
        ssize_t n = send(c->fd, s + off, len - off, MSG_NOSIGNAL);
        if (n <= 0) return -1;
        off += (size_t)n;
    }
    return 0;
}

/* Reads more bytes into the buffer; 0 on EOF, -1 on error or timeout. */
static inline ssize_t tc_fill(tconn *c)
{
    if (c->len == sizeof(c->buf)) return -1;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    if (n > 0) c->len += (size_t)n;
    return n;
}

static inline void tc_consume(tconn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

static inline const char *tc_find_header(const char *head, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p && p[2] != '\r'; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') {
            const char *v = p + 3 + nl;
            while (*v == ' ')
                v++;
            return v;
        }
    }
    return NULL;
}

/* Reads one response (skipping nothing: a 100 Continue is returned as is).
 * head_only: the request was HEAD. Returns 0, or -1 on EOF/timeout/garbage. */
static inline int tc_read_response(tconn *c, tresp *r, int head_only)
{
    memset(r, 0, sizeof(*r));
    char *end;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (tc_fill(c) <= 0) return -1;
    size_t head_len = (size_t)(end - c->buf) + 4;
    if (head_len >= sizeof(r->head)) return -1;
    memcpy(r->head, c->buf, head_len);
    r->head[head_len] = '\0';
    tc_consume(c, head_len);
    if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1) return -1;
    if (head_only || r->status < 200 || r->status == 204 || r->status == 304) return 0;
    const char *cl = tc_find_header(r->head, "Content-Length");
    const char *te = tc_find_header(r->head, "Transfer-Encoding");
    if (cl) {
        r->has_length = 1;
        size_t want = strtoul(cl, NULL, 10);
        if (want >= sizeof(r->body)) return -1;
        while (c->len < want)
            if (tc_fill(c) <= 0) return -1;
        memcpy(r->body, c->buf, want);
        r->body_len = want;
        tc_consume(c, want);
    } else if (te && strncasecmp(te, "chunked", 7) == 0) {
        r->chunked = 1;
        for (;;) {
            char *eol;
            while (!(eol = memmem(c->buf, c->len, "\r\n", 2)))
                if (tc_fill(c) <= 0) return -1;
            size_t size = strtoul(c->buf, NULL, 16);
            tc_consume(c, (size_t)(eol - c->buf) + 2);
            if (size == 0) {
                while (!(eol = memmem(c->buf, c->len, "\r\n", 2)))
                    if (tc_fill(c) <= 0) return -1;
                tc_consume(c, (size_t)(eol - c->buf) + 2); /* no trailers from our server */
                break;
            }
            while (c->len < size + 2)
                if (tc_fill(c) <= 0) return -1;
            if (r->body_len + size >= sizeof(r->body)) return -1;
            memcpy(r->body + r->body_len, c->buf, size);
            r->body_len += size;
            tc_consume(c, size + 2);
        }
    } else {
        for (;;) { /* until close */
            ssize_t n = tc_fill(c);
            if (n < 0) return -1;
            if (n == 0) break;
        }
        if (c->len >= sizeof(r->body)) return -1;
        memcpy(r->body, c->buf, c->len);
        r->body_len = c->len;
        c->len = 0;
    }
    r->body[r->body_len] = '\0';
    return 0;
}

/* 1 if the server closed the connection (EOF or reset) within the timeout. */
static inline int tc_wait_closed(tconn *c)
{
    for (;;) {
        char tmp[4096];
        ssize_t n = recv(c->fd, tmp, sizeof(tmp), 0);
        if (n == 0) return 1;
        if (n < 0) return errno == ECONNRESET || errno == EPIPE;
    }
}

/* ---- running a client thread against the loop ---- */

typedef struct tclient tclient;
typedef void (*tclient_fn)(tclient *t);

struct tclient {
    int port;
    const char *unix_path;
    tclient_fn fn;
    void *arg;
    atomic_int done;
    atomic_int failures;
    char failure[256];
    uv_async_t wake;
};

#define TCHECK(t, cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (atomic_fetch_add(&(t)->failures, 1) == 0)                                          \
                snprintf((t)->failure, sizeof((t)->failure), "%s:%d: %s", __FILE__, __LINE__,      \
                         #cond);                                                                   \
        }                                                                                          \
    } while (0)

static inline void tclient_main(void *arg)
{
    tclient *t = arg;
    t->fn(t);
    atomic_store(&t->done, 1);
    uv_async_send(&t->wake);
}

static inline void tclient_wake(uv_async_t *a)
{
    (void)a;
}

/* Runs fn in a thread while the loop runs; fails the test on a TCHECK failure
 * or if the client does not finish within timeout_ms. */
static inline void run_client(uv_loop_t *loop, tclient *t, uint64_t timeout_ms)
{
    atomic_init(&t->done, 0);
    atomic_init(&t->failures, 0);
    uv_async_init(loop, &t->wake, tclient_wake);
    uv_thread_t th;
    assert_int_equal(uv_thread_create(&th, tclient_main, t), 0);
    uint64_t end = colony_test_now_ms() + timeout_ms;
    while (!atomic_load(&t->done) && colony_test_now_ms() < end)
        colony_test_run_once(loop);
    int finished = atomic_load(&t->done);
    if (finished) uv_thread_join(&th);
    uv_close((uv_handle_t *)&t->wake, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    if (atomic_load(&t->failures)) fail_msg("client check failed: %s", t->failure);
    assert_true(finished);
}

/* ---- server lifecycle ---- */

static inline void on_server_closed(colony_server *srv, void *ud)
{
    (void)srv;
    *(int *)ud = 1;
}

/* Graceful shutdown, waits for the closed callback, frees the server. */
static inline void stop_server(uv_loop_t *loop, colony_server *srv, uint64_t deadline_ms)
{
    static int closed;
    closed = 0;
    colony_server_shutdown(srv, deadline_ms, on_server_closed, &closed);
    assert_true(colony_test_run_until(loop, &closed, 10000));
    colony_server_free(srv);
}

static inline colony_server *start_server(uv_loop_t *loop, colony_server_options *opts,
                                          colony_handler_cb handler, void *ud, int *port)
{
    colony_server *srv = colony_server_new(loop, opts, handler, ud);
    assert_non_null(srv);
    assert_int_equal(colony_server_listen(srv, "127.0.0.1:0"), 0);
    *port = colony_server_port(srv);
    assert_true(*port > 0);
    return srv;
}

#endif
