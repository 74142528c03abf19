/* Per-origin policies over real loopback HTTP: retries and what stops them
 * (method, status, budget, deadline), the circuit breaker with a fake clock,
 * the bulkhead, the fallback, breaker metrics, and set shutdown. The scripted
 * server answers fail_status to the first fail_first requests, then
 * ok_status, after delay_ms, and records how many it served at once. */
#include <time.h>
#include "client_test_server.h"
#include "colony/policy.h"

typedef struct control {
    int fail_first, fail_status, ok_status, delay_ms;
    int seen, inflight, max_inflight;
} control;

static void handle_scripted(ts_server *s, int fd)
{
    control *ctl = s->ud;
    char *buf = malloc(65536);
    for (;;) {
        if (ts_read_request(s, fd, buf, 65536) <= 0) break;
        pthread_mutex_lock(&s->mu);
        int n = ++ctl->seen;
        if (++ctl->inflight > ctl->max_inflight) ctl->max_inflight = ctl->inflight;
        int status = n <= ctl->fail_first ? ctl->fail_status : ctl->ok_status;
        int delay = ctl->delay_ms;
        pthread_mutex_unlock(&s->mu);
        if (delay) {
            struct timespec ts = {delay / 1000, (long)(delay % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        pthread_mutex_lock(&s->mu);
        ctl->inflight--;
        pthread_mutex_unlock(&s->mu);
        char out[128];
        snprintf(out, sizeof(out), "HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nok", status);
        if (ts_write(fd, out) != 0) break;
    }
    free(buf);
}

typedef struct fixture {
    ts_server s;
    control ctl;
    uv_loop_t loop;
    colony_client *client;
    colony_metrics *metrics;
    char url[128], origin[64];
} fixture;

static uint64_t seed = 42;

static void fixture_start(fixture *f, int fail_first, int fail_status)
{
    memset(f, 0, sizeof(*f));
    f->ctl.fail_first = fail_first;
    f->ctl.fail_status = fail_status;
    f->ctl.ok_status = 200;
    ts_start(&f->s, handle_scripted, &f->ctl);
    uv_loop_init(&f->loop);
    f->client = colony_client_new(&f->loop, NULL);
    assert_non_null(f->client);
    f->metrics = colony_metrics_new();
    assert_non_null(f->metrics);
    ts_url(&f->s, f->url, sizeof(f->url), "/x");
    snprintf(f->origin, sizeof(f->origin), "http://127.0.0.1:%d", f->s.port);
}

static void on_set_closed(void *ud)
{
    *(int *)ud = 1;
}

static void close_set(fixture *f, colony_policy_set *ps)
{
    int closed = 0;
    colony_policy_set_close(ps, on_set_closed, &closed);
    assert_true(colony_test_run_until(&f->loop, &closed, 5000));
}

static void fixture_stop(fixture *f)
{
    close_client_and_loop(&f->loop, f->client);
    colony_metrics_free(f->metrics);
    ts_stop(&f->s);
}

static int server_seen(fixture *f)
{
    return ts_get(&f->s, &f->ctl.seen);
}

/* Fast, deterministic retries; breaker and budget off unless a test wants them. */
static colony_policy_options fast_options(void)
{
    colony_policy_options o;
    colony_policy_options_init(&o);
    o.retry.base_ms = 1;
    o.retry.cap_ms = 5;
    o.retry.random = colony_random_splitmix64;
    o.retry.random_ud = &seed;
    o.use_budget = 0;
    o.use_breaker = 0;
    return o;
}

static colony_policy_set *new_set(fixture *f, const colony_policy_options *o, colony_clock clock)
{
    colony_policy_set_options so = {
        .loop = &f->loop, .defaults = o, .clock = clock, .metrics = f->metrics};
    colony_policy_set *ps = colony_policy_set_new(&so);
    assert_non_null(ps);
    return ps;
}

/* One call, run to completion. */
static void call_once(fixture *f, colony_policy_set *ps, const char *method, result *r)
{
    memset(r, 0, sizeof(*r));
    colony_client_request req = {.method = method, .url = f->url};
    if (method && strcmp(method, "POST") == 0) {
        req.body = "payload";
        req.body_len = 7;
    }
    assert_int_equal(colony_policy_call(ps, f->client, &req, on_done_record, r), 0);
    assert_int_equal(r->done, 0); /* never from inside colony_policy_call */
    wait_result(&f->loop, r);
    assert_int_equal(r->done, 1);
}

static double series_value(fixture *f, const char *name)
{
    colony_buf b;
    colony_buf_init(&b, 1 << 20);
    assert_int_equal(colony_metrics_write(f->metrics, &b), 0);
    char key[160];
    snprintf(key, sizeof(key), "%s{origin=\"%s\"} ", name, f->origin);
    const char *at = b.data ? strstr(b.data, key) : NULL;
    double v = at ? strtod(at + strlen(key), NULL) : -1;
    colony_buf_free(&b);
    return v;
}

static void retries_503_then_succeeds(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, 2, 503);
    colony_policy_options o = fast_options();
    colony_policy_set *ps = new_set(&f, &o, (colony_clock){0});
    result r;
    call_once(&f, ps, "GET", &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(server_seen(&f), 3);
    assert_true(series_value(&f, "colony_retries_total") == 2.0);
    /* Exhausted: the last 503 is what the caller sees. */
    pthread_mutex_lock(&f.s.mu);
    f.ctl.fail_first = 100;
    pthread_mutex_unlock(&f.s.mu);
    call_once(&f, ps, "GET", &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 503);
    assert_int_equal(server_seen(&f), 6);
    close_set(&f, ps);
    fixture_stop(&f);
}

static void post_retried_only_when_allowed(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, 100, 503);
    colony_policy_options o = fast_options();
    colony_policy_set *ps = new_set(&f, &o, (colony_clock){0});
    result r;
    call_once(&f, ps, "POST", &r);
    assert_int_equal(r.status, 503);
    assert_int_equal(server_seen(&f), 1);
    close_set(&f, ps);

    o.retry.allow_non_idempotent = 1;
    ps = new_set(&f, &o, (colony_clock){0});
    call_once(&f, ps, "POST", &r);
    assert_int_equal(r.status, 503);
    assert_int_equal(server_seen(&f), 4);
    /* The body was kept for the retries. */
    pthread_mutex_lock(&f.s.mu);
    assert_non_null(strstr(f.s.last_request, "\r\n\r\npayload"));
    pthread_mutex_unlock(&f.s.mu);
    close_set(&f, ps);
    fixture_stop(&f);
}

static void no_retry_on_400(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, 100, 400);
    colony_policy_options o = fast_options();
    colony_policy_set *ps = new_set(&f, &o, (colony_clock){0});
    result r;
    call_once(&f, ps, "GET", &r);
    assert_int_equal(r.status, 400);
    assert_int_equal(server_seen(&f), 1);
    close_set(&f, ps);
    fixture_stop(&f);
}

/* 50 % of requests and no floor: calls 1..4 may retry 0, 1, 0, 1 times. */
static void budget_stops_retries(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, 100, 503);
    colony_policy_options o = fast_options();
    o.use_budget = 1;
    o.budget.percent = 50;
    o.budget.min_retries_per_sec = 0;
    colony_policy_set *ps = new_set(&f, &o, (colony_clock){0});
    result r;
    int expected[] = {1, 3, 4, 6};
    for (int i = 0; i < 4; i++) {
        call_once(&f, ps, "GET", &r);
        assert_int_equal(r.status, 503);
        assert_int_equal(server_seen(&f), expected[i]);
    }
    assert_true(series_value(&f, "colony_retries_total") == 2.0);
    close_set(&f, ps);
    fixture_stop(&f);
}

typedef struct transitions {
    int n;
    colony_breaker_state seen[8];
} transitions;

static void record_transition(const char *origin, colony_breaker_state old_state,
                              colony_breaker_state new_state, void *ud)
{
    (void)origin;
    (void)old_state;
    transitions *t = ud;
    if (t->n < 8) t->seen[t->n++] = new_state;
}

static void breaker_opens_rejects_half_opens_and_closes(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, 3, 503);
    colony_fake_clock fake;
    colony_fake_clock_init(&fake, 1000);
    colony_policy_options o = fast_options();
    o.retry.max_attempts = 1;
    o.use_breaker = 1;
    o.breaker.minimum_calls = 3;
    o.breaker.window_calls = 10;
    o.breaker.open_ms = 1000;
    o.breaker.half_open_calls = 2;
    transitions t = {0};
    colony_policy_set_options so = {.loop = &f.loop,
                                    .defaults = &o,
                                    .clock = colony_clock_fake(&fake),
                                    .metrics = f.metrics,
                                    .on_breaker_change = record_transition,
                                    .ud = &t};
    colony_policy_set *ps = colony_policy_set_new(&so);
    assert_non_null(ps);
    result r;
    for (int i = 0; i < 3; i++) {
        call_once(&f, ps, "GET", &r);
        assert_int_equal(r.status, 503);
    }
    assert_int_equal(colony_policy_breaker_state(ps, f.origin), COLONY_BREAKER_OPEN);
    assert_true(series_value(&f, "colony_breaker_state") == 1.0);
    /* Open: rejected without touching the server. */
    for (int i = 0; i < 2; i++) {
        call_once(&f, ps, "GET", &r);
        assert_int_equal(r.err, COLONY_EBUSY);
    }
    assert_int_equal(server_seen(&f), 3);
    assert_true(series_value(&f, "colony_breaker_rejections_total") == 2.0);
    /* After open_ms: two trials, both succeed, the breaker closes. */
    colony_fake_clock_advance(&fake, 1000);
    call_once(&f, ps, "GET", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(colony_policy_breaker_state(ps, f.origin), COLONY_BREAKER_HALF_OPEN);
    assert_true(series_value(&f, "colony_breaker_state") == 2.0);
    call_once(&f, ps, "GET", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(colony_policy_breaker_state(ps, f.origin), COLONY_BREAKER_CLOSED);
    assert_true(series_value(&f, "colony_breaker_state") == 0.0);
    assert_int_equal(server_seen(&f), 5);
    assert_int_equal(t.n, 3);
    assert_int_equal(t.seen[0], COLONY_BREAKER_OPEN);
    assert_int_equal(t.seen[1], COLONY_BREAKER_HALF_OPEN);
    assert_int_equal(t.seen[2], COLONY_BREAKER_CLOSED);
    close_set(&f, ps);
    fixture_stop(&f);
}

static int fallback_cached(const char *origin, int err, int status, colony_client_response *out,
                           void *ud)
{
    (void)origin;
    (void)status;
    int *calls = ud;
    (*calls)++;
    if (err != COLONY_EBUSY) return err;
    out->status = 200;
    out->body = "cached";
    out->body_len = 6;
    return 0;
}

static void fallback_answers_when_open(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, 100, 503);
    colony_fake_clock fake;
    colony_fake_clock_init(&fake, 1000);
    colony_policy_options o = fast_options();
    o.retry.max_attempts = 1;
    o.use_breaker = 1;
    o.breaker.minimum_calls = 2;
    int fallback_calls = 0;
    o.fallback = fallback_cached;
    o.fallback_ud = &fallback_calls;
    o.fallback_on = COLONY_FALLBACK_ON_REJECT;
    colony_policy_set *ps = new_set(&f, &o, colony_clock_fake(&fake));
    result r;
    for (int i = 0; i < 2; i++) {
        call_once(&f, ps, "GET", &r);
        assert_int_equal(r.status, 503); /* failures are not covered: on = REJECT */
    }
    call_once(&f, ps, "GET", &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "cached");
    assert_int_equal(fallback_calls, 1);
    assert_int_equal(server_seen(&f), 2);
    close_set(&f, ps);
    fixture_stop(&f);
}

static int all_done(void *arg)
{
    result *rs = arg;
    for (int i = 0; i < 6; i++)
        if (!rs[i].done) return 0;
    return 1;
}

static void bulkhead_limits_concurrency(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, 0, 503);
    f.ctl.delay_ms = 150;
    colony_policy_options o = fast_options();
    o.use_bulkhead = 1;
    o.bulkhead.max_concurrent = 2;
    o.bulkhead.max_queued = 2;
    colony_policy_set *ps = new_set(&f, &o, (colony_clock){0});
    result *rs = calloc(6, sizeof(*rs));
    colony_client_request req = {.url = f.url};
    for (int i = 0; i < 6; i++)
        assert_int_equal(colony_policy_call(ps, f.client, &req, on_done_record, &rs[i]), 0);
    assert_int_equal(colony_policy_set_active(ps), 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(rs[i].done, 0);
    assert_true(run_until(&f.loop, all_done, rs, 10000));
    int ok = 0, busy = 0;
    for (int i = 0; i < 6; i++) {
        if (rs[i].err == 0 && rs[i].status == 200) ok++;
        if (rs[i].err == COLONY_EBUSY) busy++;
    }
    assert_int_equal(ok, 4);
    assert_int_equal(busy, 2);
    assert_int_equal(server_seen(&f), 4);
    assert_true(ts_get(&f.s, &f.ctl.max_inflight) <= 2);
    assert_int_equal(colony_policy_set_active(ps), 0);
    free(rs);
    close_set(&f, ps);
    fixture_stop(&f);
}

static void bulkhead_queue_times_out(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, 0, 503);
    f.ctl.delay_ms = 400;
    colony_policy_options o = fast_options();
    o.use_bulkhead = 1;
    o.bulkhead.max_concurrent = 1;
    o.bulkhead.max_queued = 4;
    o.bulkhead.queue_timeout_ms = 50;
    colony_policy_set *ps = new_set(&f, &o, (colony_clock){0});
    result *rs = calloc(6, sizeof(*rs));
    colony_client_request req = {.url = f.url};
    for (int i = 0; i < 2; i++)
        assert_int_equal(colony_policy_call(ps, f.client, &req, on_done_record, &rs[i]), 0);
    for (int i = 2; i < 6; i++)
        rs[i].done = 1;
    assert_true(run_until(&f.loop, all_done, rs, 10000));
    assert_int_equal(rs[0].status, 200);
    assert_int_equal(rs[1].err, COLONY_ETIMEDOUT);
    assert_int_equal(server_seen(&f), 1);
    free(rs);
    close_set(&f, ps);
    fixture_stop(&f);
}

static void deadline_caps_total_time(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, 1000000, 503);
    f.ctl.delay_ms = 20;
    colony_policy_options o = fast_options();
    o.retry.max_attempts = 1000;
    o.retry.base_ms = 10;
    o.retry.cap_ms = 20;
    o.deadline_ms = 300;
    colony_policy_set *ps = new_set(&f, &o, (colony_clock){0});
    result r;
    uint64_t start = colony_test_now_ms();
    call_once(&f, ps, "GET", &r);
    uint64_t elapsed = colony_test_now_ms() - start;
    assert_true(r.err == COLONY_ETIMEDOUT || r.status == 503);
    assert_true(elapsed >= 200);
    assert_true(elapsed < 2000);
    int seen = server_seen(&f);
    assert_true(seen >= 2);
    assert_true(seen < 100);
    /* Each attempt tells the callee what is left. */
    pthread_mutex_lock(&f.s.mu);
    const char *h = strcasestr(f.s.last_request, "\r\nX-Colony-Deadline-Ms: ");
    assert_non_null(h);
    long left = strtol(h + 24, NULL, 10);
    pthread_mutex_unlock(&f.s.mu);
    assert_true(left > 0 && left < 300);
    close_set(&f, ps);
    fixture_stop(&f);
}

static uint64_t half_random(void *ud)
{
    (void)ud;
    return UINT64_MAX / 2;
}

/* Closing the set cancels a call waiting to retry: its callback gets ECANCELED. */
static void close_cancels_calls_in_progress(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, 100, 503);
    colony_policy_options o = fast_options();
    o.retry.base_ms = 5000;
    o.retry.cap_ms = 5000;
    o.retry.max_attempts = 2;
    o.retry.random = half_random; /* a 2.5 s backoff */
    colony_policy_set *ps = new_set(&f, &o, (colony_clock){0});
    result r = {0};
    colony_client_request req = {.url = f.url};
    assert_int_equal(colony_policy_call(ps, f.client, &req, on_done_record, &r), 0);
    /* Wait for the first attempt to be answered, then close during the backoff. */
    uint64_t end = colony_test_now_ms() + 5000;
    while (server_seen(&f) < 1 && colony_test_now_ms() < end)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    int never = 0;
    colony_test_run_until(&f.loop, &never, 150); /* the response arrives; backoff starts */
    assert_int_equal(r.done, 0);
    assert_int_equal(colony_policy_set_active(ps), 1);
    uint64_t start = colony_test_now_ms();
    close_set(&f, ps);
    assert_true(colony_test_now_ms() - start < 2000);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.err, COLONY_ECANCELED);
    assert_int_equal(colony_policy_call(NULL, f.client, &req, on_done_record, &r), COLONY_EINVAL);
    fixture_stop(&f);
}

/* ---- a service whose calls go through its policy set ---- */

typedef struct service_test {
    ts_server s;
    control ctl;
    char url[128];
    colony_service *svc;
    result front;
} service_test;

static service_test st;

static void on_downstream(colony_client_call *call, int err, const colony_client_response *res,
                          void *ud)
{
    (void)call;
    char body[64];
    int n = snprintf(body, sizeof(body), "%d %d", err, res ? res->status : 0);
    colony_respond(ud, 200, "text/plain", body, (size_t)n);
}

static void proxy_handler(colony_request *req, void *ud)
{
    (void)ud;
    colony_client_request down = {.url = st.url};
    int rc = colony_request_call(req, colony_service_client(st.svc), &down, on_downstream, req);
    if (rc) colony_respond_error(req, 500, "call", colony_strerror(rc));
}

static void on_front_done(colony_client_call *call, int err, const colony_client_response *res,
                          void *ud)
{
    on_done_record(call, err, res, ud);
    colony_service_stop(st.svc);
}

static void on_service_started(colony_service *svc, void *ud)
{
    (void)ud;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/proxy", colony_service_port(svc));
    const char *headers[] = {COLONY_DEADLINE_HEADER, "5000", NULL};
    colony_client_request req = {.url = url, .headers = headers};
    assert_int_equal(colony_client_request_send(colony_service_client(svc), &req, on_front_done,
                                                &st.front, NULL),
                     0);
}

static void service_calls_go_through_policy(void **state)
{
    (void)state;
    memset(&st, 0, sizeof(st));
    st.ctl = (control){.fail_first = 2, .fail_status = 503, .ok_status = 200};
    ts_start(&st.s, handle_scripted, &st.ctl);
    ts_url(&st.s, st.url, sizeof(st.url), "/x");
    char *argv[] = {"policy-test", NULL};
    int exit_code = 0;
    colony_service_options so = {.name = "policy-test",
                                 .argc = 1,
                                 .argv = argv,
                                 .config_dir = "/nonexistent-colony-config",
                                 .listen = "127.0.0.1:0"};
    st.svc = colony_service_new(&so, stderr, &exit_code);
    assert_non_null(st.svc);
    assert_int_equal(
        colony_router_add(colony_service_router(st.svc), "GET", "/proxy", proxy_handler, NULL), 0);
    colony_policy_options o = fast_options();
    colony_policy_set_options pso = {.loop = colony_service_loop(st.svc),
                                     .defaults = &o,
                                     .metrics = colony_service_metrics(st.svc)};
    colony_policy_set *ps = colony_policy_set_new(&pso);
    assert_non_null(ps);
    assert_int_equal(colony_service_set_policy(st.svc, ps), 0);
    assert_int_equal(colony_service_set_policy(st.svc, ps), COLONY_EEXIST);
    colony_service_on_started(st.svc, on_service_started, NULL);
    assert_int_equal(colony_service_run(st.svc), 0); /* frees the service and the set */
    assert_int_equal(st.front.done, 1);
    assert_int_equal(st.front.err, 0);
    assert_string_equal(st.front.body, "0 200");
    assert_int_equal(ts_get(&st.s, &st.ctl.seen), 3);
    /* The policy sent what was left of the caller's 5 s, once per attempt. */
    pthread_mutex_lock(&st.s.mu);
    const char *h = strcasestr(st.s.last_request, "\r\nX-Colony-Deadline-Ms: ");
    assert_non_null(h);
    long left = strtol(h + 24, NULL, 10);
    assert_null(strcasestr(h + 1, "\r\nX-Colony-Deadline-Ms: "));
    pthread_mutex_unlock(&st.s.mu);
    assert_true(left > 0 && left <= 5000);
    ts_stop(&st.s);
}

/* A service that cannot listen still frees the policy set it was given. */
static void service_that_cannot_listen_frees_policy(void **state)
{
    (void)state;
    char *argv[] = {"policy-test", NULL};
    int exit_code = 0;
    colony_service_options so = {.name = "policy-test",
                                 .argc = 1,
                                 .argv = argv,
                                 .config_dir = "/nonexistent-colony-config",
                                 .listen = "unix:/nonexistent-colony-dir/service.sock"};
    colony_service *svc = colony_service_new(&so, stderr, &exit_code);
    assert_non_null(svc);
    colony_policy_options o = fast_options();
    colony_policy_set_options pso = {
        .loop = colony_service_loop(svc), .defaults = &o, .metrics = colony_service_metrics(svc)};
    colony_policy_set *ps = colony_policy_set_new(&pso);
    assert_non_null(ps);
    assert_int_equal(colony_service_set_policy(svc, ps), 0);
    assert_int_equal(colony_service_run(svc), 1); /* LeakSanitizer checks the set is freed */
}

int main(void)
{
    colony_log_set_level(COLONY_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(retries_503_then_succeeds),
        cmocka_unit_test(post_retried_only_when_allowed),
        cmocka_unit_test(no_retry_on_400),
        cmocka_unit_test(budget_stops_retries),
        cmocka_unit_test(breaker_opens_rejects_half_opens_and_closes),
        cmocka_unit_test(fallback_answers_when_open),
        cmocka_unit_test(bulkhead_limits_concurrency),
        cmocka_unit_test(bulkhead_queue_times_out),
        cmocka_unit_test(deadline_caps_total_time),
        cmocka_unit_test(close_cancels_calls_in_progress),
        cmocka_unit_test(service_calls_go_through_policy),
        cmocka_unit_test(service_that_cannot_listen_frees_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
