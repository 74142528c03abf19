/* HTTP client: a streamed request body with a known length goes out with
 * Content-Length (raw bytes, no chunk framing); writes past the length and
 * an end short of it are refused; the connection is reused afterwards. */
#include "client_test_server.h"

/* Answers with the request's body (Content-Length framed requests only). */
static void length_echo(ts_server *s, int fd)
{
    char *buf = malloc(65536), *out = malloc(70000);
    int n;
    while ((n = ts_read_request(s, fd, buf, 65536)) > 0) {
        char *body = strstr(buf, "\r\n\r\n") + 4;
        size_t blen = (size_t)n - (size_t)(body - buf);
        int h = snprintf(out, 70000, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", blen);
        memcpy(out + h, body, blen);
        out[h + (int)blen] = '\0';
        if (ts_write(fd, out)) break;
    }
    free(buf);
    free(out);
}

typedef struct upload {
    int calls;
    result r;
} upload;

static void on_body_ready(colony_client_call *call, void *ud)
{
    upload *u = ud;
    if (u->calls++ == 0) {
        assert_int_equal(colony_client_call_write(call, "hello ", 6), 0);
        assert_int_equal(colony_client_call_end(call), COLONY_EINVAL); /* 5 bytes short */
        return;
    }
    assert_int_equal(colony_client_call_write(call, "world!", 6), COLONY_E2BIG); /* 1 too many */
    assert_int_equal(colony_client_call_write(call, "world", 5), 0);
    assert_int_equal(colony_client_call_end(call), 0);
    assert_int_equal(colony_client_call_end(call), COLONY_EINVAL);
}

static void on_upload_done(colony_client_call *call, int err, const colony_client_response *res,
                           void *ud)
{
    on_done_record(call, err, res, &((upload *)ud)->r);
}

static void streamed_body_with_content_length(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, length_echo, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client *c = colony_client_new(&loop, NULL);
    char url[128];
    ts_url(&s, url, sizeof(url), "/upload");
    for (int round = 0; round < 2; round++) {
        upload u = {0};
        colony_client_request req = {
            .method = "PUT", .url = url, .body_cb = on_body_ready, .body_length = 11};
        assert_int_equal(colony_client_request_send(c, &req, on_upload_done, &u, NULL), 0);
        wait_result(&loop, &u.r);
        assert_int_equal(u.r.err, 0);
        assert_int_equal(u.r.status, 200);
        assert_string_equal(u.r.body, "hello world");
        assert_int_equal(u.calls, 2);
        pthread_mutex_lock(&s.mu);
        assert_non_null(strstr(s.last_request, "\r\nContent-Length: 11\r\n"));
        assert_null(strstr(s.last_request, "Transfer-Encoding"));
        pthread_mutex_unlock(&s.mu);
    }
    colony_client_pool_stats st;
    assert_int_equal(colony_client_get_pool_stats(c, url, &st), 0);
    assert_int_equal(st.connects, 1);
    close_client_and_loop(&loop, c);
    ts_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(streamed_body_with_content_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
