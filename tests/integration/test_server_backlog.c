/* HTTP server: a client that pipelines thousands of requests and never reads
 * holds a bounded amount of server memory. Over max_output_backlog (or with
 * too many answered requests awaiting their write) the connection stops
 * reading; the stats show the buffered bytes and the paused connection;
 * other clients are served meanwhile; all of it is given back on close. */
#include "server_test_util.h"
#include "http/server_internal.h"

#define BACKLOG                  (64 * 1024)
#define RESP_SIZE                2048
#define DIRECT_BODY_MIN_FOR_TEST (64 * 1024)

static uv_loop_t loop;
static colony_server *srv;
static atomic_int handled, finished;
static char resp_body[RESP_SIZE];

static void on_finish(colony_request *req, int status, void *ud)
{
    (void)req;
    (void)status;
    (void)ud;
    atomic_fetch_add(&finished, 1);
}

static void handler(colony_request *req, void *ud)
{
    (void)ud;
    atomic_fetch_add(&handled, 1);
    colony_request_on_finish(req, on_finish, NULL);
    colony_respond(req, 200, "text/plain", resp_body, sizeof(resp_body));
}

/* Sends as much of a long pipeline as the connection takes within ms. */
static size_t flood(int fd, int ms)
{
    static const char one[] = "GET /p HTTP/1.1\r\nHost: x\r\n\r\n";
    char burst[sizeof(one) * 64];
    for (int i = 0; i < 64; i++)
        memcpy(burst + i * (sizeof(one) - 1), one, sizeof(one) - 1);
    size_t burst_len = 64 * (sizeof(one) - 1), sent = 0;
    uint64_t end = colony_test_now_ms() + (uint64_t)ms;
    while (colony_test_now_ms() < end) {
        ssize_t n = send(fd, burst, burst_len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0)
            sent += (size_t)n;
        else
            usleep(5000);
    }
    return sent;
}

static void client_flood(tclient *t)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)t->port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    TCHECK(t, connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    size_t sent = flood(fd, 800);
    TCHECK(t, sent > 200 * 1024); /* thousands of requests */

    /* Another client is served while the flood is held back. */
    tconn *other = tc_connect(t->port);
    TCHECK(t, other != NULL);
    if (other) {
        tresp r;
        TCHECK(t, tc_send(other, "GET /q HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
        TCHECK(t, tc_read_response(other, &r, 0) == 0 && r.status == 200);
        tc_close(other);
    }

    colony_server_stats st;
    colony_server_get_stats(srv, &st);
    int held = atomic_load(&handled) - atomic_load(&finished);
    if (held > 20 || st.output_bytes_buffered > BACKLOG + 2 * RESP_SIZE)
        fprintf(stderr, "held %d requests, %llu bytes buffered (handled %d)\n", held,
                (unsigned long long)st.output_bytes_buffered, atomic_load(&handled));
    TCHECK(t, held <= 17); /* AWAITING_MAX and the one being answered */
    TCHECK(t, st.output_bytes_buffered > 0);
    TCHECK(t, st.output_bytes_buffered <= BACKLOG + 2 * RESP_SIZE);
    TCHECK(t, st.connections_paused == 1);

    close(fd);
    uint64_t end = colony_test_now_ms() + 3000;
    do {
        usleep(10000);
        colony_server_get_stats(srv, &st);
    } while ((st.output_bytes_buffered || st.connections_paused || st.active_connections) &&
             colony_test_now_ms() < end);
    TCHECK(t, st.output_bytes_buffered == 0);
    TCHECK(t, st.connections_paused == 0);
    TCHECK(t, st.active_connections == 0);
}

static void non_reading_pipeliner_is_bounded(void **state)
{
    (void)state;
    memset(resp_body, 'r', sizeof(resp_body));
    assert_int_equal(uv_loop_init(&loop), 0);
    colony_server_options opts = {0};
    opts.max_output_backlog = BACKLOG;
    int port;
    srv = start_server(&loop, &opts, handler, NULL, &port);
    tclient t = {.port = port, .fn = client_flood};
    run_client(&loop, &t, 20000);
    assert_int_equal(atomic_load(&handled), atomic_load(&finished));
    stop_server(&loop, srv, 1000);
    colony_test_loop_close(&loop);
}

/* A streaming handler that ignores write callbacks is refused over the
 * backlog instead of growing the buffer. */
static int busy_seen;

static void streaming_handler(colony_request *req, void *ud)
{
    (void)ud;
    assert_int_equal(colony_response_start(req, 200), 0);
    int rc = 0;
    for (int i = 0; i < 4096 && rc == 0; i++)
        rc = colony_response_write(req, resp_body, sizeof(resp_body), NULL, NULL);
    busy_seen = rc == COLONY_EBUSY;
    colony_response_end(req);
}

static void client_slow_stream(tclient *t)
{
    tconn *c = tc_connect(t->port);
    TCHECK(t, c != NULL);
    if (!c) return;
    TCHECK(t, tc_send(c, "GET /s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == 0);
    TCHECK(t, tc_wait_closed(c)); /* reads (and drops) everything until the close */
    tc_close(c);
}

static void streaming_write_over_backlog_is_busy(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    colony_server_options opts = {0};
    opts.max_output_backlog = BACKLOG;
    int port;
    srv = start_server(&loop, &opts, streaming_handler, NULL, &port);
    tclient t = {.port = port, .fn = client_slow_stream};
    run_client(&loop, &t, 20000);
    assert_true(busy_seen);
    stop_server(&loop, srv, 1000);
    colony_test_loop_close(&loop);
}

/* colony_respond_buf: an 8 MiB body the kernel cannot take at once is held
 * by the connection (not copied into its output buffer), sent whole, and the
 * caller's buffer is left empty. */
#define OWNED_SIZE (8u << 20)
static int owned_held, owned_left_empty, owned_rc;
static atomic_int owned_answered;

static void owned_handler(colony_request *req, void *ud)
{
    (void)ud;
    colony_buf body;
    colony_buf_init(&body, OWNED_SIZE);
    assert_int_equal(colony_buf_reserve(&body, OWNED_SIZE), 0);
    for (size_t i = 0; i < OWNED_SIZE; i++)
        body.data[i] = (char)('a' + i % 26);
    body.len = OWNED_SIZE;
    colony__conn *c = req->conn;
    owned_rc = colony_respond_buf(req, 200, "application/octet-stream", &body);
    owned_left_empty = body.data == NULL && body.len == 0;
    owned_held = c->held.len == OWNED_SIZE && c->held_off < OWNED_SIZE &&
                 c->out.len < DIRECT_BODY_MIN_FOR_TEST;
    atomic_store(&owned_answered, 1);
}

static void client_owned(tclient *t)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)t->port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    TCHECK(t, connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    tconn *c = tc_wrap(fd);
    TCHECK(t, tc_send(c, "GET /owned HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    /* Not a byte read until the handler answered: the kernel cannot take it all. */
    for (int i = 0; i < 500 && !atomic_load(&owned_answered); i++)
        usleep(10000);
    char *end;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (tc_fill(c) <= 0) break;
    TCHECK(t, end != NULL);
    if (!end) goto out;
    TCHECK(t, strstr(c->buf, "Content-Length: 8388608\r\n") != NULL);
    tc_consume(c, (size_t)(end - c->buf) + 4);
    size_t got = 0, bad = 0;
    while (got < OWNED_SIZE) {
        if (c->len == 0 && tc_fill(c) <= 0) break;
        for (size_t i = 0; i < c->len; i++)
            bad += c->buf[i] != (char)('a' + (got + i) % 26);
        got += c->len;
        c->len = 0;
    }
    TCHECK(t, got == OWNED_SIZE);
    TCHECK(t, bad == 0);
out:
    tc_close(c);
}

static void owned_body_is_sent_without_copy(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    int port;
    srv = start_server(&loop, NULL, owned_handler, NULL, &port);
    tclient t = {.port = port, .fn = client_owned};
    run_client(&loop, &t, 20000);
    assert_int_equal(owned_rc, 0);
    assert_true(owned_left_empty);
    assert_true(owned_held);
    stop_server(&loop, srv, 1000);
    colony_test_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(non_reading_pipeliner_is_bounded),
        cmocka_unit_test(streaming_write_over_backlog_is_busy),
        cmocka_unit_test(owned_body_is_sent_without_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
