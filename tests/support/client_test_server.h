/* Scriptable blocking test servers for the HTTP client tests: a listener on
 * 127.0.0.1 (or a unix socket) whose connections are each served by a thread
 * running a handler, so a test can misbehave on purpose (stall, close
 * mid-response, answer garbage). Counters let the test see what the server
 * saw. Included by the test_client_*.c files. */
#ifndef CLIENT_TEST_SERVER_H
#define CLIENT_TEST_SERVER_H

#include "test_support.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "colony/colony.h"

#define TS_MAX_CONNS 64

typedef struct ts_server ts_server;
/* Serves one connection; returns when done (the fd is closed afterwards). */
typedef void (*ts_handler)(ts_server *s, int fd);

struct ts_server {
    int listen_fd;
    int port;
    char unix_path[100];
    ts_handler handler;
    void *ud;
    pthread_t accept_thread;
    pthread_mutex_t mu;
    pthread_t threads[TS_MAX_CONNS];
    int fds[TS_MAX_CONNS];
    int accepted, open_now, max_open, closed, requests;
    char last_request[65536];
    size_t last_request_len;
};

struct ts_conn_arg {
    ts_server *s;
    int fd;
};

static inline void *ts_conn_main(void *p)
{
    struct ts_conn_arg *a = p;
    ts_server *s = a->s;
    int fd = a->fd;
    free(a);
    s->handler(s, fd);
    shutdown(fd, SHUT_RDWR);
    pthread_mutex_lock(&s->mu);
    s->open_now--;
    s->closed++;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static inline void *ts_accept_main(void *p)
{
    ts_server *s = p;
    for (;;) {
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR) continue;
            return NULL;
        }
        pthread_mutex_lock(&s->mu);
        if (s->accepted >= TS_MAX_CONNS) {
            pthread_mutex_unlock(&s->mu);
            close(fd);
            continue;
        }
        int i = s->accepted++;
        s->fds[i] = fd;
        s->open_now++;
        if (s->open_now > s->max_open) s->max_open = s->open_now;
        struct ts_conn_arg *a = malloc(sizeof(*a));
        a->s = s;
        a->fd = fd;
        pthread_create(&s->threads[i], NULL, ts_conn_main, a);
        pthread_mutex_unlock(&s->mu);
    }
}

/* Starts a TCP server on 127.0.0.1 (or ::1 if ipv6) with an ephemeral port. */
static inline int ts_start_ex(ts_server *s, ts_handler h, void *ud, int ipv6)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->handler = h;
    s->ud = ud;
    s->listen_fd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    if (ipv6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    }
    if (bind(s->listen_fd, (struct sockaddr *)&ss, len) != 0 || listen(s->listen_fd, 64) != 0) {
        close(s->listen_fd);
        return -1;
    }
    getsockname(s->listen_fd, (struct sockaddr *)&ss, &len);
    s->port = ntohs(ipv6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                         : ((struct sockaddr_in *)&ss)->sin_port);
    pthread_create(&s->accept_thread, NULL, ts_accept_main, s);
    return 0;
}

static inline void ts_start(ts_server *s, ts_handler h, void *ud)
{
    assert_int_equal(ts_start_ex(s, h, ud, 0), 0);
}

static inline void ts_start_unix(ts_server *s, ts_handler h, void *ud)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->handler = h;
    s->ud = ud;
    snprintf(s->unix_path, sizeof(s->unix_path), "/tmp/colony-client-test-%d.sock", (int)getpid());
    unlink(s->unix_path);
    s->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof(a));
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", s->unix_path);
    assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->listen_fd, 64), 0);
    pthread_create(&s->accept_thread, NULL, ts_accept_main, s);
}

/* Stops accepting, unblocks every connection thread and joins them all. */
static inline void ts_stop(ts_server *s)
{
    shutdown(s->listen_fd, SHUT_RDWR);
    pthread_join(s->accept_thread, NULL);
    close(s->listen_fd);
    pthread_mutex_lock(&s->mu);
    int n = s->accepted;
    for (int i = 0; i < n; i++)
        shutdown(s->fds[i], SHUT_RDWR);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < n; i++) {
        pthread_join(s->threads[i], NULL);
        close(s->fds[i]);
    }
    if (s->unix_path[0]) unlink(s->unix_path);
    pthread_mutex_destroy(&s->mu);
}

static inline int ts_get(ts_server *s, const int *field)
{
    pthread_mutex_lock(&s->mu);
    int v = *field;
    pthread_mutex_unlock(&s->mu);
    return v;
}

static inline void ts_url(const ts_server *s, char *out, size_t cap, const char *path)
{
    snprintf(out, cap, "http://127.0.0.1:%d%s", s->port, path);
}

static inline int ts_write(int fd, const char *data)
{
    size_t len = strlen(data), off = 0;
    while (off < len) {
        ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        off += (size_t)n;
    }
    return 0;
}

/* Reads one request (head, then a Content-Length or chunked body) into buf.
 * Returns its length, 0 on a clean EOF before any byte, -1 on error. Records it
 * as the server's last request. */
static inline int ts_read_request(ts_server *s, int fd, char *buf, size_t cap)
{
    size_t len = 0;
    char *end = NULL;
    while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
        if (len + 1 >= cap) return -1;
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return len ? -1 : 0;
        len += (size_t)n;
    }
    size_t head = (size_t)(end - buf) + 4;
    buf[len] = '\0';
    size_t want = head;
    const char *cl = strcasestr(buf, "\r\ncontent-length:");
    int chunked = strcasestr(buf, "\r\ntransfer-encoding: chunked") != NULL;
    if (cl && cl < buf + head) want = head + strtoul(cl + 17, NULL, 10);
    for (;;) {
        buf[len] = '\0';
        if (chunked ? memmem(buf + head, len - head, "0\r\n\r\n", 5) != NULL : len >= want) break;
        if (len + 1 >= cap) return -1;
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        len += (size_t)n;
    }
    pthread_mutex_lock(&s->mu);
    memcpy(s->last_request, buf, len);
    s->last_request[len] = '\0';
    s->last_request_len = len;
    s->requests++;
    pthread_mutex_unlock(&s->mu);
    return (int)len;
}

/* Waits (without the loop) until the peer closes: for handlers that stall. */
static inline void ts_wait_close(int fd)
{
    char b[4096];
    for (;;) {
        ssize_t n = recv(fd, b, sizeof(b), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
    }
}

/* Serves a fixed set of paths on a keep-alive connection:
 *   /hello      200 "hello" with X-Test: yes     /echo      echoes the body
 *   /chunked    chunked "hello world"            /eof       close-delimited body
 *   /nocontent  204                              /continue  100 Continue, then 200 "ok"
 * HEAD gets the /hello head without a body; anything else 404. */
static inline void ts_handle_routes(ts_server *s, int fd)
{
    char *buf = malloc(65536), *out = malloc(70000);
    for (;;) {
        int n = ts_read_request(s, fd, buf, 65536);
        if (n <= 0) break;
        if (strncmp(buf, "GET /hello ", 11) == 0) {
            ts_write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test: yes\r\n\r\nhello");
        } else if (strncmp(buf, "HEAD /", 6) == 0) {
            ts_write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
        } else if (strncmp(buf, "POST /echo ", 11) == 0 || strncmp(buf, "PUT /echo ", 10) == 0) {
            const char *body = strstr(buf, "\r\n\r\n") + 4;
            size_t blen = (size_t)n - (size_t)(body - buf);
            int h = snprintf(out, 70000, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", blen);
            memcpy(out + h, body, blen);
            out[h + (int)blen] = '\0';
            ts_write(fd, out);
        } else if (strncmp(buf, "GET /chunked ", 13) == 0) {
            ts_write(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
        } else if (strncmp(buf, "GET /eof ", 9) == 0) {
            ts_write(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close");
            break;
        } else if (strncmp(buf, "GET /nocontent ", 15) == 0) {
            ts_write(fd, "HTTP/1.1 204 No Content\r\n\r\n");
        } else if (strncmp(buf, "GET /continue ", 14) == 0) {
            ts_write(fd, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
                         "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        } else {
            ts_write(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
    }
    free(buf);
    free(out);
}

/* ---- client-side helpers ---- */

typedef struct result {
    int done, err, status;
    int sent; /* colony_client_call_was_sent at the end */
    char body[65536];
    size_t body_len;
    char header_x[128]; /* value of the X-Test response header, if any */
} result;

static inline void on_done_record(colony_client_call *call, int err,
                                  const colony_client_response *res, void *ud)
{
    result *r = ud;
    r->done++;
    r->err = err;
    r->sent = colony_client_call_was_sent(call);
    if (res) {
        r->status = res->status;
        assert_true(res->body != NULL || res->body_len == 0);
        if (res->body) {
            size_t n = res->body_len < sizeof(r->body) - 1 ? res->body_len : sizeof(r->body) - 1;
            memcpy(r->body, res->body, n);
            r->body[n] = '\0';
            r->body_len = res->body_len;
        }
        for (size_t i = 0; i < res->num_headers; i++) {
            const colony_http_header *h = &res->headers[i];
            if (h->name_len == 6 && strncasecmp(h->name, "X-Test", 6) == 0)
                snprintf(r->header_x, sizeof(r->header_x), "%.*s", (int)h->value_len, h->value);
        }
    }
}

/* Runs the loop until pred(arg) holds or timeout_ms passes. */
static inline int run_until(uv_loop_t *loop, int (*pred)(void *), void *arg, uint64_t timeout_ms)
{
    uint64_t end = colony_test_now_ms() + timeout_ms;
    while (!pred(arg) && colony_test_now_ms() < end)
        colony_test_run_once(loop);
    return pred(arg);
}

static inline int result_done(void *arg)
{
    return ((result *)arg)->done > 0;
}

/* Runs the loop until r is done (10 s cap). */
static inline void wait_result(uv_loop_t *loop, result *r)
{
    assert_true(run_until(loop, result_done, r, 10000));
}

static inline int get(colony_client *c, const char *url, result *r)
{
    colony_client_request req = {.url = url};
    return colony_client_request_send(c, &req, on_done_record, r, NULL);
}

static inline void on_closed_flag(void *ud)
{
    *(int *)ud = 1;
}

/* Closes the client, waits for its callback, then checks the loop is clean. */
static inline void close_client_and_loop(uv_loop_t *loop, colony_client *c)
{
    int closed = 0;
    colony_client_close(c, on_closed_flag, &closed);
    assert_true(colony_test_run_until(loop, &closed, 5000));
    colony_test_loop_close(loop);
}

#endif
