/* colony_tracer_free drains the export queue whichever exporter callback sees
 * the stop first. Includes tracer.c to hold the moment between the stop flag
 * and the wake-up open (a flush tick can run in it). */
#include "test_support.h"
#include <jansson.h>
#include <string.h>
#include <unistd.h>
#include "client_test_server.h"
#include "kit/trace/tracer.c"

/* A collector that answers every export with 200 and counts the spans. */
static int spans_received;

static void collect(ts_server *s, int fd)
{
    char *buf = malloc(1 << 20);
    int n;
    while ((n = ts_read_request(s, fd, buf, 1 << 20)) > 0) {
        const char *body = strstr(buf, "\r\n\r\n") + 4;
        int spans = 0;
        for (const char *p = body; (p = strstr(p, "\"spanId\"")); p++)
            spans++;
        pthread_mutex_lock(&s->mu);
        spans_received += spans;
        pthread_mutex_unlock(&s->mu);
        usleep(30 * 1000); /* a slow collector: exports stay in flight */
        if (ts_write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}") != 0) break;
    }
    free(buf);
}

/* A flush tick that sees the stop before the wake-up does must start the
 * drain, not close the exporter with spans queued and one export in flight. */
static void flush_tick_during_stop_still_drains(void **state)
{
    (void)state;
    ts_server srv;
    ts_start(&srv, collect, NULL);
    char url[128];
    ts_url(&srv, url, sizeof(url), "/v1/traces");
    colony_tracer_options o = {
        .sample_ratio = 1, .endpoint = url, .max_batch = 4, .flush_interval_ms = 5};
    colony_tracer *t = colony_tracer_new(&o);
    assert_non_null(t);
    for (int i = 0; i < 10; i++)
        colony_span_end(colony_span_start(t, "x", COLONY_SPAN_SERVER, NULL));
    /* The first step of colony_tracer_free, then flush ticks (every 5 ms)
     * before the wake-up is sent. */
    request_stop(t, 10000);
    usleep(60 * 1000);
    colony_tracer_free(t, 10000);
    assert_int_equal(ts_get(&srv, &spans_received), 10);
    ts_stop(&srv);
}

int main(void)
{
    colony_log_set_level(COLONY_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(flush_tick_during_stop_still_drains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
