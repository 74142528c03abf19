/* The streams' figures on /metrics (Prometheus), per stream and per group:
 *
 *   colony_broker_stream_entries{stream}           gauge
 *   colony_broker_stream_bytes{stream}             gauge
 *   colony_broker_group_pending{stream,group}      gauge
 *   colony_broker_group_lag{stream,group}          gauge (entries after the cursor)
 *   colony_broker_group_dead_letters{stream,group} gauge
 *   colony_broker_published_total{stream}          counter (entries appended, any door)
 *   colony_broker_delivered_total{stream,group}    counter (deliveries, any door)
 *   colony_broker_redelivered_total{stream,group}  counter (deliveries with a count > 1)
 *   colony_broker_acked_total{stream,group}        counter (acks, any door)
 *   colony_broker_fsync_seconds                    histogram: each fdatasync alone
 *   colony_broker_commit_wait_seconds              histogram: HTTP write to commit callback
 *
 * All but the histograms are read from the store when /metrics is scraped (a
 * middleware runs first on that path), where the store counts them whichever
 * door wrote (RESP XADD / PUBLISH / XACK / XREADGROUP, HTTP, the engine), so
 * nothing is counted on a hot path. Lag costs O(segments + log n) per group
 * (store/count.c). A counter follows the store's count by its increase since
 * the last scrape (a count that went down, a stream or group made again,
 * starts over). A series whose stream or group is gone reads 0 (the
 * registry cannot drop a series). Series are bounded by the registry's cap. */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "colony/metrics.h"
#include "core/alloc.h"
#include "broker/http/http.h"

static const double COMMIT_BUCKETS[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                        0.05,   0.1,   0.25,  0.5,   1,    2.5};

static const double FSYNC_BUCKETS[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005,
                                       0.01,    0.025,  0.05,    0.1,    0.25,  1};

/* A series a scrape set: remembered so it can be zeroed when gone. */
typedef struct seen_series {
    colony_metric_series *s;
    uint64_t epoch; /* last refresh that set it */
    int counter;    /* a counter following a store count */
    double last;    /* counter: the store's count it has reached */
} seen_series;

static seen_series *seen(colony__bhttp *h, colony_metric_series *s)
{
    char key[32];
    snprintf(key, sizeof(key), "%p", (void *)s);
    seen_series *e = colony__map_get(&h->m.seen, key);
    if (!e) {
        if (h->m.seen.count >= 4 * COLONY_METRIC_MAX_SERIES_DEFAULT) return NULL;
        e = colony__calloc(1, sizeof(*e));
        if (!e || colony__map_put(&h->m.seen, key, e)) {
            colony__free(e);
            return NULL;
        }
        e->s = s;
    }
    e->epoch = h->m.epoch;
    return e;
}

static void gauge_set(colony__bhttp *h, colony_metric *f, const char *const *labels, double v)
{
    colony_metric_series *s = colony_metric_with_values(f, labels);
    if (!s) return;
    colony_metric_set(s, v);
    seen(h, s);
}

/* The counter series up to the store's count v. */
static void counter_to(colony__bhttp *h, colony_metric *f, const char *const *labels, double v)
{
    colony_metric_series *s = colony_metric_with_values(f, labels);
    seen_series *e = s ? seen(h, s) : NULL;
    if (!e) return;
    e->counter = 1;
    double add = v >= e->last ? v - e->last : v;
    if (add > 0) colony_metric_inc(s, add);
    e->last = v;
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
        counter_to(h, h->m.published, sl, (double)colony__bstream_added(st));
        size_t gp = 0;
        colony__bgroup *g;
        while ((g = colony__bgroup_next(st, &gp))) {
            colony__bgroup_info gi;
            colony__bgroup_info_get(g, &gi);
            const char *gl[] = {si.name, gi.name, NULL};
            gauge_set(h, h->m.pending, gl, (double)gi.pending);
            colony__bgroup_stats gs;
            colony__bgroup_stats_get(g, &gs);
            counter_to(h, h->m.delivered, gl, (double)gs.delivered);
            counter_to(h, h->m.redelivered, gl, (double)gs.redelivered);
            counter_to(h, h->m.acked, gl, (double)gs.acked);
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
        if (e->epoch == h->m.epoch) continue;
        if (e->counter)
            e->last = 0; /* made again: counts from 0 */
        else
            colony_metric_set(e->s, 0);
    }
}

/* On the thread pool (the registry's updates are thread-safe). */
static void observe_fsync(void *ud, double seconds)
{
    colony_metric_observe(ud, seconds);
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
    h->m.published = colony_metrics_counter(
        m, "colony_broker_published_total",
        "Entries appended to the stream (XADD, PUBLISH to a bound channel, HTTP, dead letters).",
        S);
    h->m.delivered = colony_metrics_counter(
        m, "colony_broker_delivered_total",
        "Deliveries to the group's consumers (XREADGROUP, XCLAIM, HTTP) since start.", SG);
    h->m.redelivered =
        colony_metrics_counter(m, "colony_broker_redelivered_total",
                               "Deliveries of an entry delivered before, since start.", SG);
    h->m.acked =
        colony_metrics_counter(m, "colony_broker_acked_total",
                               "Acks (XACK, HTTP, moves to the dead letters) since start.", SG);
    h->m.fsync = colony_metrics_histogram(
        m, "colony_broker_fsync_seconds", "Each fdatasync of a stream's files (group commit).",
        NULL, FSYNC_BUCKETS, sizeof(FSYNC_BUCKETS) / sizeof(FSYNC_BUCKETS[0]));
    h->m.commit_wait = colony_metrics_histogram(
        m, "colony_broker_commit_wait_seconds",
        "From an HTTP write to its group commit's callback (the fsync, with fsync: always).", NULL,
        COMMIT_BUCKETS, sizeof(COMMIT_BUCKETS) / sizeof(COMMIT_BUCKETS[0]));
    if (!h->m.entries || !h->m.bytes || !h->m.pending || !h->m.lag || !h->m.dead ||
        !h->m.published || !h->m.delivered || !h->m.redelivered || !h->m.acked ||
        !h->m.commit_wait || !h->m.fsync)
        return COLONY_ENOMEM;
    colony_metric_series *fs = colony_metric_with(h->m.fsync);
    if (!fs) return COLONY_ENOMEM;
    if (h->commit) colony__bcommit_on_fsync(h->commit, observe_fsync, fs);
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
