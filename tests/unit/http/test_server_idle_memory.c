/* An idle keep-alive connection holds no read or output buffer: after its
 * response, the server frees the connection's 16 KiB read buffer and its
 * output buffers' room (as nginx frees a keep-alive connection's header
 * buffer), and takes new ones when the next request comes. Measured as the
 * bytes allocated around 200 idle connections that each had one answer,
 * synchronous or from a timer; a second request on each then still works.
 * Traffic: 127.0.0.1 only. */
#include <malloc.h>
#include "server_test_util.h"

#define CONNS 200

static uv_loop_t loop;
static uv_async_t measure;
static atomic_int measured;
static size_t in_use_idle; /* bytes allocated with CONNS idle connections */

/* The sanitizers' allocators (the tests link LeakSanitizer, or ASan) do not
 * report through glibc's mallinfo2: there, hooks on every malloc and free
 * count the live bytes. */
extern int __sanitizer_install_malloc_and_free_hooks(void (*m)(const volatile void *, size_t),
                                                     void (*f)(const volatile void *))
    __attribute__((weak));
extern size_t __sanitizer_get_allocated_size(const volatile void *p) __attribute__((weak));
static atomic_llong hooked_bytes;
static int hooked;

static void on_malloc(const volatile void *p, size_t n)
{
    (void)p;
    atomic_fetch_add(&hooked_bytes, (long long)n);
}

static void on_free(const volatile void *p)
{
    if (p) atomic_fetch_sub(&hooked_bytes, (long long)__sanitizer_get_allocated_size(p));
}

static size_t bytes_in_use(void)
{
    if (!hooked && __sanitizer_install_malloc_and_free_hooks && __sanitizer_get_allocated_size)
        hooked = __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free) != 0;
    if (hooked) return (size_t)atomic_load(&hooked_bytes) + ((size_t)1 << 40); /* no wrap */
    return mallinfo2().uordblks;
}

static void free_timer(uv_handle_t *h)
{
    free(h);
}

static void on_later(uv_timer_t *t)
{
    colony_request *req = t->data;
    colony_respond(req, 200, "text/plain", "later", 5);
    uv_close((uv_handle_t *)t, free_timer);
}

/* "/later" answers from a timer, as a proxy answers after its upstream. */
static void handler(colony_request *req, void *ud)
{
    (void)ud;
    if (strcmp(colony_request_path(req), "/later") == 0) {
        uv_timer_t *t = malloc(sizeof(*t));
        uv_timer_init(&loop, t);
        t->data = req;
        uv_timer_start(t, on_later, 1, 0);
        return;
    }
    colony_respond(req, 200, "text/plain", "now", 3);
}

static void on_measure(uv_async_t *a)
{
    (void)a;
    in_use_idle = bytes_in_use();
    atomic_store(&measured, 1);
}

/* One request on fd and its whole (small) response: 1 if it was a 200. */
static int ask(int fd, const char *path)
{
    char req[128], buf[1024];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) return 0;
    size_t got = 0;
    while (got < sizeof(buf) - 1) {
        ssize_t r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (r <= 0) return 0;
        got += (size_t)r;
        buf[got] = '\0';
        const char *end = strstr(buf, "\r\n\r\n");
        const char *len = strstr(buf, "Content-Length: ");
        if (end && len && got >= (size_t)(end + 4 - buf) + (size_t)atoi(len + 16)) break;
    }
    return strncmp(buf, "HTTP/1.1 200", 12) == 0;
}

static void idle_client(tclient *t)
{
    int fds[CONNS];
    for (int i = 0; i < CONNS; i++) {
        fds[i] = tc_open_fd(t->port);
        TCHECK(t, fds[i] >= 0);
        if (fds[i] < 0) return;
        TCHECK(t, ask(fds[i], i % 2 ? "/later" : "/now"));
    }
    uv_async_send(&measure);
    for (int i = 0; i < 5000 && !atomic_load(&measured); i++)
        usleep(1000);
    TCHECK(t, atomic_load(&measured));
    for (int i = 0; i < CONNS; i++) { /* the buffers come back for a next request */
        TCHECK(t, ask(fds[i], i % 2 ? "/now" : "/later"));
        close(fds[i]);
    }
}

static void idle_connections_hold_no_buffers(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    int port;
    colony_server_options o = {0};
    colony_server_options_init(&o);
    colony_server *srv = start_server(&loop, &o, handler, NULL, &port);
    uv_async_init(&loop, &measure, on_measure);
    size_t before = bytes_in_use();
    tclient t = {.port = port, .fn = idle_client};
    run_client(&loop, &t, 30000);
    assert_true(atomic_load(&measured));
    /* the connection itself (~1.2 KB: its state, libuv handles, a timer)
     * and the server's tables; a kept read buffer alone would be 16 KiB */
    size_t per_conn = in_use_idle > before ? (in_use_idle - before) / CONNS : 0;
    print_message("allocated per idle connection: %zu bytes (%zu -> %zu)\n", per_conn, before,
                  in_use_idle);
    assert_true(per_conn < 4096);
    uv_close((uv_handle_t *)&measure, NULL);
    stop_server(&loop, srv, 1000);
    colony_test_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idle_connections_hold_no_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
