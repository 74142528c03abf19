/* The client's origins are bounded and freed: calls to thousands of distinct
 * origins (a gateway or a registry talking to changing instances) leave at
 * most max_origins pools, an origin idle for idle_timeout_ms is freed, a full
 * client makes room by freeing the least recently used origin not in use (and
 * its idle connections), and refuses with COLONY_EBUSY when all are in use.
 * Traffic: 127.0.0.1 and unix sockets in /tmp only. */
#include "client_test_server.h"

#define DISTINCT_ORIGINS 5000

typedef struct origins_run {
    colony_client *client;
    int sent, done, ok_errors, other_errors;
    unsigned max_origins_seen;
} origins_run;

static void send_distinct(origins_run *run);

static void on_distinct_done(colony_client_call *call, int err, const colony_client_response *res,
                             void *ud)
{
    (void)call;
    (void)res;
    origins_run *run = ud;
    run->done++;
    /* nothing listens on these sockets */
    if (err == COLONY_ENOENT || err == COLONY_ECONNREFUSED)
        run->ok_errors++;
    else
        run->other_errors++;
    colony_client_stats st;
    colony_client_get_stats(run->client, &st);
    if (st.origins > run->max_origins_seen) run->max_origins_seen = st.origins;
    send_distinct(run);
}

/* One call to the next origin: a unix socket path that does not exist, so the
 * call fails at once without touching the network. */
static void send_distinct(origins_run *run)
{
    if (run->sent == DISTINCT_ORIGINS) return;
    char url[160];
    snprintf(url, sizeof(url), "http+unix://%%2Ftmp%%2Fcolony-no-such-%d-%d.sock/x", (int)getpid(),
             run->sent++);
    colony_client_request req = {.url = url};
    int rc = colony_client_request_send(run->client, &req, on_distinct_done, run, NULL);
    assert_int_equal(rc, 0);
}

static int distinct_all_done(void *arg)
{
    origins_run *run = arg;
    return run->done == DISTINCT_ORIGINS;
}

static int origins_all_freed(void *arg)
{
    colony_client_stats st;
    colony_client_get_stats(arg, &st);
    return st.origins == 0;
}

/* in_flight calls at a time, each to a new origin: at most max_origins */
static void run_distinct(colony_client *c, origins_run *run, int in_flight)
{
    memset(run, 0, sizeof(*run));
    run->client = c;
    for (int i = 0; i < in_flight; i++)
        send_distinct(run);
    assert_true(run_until(uv_default_loop(), distinct_all_done, run, 30000));
    assert_int_equal(run->ok_errors, DISTINCT_ORIGINS);
    assert_int_equal(run->other_errors, 0);
}

/* 5,000 origins with the default limit: never more than max_origins held,
 * and once idle for idle_timeout_ms every origin is freed. */
static void distinct_origins_are_bounded_and_freed(void **state)
{
    (void)state;
    uv_loop_t *loop = uv_default_loop();
    colony_client_options opts;
    colony_client_options_init(&opts);
    assert_int_equal(opts.max_origins, 1024);
    opts.idle_timeout_ms = 200;
    colony_client *c = colony_client_new(loop, &opts);
    origins_run run;
    run_distinct(c, &run, 32);
    colony_client_stats st;
    colony_client_get_stats(c, &st);
    assert_true(run.max_origins_seen <= 1024);
    assert_true(st.origins > 0 && st.origins <= 1024);
    /* Each origin past the first 1024 made room by evicting one, or found one
     * already gone: on a slow run (ASan, a loaded machine) the 5,000 calls take
     * longer than idle_timeout_ms and early origins expire instead. */
    assert_true(st.origins_evicted + st.origins_expired >= DISTINCT_ORIGINS - 1024);
    assert_int_equal(st.origins_refused, 0);
    assert_true(run_until(loop, origins_all_freed, c, 5000));
    colony_client_get_stats(c, &st);
    assert_int_equal(st.origins, 0);
    assert_int_equal(st.connections, 0);
    assert_int_equal(st.calls, 0);
    assert_int_equal(st.origins_expired + st.origins_evicted, DISTINCT_ORIGINS);
    close_client_and_loop(loop, c);
}

/* A small limit holds: with max_origins 16 the count never passes 16. */
static void small_limit_holds(void **state)
{
    (void)state;
    uv_loop_t *loop = uv_default_loop();
    colony_client_options opts;
    colony_client_options_init(&opts);
    opts.max_origins = 16;
    opts.idle_timeout_ms = 0; /* an empty origin goes at the next loop turn */
    colony_client *c = colony_client_new(loop, &opts);
    origins_run run;
    run_distinct(c, &run, 8);
    assert_true(run.max_origins_seen <= 16);
    assert_true(run_until(loop, origins_all_freed, c, 5000));
    close_client_and_loop(loop, c);
}

static void stall_handler(ts_server *s, int fd)
{
    char buf[4096];
    ts_read_request(s, fd, buf, sizeof(buf));
    ts_wait_close(fd); /* never answers */
}

static int ts_closed_one(void *arg)
{
    return ts_get(arg, &((ts_server *)arg)->closed) >= 1;
}

/* max_origins 2: a third origin evicts the least recently used idle one and
 * closes its pooled connection; with both in use, a new origin is refused. */
static void full_client_evicts_idle_and_refuses_busy(void **state)
{
    (void)state;
    uv_loop_t *loop = uv_default_loop();
    ts_server a, b, stall1, stall2;
    ts_start(&a, ts_handle_routes, NULL);
    ts_start(&b, ts_handle_routes, NULL);
    ts_start(&stall1, stall_handler, NULL);
    ts_start(&stall2, stall_handler, NULL);
    colony_client_options opts;
    colony_client_options_init(&opts);
    opts.max_origins = 2;
    colony_client *c = colony_client_new(loop, &opts);
    char url_a[96], url_b[96], url_s1[96], url_s2[96];
    ts_url(&a, url_a, sizeof(url_a), "/hello");
    ts_url(&b, url_b, sizeof(url_b), "/hello");
    ts_url(&stall1, url_s1, sizeof(url_s1), "/");
    ts_url(&stall2, url_s2, sizeof(url_s2), "/");

    result ra = {0}, rb = {0}, ra2 = {0};
    assert_int_equal(get(c, url_a, &ra), 0);
    wait_result(loop, &ra);
    assert_int_equal(ra.status, 200);
    assert_int_equal(get(c, url_b, &rb), 0);
    wait_result(loop, &rb);
    assert_int_equal(rb.status, 200);
    /* a is used again, so b is now the least recently used */
    assert_int_equal(get(c, url_a, &ra2), 0);
    wait_result(loop, &ra2);
    colony_client_pool_stats ps;
    assert_int_equal(colony_client_get_pool_stats(c, url_b, &ps), 0);
    assert_int_equal(ps.idle, 1);

    /* a new origin: b (idle only) is freed, its connection closed */
    colony_client_call *call1 = NULL, *call2 = NULL;
    result r1 = {0}, r2 = {0}, r3 = {0};
    colony_client_request req1 = {.url = url_s1};
    assert_int_equal(colony_client_request_send(c, &req1, on_done_record, &r1, &call1), 0);
    colony_client_stats st;
    colony_client_get_stats(c, &st);
    assert_int_equal(st.origins, 2);
    assert_int_equal(st.origins_evicted, 1);
    assert_int_equal(colony_client_get_pool_stats(c, url_b, &ps), COLONY_ENOENT);
    assert_int_equal(colony_client_get_pool_stats(c, url_a, &ps), 0);
    assert_true(run_until(loop, ts_closed_one, &b, 5000));

    /* a is idle, so it makes room for stall2; then both origins are busy */
    colony_client_request req2 = {.url = url_s2};
    assert_int_equal(colony_client_request_send(c, &req2, on_done_record, &r2, &call2), 0);
    assert_true(run_until(loop, ts_closed_one, &a, 5000));
    assert_int_equal(get(c, url_a, &r3), COLONY_EBUSY);
    colony_client_get_stats(c, &st);
    assert_int_equal(st.origins, 2);
    assert_int_equal(st.origins_evicted, 2);
    assert_int_equal(st.origins_refused, 1);
    assert_int_equal(r3.done, 0); /* a refused call never calls back */

    colony_client_call_cancel(call1);
    colony_client_call_cancel(call2);
    wait_result(loop, &r1);
    wait_result(loop, &r2);
    assert_int_equal(r1.err, COLONY_ECANCELED);
    close_client_and_loop(loop, c);
    ts_stop(&a);
    ts_stop(&b);
    ts_stop(&stall1);
    ts_stop(&stall2);
}

/* A pooled connection keeps its origin; once the connection's idle timeout
 * closes it, the origin goes too (one idle timeout later). */
static void origin_outlives_its_idle_connection_only(void **state)
{
    (void)state;
    uv_loop_t *loop = uv_default_loop();
    ts_server a;
    ts_start(&a, ts_handle_routes, NULL);
    colony_client_options opts;
    colony_client_options_init(&opts);
    opts.idle_timeout_ms = 100;
    colony_client *c = colony_client_new(loop, &opts);
    char url[96];
    ts_url(&a, url, sizeof(url), "/hello");
    result r = {0};
    assert_int_equal(get(c, url, &r), 0);
    wait_result(loop, &r);
    assert_int_equal(r.status, 200);
    colony_client_stats st;
    colony_client_get_stats(c, &st);
    assert_int_equal(st.origins, 1);
    assert_int_equal(st.connections, 1);
    uint64_t start = colony_test_now_ms();
    assert_true(run_until(loop, origins_all_freed, c, 5000));
    assert_true(colony_test_now_ms() - start >= 150); /* conn idle, then origin idle */
    colony_client_get_stats(c, &st);
    assert_int_equal(st.connections, 0);
    assert_int_equal(st.origins_expired, 1);
    close_client_and_loop(loop, c);
    ts_stop(&a);
}

typedef struct chain {
    colony_client *client;
    char next_url[96];
    result first, second;
} chain;

static void on_first_then_next(colony_client_call *call, int err, const colony_client_response *res,
                               void *ud)
{
    chain *ch = ud;
    on_done_record(call, err, res, &ch->first);
    /* the response's connection is idle again: this call evicts its origin
     * while the response is still being delivered */
    assert_int_equal(get(ch->client, ch->next_url, &ch->second), 0);
    assert_string_equal(res->body, "hello"); /* still valid during done_cb */
}

/* max_origins 1, and the next origin is asked for from inside done_cb. */
static void eviction_from_inside_done_cb(void **state)
{
    (void)state;
    uv_loop_t *loop = uv_default_loop();
    ts_server a, b;
    ts_start(&a, ts_handle_routes, NULL);
    ts_start(&b, ts_handle_routes, NULL);
    colony_client_options opts;
    colony_client_options_init(&opts);
    opts.max_origins = 1;
    chain ch = {.client = colony_client_new(loop, &opts)};
    char url[96];
    ts_url(&a, url, sizeof(url), "/hello");
    ts_url(&b, ch.next_url, sizeof(ch.next_url), "/hello");
    colony_client_request req = {.url = url};
    assert_int_equal(colony_client_request_send(ch.client, &req, on_first_then_next, &ch, NULL), 0);
    wait_result(loop, &ch.first);
    wait_result(loop, &ch.second);
    assert_int_equal(ch.first.status, 200);
    assert_int_equal(ch.second.status, 200);
    colony_client_stats st;
    colony_client_get_stats(ch.client, &st);
    assert_int_equal(st.origins, 1);
    assert_int_equal(st.origins_evicted, 1);
    close_client_and_loop(loop, ch.client);
    ts_stop(&a);
    ts_stop(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(distinct_origins_are_bounded_and_freed),
        cmocka_unit_test(small_limit_holds),
        cmocka_unit_test(full_client_evicts_idle_and_refuses_busy),
        cmocka_unit_test(origin_outlives_its_idle_connection_only),
        cmocka_unit_test(eviction_from_inside_done_cb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
