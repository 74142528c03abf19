/* HTTP client basics over loopback against scripted servers: GET and POST,
 * keep-alive reuse, every response framing, 1xx skipping, name resolution,
 * IPv6 literals and unix sockets. */
#include "client_test_server.h"

static void get_with_body(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, ts_handle_routes, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client *c = colony_client_new(&loop, NULL);
    assert_non_null(c);
    char url[128];
    ts_url(&s, url, sizeof(url), "/hello?x=1");
    /* the route table matches "GET /hello " only, so the query must reach it intact */
    result r = {0};
    assert_int_equal(get(c, url, &r), 0);
    wait_result(&loop, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 404);
    pthread_mutex_lock(&s.mu);
    assert_non_null(strstr(s.last_request, "GET /hello?x=1 HTTP/1.1\r\n"));
    pthread_mutex_unlock(&s.mu);

    ts_url(&s, url, sizeof(url), "/hello");
    memset(&r, 0, sizeof(r));
    assert_int_equal(get(c, url, &r), 0);
    wait_result(&loop, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");
    assert_int_equal(r.body_len, 5);
    assert_string_equal(r.header_x, "yes");
    char host[64];
    snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%d\r\n", s.port);
    pthread_mutex_lock(&s.mu);
    assert_non_null(strstr(s.last_request, "GET /hello HTTP/1.1\r\n"));
    assert_non_null(strstr(s.last_request, host));
    assert_null(strstr(s.last_request, "Content-Length"));
    pthread_mutex_unlock(&s.mu);
    close_client_and_loop(&loop, c);
    ts_stop(&s);
}

static void post_fixed_body_and_headers(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, ts_handle_routes, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client *c = colony_client_new(&loop, NULL);
    char url[128];
    ts_url(&s, url, sizeof(url), "/echo");
    const char *headers[] = {"X-Request-Id", "abc", "Host", "svc.internal", NULL};
    char body[] = "name=colony&x=1";
    colony_client_request req = {
        .method = "POST", .url = url, .headers = headers, .body = body, .body_len = 15};
    result r = {0};
    assert_int_equal(colony_client_request_send(c, &req, on_done_record, &r, NULL), 0);
    memset(body, 'X', sizeof(body) - 1); /* the body was copied */
    wait_result(&loop, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "name=colony&x=1");
    pthread_mutex_lock(&s.mu);
    assert_non_null(strstr(s.last_request, "\r\nX-Request-Id: abc\r\n"));
    assert_non_null(strstr(s.last_request, "\r\nHost: svc.internal\r\n"));
    assert_non_null(strstr(s.last_request, "\r\nContent-Length: 15\r\n"));
    assert_null(strstr(s.last_request, "Host: 127.0.0.1")); /* only one Host */
    pthread_mutex_unlock(&s.mu);
    close_client_and_loop(&loop, c);
    ts_stop(&s);
}

typedef struct sequence {
    colony_client *c;
    const char *url;
    int remaining, ok;
} sequence;

/* Issues the next request from inside done_cb, as chained calls do. */
static void on_sequence_done(colony_client_call *call, int err, const colony_client_response *res,
                             void *ud)
{
    sequence *q = ud;
    colony_client_call_cancel(call); /* after completion: a no-op */
    if (!err && res->status == 200 && res->body_len == 5 && memcmp(res->body, "hello", 5) == 0)
        q->ok++;
    if (--q->remaining > 0) {
        colony_client_request req = {.url = q->url};
        assert_int_equal(colony_client_request_send(q->c, &req, on_sequence_done, q, NULL), 0);
    }
}

static int sequence_done(void *arg)
{
    return ((sequence *)arg)->remaining == 0;
}

static void keepalive_reuses_one_connection(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, ts_handle_routes, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client *c = colony_client_new(&loop, NULL);
    char url[128], origin[64];
    ts_url(&s, url, sizeof(url), "/hello");
    ts_url(&s, origin, sizeof(origin), "");
    sequence q = {.c = c, .url = url, .remaining = 10};
    colony_client_request req = {.url = url};
    assert_int_equal(colony_client_request_send(c, &req, on_sequence_done, &q, NULL), 0);
    assert_true(run_until(&loop, sequence_done, &q, 10000));
    assert_int_equal(q.ok, 10);
    colony_client_pool_stats st;
    assert_int_equal(colony_client_get_pool_stats(c, origin, &st), 0);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.reused, 9);
    assert_int_equal(st.idle, 1);
    assert_int_equal(st.busy, 0);
    assert_int_equal(ts_get(&s, &s.accepted), 1);
    assert_int_equal(ts_get(&s, &s.requests), 10);
    assert_int_equal(colony_client_get_pool_stats(c, "http://127.0.0.1:1", &st), COLONY_ENOENT);
    close_client_and_loop(&loop, c);
    ts_stop(&s);
}

/* Pooled idle connections must not keep uv_run(DEFAULT) from returning. */
static void idle_connection_does_not_hold_loop(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, ts_handle_routes, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client *c = colony_client_new(&loop, NULL); /* idle timeout 30 s */
    char url[128];
    ts_url(&s, url, sizeof(url), "/hello");
    result r = {0};
    assert_int_equal(get(c, url, &r), 0);
    uint64_t t0 = colony_test_now_ms();
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(colony_test_now_ms() - t0 < 10000);
    assert_int_equal(r.err, 0);
    colony_client_pool_stats st;
    assert_int_equal(colony_client_get_pool_stats(c, url, &st), 0);
    assert_int_equal(st.idle, 1);
    memset(&r, 0, sizeof(r)); /* and it is still reusable */
    assert_int_equal(get(c, url, &r), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.err, 0);
    assert_int_equal(colony_client_get_pool_stats(c, url, &st), 0);
    assert_int_equal(st.connects, 1);
    close_client_and_loop(&loop, c);
    ts_stop(&s);
}

static void chunked_response(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, ts_handle_routes, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client *c = colony_client_new(&loop, NULL);
    char url[128];
    ts_url(&s, url, sizeof(url), "/chunked");
    for (int i = 0; i < 2; i++) { /* the second proves the conn was left clean */
        result r = {0};
        assert_int_equal(get(c, url, &r), 0);
        wait_result(&loop, &r);
        assert_int_equal(r.err, 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "hello world");
        assert_int_equal(r.body_len, 11);
    }
    colony_client_pool_stats st;
    assert_int_equal(colony_client_get_pool_stats(c, url, &st), 0);
    assert_int_equal(st.connects, 1);
    close_client_and_loop(&loop, c);
    ts_stop(&s);
}

static void close_delimited_response(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, ts_handle_routes, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client *c = colony_client_new(&loop, NULL);
    char url[128];
    ts_url(&s, url, sizeof(url), "/eof");
    result r = {0};
    assert_int_equal(get(c, url, &r), 0);
    wait_result(&loop, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "until close");
    colony_client_pool_stats st;
    assert_int_equal(colony_client_get_pool_stats(c, url, &st), 0);
    assert_int_equal(st.idle, 0); /* not reusable */
    memset(&r, 0, sizeof(r));
    ts_url(&s, url, sizeof(url), "/hello");
    assert_int_equal(get(c, url, &r), 0);
    wait_result(&loop, &r);
    assert_string_equal(r.body, "hello");
    assert_int_equal(colony_client_get_pool_stats(c, url, &st), 0);
    assert_int_equal(st.connects, 2);
    close_client_and_loop(&loop, c);
    ts_stop(&s);
}

/* A ~13 KB head, then (in a later read) the body: growing the read buffer for
 * the body must not leave the response's header slices pointing at the old
 * buffer (ASan sees the use after free in done_cb). */
static void big_head_then_body(ts_server *s, int fd)
{
    char *buf = malloc(65536);
    if (ts_read_request(s, fd, buf, 65536) > 0) {
        char *head = malloc(14000);
        int n = snprintf(head, 14000, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Pad: ");
        memset(head + n, 'p', 13000);
        snprintf(head + n + 13000, 14000 - (size_t)n - 13000, "\r\nX-Test: yes\r\n\r\n");
        if (ts_write(fd, head) == 0) {
            usleep(100000); /* the body arrives in a read of its own */
            ts_write(fd, "hello");
        }
        free(head);
        ts_wait_close(fd);
    }
    free(buf);
}

static void big_head_body_in_later_read(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, big_head_then_body, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client *c = colony_client_new(&loop, NULL);
    char url[128];
    ts_url(&s, url, sizeof(url), "/");
    result r = {0};
    assert_int_equal(get(c, url, &r), 0);
    wait_result(&loop, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");
    assert_string_equal(r.header_x, "yes");
    close_client_and_loop(&loop, c);
    ts_stop(&s);
}

static void head_and_204_have_no_body(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, ts_handle_routes, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client *c = colony_client_new(&loop, NULL);
    char url[128];
    ts_url(&s, url, sizeof(url), "/hello");
    colony_client_request head = {.method = "HEAD", .url = url};
    result r = {0};
    assert_int_equal(colony_client_request_send(c, &head, on_done_record, &r, NULL), 0);
    wait_result(&loop, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);

    ts_url(&s, url, sizeof(url), "/nocontent");
    memset(&r, 0, sizeof(r));
    assert_int_equal(get(c, url, &r), 0);
    wait_result(&loop, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.body_len, 0);

    /* had the client waited for a body, this would misparse or hang */
    ts_url(&s, url, sizeof(url), "/hello");
    memset(&r, 0, sizeof(r));
    assert_int_equal(get(c, url, &r), 0);
    wait_result(&loop, &r);
    assert_string_equal(r.body, "hello");
    colony_client_pool_stats st;
    assert_int_equal(colony_client_get_pool_stats(c, url, &st), 0);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.reused, 2);
    close_client_and_loop(&loop, c);
    ts_stop(&s);
}

static void interim_1xx_responses_are_skipped(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, ts_handle_routes, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client *c = colony_client_new(&loop, NULL);
    char url[128];
    ts_url(&s, url, sizeof(url), "/continue");
    result r = {0};
    assert_int_equal(get(c, url, &r), 0);
    wait_result(&loop, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok");
    close_client_and_loop(&loop, c);
    ts_stop(&s);
}

/* "localhost" goes through uv_getaddrinfo; it may resolve to ::1 first, where
 * nothing listens, so this also exercises trying the next address. */
static void hostname_is_resolved(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, ts_handle_routes, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client *c = colony_client_new(&loop, NULL);
    char url[128];
    snprintf(url, sizeof(url), "http://LocalHost:%d/hello", s.port);
    result r = {0};
    assert_int_equal(get(c, url, &r), 0);
    wait_result(&loop, &r);
    assert_int_equal(r.err, 0);
    assert_string_equal(r.body, "hello");
    colony_client_pool_stats st;
    snprintf(url, sizeof(url), "http://localhost:%d", s.port);
    assert_int_equal(colony_client_get_pool_stats(c, url, &st), 0);
    assert_int_equal(st.connects, 1);
    pthread_mutex_lock(&s.mu);
    char host[64];
    snprintf(host, sizeof(host), "\r\nHost: localhost:%d\r\n", s.port);
    assert_non_null(strstr(s.last_request, host));
    pthread_mutex_unlock(&s.mu);
    close_client_and_loop(&loop, c);
    ts_stop(&s);
}

static void ipv6_literal(void **state)
{
    (void)state;
    ts_server s;
    if (ts_start_ex(&s, ts_handle_routes, NULL, 1) != 0) {
        pthread_mutex_destroy(&s.mu);
        skip(); /* no IPv6 loopback here */
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client *c = colony_client_new(&loop, NULL);
    char url[128];
    snprintf(url, sizeof(url), "http://[::1]:%d/hello", s.port);
    result r = {0};
    assert_int_equal(get(c, url, &r), 0);
    wait_result(&loop, &r);
    assert_int_equal(r.err, 0);
    assert_string_equal(r.body, "hello");
    pthread_mutex_lock(&s.mu);
    char host[64];
    snprintf(host, sizeof(host), "\r\nHost: [::1]:%d\r\n", s.port);
    assert_non_null(strstr(s.last_request, host));
    pthread_mutex_unlock(&s.mu);
    close_client_and_loop(&loop, c);
    ts_stop(&s);
}

static void unix_socket(void **state)
{
    (void)state;
    ts_server s;
    ts_start_unix(&s, ts_handle_routes, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client *c = colony_client_new(&loop, NULL);
    char url[256], enc[200];
    size_t j = 0;
    for (const char *p = s.unix_path; *p; p++)
        j += (size_t)(*p == '/' ? snprintf(enc + j, sizeof(enc) - j, "%%2F")
                                : snprintf(enc + j, sizeof(enc) - j, "%c", *p));
    snprintf(url, sizeof(url), "http+unix://%s/hello", enc);
    for (int i = 0; i < 2; i++) {
        result r = {0};
        assert_int_equal(get(c, url, &r), 0);
        wait_result(&loop, &r);
        assert_int_equal(r.err, 0);
        assert_string_equal(r.body, "hello");
    }
    colony_client_pool_stats st;
    assert_int_equal(colony_client_get_pool_stats(c, s.unix_path, &st), 0);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.reused, 1);
    pthread_mutex_lock(&s.mu);
    assert_non_null(strstr(s.last_request, "\r\nHost: localhost\r\n"));
    pthread_mutex_unlock(&s.mu);
    close_client_and_loop(&loop, c);
    ts_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_with_body),
        cmocka_unit_test(post_fixed_body_and_headers),
        cmocka_unit_test(keepalive_reuses_one_connection),
        cmocka_unit_test(idle_connection_does_not_hold_loop),
        cmocka_unit_test(chunked_response),
        cmocka_unit_test(close_delimited_response),
        cmocka_unit_test(big_head_body_in_later_read),
        cmocka_unit_test(head_and_204_have_no_body),
        cmocka_unit_test(interim_1xx_responses_are_skipped),
        cmocka_unit_test(hostname_is_resolved),
        cmocka_unit_test(ipv6_literal),
        cmocka_unit_test(unix_socket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
