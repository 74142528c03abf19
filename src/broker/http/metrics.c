/* The streams' figures on /metrics (Prometheus), per stream and per group:
 *
 *   colony_broker_stream_entries{stream}          gauge
 *   colony_broker_stream_bytes{stream}            gauge
 *   colony_broker_group_pending{stream,group}     gauge
 *   colony_broker_group_lag{stream,group}         gauge (entries after the cursor)
 *   colony_broker_group_dead_letters{stream,group} gauge
 *   colony_broker_published_total{stream}         counter (HTTP publishes)
 *   colony_broker_delivered_total{stream,group}   counter (HTTP deliveries)
 *   colony_broker_redelivered_total{stream,group} counter (deliveries with a count > 1)
 *   colony_broker_acked_total{stream,group}       counter (HTTP acks)
 *   colony_broker_commit_wait_seconds             histogram: a write to its fsync's callback
 *
 * Gauges are read from the store when /metrics is scraped (a middleware runs
 * first on that path); a series whose stream or group is gone reads 0 (the
 * registry cannot drop a series). Series are bounded by the registry's cap. */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "colony/metrics.h"
#include "core/alloc.h"
#include "broker/http/http.h"

static const double COMMIT_BUCKETS[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                        0.05,   0.1,   0.25,  0.5,   1,    2.5};

/* A gauge series we set once: remembered so it can be zeroed when gone. */
typedef struct seen_series {
    colony_metric_series *s;
    uint64_t epoch; /* last refresh that set it */
} seen_series;

static void gauge_set(colony__bhttp *h, colony_metric *f, const char *const *labels, double v)
{
    colony_metric_series *s = colony_metric_with_values(f, labels);
    if (!s) return;
    colony_metric_set(s, v);
    char key[32];
    snprintf(key, sizeof(key), "%p", (void *)s);
    seen_series *e = colony__map_get(&h->m.seen, key);
    if (!e) {
        if (h->m.seen.count >= 4 * COLONY_METRIC_MAX_SERIES_DEFAULT) return;
        e = colony__calloc(1, sizeof(*e));
        if (!e || colony__map_put(&h->m.seen, key, e)) {
            colony__free(e);
            return;
        }
        e->s = s;
    }
    e->epoch = h->m.epoch;
}

static void refresh(colony__bhttp *h)
{
    h->m.epoch++;
    size_t pos = 0;
    colony__bstream *st;
    while ((st = colony__bstore_next(h->store, &pos))) {
        colony__bstream_info si;
        colony__bstream_info_get(st, &si);
        const char *sl[] = {si.name, NULL};
        gauge_set(h, h->m.entries, sl, (double)si.length);
        gauge_set(h, h->m.bytes, sl, (double)si.bytes);
        size_t gp = 0;
        colony__bgroup *g;
        while ((g = colony__bgroup_next(st, &gp))) {
            colony__bgroup_info gi;
            colony__bgroup_info_get(g, &gi);
            const char *gl[] = {si.name, gi.name, NULL};
            gauge_set(h, h->m.pending, gl, (double)gi.pending);
            gauge_set(h, h->m.lag, gl, (double)colony__bhttp_lag(st, gi.cursor));
            double dead = 0;
            colony__bgroup_policy p;
            if (h->engine && !colony__bdelivery_group_policy_get(h->engine, si.name, gi.name, &p) &&
                p.dead_letter) {
                colony__bstream *d = colony__bstore_get(h->store, p.dead_letter);
                if (d) {
                    colony__bstream_info di;
                    colony__bstream_info_get(d, &di);
                    dead = (double)di.length;
                }
            }
            gauge_set(h, h->m.dead, gl, dead);
        }
    }
    size_t mp = 0;
    colony__map_slot *slot;
    while ((slot = colony__map_next(&h->m.seen, &mp))) {
        seen_series *e = slot->value;
        if (e->epoch != h->m.epoch) colony_metric_set(e->s, 0);
    }
}

static void before_scrape(colony_request *req, colony_chain *next, void *ud)
{
    const char *path = colony_request_path(req);
    if (path && strcmp(path, "/metrics") == 0) refresh(ud);
    colony_next(next);
}

int colony__bhttp_metrics(colony__bhttp *h, colony_metrics *m, colony_router *r)
{
    static const char *const S[] = {"stream", NULL}, *const SG[] = {"stream", "group", NULL};
    h->m.entries =
        colony_metrics_gauge(m, "colony_broker_stream_entries", "Entries in the stream.", S);
    h->m.bytes = colony_metrics_gauge(m, "colony_broker_stream_bytes",
                                      "Bytes of the stream's segment files.", S);
    h->m.pending = colony_metrics_gauge(m, "colony_broker_group_pending",
                                        "Entries delivered to the group and not acked.", SG);
    h->m.lag = colony_metrics_gauge(m, "colony_broker_group_lag",
                                    "Entries after the group's cursor (not delivered yet).", SG);
    h->m.dead = colony_metrics_gauge(m, "colony_broker_group_dead_letters",
                                     "Entries in the group's dead-letter stream.", SG);
    h->m.published = colony_metrics_counter(m, "colony_broker_published_total",
                                            "Messages published over HTTP (acknowledged).", S);
    h->m.delivered =
        colony_metrics_counter(m, "colony_broker_delivered_total", "Deliveries over HTTP.", SG);
    h->m.redelivered =
        colony_metrics_counter(m, "colony_broker_redelivered_total",
                               "Deliveries over HTTP of an entry delivered before.", SG);
    h->m.acked = colony_metrics_counter(m, "colony_broker_acked_total", "Acks over HTTP.", SG);
    h->m.commit_wait = colony_metrics_histogram(
        m, "colony_broker_commit_wait_seconds",
        "From an HTTP write to its group commit's callback (the fsync, with fsync: always).", NULL,
        COMMIT_BUCKETS, sizeof(COMMIT_BUCKETS) / sizeof(COMMIT_BUCKETS[0]));
    if (!h->m.entries || !h->m.bytes || !h->m.pending || !h->m.lag || !h->m.dead ||
        !h->m.published || !h->m.delivered || !h->m.redelivered || !h->m.acked || !h->m.commit_wait)
        return COLONY_ENOMEM;
    return colony_router_use(r, before_scrape, h);
}

void colony__bhttp_metrics_free(colony__bhttp *h)
{
    size_t mp = 0;
    colony__map_slot *slot;
    while ((slot = colony__map_next(&h->m.seen, &mp)))
        colony__free(slot->value);
    colony__map_free(&h->m.seen);
}

void colony__bhttp_count(colony_metric *f, const char *stream, const char *group, double v)
{
    if (!f) return;
    const char *l[] = {stream, group, NULL};
    colony_metric_inc(colony_metric_with_values(f, l), v);
}
