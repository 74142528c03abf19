/* HTTP client pool behaviour: per-origin connection cap with a FIFO queue,
 * queue limit, idle timeout, transparent retry of a stale pooled connection,
 * cancellation and closing the client with calls pending. */
#include "client_test_server.h"

/* Answers every request with "hello" after *(int *)ud milliseconds. */
static void slow_hello(ts_server *s, int fd)
{
    char *buf = malloc(65536);
    while (ts_read_request(s, fd, buf, 65536) > 0) {
        usleep((useconds_t)(*(int *)s->ud) * 1000);
        if (ts_write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")) break;
    }
    free(buf);
}

/* Reads a request and never answers. */
static void stall(ts_server *s, int fd)
{
    char *buf = malloc(65536);
    if (ts_read_request(s, fd, buf, 65536) > 0) ts_wait_close(fd);
    free(buf);
}

typedef struct many {
    result r[8];
    int n;
} many;

static int all_done(void *arg)
{
    many *m = arg;
    for (int i = 0; i < m->n; i++)
        if (!m->r[i].done) return 0;
    return 1;
}

static void per_origin_cap_queues_calls(void **state)
{
    (void)state;
    int delay = 30;
    ts_server s;
    ts_start(&s, slow_hello, &delay);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client_options o;
    colony_client_options_init(&o);
    o.max_per_origin = 2;
    colony_client *c = colony_client_new(&loop, &o);
    char url[128];
    ts_url(&s, url, sizeof(url), "/x");
    many m = {.n = 6};
    for (int i = 0; i < m.n; i++)
        assert_int_equal(get(c, url, &m.r[i]), 0);
    colony_client_pool_stats st;
    assert_int_equal(colony_client_get_pool_stats(c, url, &st), 0);
    assert_int_equal(st.busy, 2);
    assert_int_equal(st.queued, 4);
    assert_true(run_until(&loop, all_done, &m, 10000));
    for (int i = 0; i < m.n; i++) {
        assert_int_equal(m.r[i].err, 0);
        assert_string_equal(m.r[i].body, "hello");
    }
    assert_int_equal(ts_get(&s, &s.max_open), 2);
    assert_int_equal(ts_get(&s, &s.accepted), 2);
    assert_int_equal(colony_client_get_pool_stats(c, url, &st), 0);
    assert_int_equal(st.connects, 2);
    assert_int_equal(st.reused, 4);
    assert_int_equal(st.idle, 2);
    assert_int_equal(st.queued, 0);
    close_client_and_loop(&loop, c);
    ts_stop(&s);
}

static void full_queue_is_ebusy(void **state)
{
    (void)state;
    int delay = 50;
    ts_server s;
    ts_start(&s, slow_hello, &delay);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client_options o;
    colony_client_options_init(&o);
    o.max_per_origin = 1;
    o.max_queued = 2;
    colony_client *c = colony_client_new(&loop, &o);
    char url[128];
    ts_url(&s, url, sizeof(url), "/x");
    many m = {.n = 3};
    for (int i = 0; i < 3; i++)
        assert_int_equal(get(c, url, &m.r[i]), 0);
    result busy = {0};
    colony_client_call *call = (colony_client_call *)&busy;
    colony_client_request req = {.url = url};
    assert_int_equal(colony_client_request_send(c, &req, on_done_record, &busy, &call),
                     COLONY_EBUSY);
    assert_null(call);
    assert_true(run_until(&loop, all_done, &m, 10000));
    for (int i = 0; i < 3; i++)
        assert_int_equal(m.r[i].err, 0);
    assert_int_equal(busy.done, 0); /* a refused call never calls back */
    /* once the queue drained, calls are accepted again */
    assert_int_equal(get(c, url, &busy), 0);
    wait_result(&loop, &busy);
    assert_int_equal(busy.err, 0);
    close_client_and_loop(&loop, c);
    ts_stop(&s);
}

static int server_saw_close(void *arg)
{
    ts_server *s = arg;
    return ts_get(s, &s->closed) > 0;
}

static void idle_timeout_closes_connection(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, ts_handle_routes, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client_options o;
    colony_client_options_init(&o);
    o.idle_timeout_ms = 100;
    colony_client *c = colony_client_new(&loop, &o);
    char url[128];
    ts_url(&s, url, sizeof(url), "/hello");
    result r = {0};
    assert_int_equal(get(c, url, &r), 0);
    wait_result(&loop, &r);
    assert_int_equal(r.err, 0);
    colony_client_pool_stats st;
    assert_int_equal(colony_client_get_pool_stats(c, url, &st), 0);
    assert_int_equal(st.idle, 1);
    assert_true(run_until(&loop, server_saw_close, &s, 5000));
    assert_int_equal(colony_client_get_pool_stats(c, url, &st), 0);
    assert_int_equal(st.idle, 0);
    assert_int_equal(st.busy, 0);
    close_client_and_loop(&loop, c);
    ts_stop(&s);
}

/* The first connection answers one request, then reads the next one and
 * closes without a word: what a server whose idle timeout raced the request
 * does. Later connections behave. */
static void close_after_first(ts_server *s, int fd)
{
    char *buf = malloc(65536);
    pthread_mutex_lock(&s->mu);
    int first = !s->ud;
    if (first) s->ud = s;
    pthread_mutex_unlock(&s->mu);
    int served = 0;
    while (ts_read_request(s, fd, buf, 65536) > 0) {
        if (first && served == 1) break;
        if (ts_write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")) break;
        served++;
    }
    free(buf);
}

static void stale_pooled_connection_is_retried(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, close_after_first, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client *c = colony_client_new(&loop, NULL);
    char url[128];
    ts_url(&s, url, sizeof(url), "/x");
    result r = {0};
    assert_int_equal(get(c, url, &r), 0);
    wait_result(&loop, &r);
    assert_int_equal(r.err, 0);
    memset(&r, 0, sizeof(r));
    assert_int_equal(get(c, url, &r), 0); /* reuses the conn the server drops */
    wait_result(&loop, &r);
    assert_int_equal(r.err, 0);
    assert_string_equal(r.body, "hello");
    colony_client_pool_stats st;
    assert_int_equal(colony_client_get_pool_stats(c, url, &st), 0);
    assert_int_equal(st.connects, 2);
    assert_int_equal(ts_get(&s, &s.requests), 3);
    close_client_and_loop(&loop, c);
    ts_stop(&s);

    /* POST is not idempotent: the same race fails it instead */
    ts_start(&s, close_after_first, NULL);
    uv_loop_init(&loop);
    c = colony_client_new(&loop, NULL);
    ts_url(&s, url, sizeof(url), "/x");
    memset(&r, 0, sizeof(r));
    assert_int_equal(get(c, url, &r), 0);
    wait_result(&loop, &r);
    memset(&r, 0, sizeof(r));
    colony_client_request post = {.method = "POST", .url = url, .body = "x", .body_len = 1};
    assert_int_equal(colony_client_request_send(c, &post, on_done_record, &r, NULL), 0);
    wait_result(&loop, &r);
    assert_int_equal(r.err, COLONY_ECONNRESET);
    close_client_and_loop(&loop, c);
    ts_stop(&s);
}

static int server_got_request(void *arg)
{
    ts_server *s = arg;
    return ts_get(s, &s->requests) > 0;
}

static void cancel_in_flight(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, stall, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client *c = colony_client_new(&loop, NULL);
    char url[128];
    ts_url(&s, url, sizeof(url), "/x");
    result r = {0};
    colony_client_call *call = NULL;
    colony_client_request req = {.url = url};
    assert_int_equal(colony_client_request_send(c, &req, on_done_record, &r, &call), 0);
    assert_non_null(call);
    assert_true(run_until(&loop, server_got_request, &s, 5000));
    colony_client_call_cancel(call);
    assert_int_equal(r.done, 0); /* never from inside cancel */
    wait_result(&loop, &r);
    assert_int_equal(r.err, COLONY_ECANCELED);
    assert_true(run_until(&loop, server_saw_close, &s, 5000)); /* its conn was closed */
    colony_client_pool_stats st;
    assert_int_equal(colony_client_get_pool_stats(c, url, &st), 0);
    assert_int_equal(st.idle + st.busy, 0);
    close_client_and_loop(&loop, c);
    assert_int_equal(r.done, 1);
    ts_stop(&s);
}

static void cancel_while_queued(void **state)
{
    (void)state;
    int delay = 100;
    ts_server s;
    ts_start(&s, slow_hello, &delay);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client_options o;
    colony_client_options_init(&o);
    o.max_per_origin = 1;
    colony_client *c = colony_client_new(&loop, &o);
    char url[128];
    ts_url(&s, url, sizeof(url), "/x");
    many m = {.n = 3};
    colony_client_call *queued = NULL;
    colony_client_request req = {.url = url};
    assert_int_equal(get(c, url, &m.r[0]), 0);
    assert_int_equal(colony_client_request_send(c, &req, on_done_record, &m.r[1], &queued), 0);
    assert_int_equal(get(c, url, &m.r[2]), 0);
    colony_client_call_cancel(queued);
    colony_client_call_cancel(queued); /* twice before done_cb: still one callback */
    assert_int_equal(m.r[1].done, 0);
    colony_client_pool_stats st;
    assert_int_equal(colony_client_get_pool_stats(c, url, &st), 0);
    assert_int_equal(st.queued, 1);
    assert_true(run_until(&loop, all_done, &m, 10000));
    assert_int_equal(m.r[0].err, 0);
    assert_int_equal(m.r[1].err, COLONY_ECANCELED);
    assert_int_equal(m.r[1].done, 1);
    assert_int_equal(m.r[2].err, 0);
    assert_int_equal(ts_get(&s, &s.requests), 2);
    close_client_and_loop(&loop, c);
    ts_stop(&s);
}

static void close_fails_pending_calls(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, stall, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client_options o;
    colony_client_options_init(&o);
    o.max_per_origin = 1;
    colony_client *c = colony_client_new(&loop, &o);
    char url[128];
    ts_url(&s, url, sizeof(url), "/x");
    many m = {.n = 3};
    for (int i = 0; i < 3; i++)
        assert_int_equal(get(c, url, &m.r[i]), 0);
    assert_true(run_until(&loop, server_got_request, &s, 5000));
    int closed = 0;
    colony_client_close(c, on_closed_flag, &closed);
    result late = {0};
    assert_int_equal(get(c, url, &late), COLONY_ESHUTDOWN);
    assert_int_equal(m.r[0].done, 0);
    assert_true(colony_test_run_until(&loop, &closed, 5000));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(m.r[i].done, 1);
        assert_int_equal(m.r[i].err, COLONY_ECANCELED);
    }
    assert_int_equal(late.done, 0);
    colony_test_loop_close(&loop);
    ts_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(per_origin_cap_queues_calls),
        cmocka_unit_test(full_queue_is_ebusy),
        cmocka_unit_test(idle_timeout_closes_connection),
        cmocka_unit_test(stale_pooled_connection_is_retried),
        cmocka_unit_test(cancel_in_flight),
        cmocka_unit_test(cancel_while_queued),
        cmocka_unit_test(close_fails_pending_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
