/* Request metrics of a colony_service stay bounded whatever a client sends:
 * thousands of requests with invented methods and paths add no series to
 * http_requests_total (methods fold into OTHER, unmatched paths into
 * "unmatched"), so /metrics keeps its size. Requests go to 127.0.0.1 through
 * the service's own client. COLONY_LABELS_N sets the number of requests (default
 * 3000) and prints RSS and /metrics size, for measuring. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "colony/service.h"
#include "test_support.h"

#define IN_FLIGHT 16

typedef struct labels_run {
    colony_service *svc;
    colony_client *client;
    char base[64];
    int total, sent, answered, failed;
    char *metrics; /* the /metrics body */
    size_t metrics_len;
} labels_run;

static void send_next(labels_run *run);

static void on_answer(colony_client_call *call, int err, const colony_client_response *res,
                      void *ud)
{
    (void)call;
    labels_run *run = ud;
    run->answered++;
    if (err || res->status >= 500) run->failed++;
    send_next(run);
}

static void on_metrics(colony_client_call *call, int err, const colony_client_response *res,
                       void *ud)
{
    (void)call;
    labels_run *run = ud;
    if (!err && res->status == 200) {
        run->metrics = malloc(res->body_len + 1);
        memcpy(run->metrics, res->body, res->body_len);
        run->metrics[res->body_len] = '\0';
        run->metrics_len = res->body_len;
    }
    colony_client_close(run->client, NULL, NULL);
    colony_service_stop(run->svc);
}

/* Keeps IN_FLIGHT requests going with invented methods and paths; once all
 * are answered, fetches /metrics. */
static void send_next(labels_run *run)
{
    if (run->sent == run->total) {
        if (run->answered == run->total) {
            char url[96];
            snprintf(url, sizeof(url), "%s/metrics", run->base);
            colony_client_request req = {.url = url};
            if (colony_client_request_send(run->client, &req, on_metrics, run, NULL) != 0) {
                colony_client_close(run->client, NULL, NULL);
                colony_service_stop(run->svc);
            }
        }
        return;
    }
    int i = run->sent++;
    char method[32], url[128];
    snprintf(method, sizeof(method), "X%dMETHOD", i);
    snprintf(url, sizeof(url), "%s/scan/%d?q=%d", run->base, i, i);
    colony_client_request req = {.method = method, .url = url};
    if (colony_client_request_send(run->client, &req, on_answer, run, NULL) != 0) {
        run->answered++;
        run->failed++;
        send_next(run);
    }
}

static void on_started(colony_service *svc, void *ud)
{
    labels_run *run = ud;
    snprintf(run->base, sizeof(run->base), "http://127.0.0.1:%d", colony_service_port(svc));
    colony_client_options opts;
    colony_client_options_init(&opts);
    opts.max_response_body = 512u << 20; /* to measure an unbounded /metrics too */
    run->client = colony_client_new(colony_service_loop(svc), &opts);
    assert_non_null(run->client);
    for (int i = 0; i < IN_FLIGHT; i++)
        send_next(run);
}

static size_t count_lines_starting(const char *text, const char *prefix)
{
    size_t n = 0, len = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, prefix, len) == 0) n++;
    return n;
}

static double rss_mb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
        fclose(f);
    }
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

static void invented_methods_and_paths_keep_metrics_bounded(void **state)
{
    (void)state;
    static char *argv[] = {"labels-test", NULL};
    const char *n_env = getenv("COLONY_LABELS_N");
    labels_run run = {.total = n_env ? atoi(n_env) : 3000};
    int exit_code = 0;
    colony_service_options so = {.name = "labels-test",
                                 .argc = 1,
                                 .argv = argv,
                                 .config_dir = "/nonexistent-colony-config",
                                 .listen = "127.0.0.1:0",
                                 .workers = 1};
    colony_service *svc = colony_service_new(&so, stderr, &exit_code);
    assert_non_null(svc);
    run.svc = svc;
    double rss_before = rss_mb();
    assert_int_equal(colony_service_on_started(svc, on_started, &run), 0);
    assert_int_equal(colony_service_run(svc), 0);
    if (n_env)
        fprintf(stderr, "requests=%d rss_growth_mb=%.1f metrics_bytes=%zu metrics_lines=%zu\n",
                run.total, rss_mb() - rss_before, run.metrics_len,
                count_lines_starting(run.metrics ? run.metrics : "", ""));
    assert_int_equal(run.answered, run.total);
    assert_int_equal(run.failed, 0);
    assert_non_null(run.metrics);
    /* every invented request is one series: OTHER, unmatched, its status */
    size_t total_lines = count_lines_starting(run.metrics, "http_requests_total{");
    assert_true(total_lines >= 1);
    assert_true(total_lines <= 3);
    assert_non_null(
        strstr(run.metrics, "http_requests_total{method=\"OTHER\",route=\"unmatched\""));
    assert_null(strstr(run.metrics, "METHOD"));
    assert_null(strstr(run.metrics, "/scan/"));
    assert_true(count_lines_starting(run.metrics, "http_request_duration_seconds_bucket{") <=
                3 * 12);
    assert_true(run.metrics_len < 16 * 1024);
    free(run.metrics);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(invented_methods_and_paths_keep_metrics_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
