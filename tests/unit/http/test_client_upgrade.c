/* The client side of an Upgrade (client_upgrade.c) against a raw blocking
 * server: a 101 hands the connection over (the bytes the server sent in the
 * same segment as the 101 head are the first data), echo both ways, the
 * connection leaves the pool, the server's close ends the tunnel with 0 and a
 * write after it fails cleanly; a tunnel nobody takes is closed; a client
 * close ends an open tunnel; a 101 nobody asked for still fails. */
#include "client_test_server.h"

typedef struct up_state {
    colony_client_tunnel *t;
    int done, err, status, take;
    int closes, close_err, write_after_close;
    char got[1 << 20];
    size_t got_len;
    int wrote_ping;
    int pause; /* pause the tunnel inside done_cb */
    int write_cbs, write_cb_status;
} up_state;

static up_state us;

static void t_data(colony_client_tunnel *t, const char *data, size_t len, void *ud)
{
    (void)ud;
    if (us.got_len + len < sizeof(us.got)) {
        memcpy(us.got + us.got_len, data, len);
        us.got_len += len;
    }
    if (!us.wrote_ping && us.got_len >= 5) { /* "HELLO" came with the head */
        us.wrote_ping = 1;
        colony_client_tunnel_write(t, "ping", 4, NULL, NULL);
    }
}

static void t_close(colony_client_tunnel *t, int err, void *ud)
{
    (void)ud;
    us.closes++;
    us.close_err = err;
    us.write_after_close = colony_client_tunnel_write(t, "x", 1, NULL, NULL);
}

static void on_done(colony_client_call *call, int err, const colony_client_response *res, void *ud)
{
    (void)ud;
    us.done++;
    us.err = err;
    us.status = res ? res->status : 0;
    if (res && res->status == 101 && us.take)
        assert_int_equal(colony_client_call_tunnel(call, t_data, t_close, NULL, &us.t), 0);
    if (us.t && us.pause) assert_int_equal(colony_client_tunnel_pause(us.t), 0);
    colony_client_tunnel *again = NULL;
    if (us.t)
        assert_int_equal(colony_client_call_tunnel(call, t_data, t_close, NULL, &again),
                         COLONY_EINVAL);
}

/* 101 with "HELLO" in the same write; then echo until "bye". */
static void upgrade_server(ts_server *s, int fd)
{
    char buf[8192];
    if (ts_read_request(s, fd, buf, sizeof(buf)) <= 0) return;
    if (!strcasestr(buf, "\r\nUpgrade: echo\r\n")) {
        ts_write(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        return;
    }
    ts_write(fd, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n"
                 "\r\nHELLO");
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) return;
        if (n == 3 && memcmp(buf, "bye", 3) == 0) {
            ts_write(fd, "ciao");
            return; /* closes */
        }
        send(fd, buf, (size_t)n, MSG_NOSIGNAL);
    }
}

static int got_at_least(void *arg)
{
    return us.got_len >= *(size_t *)arg;
}

static int closed_once(void *arg)
{
    (void)arg;
    return us.closes > 0;
}

static int send_upgrade(colony_client *c, ts_server *s)
{
    char url[128];
    ts_url(s, url, sizeof(url), "/ws");
    static const char *const headers[] = {"Upgrade", "echo", "Connection", "Upgrade", NULL};
    colony_client_request r = {.url = url, .headers = headers};
    return colony_client_request_send(c, &r, on_done, NULL, NULL);
}

static void tunnel_echo_and_server_close(void **state)
{
    (void)state;
    memset(&us, 0, sizeof(us));
    us.take = 1;
    ts_server s;
    ts_start(&s, upgrade_server, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client *c = colony_client_new(&loop, NULL);
    assert_int_equal(send_upgrade(c, &s), 0);
    size_t want = 9; /* HELLO + ping */
    assert_true(run_until(&loop, got_at_least, &want, 5000));
    assert_int_equal(us.done, 1);
    assert_int_equal(us.err, 0);
    assert_int_equal(us.status, 101);
    assert_non_null(us.t);
    assert_memory_equal(us.got, "HELLOping", 9);
    /* The connection left the pool: none idle, none busy. */
    colony_client_pool_stats ps;
    char origin[64];
    ts_url(&s, origin, sizeof(origin), "");
    if (colony_client_get_pool_stats(c, origin, &ps) == 0) {
        assert_int_equal(ps.idle, 0);
        assert_int_equal(ps.busy, 0);
    }
    /* 256 KiB through the echo, written at once (flow control is the caller's). */
    static char big[256 * 1024];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)('a' + i % 26);
    assert_int_equal(colony_client_tunnel_write(us.t, big, sizeof(big), NULL, NULL), 0);
    want = 9 + sizeof(big);
    assert_true(run_until(&loop, got_at_least, &want, 5000));
    assert_memory_equal(us.got + 9, big, sizeof(big));
    assert_int_equal(colony_client_tunnel_write(us.t, "bye", 3, NULL, NULL), 0);
    assert_true(run_until(&loop, closed_once, NULL, 5000));
    assert_int_equal(us.close_err, 0);
    assert_int_equal(us.write_after_close, COLONY_ESHUTDOWN);
    assert_memory_equal(us.got + want, "ciao", 4);
    ts_stop(&s);
    close_client_and_loop(&loop, c);
}

static void server_saw_close(ts_server *s, int fd)
{
    upgrade_server(s, fd);
}

static int server_closed(void *arg)
{
    ts_server *s = arg;
    return ts_get(s, &s->closed) > 0;
}

static void tunnel_not_taken_is_closed(void **state)
{
    (void)state;
    memset(&us, 0, sizeof(us));
    ts_server s;
    ts_start(&s, server_saw_close, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client *c = colony_client_new(&loop, NULL);
    assert_int_equal(send_upgrade(c, &s), 0);
    assert_true(run_until(&loop, server_closed, &s, 5000));
    assert_int_equal(us.status, 101);
    assert_null(us.t);
    ts_stop(&s);
    close_client_and_loop(&loop, c);
}

static void client_close_ends_tunnel(void **state)
{
    (void)state;
    memset(&us, 0, sizeof(us));
    us.take = 1;
    ts_server s;
    ts_start(&s, upgrade_server, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client *c = colony_client_new(&loop, NULL);
    assert_int_equal(send_upgrade(c, &s), 0);
    size_t want = 9;
    assert_true(run_until(&loop, got_at_least, &want, 5000));
    int closed = 0;
    colony_client_close(c, on_closed_flag, &closed);
    assert_int_equal(us.closes, 1);
    assert_int_equal(us.close_err, COLONY_ECANCELED);
    assert_true(colony_test_run_until(&loop, &closed, 5000));
    ts_stop(&s);
    colony_test_loop_close(&loop);
}

static void unasked_101(ts_server *s, int fd)
{
    char buf[8192];
    if (ts_read_request(s, fd, buf, sizeof(buf)) <= 0) return;
    ts_write(fd, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n\r\n");
    ts_wait_close(fd);
}

static void unasked_101_fails(void **state)
{
    (void)state;
    ts_server s;
    ts_start(&s, unasked_101, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client *c = colony_client_new(&loop, NULL);
    char url[128];
    ts_url(&s, url, sizeof(url), "/x");
    result r = {0};
    assert_int_equal(get(c, url, &r), 0);
    wait_result(&loop, &r);
    assert_int_equal(r.err, COLONY_EPROTO);
    ts_stop(&s);
    close_client_and_loop(&loop, c);
}

static void on_written(colony_client_tunnel *t, int status, void *ud)
{
    (void)t;
    (void)ud;
    us.write_cbs++;
    us.write_cb_status = status;
}

static int resumed;

static void resume_later(uv_timer_t *timer)
{
    (void)timer;
    assert_int_equal(us.got_len, 0); /* not even the bytes that came with the 101 */
    assert_int_equal(colony_client_tunnel_resume(us.t), 0);
    resumed = 1;
}

static void pause_and_write_callbacks(void **state)
{
    (void)state;
    memset(&us, 0, sizeof(us));
    us.take = 1;
    us.pause = 1;
    resumed = 0;
    ts_server s;
    ts_start(&s, upgrade_server, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    colony_client *c = colony_client_new(&loop, NULL);
    assert_int_equal(send_upgrade(c, &s), 0);
    assert_true(colony_test_run_until(&loop, &us.done, 5000));
    assert_non_null(us.t);
    uv_timer_t timer;
    uv_timer_init(&loop, &timer);
    uv_timer_start(&timer, resume_later, 200, 0);
    size_t want = 9; /* HELLO, then the echo of the ping t_data writes */
    assert_true(run_until(&loop, got_at_least, &want, 5000));
    assert_true(resumed);
    assert_memory_equal(us.got, "HELLOping", 9);
    assert_int_equal(colony_client_tunnel_write(us.t, "more", 4, on_written, NULL), 0);
    assert_true(colony_client_tunnel_pending(us.t) <= 4);
    want = 13;
    assert_true(run_until(&loop, got_at_least, &want, 5000));
    assert_int_equal(us.write_cbs, 1);
    assert_int_equal(us.write_cb_status, 0);
    assert_int_equal(colony_client_tunnel_pending(us.t), 0);
    colony_client_tunnel_close(us.t);
    assert_true(run_until(&loop, closed_once, NULL, 5000));
    assert_int_equal(us.close_err, 0);
    uv_close((uv_handle_t *)&timer, NULL);
    ts_stop(&s);
    close_client_and_loop(&loop, c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tunnel_echo_and_server_close),
        cmocka_unit_test(tunnel_not_taken_is_closed),
        cmocka_unit_test(client_close_ends_tunnel),
        cmocka_unit_test(unasked_101_fails),
        cmocka_unit_test(pause_and_write_callbacks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
