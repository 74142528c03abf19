/* HTTP client failures: refused and timed-out connects, read and total
 * timeouts (per call, and a total that ends at the response head), a server
 * closing mid-response, malformed and oversized
 * responses, invalid requests, and allocation failures. */
#include <fcntl.h>
#include "client_test_server.h"
#include "core/alloc.h"

static void stall(ts_server *s, int fd)
{
    char *buf = malloc(65536);
    if (ts_read_request(s, fd, buf, 65536) > 0) ts_wait_close(fd);
    free(buf);
}

/* Sends s->ud as the whole answer, then closes. */
static void answer_and_close(ts_server *s, int fd)
{
    char *buf = malloc(65536);
    if (ts_read_request(s, fd, buf, 65536) > 0) ts_write(fd, s->ud);
    free(buf);
}

/* Sends s->ud, then stays silent until the client gives up. */
static void answer_and_stall(ts_server *s, int fd)
{
    char *buf = malloc(65536);
    if (ts_read_request(s, fd, buf, 65536) > 0 && ts_write(fd, s->ud) == 0) ts_wait_close(fd);
    free(buf);
}

/* Drips one header byte every 40 ms: never silent long, never done. */
static void drip(ts_server *s, int fd)
{
    char *buf = malloc(65536);
    if (ts_read_request(s, fd, buf, 65536) > 0) {
        const char *head = "HTTP/1.1 200 OK\r\nX-Slow: ";
        for (size_t i = 0; i < strlen(head); i++) {
            char b[2] = {head[i], 0};
            if (ts_write(fd, b)) break;
            usleep(40000);
        }
        for (int i = 0; i < 200 && ts_write(fd, "a") == 0; i++)
            usleep(40000);
    }
    free(buf);
}

static colony_client *client_with(uv_loop_t *loop, uint64_t connect_ms, uint64_t read_ms,
                                  uint64_t total_ms, size_t max_body)
{
    colony_client_options o;
    colony_client_options_init(&o);
    if (connect_ms) o.connect_timeout_ms = connect_ms;
    if (read_ms) o.read_timeout_ms = read_ms;
    if (total_ms) o.total_timeout_ms = total_ms;
    if (max_body) o.max_response_body = max_body;
    uv_loop_init(loop);
    colony_client *c = colony_client_new(loop, &o);
    assert_non_null(c);
    return c;
}

static void connect_refused(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd); /* nothing listens there now */
    uv_loop_t loop;
    colony_client *c = client_with(&loop, 0, 0, 0, 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(a.sin_port));
    result r = {0};
    assert_int_equal(get(c, url, &r), 0);
    wait_result(&loop, &r);
    assert_int_equal(r.err, COLONY_ECONNREFUSED);
    assert_int_equal(r.sent, 0);
    colony_client_pool_stats st;
    assert_int_equal(colony_client_get_pool_stats(c, url, &st), 0);
    assert_int_equal(st.busy + st.idle, 0);
    close_client_and_loop(&loop, c);
}

/* A listener that never accepts, its backlog filled: further SYNs are dropped
 * and a connect hangs, all on loopback. The timeout comes from the client's
 * options or, overriding them, from the request (per_request). */
static void check_connect_timeout(int per_request)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 0), 0);
    socklen_t len = sizeof(a);
    getsockname(lfd, (struct sockaddr *)&a, &len);
    int fillers[8];
    for (int i = 0; i < 8; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fillers[i], (struct sockaddr *)&a, sizeof(a));
    }
    usleep(50000);
    uv_loop_t loop;
    colony_client *c = client_with(&loop, per_request ? 30000 : 200, 30000, 30000, 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(a.sin_port));
    result r = {0};
    uint64_t t0 = colony_test_now_ms();
    colony_client_request req = {.url = url, .connect_timeout_ms = per_request ? 200 : 0};
    assert_int_equal(colony_client_request_send(c, &req, on_done_record, &r, NULL), 0);
    wait_result(&loop, &r);
    assert_int_equal(r.err, COLONY_ETIMEDOUT);
    assert_true(colony_test_now_ms() - t0 < 5000); /* the connect timeout, not the others */
    assert_int_equal(r.sent, 0); /* never sent: safe to retry whatever the method */
    close_client_and_loop(&loop, c);
    for (int i = 0; i < 8; i++)
        close(fillers[i]);
    close(lfd);
}

static void connect_timeout(void **state)
{
    (void)state;
    check_connect_timeout(0);
}

static void connect_timeout_per_request(void **state)
{
    (void)state;
    check_connect_timeout(1);
}

static int server_saw_close(void *arg)
{
    ts_server *s = arg;
    return ts_get(s, &s->closed) > 0;
}

static void read_timeout(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, stall, NULL);
    uv_loop_t loop;
    colony_client *c = client_with(&loop, 0, 200, 30000, 0);
    char url[128];
    ts_url(&s, url, sizeof(url), "/x");
    result r = {0};
    uint64_t t0 = colony_test_now_ms();
    assert_int_equal(get(c, url, &r), 0);
    wait_result(&loop, &r);
    assert_int_equal(r.err, COLONY_ETIMEDOUT);
    assert_int_equal(r.sent, 1); /* the request went out: a read timeout */
    assert_true(colony_test_now_ms() - t0 >= 150);
    assert_true(run_until(&loop, server_saw_close, &s, 5000)); /* conn closed, not pooled */
    close_client_and_loop(&loop, c);
    ts_stop(&s);

    /* silence in the middle of a body counts too */
    ts_start(&s, answer_and_stall, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    c = client_with(&loop, 0, 200, 30000, 0);
    ts_url(&s, url, sizeof(url), "/x");
    memset(&r, 0, sizeof(r));
    assert_int_equal(get(c, url, &r), 0);
    wait_result(&loop, &r);
    assert_int_equal(r.err, COLONY_ETIMEDOUT);
    close_client_and_loop(&loop, c);
    ts_stop(&s);
}

static void total_timeout(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, drip, NULL);
    uv_loop_t loop;
    colony_client *c = client_with(&loop, 0, 2000, 0, 0);
    char url[128];
    ts_url(&s, url, sizeof(url), "/x");
    result r = {0};
    colony_client_request req = {.url = url, .timeout_ms = 300};
    uint64_t t0 = colony_test_now_ms();
    assert_int_equal(colony_client_request_send(c, &req, on_done_record, &r, NULL), 0);
    wait_result(&loop, &r);
    assert_int_equal(r.err, COLONY_ETIMEDOUT);
    assert_true(colony_test_now_ms() - t0 < 1900); /* before the read timeout could fire */
    close_client_and_loop(&loop, c);
    ts_stop(&s);

    /* the total timeout includes waiting in the queue */
    ts_start(&s, stall, NULL);
    colony_client_options o;
    colony_client_options_init(&o);
    o.max_per_origin = 1;
    o.total_timeout_ms = 200;
    uv_loop_init(&loop);
    c = colony_client_new(&loop, &o);
    ts_url(&s, url, sizeof(url), "/x");
    result first = {0}, queued = {0};
    colony_client_request longer = {.url = url, .timeout_ms = 20000};
    assert_int_equal(colony_client_request_send(c, &longer, on_done_record, &first, NULL), 0);
    assert_int_equal(get(c, url, &queued), 0);
    wait_result(&loop, &queued);
    assert_int_equal(queued.err, COLONY_ETIMEDOUT);
    assert_int_equal(first.done, 0);
    assert_int_equal(ts_get(&s, &s.requests), 1);
    close_client_and_loop(&loop, c);
    assert_int_equal(first.err, COLONY_ECANCELED);
    ts_stop(&s);
}

static void count_handle(uv_handle_t *h, void *arg)
{
    (void)h;
    (*(int *)arg)++;
}

static int loop_handles(uv_loop_t *loop)
{
    int n = 0;
    uv_walk(loop, count_handle, &n);
    return n;
}

/* Total timeouts share one timer per client (client_deadline.c): queued calls
 * add no libuv handle each, and a call with an earlier deadline than those
 * before it still times out on time while they wait on. */
static void total_timeouts_share_one_timer(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, stall, NULL);
    colony_client_options o;
    colony_client_options_init(&o);
    o.max_per_origin = 1;
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client *c = colony_client_new(&loop, &o);
    assert_non_null(c);
    char url[128];
    ts_url(&s, url, sizeof(url), "/x");
    int before = loop_handles(&loop);
    enum { N = 10 };
    result slow[N];
    memset(slow, 0, sizeof(slow));
    colony_client_request longer = {.url = url, .timeout_ms = 20000};
    for (int i = 0; i < N; i++)
        assert_int_equal(colony_client_request_send(c, &longer, on_done_record, &slow[i], NULL), 0);
    result quick = {0};
    colony_client_request shorter = {.url = url, .timeout_ms = 300};
    uint64_t t0 = colony_test_now_ms();
    assert_int_equal(colony_client_request_send(c, &shorter, on_done_record, &quick, NULL), 0);
    /* one connection (its socket and timer) for N + 1 calls, not a timer each */
    assert_true(loop_handles(&loop) - before <= 3);
    wait_result(&loop, &quick);
    assert_int_equal(quick.err, COLONY_ETIMEDOUT);
    assert_true(colony_test_now_ms() - t0 < 5000);
    for (int i = 0; i < N; i++)
        assert_int_equal(slow[i].done, 0);
    close_client_and_loop(&loop, c);
    for (int i = 0; i < N; i++)
        assert_int_equal(slow[i].err, COLONY_ECANCELED);
    ts_stop(&s);
}

/* One request against a server that sends `answer` and closes. */
static int exchange(const char *answer, size_t max_body, result *r)
{
    ts_server s;
    ts_start(&s, answer_and_close, (void *)answer);
    uv_loop_t loop;
    colony_client *c = client_with(&loop, 0, 5000, 10000, max_body);
    char url[128];
    ts_url(&s, url, sizeof(url), "/x");
    memset(r, 0, sizeof(*r));
    assert_int_equal(get(c, url, r), 0);
    wait_result(&loop, r);
    close_client_and_loop(&loop, c);
    ts_stop(&s);
    return r->err;
}

static void server_closes_mid_response(void **state)
{
    (void)state;
    result r;
    assert_int_equal(exchange("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly some", 0, &r),
                     COLONY_ECONNRESET);
    assert_int_equal(
        exchange("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", 0, &r),
        COLONY_ECONNRESET);
    assert_int_equal(exchange("HTTP/1.1 200 OK\r\nContent-Le", 0, &r), COLONY_ECONNRESET);
    assert_int_equal(exchange("", 0, &r), COLONY_ECONNRESET); /* fresh conn: no retry */
}

static void malformed_response(void **state)
{
    (void)state;
    result r;
    assert_int_equal(exchange("HTTP/1.1 abc OK\r\n\r\n", 0, &r), COLONY_EPROTO);
    assert_int_equal(exchange("HTTP/2 200 OK\r\n\r\n", 0, &r), COLONY_EPROTO);
    assert_int_equal(exchange("garbage that is no status line\r\n\r\n", 0, &r), COLONY_EPROTO);
    assert_int_equal(exchange("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                              "Transfer-Encoding: chunked\r\n\r\nok",
                              0, &r),
                     COLONY_EPROTO);
    assert_int_equal(exchange("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, &r),
                     COLONY_EPROTO);
    assert_int_equal(exchange("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", 0, &r),
                     COLONY_EPROTO);
}

static void response_over_max_body(void **state)
{
    (void)state;
    static char big[3000];
    result r;
    assert_int_equal(exchange("HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", 1000, &r),
                     COLONY_E2BIG);
    memset(big, 0, sizeof(big));
    strcpy(big, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n");
    memset(big + strlen(big), 'x', 2000);
    assert_int_equal(exchange(big, 1000, &r), COLONY_E2BIG);
    memset(big, 0, sizeof(big));
    strcpy(big, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    memset(big + strlen(big), 'x', 2000);
    assert_int_equal(exchange(big, 1000, &r), COLONY_E2BIG);
    /* exactly at the limit is fine */
    memset(big, 0, sizeof(big));
    strcpy(big, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    memset(big + strlen(big), 'y', 1000);
    assert_int_equal(exchange(big, 1000, &r), 0);
    assert_int_equal(r.body_len, 1000);
}

static void invalid_requests(void **state)
{
    (void)state;
    uv_loop_t loop;
    colony_client *c = client_with(&loop, 0, 0, 0, 0);
    result r = {0};
    const char *url = "http://127.0.0.1:1/";
    const char *crlf[] = {"X-A", "a\r\nX-Injected: 1", NULL};
    const char *lf[] = {"X-A", "a\nb", NULL};
    const char *badname[] = {"X A", "v", NULL};
    const char *colon[] = {"X:A", "v", NULL};
    const char *empty[] = {"", "v", NULL};
    const char *noval[] = {"X-A", NULL};
    const char *cl[] = {"Content-Length", "5", NULL};
    const char *te[] = {"transfer-encoding", "chunked", NULL};
    const char *const *bad_headers[] = {crlf, lf, badname, colon, empty, noval, cl, te};
    for (size_t i = 0; i < sizeof(bad_headers) / sizeof(bad_headers[0]); i++) {
        colony_client_request req = {.url = url, .headers = bad_headers[i]};
        assert_int_equal(colony_client_request_send(c, &req, on_done_record, &r, NULL),
                         COLONY_EINVAL);
    }
    const char *methods[] = {"", "GE T", "GET\r\n", "G(T"};
    for (size_t i = 0; i < 4; i++) {
        colony_client_request req = {.url = url, .method = methods[i]};
        assert_int_equal(colony_client_request_send(c, &req, on_done_record, &r, NULL),
                         COLONY_EINVAL);
    }
    colony_client_request req = {.url = "ftp://example.com/"};
    assert_int_equal(colony_client_request_send(c, &req, on_done_record, &r, NULL), COLONY_EINVAL);
    colony_client_request nobody = {.url = url, .body_len = 3};
    assert_int_equal(colony_client_request_send(c, &nobody, on_done_record, &r, NULL),
                     COLONY_EINVAL);
    colony_client_request halfstream = {.url = url, .data_cb = (colony_client_data_cb)1};
    assert_int_equal(colony_client_request_send(c, &halfstream, on_done_record, &r, NULL),
                     COLONY_EINVAL);
    assert_int_equal(colony_client_request_send(c, &req, NULL, &r, NULL), COLONY_EINVAL);
    assert_int_equal(colony_client_request_send(c, NULL, on_done_record, &r, NULL), COLONY_EINVAL);
    colony_client_pool_stats st;
    assert_int_equal(colony_client_get_pool_stats(c, url, &st), COLONY_ENOENT);
    close_client_and_loop(&loop, c);
    assert_int_equal(r.done, 0);
}

/* Every allocation on the request path may fail: the call is refused with
 * ENOMEM, or accepted and finished exactly once; nothing leaks. */
static void allocation_failures(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, ts_handle_routes, NULL);
    char url[128];
    ts_url(&s, url, sizeof(url), "/chunked");
    for (long n = 0; n < 40; n++) {
        uv_loop_t loop;
        uv_loop_init(&loop);
        colony__alloc_fail_after(n);
        colony_client *c = colony_client_new(&loop, NULL);
        if (!c) {
            colony__alloc_fail_reset();
            colony_test_loop_close(&loop);
            continue;
        }
        result r = {0};
        int rc = get(c, url, &r);
        if (rc == 0) {
            wait_result(&loop, &r);
            assert_int_equal(r.done, 1);
            assert_true(r.err == 0 || r.err == COLONY_ENOMEM);
            if (r.err == 0) assert_string_equal(r.body, "hello world");
        } else {
            assert_int_equal(rc, COLONY_ENOMEM);
        }
        colony__alloc_fail_reset();
        close_client_and_loop(&loop, c);
    }
    ts_stop(&s);
}

/* A head at once, then 20 body bytes 40 ms apart: never silent for long,
 * done after 800 ms. */
static void drip_body(ts_server *s, int fd)
{
    char *buf = malloc(65536);
    if (ts_read_request(s, fd, buf, 65536) > 0 &&
        ts_write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n") == 0)
        for (int i = 0; i < 20 && ts_write(fd, "b") == 0; i++)
            usleep(40000);
    free(buf);
}

/* timeout_to_head: the total timeout ends at the response head, so a body
 * that keeps flowing outlives it (without it, the same call is cut); a
 * call's read_timeout_ms overrides the client's. */
static void timeout_to_head_and_per_call_read(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, drip_body, NULL);
    uv_loop_t loop;
    colony_client *c = client_with(&loop, 0, 2000, 0, 0);
    char url[128];
    ts_url(&s, url, sizeof(url), "/x");
    for (int to_head = 1; to_head >= 0; to_head--) {
        result r = {0};
        colony_client_request req = {.url = url, .timeout_ms = 300, .timeout_to_head = to_head};
        uint64_t t0 = colony_test_now_ms();
        assert_int_equal(colony_client_request_send(c, &req, on_done_record, &r, NULL), 0);
        wait_result(&loop, &r);
        if (to_head) {
            assert_int_equal(r.err, 0);
            assert_int_equal(r.body_len, 20);
            assert_true(colony_test_now_ms() - t0 >= 300); /* longer than timeout_ms */
        } else {
            assert_int_equal(r.err, COLONY_ETIMEDOUT); /* the whole exchange, as before */
        }
    }
    close_client_and_loop(&loop, c);
    ts_stop(&s);

    ts_start(&s, answer_and_stall, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    c = client_with(&loop, 0, 30000, 0, 0);
    ts_url(&s, url, sizeof(url), "/x");
    result r = {0};
    colony_client_request req = {.url = url, .read_timeout_ms = 200, .timeout_to_head = 1};
    uint64_t t0 = colony_test_now_ms();
    assert_int_equal(colony_client_request_send(c, &req, on_done_record, &r, NULL), 0);
    wait_result(&loop, &r);
    assert_int_equal(r.err, COLONY_ETIMEDOUT);
    assert_true(colony_test_now_ms() - t0 < 10000); /* the call's 200 ms, not the client's 30 s */
    close_client_and_loop(&loop, c);
    ts_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(connect_refused),
        cmocka_unit_test(connect_timeout),
        cmocka_unit_test(connect_timeout_per_request),
        cmocka_unit_test(read_timeout),
        cmocka_unit_test(total_timeout),
        cmocka_unit_test(timeout_to_head_and_per_call_read),
        cmocka_unit_test(total_timeouts_share_one_timer),
        cmocka_unit_test(server_closes_mid_response),
        cmocka_unit_test(malformed_response),
        cmocka_unit_test(response_over_max_body),
        cmocka_unit_test(invalid_requests),
        cmocka_unit_test(allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
