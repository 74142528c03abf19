/* colony_probe against real loopback servers: HTTP verdicts (2xx, 429, 5xx,
 * refused, timeout), thresholds, TCP, an endless body cut at max_output and
 * judged by its status, strict targets, scheduling (a hanging target does not
 * delay the others), closing from callbacks and while runs are in flight,
 * and allocation failures in colony_probe_start. */
#include "test_support.h"
#include <string.h>
#include <unistd.h>
#include "client_test_server.h"
#include "colony/probe.h"
#include "core/alloc.h"

static uv_loop_t loop;
static colony_prober *pr;
static volatile int http_code = 200;
static const char *http_body = "hi";

static int setup(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(colony_prober_new(&loop, NULL, &pr), 0);
    http_code = 200;
    http_body = "hi";
    return 0;
}

static int prober_closed;
static void on_prober_closed(void *ud)
{
    *(int *)ud = 1;
}

static int teardown(void **state)
{
    (void)state;
    prober_closed = 0;
    colony_prober_close(pr, on_prober_closed, &prober_closed);
    assert_int_equal(prober_closed, 0); /* never before close returns */
    assert_true(colony_test_run_until(&loop, &prober_closed, 5000));
    colony_test_loop_close(&loop);
    return 0;
}

/* Answers every request (keep-alive) with http_code and http_body. */
static void answer(ts_server *s, int fd)
{
    char buf[8192], out[8192];
    while (ts_read_request(s, fd, buf, sizeof(buf)) > 0) {
        snprintf(out, sizeof(out), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n\r\n%s", http_code,
                 strlen(http_body), http_body);
        if (ts_write(fd, out)) break;
    }
}

/* A 200 head, then a chunked body that never ends. */
static void endless(ts_server *s, int fd)
{
    char buf[8192], chunk[16384 + 16];
    if (ts_read_request(s, fd, buf, sizeof(buf)) <= 0) return;
    if (ts_write(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")) return;
    int h = snprintf(chunk, sizeof(chunk), "4000\r\n");
    memset(chunk + h, 'x', 16384);
    memcpy(chunk + h + 16384, "\r\n", 3);
    while (ts_write(fd, chunk) == 0) {
    }
}

/* Accepts, reads the request, never answers. */
static void hang(ts_server *s, int fd)
{
    (void)s;
    ts_wait_close(fd);
}

typedef struct seen {
    int results, changes;
    colony_probe_status status, run_status;
    int http_status, err;
    char output[8192];
    colony_probe *close_me; /* closed from its own callback */
    uint64_t first_at;      /* loop time of the first result */
} seen;

static void on_result(colony_probe *p, const colony_probe_result *r, void *ud)
{
    seen *s = ud;
    if (!s->results) s->first_at = uv_now(&loop);
    s->results++;
    s->status = r->status;
    s->run_status = r->run_status;
    s->http_status = r->http_status;
    s->err = r->err;
    snprintf(s->output, sizeof(s->output), "%s", r->output);
    assert_true(strlen(r->output) <= 4096);
    if (s->close_me == p) colony_probe_close(p, NULL, NULL);
}

static void on_change(colony_probe *p, const colony_probe_result *r, void *ud)
{
    (void)p;
    seen *s = ud;
    assert_true(r->changed);
    s->changes++;
}

static colony_probe *start(colony_probe_kind kind, const char *target, seen *s, unsigned sbp,
                           unsigned fbc, uint64_t timeout_ms)
{
    colony_probe_options o;
    colony_probe_options_init(&o);
    o.kind = kind;
    o.target = target;
    o.interval_ms = 10;
    o.timeout_ms = timeout_ms;
    o.first_run_ms = 0;
    o.success_before_passing = sbp;
    o.failures_before_critical = fbc;
    o.on_result = on_result;
    o.on_change = on_change;
    o.ud = s;
    colony_probe *p = NULL;
    assert_int_equal(colony_probe_start(pr, &o, &p), 0);
    return p;
}

static void on_deadline(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Runs the loop until s has seen n more results (bounded). */
static void wait_results(seen *s, int n)
{
    int want = s->results + n, expired = 0;
    uv_timer_t deadline;
    uv_timer_init(&loop, &deadline);
    deadline.data = &expired;
    uv_timer_start(&deadline, on_deadline, 5000, 0);
    while (s->results < want && !expired)
        colony_test_run_once(&loop);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(s->results >= want);
}

/* A listener whose accept queue is full (backlog 0, one connection never
 * accepted): a further connect gets no answer, so a TCP probe hangs. */
static int full_listener(int *port, int *filler)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 0), 0);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    *port = ntohs(sa.sin_port);
    *filler = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(*filler, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void wait_status(seen *s, colony_probe_status want)
{
    for (int i = 0; i < 200 && !(s->results && s->status == want); i++)
        wait_results(s, 1);
    assert_int_equal(s->status, want);
}

static void http_verdicts(void **state)
{
    (void)state;
    ts_server srv;
    ts_start(&srv, answer, NULL);
    char url[128];
    ts_url(&srv, url, sizeof(url), "/health");
    seen s = {0};
    colony_probe *p = start(COLONY_PROBE_HTTP, url, &s, 1, 1, 1000);
    wait_status(&s, COLONY_PROBE_PASSING);
    assert_int_equal(s.changes, 1); /* critical (initial) -> passing */
    assert_int_equal(s.http_status, 200);
    char want[200];
    snprintf(want, sizeof(want), "HTTP GET %s: 200 Output: hi", url);
    assert_string_equal(s.output, want);
    assert_int_equal(colony_probe_get_status(p), COLONY_PROBE_PASSING);
    pthread_mutex_lock(&srv.mu);
    assert_non_null(strstr(srv.last_request, "User-Agent: colony-probe"));
    pthread_mutex_unlock(&srv.mu);
    http_code = 429;
    wait_status(&s, COLONY_PROBE_WARNING);
    http_code = 503;
    wait_status(&s, COLONY_PROBE_CRITICAL);
    assert_int_equal(s.changes, 3);
    ts_stop(&srv); /* gone: refused */
    wait_results(&s, 2);
    assert_int_equal(s.status, COLONY_PROBE_CRITICAL);
    assert_int_equal(s.http_status, 0);
    assert_int_equal(s.err, COLONY_ECONNREFUSED);
    assert_non_null(strstr(s.output, "refused"));
    colony_probe_close(p, NULL, NULL);
}

static void thresholds_hold_changes_back(void **state)
{
    (void)state;
    ts_server srv;
    ts_start(&srv, answer, NULL);
    char url[128];
    ts_url(&srv, url, sizeof(url), "/");
    seen s = {0};
    colony_probe *p = start(COLONY_PROBE_HTTP, url, &s, 3, 2, 1000);
    wait_results(&s, 2);
    assert_int_equal(s.status, COLONY_PROBE_CRITICAL); /* 2 of 3 successes: held */
    assert_int_equal(s.run_status, COLONY_PROBE_PASSING);
    wait_results(&s, 1);
    assert_int_equal(s.status, COLONY_PROBE_PASSING);
    assert_int_equal(s.changes, 1);
    http_code = 500;
    wait_results(&s, 1);
    assert_int_equal(s.status, COLONY_PROBE_PASSING); /* 1 of 2 failures: held */
    assert_int_equal(s.run_status, COLONY_PROBE_CRITICAL);
    wait_results(&s, 1);
    assert_int_equal(s.status, COLONY_PROBE_CRITICAL);
    assert_int_equal(s.changes, 2);
    colony_probe_close(p, NULL, NULL);
    ts_stop(&srv);
}

static void tcp_up_and_refused(void **state)
{
    (void)state;
    ts_server srv;
    ts_start(&srv, hang, NULL);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
    seen s = {0};
    colony_probe *p = start(COLONY_PROBE_TCP, addr, &s, 1, 1, 1000);
    wait_status(&s, COLONY_PROBE_PASSING);
    char want[100];
    snprintf(want, sizeof(want), "TCP connect %s: Success", addr);
    assert_string_equal(s.output, want);
    colony_probe_close(p, NULL, NULL);
    ts_stop(&srv);
    seen s2 = {0};
    p = start(COLONY_PROBE_TCP, addr, &s2, 1, 1, 1000); /* nothing listens now */
    wait_results(&s2, 1);
    assert_int_equal(s2.status, COLONY_PROBE_CRITICAL);
    assert_int_equal(s2.err, COLONY_ECONNREFUSED);
    assert_non_null(strstr(s2.output, "connection refused"));
    colony_probe_close(p, NULL, NULL);
}

static void http_timeout(void **state)
{
    (void)state;
    ts_server srv;
    ts_start(&srv, hang, NULL);
    char url[128];
    ts_url(&srv, url, sizeof(url), "/");
    seen s = {0};
    start(COLONY_PROBE_HTTP, url, &s, 1, 1, 100);
    wait_results(&s, 1);
    assert_int_equal(s.status, COLONY_PROBE_CRITICAL);
    assert_int_equal(s.err, COLONY_ETIMEDOUT);
    assert_non_null(strstr(s.output, "timed out"));
    uv_sleep(20); /* the next run starts and hangs: the prober closes it in teardown */
    uv_run(&loop, UV_RUN_NOWAIT);
    colony_prober_stats st;
    colony_prober_get_stats(pr, &st);
    assert_int_equal(st.inflight, 1);
    teardown(state);
    ts_stop(&srv);
    setup(state);
}

/* An endless 200 body: cut after max_output bytes, well before the timeout,
 * judged passing by its status, and the output says it was cut. */
static void endless_body_is_cut_and_judged_by_status(void **state)
{
    (void)state;
    ts_server srv;
    ts_start(&srv, endless, NULL);
    char url[128];
    ts_url(&srv, url, sizeof(url), "/stream");
    seen s = {0};
    uint64_t t0 = uv_now(&loop);
    colony_probe *p = start(COLONY_PROBE_HTTP, url, &s, 1, 1, 5000);
    wait_results(&s, 1);
    assert_true(s.first_at - t0 < 2000); /* did not wait for the timeout */
    assert_int_equal(s.status, COLONY_PROBE_PASSING);
    assert_int_equal(s.http_status, 200);
    assert_int_equal(s.err, 0);
    assert_non_null(strstr(s.output, "200 Output: xxxx"));
    assert_non_null(strstr(s.output, "response body larger than 4096 bytes"));
    assert_null(strstr(s.output, "argument list too long"));
    assert_true(strlen(s.output) <= 4096);
    assert_true(strlen(s.output) > 4000);
    colony_probe_close(p, NULL, NULL);
    ts_stop(&srv);
}

static void output_is_utf8_text(void **state)
{
    (void)state;
    ts_server srv;
    ts_start(&srv, answer, NULL);
    http_body = "ok \xc3\xa9 \xff\xfe end \xe2\x82"; /* é, two bad bytes, a cut euro sign */
    char url[128];
    ts_url(&srv, url, sizeof(url), "/");
    seen s = {0};
    colony_probe *p = start(COLONY_PROBE_HTTP, url, &s, 1, 1, 1000);
    wait_results(&s, 1);
    assert_non_null(strstr(s.output, "Output: ok \xc3\xa9 ?? end ??"));
    colony_probe_close(p, NULL, NULL);
    ts_stop(&srv);
}

static void expect_bad(colony_probe_kind kind, const char *target, int rc, const char *needle)
{
    colony_probe_options o;
    colony_probe_options_init(&o);
    o.kind = kind;
    o.target = target;
    char msg[300];
    assert_int_equal(colony_probe_options_check(&o, msg, sizeof(msg)), rc);
    if (needle && !strstr(msg, needle))
        fail_msg("%s: message \"%s\" lacks \"%s\"", target, msg, needle);
    colony_probe *p = NULL;
    assert_int_equal(colony_probe_start(pr, &o, &p), rc);
    assert_null(p);
}

static void targets_are_parsed_strictly(void **state)
{
    (void)state;
    expect_bad(COLONY_PROBE_HTTP, "https://h:0/", COLONY_EINVAL, "1..65535");
    expect_bad(COLONY_PROBE_HTTP, "ftp://h/", COLONY_EINVAL, "http://");
    expect_bad(COLONY_PROBE_HTTP, "http://h:0/", COLONY_EINVAL, "1..65535");
    expect_bad(COLONY_PROBE_HTTP, "http://h:99999/", COLONY_EINVAL, NULL);
    expect_bad(COLONY_PROBE_TCP, "nohostport", COLONY_EINVAL, "host:port");
    expect_bad(COLONY_PROBE_TCP, "h:0", COLONY_EINVAL, "1 to 65535");
    expect_bad(COLONY_PROBE_TCP, "h:65536", COLONY_EINVAL, "1 to 65535");
    expect_bad(COLONY_PROBE_TCP, "h:80x", COLONY_EINVAL, "1 to 65535");
    expect_bad(COLONY_PROBE_TCP, "h:+80", COLONY_EINVAL, "1 to 65535");
    expect_bad(COLONY_PROBE_TCP, "h: 80", COLONY_EINVAL, "1 to 65535");
    expect_bad(COLONY_PROBE_TCP, "h:", COLONY_EINVAL, "1 to 65535");
    expect_bad(COLONY_PROBE_TCP, ":80", COLONY_EINVAL, "no host");
    expect_bad(COLONY_PROBE_TCP, "::1:80", COLONY_EINVAL, "brackets");
    expect_bad(COLONY_PROBE_TCP, "[zz]:80", COLONY_EINVAL, "IPv6");
    expect_bad(COLONY_PROBE_TCP, "a b:80", COLONY_EINVAL, "character");
    expect_bad(COLONY_PROBE_TCP, "", COLONY_EINVAL, "target");
    colony_probe_options o;
    colony_probe_options_init(&o);
    o.kind = COLONY_PROBE_TCP;
    const char *good[] = {"127.0.0.1:1", "[::1]:65535", "localhost:8080", "h:080"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        o.target = good[i];
        assert_int_equal(colony_probe_options_check(&o, NULL, 0), 0);
    }
    o.kind = COLONY_PROBE_HTTP;
    o.target = "http://[::1]:8080/x?y";
    assert_int_equal(colony_probe_options_check(&o, NULL, 0), 0);
    o.interval_ms = 0;
    assert_int_equal(colony_probe_options_check(&o, NULL, 0), COLONY_EINVAL);
    assert_string_equal(colony_probe_status_name(COLONY_PROBE_PASSING), "passing");
    assert_string_equal(colony_probe_status_name(COLONY_PROBE_WARNING), "warning");
    assert_string_equal(colony_probe_status_name(COLONY_PROBE_CRITICAL), "critical");
}

/* 40 probes of a target that accepts and never answers (1 s timeout) and
 * 10 of a closed port, with room for only 4 runs at once: the hanging
 * target holds one slot, so every closed-port probe reports within a few
 * intervals, not after the hanging ones time out. */
static void hanging_target_does_not_starve_others(void **state)
{
    (void)state;
    colony_prober_close(pr, NULL, NULL);
    colony_prober_options po;
    colony_prober_options_init(&po);
    po.max_inflight = 4;
    assert_int_equal(colony_prober_new(&loop, &po, &pr), 0);
    ts_server slow, closed;
    ts_start(&slow, hang, NULL);
    ts_start(&closed, hang, NULL);
    int closed_port = closed.port;
    ts_stop(&closed);
    char slow_url[128], closed_url[128], closed_addr[64];
    ts_url(&slow, slow_url, sizeof(slow_url), "/");
    snprintf(closed_url, sizeof(closed_url), "http://127.0.0.1:%d/", closed_port);
    snprintf(closed_addr, sizeof(closed_addr), "127.0.0.1:%d", closed_port);
    static seen hung[40], dead[10];
    colony_probe *hp[40], *dp[10];
    memset(hung, 0, sizeof(hung));
    memset(dead, 0, sizeof(dead));
    uint64_t t0 = uv_now(&loop);
    for (int i = 0; i < 40; i++)
        hp[i] = start(COLONY_PROBE_HTTP, slow_url, &hung[i], 1, 1, 1000);
    for (int i = 0; i < 10; i++)
        dp[i] = start(i % 2 ? COLONY_PROBE_HTTP : COLONY_PROBE_TCP,
                      i % 2 ? closed_url : closed_addr, &dead[i], 1, 1, 1000);
    int all = 0;
    colony_prober_stats st;
    for (int spins = 0; !all && spins < 100000 && uv_now(&loop) - t0 < 3000; spins++) {
        uv_run(&loop, UV_RUN_ONCE);
        colony_prober_get_stats(pr, &st);
        assert_true(st.inflight <= 4);
        all = 1;
        for (int i = 0; i < 10; i++)
            all &= dead[i].results >= 3;
    }
    uint64_t took = uv_now(&loop) - t0;
    assert_true(all);
    assert_true(took < 500); /* three runs each, while every hanging run takes 1 s */
    int hung_done = 0;
    for (int i = 0; i < 40; i++)
        hung_done += hung[i].results;
    assert_int_equal(hung_done, 0);
    colony_prober_get_stats(pr, &st);
    assert_int_equal(st.probes, 50);
    for (int i = 0; i < 40; i++)
        colony_probe_close(hp[i], NULL, NULL);
    for (int i = 0; i < 10; i++)
        colony_probe_close(dp[i], NULL, NULL);
    ts_stop(&slow);
}

static int closed_count;
static void count_closed(void *ud)
{
    (void)ud;
    closed_count++;
}

/* Closing: from the probe's own callback, with a run in flight, and with a
 * close callback that never runs before colony_probe_close returns. */
static void close_in_callback_and_in_flight(void **state)
{
    (void)state;
    ts_server srv, slow;
    ts_start(&srv, answer, NULL);
    ts_start(&slow, hang, NULL);
    char url[128], slow_url[128], slow_addr[64];
    ts_url(&srv, url, sizeof(url), "/");
    ts_url(&slow, slow_url, sizeof(slow_url), "/");
    seen a = {0};
    colony_probe *p = start(COLONY_PROBE_HTTP, url, &a, 1, 1, 1000);
    a.close_me = p;
    wait_results(&a, 1);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(a.results, 1); /* closed by its callback: no second run */
    seen b = {0}, c = {0};
    colony_probe *pb = start(COLONY_PROBE_HTTP, slow_url, &b, 1, 1, 5000);
    int full_port, filler;
    int full = full_listener(&full_port, &filler);
    snprintf(slow_addr, sizeof(slow_addr), "127.0.0.1:%d", full_port);
    colony_probe *pc = start(COLONY_PROBE_TCP, slow_addr, &c, 1, 1, 5000);
    colony_prober_stats st = {0};
    for (int i = 0; i < 100 && st.inflight < 2; i++) { /* both runs start and hang */
        usleep(1000);
        uv_run(&loop, UV_RUN_NOWAIT);
        colony_prober_get_stats(pr, &st);
    }
    usleep(20000);
    uv_run(&loop, UV_RUN_NOWAIT);
    colony_prober_get_stats(pr, &st);
    assert_int_equal(st.inflight, 2);
    closed_count = 0;
    colony_probe_close(pb, count_closed, NULL);
    colony_probe_close(pc, count_closed, NULL);
    assert_int_equal(closed_count, 0);
    for (int i = 0; i < 200 && closed_count < 2; i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(closed_count, 2);
    assert_int_equal(b.results + c.results, 0);
    colony_prober_get_stats(pr, &st);
    assert_int_equal(st.inflight, 0);
    close(filler);
    close(full);
    ts_stop(&srv);
    ts_stop(&slow);
}

/* Every allocation of colony_probe_start fails in turn: ENOMEM, nothing
 * leaked or left open (LeakSanitizer and the loop check), then it works. */
static void start_survives_allocation_failures(void **state)
{
    (void)state;
    const char *headers[] = {"X-A", "1", NULL};
    colony_probe_options o;
    colony_probe_options_init(&o);
    o.kind = COLONY_PROBE_HTTP;
    o.target = "http://127.0.0.1:9/x";
    o.method = "POST";
    o.body = "b";
    o.headers = headers;
    int ok = 0;
    for (long n = 0; n < 50 && !ok; n++) {
        colony_probe *p = NULL;
        colony__alloc_fail_after(n);
        int rc = colony_probe_start(pr, &o, &p);
        long failures = colony__alloc_failures();
        colony__alloc_fail_reset();
        if (rc == 0) {
            ok = 1;
            colony_probe_close(p, NULL, NULL);
        } else {
            assert_int_equal(rc, COLONY_ENOMEM);
            assert_true(failures > 0);
            assert_null(p);
        }
    }
    assert_true(ok);
    colony_prober_stats st;
    uv_run(&loop, UV_RUN_NOWAIT);
    colony_prober_get_stats(pr, &st);
    assert_int_equal(st.probes, 0);
}

int main(void)
{
    colony_log_set_level(COLONY_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(http_verdicts, setup, teardown),
        cmocka_unit_test_setup_teardown(thresholds_hold_changes_back, setup, teardown),
        cmocka_unit_test_setup_teardown(tcp_up_and_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(http_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(endless_body_is_cut_and_judged_by_status, setup, teardown),
        cmocka_unit_test_setup_teardown(output_is_utf8_text, setup, teardown),
        cmocka_unit_test_setup_teardown(targets_are_parsed_strictly, setup, teardown),
        cmocka_unit_test_setup_teardown(hanging_target_does_not_starve_others, setup, teardown),
        cmocka_unit_test_setup_teardown(close_in_callback_and_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(start_survives_allocation_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
