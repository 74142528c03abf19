/* HTTP client streaming: a chunked request body written piece by piece from
 * body_cb, and a response body delivered through head_cb/data_cb (no size
 * limit, abort from head_cb, cancel from data_cb). */
#include "client_test_server.h"

/* Decodes a chunked request body and answers with the decoded bytes. */
static void chunked_echo(ts_server *s, int fd)
{
    char *buf = malloc(65536), *out = malloc(70000);
    int n;
    while ((n = ts_read_request(s, fd, buf, 65536)) > 0) {
        char *p = strstr(buf, "\r\n\r\n") + 4;
        char decoded[65536];
        size_t dlen = 0;
        for (;;) {
            char *end;
            unsigned long size = strtoul(p, &end, 16);
            p = strstr(end, "\r\n") + 2;
            if (size == 0) break;
            memcpy(decoded + dlen, p, size);
            dlen += size;
            p += size + 2;
        }
        int h = snprintf(out, 70000, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", dlen);
        memcpy(out + h, decoded, dlen);
        out[h + (int)dlen] = '\0';
        if (ts_write(fd, out)) break;
    }
    free(buf);
    free(out);
}

typedef struct upload {
    int calls, pieces;
    result r;
} upload;

static void on_body_ready(colony_client_call *call, void *ud)
{
    upload *u = ud;
    u->calls++;
    static const char *const pieces[] = {"first,", "", "second,", "third"};
    if (u->pieces < 4) {
        const char *piece = pieces[u->pieces++];
        assert_int_equal(colony_client_call_write(call, piece, strlen(piece)), 0);
        if (u->pieces == 4) assert_int_equal(colony_client_call_end(call), 0);
        if (u->pieces == 4) assert_int_equal(colony_client_call_end(call), COLONY_EINVAL);
        if (u->pieces == 2) { /* an empty write writes nothing and calls back nothing */
            piece = pieces[u->pieces++];
            assert_int_equal(colony_client_call_write(call, piece, strlen(piece)), 0);
        }
    }
}

static void on_upload_done(colony_client_call *call, int err, const colony_client_response *res,
                           void *ud)
{
    on_done_record(call, err, res, &((upload *)ud)->r);
}

static void streamed_request_body(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, chunked_echo, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client *c = colony_client_new(&loop, NULL);
    char url[128];
    ts_url(&s, url, sizeof(url), "/upload");
    for (int round = 0; round < 2; round++) { /* the conn is reusable afterwards */
        upload u = {0};
        colony_client_call *call = NULL;
        colony_client_request req = {.method = "POST", .url = url, .body_cb = on_body_ready};
        assert_int_equal(colony_client_request_send(c, &req, on_upload_done, &u, &call), 0);
        if (round == 0) /* still connecting: not yet (a pooled conn would take it) */
            assert_int_equal(colony_client_call_write(call, "x", 1), COLONY_EAGAIN);
        wait_result(&loop, &u.r);
        assert_int_equal(u.r.err, 0);
        assert_int_equal(u.r.status, 200);
        assert_string_equal(u.r.body, "first,second,third");
        assert_int_equal(u.calls, 3);
    }
    pthread_mutex_lock(&s.mu);
    assert_non_null(strstr(s.last_request, "\r\nTransfer-Encoding: chunked\r\n"));
    assert_null(strstr(s.last_request, "Content-Length"));
    pthread_mutex_unlock(&s.mu);
    colony_client_pool_stats st;
    assert_int_equal(colony_client_get_pool_stats(c, url, &st), 0);
    assert_int_equal(st.connects, 1);
    close_client_and_loop(&loop, c);
    ts_stop(&s);
}

/* Sends a 200 KiB body in 2 KiB writes, chunked or with Content-Length. */
static void big_body(ts_server *s, int fd)
{
    char *buf = malloc(65536);
    char piece[2048 + 16];
    int n;
    while ((n = ts_read_request(s, fd, buf, 65536)) > 0) {
        int chunked = strstr(buf, "GET /chunked ") == buf;
        if (ts_write(fd, chunked ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 : "HTTP/1.1 200 OK\r\nContent-Length: 204800\r\n\r\n"))
            break;
        for (int i = 0; i < 100; i++) {
            int h = chunked ? snprintf(piece, sizeof(piece), "800\r\n") : 0;
            memset(piece + h, 'a' + i % 26, 2048);
            piece[h + 2048] = '\0';
            if (chunked) strcat(piece, "\r\n");
            if (ts_write(fd, piece)) break;
        }
        if (chunked) ts_write(fd, "0\r\n\r\n");
    }
    free(buf);
}

typedef struct sink {
    int heads, status, abort_in_head, cancel_after;
    size_t total, pieces;
    uint64_t sum;
    result r;
} sink;

static int on_head(colony_client_call *call, const colony_client_response *res, void *ud)
{
    (void)call;
    sink *k = ud;
    k->heads++;
    k->status = res->status;
    assert_null(res->body);
    return k->abort_in_head;
}

static void on_data(colony_client_call *call, const char *data, size_t len, void *ud)
{
    sink *k = ud;
    assert_int_equal(k->heads, 1);
    k->pieces++;
    for (size_t i = 0; i < len; i++)
        k->sum += (unsigned char)data[i];
    k->total += len;
    if (k->cancel_after && k->pieces == (size_t)k->cancel_after) colony_client_call_cancel(call);
}

static void on_sink_done(colony_client_call *call, int err, const colony_client_response *res,
                         void *ud)
{
    sink *k = ud;
    if (res) assert_null(res->body);
    on_done_record(call, err, res, &k->r);
}

static uint64_t expected_sum(void)
{
    uint64_t sum = 0;
    for (int i = 0; i < 100; i++)
        sum += (uint64_t)('a' + i % 26) * 2048;
    return sum;
}

static void streamed_response_body(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, big_body, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client_options o;
    colony_client_options_init(&o);
    o.max_response_body = 1024; /* applies to buffered bodies only */
    colony_client *c = colony_client_new(&loop, &o);
    const char *paths[] = {"/chunked", "/length"};
    for (int i = 0; i < 2; i++) {
        char url[128];
        ts_url(&s, url, sizeof(url), paths[i]);
        sink k = {0};
        colony_client_request req = {.url = url, .head_cb = on_head, .data_cb = on_data};
        assert_int_equal(colony_client_request_send(c, &req, on_sink_done, &k, NULL), 0);
        wait_result(&loop, &k.r);
        assert_int_equal(k.r.err, 0);
        assert_int_equal(k.r.status, 200);
        assert_int_equal(k.heads, 1);
        assert_int_equal(k.total, 204800);
        assert_int_equal(k.sum, expected_sum());
        assert_true(k.pieces >= 1);
    }
    /* the same body buffered is over the limit */
    char url[128];
    ts_url(&s, url, sizeof(url), "/length");
    result r = {0};
    assert_int_equal(get(c, url, &r), 0);
    wait_result(&loop, &r);
    assert_int_equal(r.err, COLONY_E2BIG);
    close_client_and_loop(&loop, c);
    ts_stop(&s);
}

static void abort_from_head_or_data(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, big_body, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client *c = colony_client_new(&loop, NULL);
    char url[128];
    ts_url(&s, url, sizeof(url), "/chunked");
    sink k = {.abort_in_head = 1};
    colony_client_request req = {.url = url, .head_cb = on_head, .data_cb = on_data};
    assert_int_equal(colony_client_request_send(c, &req, on_sink_done, &k, NULL), 0);
    wait_result(&loop, &k.r);
    assert_int_equal(k.r.err, COLONY_ECANCELED);
    assert_int_equal(k.heads, 1);
    assert_int_equal(k.total, 0);

    sink k2 = {.cancel_after = 1};
    assert_int_equal(colony_client_request_send(c, &req, on_sink_done, &k2, NULL), 0);
    wait_result(&loop, &k2.r);
    assert_int_equal(k2.r.err, COLONY_ECANCELED);
    assert_int_equal(k2.r.done, 1);
    assert_int_equal(k2.pieces, 1); /* nothing delivered after the cancel */
    colony_client_pool_stats st;
    assert_int_equal(colony_client_get_pool_stats(c, url, &st), 0);
    assert_int_equal(st.idle + st.busy, 0); /* aborted conns are not pooled */
    close_client_and_loop(&loop, c);
    ts_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(streamed_request_body),
        cmocka_unit_test(streamed_response_body),
        cmocka_unit_test(abort_from_head_or_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
