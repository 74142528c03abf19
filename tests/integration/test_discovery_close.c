/* Closing a registry handle (colony_registry_client_close) and stopping its
 * children: the close callback never runs before colony_registry_client_close
 * returns, runs exactly once, and only after every heartbeat, watch and the
 * HTTP client are gone — also with calls in flight, with children stopped
 * earlier and still closing, and when close is called from inside a watch's
 * on_change. A fake registry on 127.0.0.1 answers (or stalls). */
#include "client_test_server.h"
#include "colony/discovery.h"

/* Answers every health query with an empty list at index 7, anything else 200. */
static void fake_registry(ts_server *s, int fd)
{
    char buf[8192];
    while (ts_read_request(s, fd, buf, sizeof(buf)) > 0) {
        if (strstr(buf, " /v1/health/service/"))
            ts_write(fd,
                     "HTTP/1.1 200 OK\r\nX-Consul-Index: 7\r\nContent-Type: application/json\r\n"
                     "Content-Length: 2\r\n\r\n[]");
        else
            ts_write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    }
}

/* Reads a request and never answers. */
static void stalling_registry(ts_server *s, int fd)
{
    char buf[8192];
    ts_read_request(s, fd, buf, sizeof(buf));
    ts_wait_close(fd);
}

static void count_close(void *ud)
{
    (*(int *)ud)++;
}

static colony_registry_client *registry_for(ts_server *s)
{
    char url[64];
    ts_url(s, url, sizeof(url), "");
    colony_registry_client_options o = {.url = url, .timeout_ms = 5000, .retry_min_ms = 20};
    colony_registry_client *r = colony_registry_client_new(uv_default_loop(), &o);
    assert_non_null(r);
    return r;
}

static int positive(void *arg)
{
    return *(int *)arg > 0;
}

/* Close with nothing going on: still not before close returns. */
static void close_callback_runs_after_close_returns(void **state)
{
    (void)state;
    uv_loop_t *loop = uv_default_loop();
    ts_server s;
    ts_start(&s, fake_registry, NULL);
    colony_registry_client *r = registry_for(&s);
    int closed = 0;
    colony_registry_client_close(r, count_close, &closed);
    assert_int_equal(closed, 0);
    assert_true(run_until(loop, positive, &closed, 5000));
    uv_run(loop, UV_RUN_NOWAIT);
    assert_int_equal(closed, 1);
    colony_test_loop_close(loop);
    ts_stop(&s);
}

static void ignore_done(int err, void *ud)
{
    (void)err;
    (void)ud;
}

static int ts_requests_at_least_3(void *arg)
{
    return ts_get(arg, &((ts_server *)arg)->requests) >= 3;
}

/* Children with calls in flight (a heartbeat registering, a watch's query, a
 * stopped heartbeat still closing): close waits for all of them. */
static void close_waits_for_children_in_flight(void **state)
{
    (void)state;
    uv_loop_t *loop = uv_default_loop();
    ts_server s;
    ts_start(&s, stalling_registry, NULL);
    colony_registry_client *r = registry_for(&s);
    colony_registration a = {.name = "web",
                             .id = "web-1",
                             .port = 8080,
                             .check = COLONY_CHECK_TTL,
                             .ttl_ms = 3000,
                             .heartbeat = 1};
    colony_registration b = a;
    b.id = "web-2";
    assert_int_equal(colony_registry_client_register(r, &a, ignore_done, NULL), 0);
    assert_int_equal(colony_registry_client_register(r, &b, ignore_done, NULL), 0);
    colony_discovery *d = NULL;
    colony_discovery_options wo = {.service = "web"};
    assert_int_equal(colony_discovery_watch(r, &wo, &d), 0);
    assert_true(run_until(loop, ts_requests_at_least_3, &s, 5000)); /* all three in flight */
    /* web-2's heartbeat stops now and is still closing when close comes */
    assert_int_equal(colony_registry_client_deregister(r, "web-2", ignore_done, NULL), 0);
    int closed = 0;
    colony_registry_client_close(r, count_close, &closed);
    assert_int_equal(closed, 0);
    assert_true(run_until(loop, positive, &closed, 5000));
    uv_run(loop, UV_RUN_NOWAIT);
    assert_int_equal(closed, 1);
    colony_test_loop_close(loop); /* every timer and connection is closed */
    ts_stop(&s);
}

typedef struct change_state {
    colony_registry_client *r;
    int changes, closed, closed_inside;
} change_state;

static void close_on_change(colony_discovery *d, void *ud)
{
    (void)d;
    change_state *cs = ud;
    if (cs->changes++) return;
    colony_registry_client_close(cs->r, count_close, &cs->closed);
    cs->closed_inside = cs->closed;
}

/* Close from inside the watch's own on_change callback. */
static void close_from_inside_on_change(void **state)
{
    (void)state;
    uv_loop_t *loop = uv_default_loop();
    ts_server s;
    ts_start(&s, fake_registry, NULL);
    change_state cs = {.r = registry_for(&s)};
    colony_discovery *d = NULL;
    colony_discovery_options wo = {.service = "web", .on_change = close_on_change, .ud = &cs};
    assert_int_equal(colony_discovery_watch(cs.r, &wo, &d), 0);
    assert_true(run_until(loop, positive, &cs.closed, 5000));
    uv_run(loop, UV_RUN_NOWAIT);
    assert_int_equal(cs.changes, 1);
    assert_int_equal(cs.closed_inside, 0);
    assert_int_equal(cs.closed, 1);
    colony_test_loop_close(loop);
    ts_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(close_callback_runs_after_close_returns),
        cmocka_unit_test(close_waits_for_children_in_flight),
        cmocka_unit_test(close_from_inside_on_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
