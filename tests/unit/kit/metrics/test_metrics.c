/* Metrics: exact exposition text, escaping, label sets, per-thread cells
 * summed at scrape, registration rules, process metrics. */
#include "test_support.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "colony/colony.h"
#include "colony/metrics.h"
#include "core/alloc.h"

static char *scrape(colony_metrics *m)
{
    colony_buf b;
    colony_buf_init(&b, 1 << 20);
    assert_int_equal(colony_metrics_write(m, &b), 0);
    return colony_buf_detach(&b, NULL);
}

static void counter_with_labels_exact_text(void **state)
{
    (void)state;
    colony_metrics *m = colony_metrics_new();
    colony_metric *c = colony_metrics_counter(m, "jobs_total", "Jobs run.\nBy queue \\ kind.",
                                              (const char *[]){"queue", "kind", NULL});
    assert_non_null(c);
    colony_metric_inc(colony_metric_with(c, "email", "a\"b\\c\nd"), 2);
    colony_metric_inc(colony_metric_with(c, "sms", "x"), 0.5);
    colony_metric_inc(colony_metric_with(c, "email", "a\"b\\c\nd"), 1);
    colony_metric_inc(colony_metric_with(c, "sms", "x"), -4); /* counters never go down */
    char *text = scrape(m);
    assert_string_equal(text, "# HELP jobs_total Jobs run.\\nBy queue \\\\ kind.\n"
                              "# TYPE jobs_total counter\n"
                              "jobs_total{queue=\"email\",kind=\"a\\\"b\\\\c\\nd\"} 3\n"
                              "jobs_total{queue=\"sms\",kind=\"x\"} 0.5\n");
    free(text);
    assert_null(colony_metric_with(c, "only-one", NULL));
    colony_metrics_free(m);
}

static void gauge_and_histogram_exact_text(void **state)
{
    (void)state;
    colony_metrics *m = colony_metrics_new();
    colony_metric *g = colony_metrics_gauge(m, "queue_depth", "Depth.", NULL);
    colony_metric_series *gs = colony_metric_with(g);
    colony_metric_set(gs, 10);
    colony_metric_inc(gs, -3);
    assert_true(colony_metric_value(gs) == 7);
    double buckets[] = {0.1, 1};
    colony_metric *h = colony_metrics_histogram(m, "latency_seconds", "Latency.",
                                                (const char *[]){"route", NULL}, buckets, 2);
    colony_metric_series *hs = colony_metric_with(h, "/users/:id");
    colony_metric_observe(hs, 0.05);
    colony_metric_observe(hs, 0.1); /* le is inclusive */
    colony_metric_observe(hs, 0.5);
    colony_metric_observe(hs, 3);
    char *text = scrape(m);
    assert_string_equal(text, "# HELP queue_depth Depth.\n"
                              "# TYPE queue_depth gauge\n"
                              "queue_depth 7\n"
                              "# HELP latency_seconds Latency.\n"
                              "# TYPE latency_seconds histogram\n"
                              "latency_seconds_bucket{route=\"/users/:id\",le=\"0.1\"} 2\n"
                              "latency_seconds_bucket{route=\"/users/:id\",le=\"1\"} 3\n"
                              "latency_seconds_bucket{route=\"/users/:id\",le=\"+Inf\"} 4\n"
                              "latency_seconds_sum{route=\"/users/:id\"} 3.65\n"
                              "latency_seconds_count{route=\"/users/:id\"} 4\n");
    free(text);
    colony_metrics_free(m);
}

static void registration_rules(void **state)
{
    (void)state;
    colony_metrics *m = colony_metrics_new();
    colony_metric *a = colony_metrics_counter(m, "a_total", "A.", (const char *[]){"x", NULL});
    assert_non_null(a);
    assert_ptr_equal(colony_metrics_counter(m, "a_total", "A.", (const char *[]){"x", NULL}), a);
    assert_null(colony_metrics_gauge(m, "a_total", "A.", (const char *[]){"x", NULL}));
    assert_null(colony_metrics_counter(m, "a_total", "A.", (const char *[]){"y", NULL}));
    assert_null(colony_metrics_counter(m, "9bad", "", NULL));
    assert_null(colony_metrics_counter(m, "bad-name", "", NULL));
    assert_null(colony_metrics_counter(m, "ok_total", "", (const char *[]){"__reserved", NULL}));
    assert_null(colony_metrics_counter(m, "ok_total", "", (const char *[]){"x", "x", NULL}));
    assert_null(colony_metrics_histogram(m, "h", "", NULL, (double[]){1, 1}, 2));
    assert_null(colony_metrics_histogram(m, "h", "", (const char *[]){"le", NULL}, NULL, 0));
    assert_non_null(colony_metrics_counter(m, "ns:sub_total", "", NULL));
    colony_metrics_free(m);
}

typedef struct worker_arg {
    colony_metric *counter, *hist;
} worker_arg;

static void *hammer(void *p)
{
    worker_arg *w = p;
    colony_metric_series *s = colony_metric_with(w->counter, "GET", "/x");
    for (int i = 0; i < 100000; i++) {
        colony_metric_inc(s, 1);
        colony_metric_observe(colony_metric_with(w->hist, "GET"), 0.002);
    }
    return NULL;
}

static void threads_sum_exactly(void **state)
{
    (void)state;
    colony_metrics *m = colony_metrics_new();
    worker_arg w = {
        colony_metrics_counter(m, "req_total", "", (const char *[]){"m", "r", NULL}),
        colony_metrics_histogram(m, "d_seconds", "", (const char *[]){"m", NULL}, NULL, 0)};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, &w);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_true(colony_metric_value(colony_metric_with(w.counter, "GET", "/x")) == 400000);
    char *text = scrape(m);
    assert_non_null(strstr(text, "d_seconds_count{m=\"GET\"} 400000\n"));
    assert_non_null(strstr(text, "d_seconds_bucket{m=\"GET\",le=\"0.005\"} 400000\n"));
    free(text);
    colony_metrics_free(m);
}

static void many_series_grow_the_table(void **state)
{
    (void)state;
    colony_metrics *m = colony_metrics_new();
    colony_metric *c = colony_metrics_counter(m, "s_total", "", (const char *[]){"id", NULL});
    char id[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "%d", i);
        colony_metric_inc(colony_metric_with(c, id), (double)i);
    }
    for (int i = 0; i < 1000; i += 97) {
        snprintf(id, sizeof(id), "%d", i);
        assert_true(colony_metric_value(colony_metric_with(c, id)) == (double)i);
    }
    colony_metrics_free(m);
}

static double forty_two(void *ud)
{
    (void)ud;
    return 42;
}

static void process_and_callback_metrics(void **state)
{
    (void)state;
    colony_metrics *m = colony_metrics_new();
    assert_int_equal(colony_metrics_register_process(m), 0);
    assert_int_equal(colony_metrics_gauge_fn(m, "answer", "The answer.", forty_two, NULL), 0);
    char *text = scrape(m);
    assert_non_null(strstr(text, "# TYPE process_cpu_seconds_total counter\n"));
    assert_non_null(strstr(text, "\nprocess_resident_memory_bytes "));
    assert_non_null(strstr(text, "\nprocess_open_fds "));
    assert_non_null(strstr(text, "\nprocess_start_time_seconds 1"));
    assert_non_null(strstr(text, "\nanswer 42\n"));
    assert_null(strstr(text, "process_resident_memory_bytes 0\n"));
    free(text);
    colony_metrics_free(m);
}

/* Exit status of `promtool check metrics` on text. */
static int promtool_status(const char *text)
{
    FILE *p = popen("promtool check metrics >/dev/null 2>&1", "w");
    assert_non_null(p);
    fputs(text, p);
    return pclose(p);
}

/* Prometheus's own linter accepts the exposition (promtool from Debian's
 * prometheus package, installed by scripts/bootstrap). */
static void promtool_accepts_output(void **state)
{
    (void)state;
    colony_metrics *m = colony_metrics_new();
    colony_metrics_register_process(m);
    colony_metric *c =
        colony_metrics_counter(m, "http_requests_total", "Requests.",
                               (const char *[]){"method", "route", "status_code", NULL});
    colony_metric_inc(colony_metric_with(c, "GET", "/users/:id", "200"), 3);
    colony_metric *h = colony_metrics_histogram(m, "http_request_duration_seconds", "Duration.",
                                                (const char *[]){"route", NULL}, NULL, 0);
    colony_metric_observe(colony_metric_with(h, "/a\"b"), 0.2);
    char *text = scrape(m);
    int status = promtool_status(text);
    free(text);
    colony_metrics_free(m);
    assert_int_equal(status, 0);
}

static size_t count_substr(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* One scripted use of a registry; every call's result is recorded. */
typedef struct metrics_run {
    colony_metrics *m;
    colony_metric *counter, *hist;
    colony_metric_series *series, *hseries;
    int fn_rc, process_rc, write_rc;
    char *text;
} metrics_run;

static void metrics_script(metrics_run *r)
{
    memset(r, 0, sizeof(*r));
    r->fn_rc = r->process_rc = r->write_rc = 1; /* not run */
    r->m = colony_metrics_new();
    if (!r->m) return;
    r->counter = colony_metrics_counter(r->m, "x_total", "X.", (const char *[]){"a", NULL});
    r->series = r->counter ? colony_metric_with(r->counter, "v") : NULL;
    colony_metric_inc(r->series, 1); /* NULL-safe */
    r->hist =
        colony_metrics_histogram(r->m, "h_seconds", "H.", (const char *[]){"b", NULL}, NULL, 0);
    r->hseries = r->hist ? colony_metric_with(r->hist, "w") : NULL;
    colony_metric_observe(r->hseries, 0.5);
    r->fn_rc = colony_metrics_gauge_fn(r->m, "answer", "The answer.", forty_two, NULL);
    r->process_rc = colony_metrics_register_process(r->m);
    colony_buf b;
    colony_buf_init(&b, 1 << 20);
    r->write_rc = colony_metrics_write(r->m, &b);
    if (r->write_rc == 0) r->text = colony_buf_detach(&b, NULL);
    colony_buf_free(&b);
}

/* After a failed run the registry works: every family registers (again) and
 * renders once, the counter still counts, nothing is half there. */
static void metrics_check_consistent(metrics_run *r)
{
    colony_metrics *m = r->m;
    colony_metric *c = colony_metrics_counter(m, "x_total", "X.", (const char *[]){"a", NULL});
    assert_non_null(c);
    if (r->counter) assert_ptr_equal(c, r->counter);
    colony_metric_series *s = colony_metric_with(c, "v");
    assert_non_null(s);
    if (r->series) assert_ptr_equal(s, r->series);
    double before = colony_metric_value(s);
    assert_true(before == 0 || before == 1); /* the failed run's inc landed or was dropped */
    colony_metric_inc(s, 1);
    assert_true(colony_metric_value(s) == before + 1);
    colony_metric *h =
        colony_metrics_histogram(m, "h_seconds", "H.", (const char *[]){"b", NULL}, NULL, 0);
    assert_non_null(h);
    colony_metric_observe(colony_metric_with(h, "w"), 0.5);
    assert_int_equal(colony_metrics_gauge_fn(m, "answer", "The answer.", forty_two, NULL), 0);
    assert_int_equal(colony_metrics_register_process(m), 0);
    assert_int_equal(colony_metric_series_count(c), 1);
    assert_int_equal(colony_metric_series_count(h), 1);
    char *text = scrape(m);
    assert_int_equal(count_substr(text, "# TYPE "), 9);
    assert_int_equal(count_substr(text, "# TYPE x_total counter\n"), 1);
    assert_int_equal(count_substr(text, "\nx_total{a=\"v\"} "), 1);
    assert_int_equal(count_substr(text, "h_seconds_count{b=\"w\"} "), 1);
    assert_non_null(strstr(text, "\nanswer 42\n"));
    free(text);
}

/* Fails the n-th allocation (and every one after it) of the script, for
 * n = 0, 1, 2, ... until a run needs no failure: every run before that had a
 * failure injected, each failing call said so (NULL, or COLONY_ENOMEM and
 * never another code), and the registry stayed consistent. */
static void allocation_failures_are_handled(void **state)
{
    (void)state;
    long n, failing_runs = 0;
    int clean = 0;
    for (n = 0; n < 100000 && !clean; n++) {
        metrics_run r;
        colony__alloc_fail_after(n);
        metrics_script(&r);
        long injected = colony__alloc_failures();
        colony__alloc_fail_reset();
        clean = injected == 0;
        if (clean) {
            assert_non_null(r.m);
            assert_non_null(r.series);
            assert_non_null(r.hseries);
            assert_int_equal(r.fn_rc, 0);
            assert_int_equal(r.process_rc, 0);
            assert_int_equal(r.write_rc, 0);
        } else {
            failing_runs++;
            int rcs[] = {r.fn_rc, r.process_rc, r.write_rc};
            for (size_t i = 0; i < 3; i++)
                assert_true(rcs[i] == 0 || rcs[i] == COLONY_ENOMEM || (rcs[i] == 1 && !r.m));
            /* something reported the failure */
            assert_true(!r.m || !r.counter || !r.series || !r.hist || !r.hseries || r.fn_rc ||
                        r.process_rc || r.write_rc);
        }
        if (r.m) metrics_check_consistent(&r);
        free(r.text);
        colony_metrics_free(r.m);
    }
    assert_true(clean);
    assert_int_equal(failing_runs, n - 1);
    assert_true(failing_runs >= 20); /* every allocation of the script was failed once */
}

/* Past a family's series cap, new label sets share one overflow series:
 * the exposition stays bounded and no update is lost. */
static void series_cap_folds_into_overflow(void **state)
{
    (void)state;
    colony_metrics *m = colony_metrics_new();
    colony_metric *c =
        colony_metrics_counter(m, "req_total", "R.", (const char *[]){"method", "path", NULL});
    colony_metric *h = colony_metrics_histogram(m, "d_seconds", "D.",
                                                (const char *[]){"path", NULL}, (double[]){1}, 1);
    assert_int_equal(colony_metric_set_max_series(c, 100), 0);
    assert_int_equal(colony_metric_set_max_series(c, 0), COLONY_EINVAL);
    char method[32], path[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(method, sizeof(method), "M%d", i);
        snprintf(path, sizeof(path), "/p/%d", i);
        colony_metric_inc(colony_metric_with(c, method, path), 1);
        colony_metric_observe(colony_metric_with(h, path), 0.5);
    }
    assert_int_equal(colony_metric_series_count(c), 101);
    assert_int_equal(colony_metric_series_count(h), COLONY_METRIC_MAX_SERIES_DEFAULT > 5000
                                                        ? 5000
                                                        : COLONY_METRIC_MAX_SERIES_DEFAULT + 1);
    /* the first 100 keep their series; the rest went to the overflow series */
    assert_true(colony_metric_value(colony_metric_with(c, "M7", "/p/7")) == 1);
    colony_metric_series *over = colony_metric_with(c, "M4999", "/p/4999");
    assert_ptr_equal(
        over, colony_metric_with(c, COLONY_METRIC_OVERFLOW_VALUE, COLONY_METRIC_OVERFLOW_VALUE));
    assert_true(colony_metric_value(over) == 4900);
    char *text = scrape(m);
    assert_int_equal(count_substr(text, "\nreq_total{"), 101);
    assert_non_null(
        strstr(text, "\nreq_total{method=\"__overflow__\",path=\"__overflow__\"} 4900\n"));
    assert_int_equal(promtool_status(text), 0);
    free(text);
    colony_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counter_with_labels_exact_text),
        cmocka_unit_test(gauge_and_histogram_exact_text),
        cmocka_unit_test(registration_rules),
        cmocka_unit_test(threads_sum_exactly),
        cmocka_unit_test(many_series_grow_the_table),
        cmocka_unit_test(process_and_callback_metrics),
        cmocka_unit_test(promtool_accepts_output),
        cmocka_unit_test(allocation_failures_are_handled),
        cmocka_unit_test(series_cap_folds_into_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
