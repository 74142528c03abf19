/* Internal layout of the metrics registry, shared by metrics.c (updates and
 * lookups) and metrics_text.c (exposition). */
#ifndef COLONY_KIT_METRICS_INTERNAL_H
#define COLONY_KIT_METRICS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include "colony/metrics.h"
#include "core/list.h"

#define METRICS_MAX_LABELS 8
/* Threads that get a private cell; later threads share a locked overflow cell. */
#define METRICS_THREAD_SLOTS 64

/* *_FN families have no series: one value read by a callback at scrape time. */
typedef enum metric_type {
    METRIC_COUNTER,
    METRIC_GAUGE,
    METRIC_HISTOGRAM,
    METRIC_GAUGE_FN,
    METRIC_COUNTER_FN,
} metric_type;

/* One thread's values for a series (a "cell"): [0] is the counter value or
 * the histogram sum, [1] the histogram count, [2..] per-bucket (non-cumulative)
 * counts with the +Inf bucket last. Written only by its thread (relaxed atomics), read by scrapes.
 */
typedef _Atomic double metric_value;

struct colony_metric_series {
    colony_metric *family;
    char **values; /* label values */
    uint64_t hash;
    _Atomic(double) gauge; /* gauges: one shared value */
    _Atomic(metric_value *) cells[METRICS_THREAD_SLOTS];
    metric_value *overflow; /* guarded by family->lock */
    colony__list link;      /* family->series, in creation order */
};

/* Open-addressing table of series, read without locks; replaced (not
 * resized in place) when it fills, old tables retired until the registry dies. */
typedef struct series_table {
    size_t cap; /* power of two */
    struct series_table *retired_next;
    _Atomic(colony_metric_series *) slots[];
} series_table;

struct colony_metric {
    colony_metrics *registry;
    uint64_t id; /* unique in the process, never reused: safe key for caches */
    metric_type type;
    char *name, *help;
    size_t nlabels;
    char *labels[METRICS_MAX_LABELS];
    double *buckets; /* histograms: upper bounds */
    size_t nbuckets;
    colony_gauge_fn fn;
    void *fn_ud;
    pthread_mutex_t lock; /* series creation and the overflow cells */
    _Atomic(series_table *) table;
    series_table *retired;
    colony__list series;                   /* every series, in creation order (only appended) */
    size_t nseries;                        /* including the overflow series */
    size_t max_series;                     /* label sets before new ones go to overflow_series */
    colony_metric_series *overflow_series; /* made on the first label set over the cap */
    colony__list link;                     /* registry->families */
};

struct colony_metrics {
    pthread_mutex_t lock;  /* family list */
    colony__list families; /* in registration order (only appended) */
    size_t nfamilies;
};

/* Registers a callback family of type METRIC_GAUGE_FN or METRIC_COUNTER_FN. */
int colony__metrics_fn(colony_metrics *m, const char *name, const char *help, metric_type type,
                       colony_gauge_fn fn, void *ud);
/* Number of doubles in a cell of this family. */
size_t colony__metric_cell_width(const colony_metric *f);
/* Sums every thread's cell into out[0..width). */
void colony__metric_series_sum(colony_metric_series *s, double *out);

#endif
