/* The tracer: sampling ratio, counters, and the bounded export queue. Ending
 * a span only takes a mutex for a pointer push; a full queue drops the span
 * (counted) instead of blocking a request thread. With an endpoint, an
 * exporter thread with its own loop batches the queue to OTLP/HTTP JSON. */
#include <string.h>
#include <uv.h>
#include "colony/error.h"
#include "colony/http_client.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "kit/trace/trace_internal.h"

#define EXPORT_BATCH_MAX 1024

struct colony_tracer {
    char *service_name;
    char *endpoint;
    double ratio;
    size_t max_queue, max_batch;
    uint64_t flush_interval_ms;

    pthread_mutex_t lock; /* queue, stop flag and drain time */
    colony__list queue;   /* ended spans waiting for export, oldest first */
    size_t queued;
    int stopping;
    uint64_t drain_ms;

    _Atomic uint64_t started, sampled, exported, dropped, export_errors;

    /* exporter thread (only with an endpoint) */
    int has_thread;
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t flush_timer;
    colony_client *client;
    size_t in_flight; /* spans in the export request under way */
    int draining;     /* the stop was seen; exporting until stop_deadline_ms */
    uint64_t stop_deadline_ms;
    colony_buf body;
};

double colony__tracer_ratio(const colony_tracer *t)
{
    return t->ratio;
}

int colony__tracer_exports(const colony_tracer *t)
{
    return t->endpoint != NULL;
}

void colony__tracer_count_start(colony_tracer *t, int sampled)
{
    atomic_fetch_add_explicit(&t->started, 1, memory_order_relaxed);
    if (sampled) atomic_fetch_add_explicit(&t->sampled, 1, memory_order_relaxed);
}

/* Queues an ended span. A span that ends once the tracer is stopping is
 * dropped, and the wake-up is sent under the lock: the stop flag cannot rise
 * in between, so the exporter cannot have closed the wake handle yet. Ending
 * a span during or after colony_tracer_free is still not allowed (trace.h). */
void colony__tracer_submit(colony_tracer *t, colony_span *s)
{
    if (!t->endpoint) {
        colony__span_free(s);
        return;
    }
    pthread_mutex_lock(&t->lock);
    if (t->queued >= t->max_queue || t->stopping) {
        pthread_mutex_unlock(&t->lock);
        atomic_fetch_add_explicit(&t->dropped, 1, memory_order_relaxed);
        colony__span_free(s);
        return;
    }
    colony__list_push_back(&t->queue, &s->queue_link);
    if (++t->queued == t->max_batch) uv_async_send(&t->wake);
    pthread_mutex_unlock(&t->lock);
}

/* Takes up to max spans off the queue. */
static size_t take_batch(colony_tracer *t, colony_span **out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&t->lock);
    colony__list *node;
    while (n < max && (node = colony__list_pop_front(&t->queue)))
        out[n++] = COLONY__CONTAINER_OF(node, colony_span, queue_link);
    t->queued -= n;
    pthread_mutex_unlock(&t->lock);
    return n;
}

static void export_next(colony_tracer *t);

static void on_exported(colony_client_call *call, int err, const colony_client_response *res,
                        void *ud)
{
    colony_tracer *t = ud;
    (void)call;
    if (err || res->status < 200 || res->status > 299) {
        atomic_fetch_add_explicit(&t->export_errors, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&t->dropped, t->in_flight, memory_order_relaxed);
        COLONY_LOG_WARN("span export failed", COLONY_LF_STR("endpoint", t->endpoint),
                        COLONY_LF_STR("error", err ? colony_errname(err) : "http"),
                        COLONY_LF_INT("status", err ? 0 : res->status));
    } else {
        atomic_fetch_add_explicit(&t->exported, t->in_flight, memory_order_relaxed);
    }
    t->in_flight = 0;
    export_next(t);
}

/* Sends one batch if none is in flight; called on the exporter loop. */
static void export_next(colony_tracer *t)
{
    if (t->in_flight) return;
    colony_span *batch[EXPORT_BATCH_MAX];
    size_t n = take_batch(t, batch, t->max_batch);
    if (n == 0) return;
    colony_buf_reset(&t->body);
    int rc = colony_trace_encode_otlp(t->service_name, batch, n, &t->body);
    for (size_t i = 0; i < n; i++)
        colony__span_free(batch[i]);
    if (rc) {
        atomic_fetch_add_explicit(&t->dropped, n, memory_order_relaxed);
        return;
    }
    static const char *const headers[] = {"Content-Type", "application/json", NULL};
    colony_client_request req = {.method = "POST",
                                 .url = t->endpoint,
                                 .headers = headers,
                                 .body = t->body.data,
                                 .body_len = t->body.len,
                                 .timeout_ms = 10000};
    rc = colony_client_request_send(t->client, &req, on_exported, t, NULL);
    if (rc) {
        atomic_fetch_add_explicit(&t->export_errors, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&t->dropped, n, memory_order_relaxed);
        return;
    }
    t->in_flight = n;
}

static void on_client_closed(void *ud)
{
    colony_tracer *t = ud;
    uv_close((uv_handle_t *)&t->wake, NULL);
}

/* Raises the stop flag together with how long the drain may take, under the
 * lock: the exporter thread reads both at once, from whichever callback sees
 * the stop first. */
static void request_stop(colony_tracer *t, uint64_t drain_ms)
{
    pthread_mutex_lock(&t->lock);
    t->stopping = 1;
    t->drain_ms = drain_ms ? drain_ms : 1;
    pthread_mutex_unlock(&t->lock);
}

/* The periodic flush, and once stopping the drain: keep exporting on a short
 * timer until the queue is empty and nothing is in flight, or the drain
 * deadline passes; then close the exporter's handles so its loop ends. */
static void on_flush_timer(uv_timer_t *timer)
{
    colony_tracer *t = timer->data;
    export_next(t);
    pthread_mutex_lock(&t->lock);
    int stopping = t->stopping, empty = colony__list_empty(&t->queue);
    uint64_t drain_ms = t->drain_ms;
    pthread_mutex_unlock(&t->lock);
    if (!stopping) return;
    uint64_t now = uv_now(&t->loop);
    if (!t->draining) {
        t->draining = 1;
        t->stop_deadline_ms = now + drain_ms;
        uv_timer_start(timer, on_flush_timer, 10, 10);
    }
    if ((empty && !t->in_flight) || now >= t->stop_deadline_ms) {
        uv_timer_stop(timer);
        uv_close((uv_handle_t *)timer, NULL);
        colony_client_close(t->client, on_client_closed, t);
    }
}

static void on_wake(uv_async_t *async)
{
    colony_tracer *t = async->data;
    pthread_mutex_lock(&t->lock);
    int stopping = t->stopping;
    pthread_mutex_unlock(&t->lock);
    if (stopping) {
        /* The flush timer runs the drain; start it now unless a tick did. */
        if (!t->draining) uv_timer_start(&t->flush_timer, on_flush_timer, 0, 10);
        return;
    }
    export_next(t);
}

static void exporter_main(void *arg)
{
    colony_tracer *t = arg;
    uv_run(&t->loop, UV_RUN_DEFAULT);
}

void colony_tracer_options_init(colony_tracer_options *o)
{
    *o = (colony_tracer_options){
        .sample_ratio = 1, .max_queue = 2048, .max_batch = 512, .flush_interval_ms = 5000};
}

colony_tracer *colony_tracer_new(const colony_tracer_options *opts)
{
    colony_tracer_options o = {0};
    if (opts)
        o = *opts;
    else
        o.sample_ratio = 1;
    colony_tracer *t = colony__calloc(1, sizeof(*t));
    if (!t) return NULL;
    pthread_mutex_init(&t->lock, NULL);
    colony__list_init(&t->queue);
    t->ratio = o.sample_ratio < 0 ? 0 : o.sample_ratio > 1 ? 1 : o.sample_ratio;
    t->max_queue = o.max_queue ? o.max_queue : 2048;
    t->max_batch = o.max_batch ? o.max_batch : 512;
    if (t->max_batch > EXPORT_BATCH_MAX) t->max_batch = EXPORT_BATCH_MAX;
    t->flush_interval_ms = o.flush_interval_ms ? o.flush_interval_ms : 5000;
    t->service_name = colony__strdup(o.service_name ? o.service_name : "unknown_service");
    if (!t->service_name) goto fail;
    colony_buf_init(&t->body, 64u << 20);
    if (!o.endpoint) return t;
    t->endpoint = colony__strdup(o.endpoint);
    if (!t->endpoint || uv_loop_init(&t->loop)) goto fail;
    t->client = colony_client_new(&t->loop, NULL);
    if (!t->client) {
        uv_loop_close(&t->loop);
        goto fail;
    }
    uv_async_init(&t->loop, &t->wake, on_wake);
    uv_timer_init(&t->loop, &t->flush_timer);
    t->wake.data = t->flush_timer.data = t;
    uv_timer_start(&t->flush_timer, on_flush_timer, t->flush_interval_ms, t->flush_interval_ms);
    if (uv_thread_create(&t->thread, exporter_main, t)) {
        /* Without the thread nobody runs the loop: tear it down here. */
        colony_client_close(t->client, NULL, NULL);
        uv_close((uv_handle_t *)&t->wake, NULL);
        uv_close((uv_handle_t *)&t->flush_timer, NULL);
        uv_run(&t->loop, UV_RUN_DEFAULT);
        uv_loop_close(&t->loop);
        goto fail;
    }
    t->has_thread = 1;
    return t;
fail:
    colony__free(t->endpoint);
    colony__free(t->service_name);
    pthread_mutex_destroy(&t->lock);
    colony__free(t);
    return NULL;
}

void colony_tracer_free(colony_tracer *t, uint64_t timeout_ms)
{
    if (!t) return;
    if (t->has_thread) {
        request_stop(t, timeout_ms);
        uv_async_send(&t->wake);
        uv_thread_join(&t->thread);
        uv_loop_close(&t->loop);
    }
    /* What the drain deadline left behind is dropped. */
    colony_span *batch[64];
    size_t n;
    while ((n = take_batch(t, batch, 64)) > 0) {
        atomic_fetch_add_explicit(&t->dropped, n, memory_order_relaxed);
        for (size_t i = 0; i < n; i++)
            colony__span_free(batch[i]);
    }
    colony_buf_free(&t->body);
    colony__free(t->endpoint);
    colony__free(t->service_name);
    pthread_mutex_destroy(&t->lock);
    colony__free(t);
}

void colony_tracer_get_stats(colony_tracer *t, colony_tracer_stats *out)
{
    out->started = atomic_load(&t->started);
    out->sampled = atomic_load(&t->sampled);
    out->exported = atomic_load(&t->exported);
    out->dropped = atomic_load(&t->dropped);
    out->export_errors = atomic_load(&t->export_errors);
}
