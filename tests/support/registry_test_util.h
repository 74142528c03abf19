/* Helpers for the registry's integration tests: start the real
 * `colony registry` binary on 127.0.0.1 (port 0, temp data dir), and a small
 * blocking HTTP/1.1 client over plain sockets. Header-only (static). */
#ifndef REGISTRY_TEST_UTIL_H
#define REGISTRY_TEST_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include "test_support.h"

typedef struct rt_registry {
    pid_t pid;
    int port;
    char dir[256];
    char log[300];
} rt_registry;

typedef struct rt_resp {
    int status;
    unsigned long long index; /* X-Consul-Index, 0 if absent */
    char body[1 << 16];
    size_t body_len;
} rt_resp;

static inline int rt_read_port(const char *log)
{
    FILE *f = fopen(log, "r");
    if (!f) return 0;
    char line[2048];
    int port = 0;
    while (!port && fgets(line, sizeof(line), f)) {
        if (!strstr(line, "\"msg\":\"listening\"")) continue;
        const char *p = strstr(line, "\"port\":");
        if (p) port = atoi(p + 7);
    }
    fclose(f);
    return port;
}

/* Starts the registry on r->dir (a new temp dir when empty); extra args are
 * NULL-terminated. Waits (bounded) until it listens. */
static inline void rt_start(rt_registry *r, const char *const *extra)
{
    if (!r->dir[0]) {
        snprintf(r->dir, sizeof(r->dir), "/tmp/colony-registry-test-XXXXXX");
        assert_non_null(mkdtemp(r->dir));
    }
    snprintf(r->log, sizeof(r->log), "%s/registry.log", r->dir);
    unlink(r->log);
    char data[300];
    snprintf(data, sizeof(data), "%s/data", r->dir);
    const char *argv[40] = {COLONY_BIN_DIR "/colony",
                            "registry",
                            "--listen",
                            "127.0.0.1:0",
                            "--data-dir",
                            data,
                            "--checks.min-interval=50ms",
                            "--checks.min-deregister=0",
                            "--shutdown_timeout=3s"};
    int n = 9;
    for (size_t i = 0; extra && extra[i] && n < 38; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    r->pid = fork();
    assert_true(r->pid >= 0);
    if (r->pid == 0) {
        int fd = open(r->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        if (chdir(r->dir) != 0) _exit(126);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    r->port = 0;
    for (int i = 0; i < 1000 && !r->port; i++) {
        usleep(10000);
        r->port = rt_read_port(r->log);
        int st;
        if (!r->port && waitpid(r->pid, &st, WNOHANG) == r->pid) {
            char cmd[400];
            snprintf(cmd, sizeof(cmd), "cat %s >&2", r->log);
            if (system(cmd)) {
            }
            fail_msg("registry exited before listening");
        }
    }
    assert_true(r->port > 0);
}

/* The registry of the test that is running: each test binary starts its own
 * (a fresh data dir per test) through the fixtures below or its own setup. */
static rt_registry reg;

/* cmocka fixtures: a registry with default settings for each test. */
static inline int rt_setup(void **state)
{
    (void)state;
    memset(&reg, 0, sizeof(reg));
    rt_start(&reg, NULL);
    return 0;
}

/* Stops the registry with sig (SIGTERM: graceful, SIGKILL: crash) and reaps it. */
static inline int rt_stop(rt_registry *r, int sig)
{
    int st = 0;
    if (r->pid <= 0) return 0;
    kill(r->pid, sig);
    waitpid(r->pid, &st, 0);
    r->pid = 0;
    return st;
}

static inline void rt_cleanup(rt_registry *r)
{
    rt_stop(r, SIGKILL);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
    if (system(cmd)) {
    }
}

static inline int rt_teardown(void **state)
{
    (void)state;
    rt_cleanup(&reg);
    return 0;
}

/* One request on a fresh connection; returns 0 or -1 on a socket error.
 * headers: extra header lines, each ending in \r\n, or NULL. */
static inline int rt_http(int port, const char *method, const char *path, const char *body,
                          size_t body_len, const char *headers, rt_resp *out)
{
    memset(out, 0, sizeof(*out));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    if (body && !body_len) body_len = strlen(body);
    char head[4096];
    int hn = snprintf(head, sizeof(head),
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s"
                      "Content-Length: %zu\r\n\r\n",
                      method, path, headers ? headers : "", body ? body_len : 0);
    if (write(fd, head, (size_t)hn) != hn ||
        (body_len && write(fd, body, body_len) != (ssize_t)body_len)) {
        close(fd);
        return -1;
    }
    static __thread char buf[(1 << 16) + 8192];
    size_t len = 0;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 30000) <= 0) break;
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0) break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    if (sscanf(buf, "HTTP/1.1 %d", &out->status) != 1) return -1;
    const char *idx = strcasestr(buf, "\r\nX-Consul-Index: ");
    if (idx) out->index = strtoull(idx + 18, NULL, 10);
    const char *b = strstr(buf, "\r\n\r\n");
    if (b) {
        b += 4;
        out->body_len = len - (size_t)(b - buf);
        if (out->body_len >= sizeof(out->body)) out->body_len = sizeof(out->body) - 1;
        memcpy(out->body, b, out->body_len);
        out->body[out->body_len] = '\0';
    }
    return 0;
}

static inline int rt_get(int port, const char *path, rt_resp *out)
{
    return rt_http(port, "GET", path, NULL, 0, NULL, out);
}

static inline int rt_put(int port, const char *path, const char *body, rt_resp *out)
{
    return rt_http(port, "PUT", path, body, 0, NULL, out);
}

/* Polls path until its body contains needle (bounded); returns 1 if it did. */
static inline int rt_wait_body(int port, const char *path, const char *needle, int timeout_ms)
{
    rt_resp r;
    uint64_t end = colony_test_now_ms() + (uint64_t)timeout_ms;
    do {
        if (rt_get(port, path, &r) == 0 && strstr(r.body, needle)) return 1;
        usleep(20000);
    } while (colony_test_now_ms() < end);
    return 0;
}

/* A listening socket on 127.0.0.1 (port 0); returns the fd and sets *port. */
static inline int rt_listen(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 64), 0);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    *port = ntohs(sa.sin_port);
    return fd;
}

#endif
