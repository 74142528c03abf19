/* Prometheus metrics: counters, gauges and histograms with labels, exposed in
 * the text format 0.0.4. The hot path takes no lock: a series handle
 * (colony_metric_series) is found once per label set — each thread keeps its
 * own cache of handles, so steady-state lookups do not lock either — and
 * counter and histogram updates go to per-thread cells that a scrape sums.
 *
 *   colony_metric *reqs = colony_metrics_counter(m, "jobs_total", "Jobs run.",
 *                                                (const char *[]){"queue", NULL});
 *   colony_metric_inc(colony_metric_with(reqs, "email"), 1);
 */
#ifndef COLONY_METRICS_H
#define COLONY_METRICS_H

#include <stddef.h>
#include "buf.h"
#include "export.h"

typedef struct colony_metrics colony_metrics;             /* a registry */
typedef struct colony_metric colony_metric;               /* a family: name, help, labels */
typedef struct colony_metric_series colony_metric_series; /* one label set of a family */

/* Creates an empty registry. NULL on allocation failure. */
COLONY_API colony_metrics *colony_metrics_new(void);
/* Frees the registry, its families and series. No update may run concurrently. */
COLONY_API void colony_metrics_free(colony_metrics *m);
/* Registers process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds and
 * process_start_time_seconds, read from /proc at scrape time. */
COLONY_API int colony_metrics_register_process(colony_metrics *m);

/* Families. name must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
 * [a-zA-Z_][a-zA-Z0-9_]* (not starting with "__"), label_names is
 * NULL-terminated (or NULL for none, at most 8). Strings are copied.
 * Registering the same name again with the same type and labels returns the
 * existing family; anything else returns NULL (as for invalid names), as does
 * an allocation failure. */
COLONY_API colony_metric *colony_metrics_counter(colony_metrics *m, const char *name,
                                                 const char *help, const char *const *label_names);
COLONY_API colony_metric *colony_metrics_gauge(colony_metrics *m, const char *name,
                                               const char *help, const char *const *label_names);
/* buckets: strictly increasing upper bounds, without +Inf; NULL for the
 * Prometheus defaults (.005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 seconds). */
COLONY_API colony_metric *colony_metrics_histogram(colony_metrics *m, const char *name,
                                                   const char *help, const char *const *label_names,
                                                   const double *buckets, size_t nbuckets);
/* A gauge whose value is read by fn at scrape time (no labels). */
typedef double (*colony_gauge_fn)(void *ud);
/* 0, COLONY_EINVAL (bad name, clash) or COLONY_ENOMEM. */
COLONY_API int colony_metrics_gauge_fn(colony_metrics *m, const char *name, const char *help,
                                       colony_gauge_fn fn, void *ud);

/* The series for these label values (as many as the family has label names;
 * copied). Valid until the registry is freed. NULL on allocation failure or
 * wrong arity (the update functions accept NULL and do nothing). */
COLONY_API colony_metric_series *colony_metric_with(colony_metric *f, ...);
COLONY_API colony_metric_series *colony_metric_with_values(colony_metric *f,
                                                           const char *const *values);

/* Series cap. A family holds at most max_series label sets (default
 * COLONY_METRIC_MAX_SERIES_DEFAULT). Past the cap, colony_metric_with() for a
 * new label set returns the family's one overflow series, every label value of
 * which is COLONY_METRIC_OVERFLOW_VALUE: its updates are counted there, not
 * dropped, so the family's totals stay right while memory and the exposition
 * stay bounded (at most max_series + 1 series). Label sets seen before the cap
 * keep their own series. Lowering the cap frees nothing. 0 or COLONY_EINVAL. */
#define COLONY_METRIC_MAX_SERIES_DEFAULT 10000
#define COLONY_METRIC_OVERFLOW_VALUE     "__overflow__"
COLONY_API int colony_metric_set_max_series(colony_metric *f, size_t max_series);
/* Series of the family, the overflow series included. */
COLONY_API size_t colony_metric_series_count(colony_metric *f);

/* Counter: adds v >= 0 (negative values are ignored). Gauge: adds v (may be negative). */
COLONY_API void colony_metric_inc(colony_metric_series *s, double v);
/* Gauge: sets the value. */
COLONY_API void colony_metric_set(colony_metric_series *s, double v);
/* Histogram: records one observation. */
COLONY_API void colony_metric_observe(colony_metric_series *s, double v);
/* Current value of a counter or gauge series (sum over threads); for tests. */
COLONY_API double colony_metric_value(const colony_metric_series *s);

/* Appends the whole registry in the text exposition format 0.0.4. */
COLONY_API int colony_metrics_write(colony_metrics *m, colony_buf *out);
/* A handler (ud = the registry) answering with the exposition, for
 * colony_router_add(r, "GET", "/metrics", colony_metrics_handle, m). */
struct colony_request;
COLONY_API void colony_metrics_handle(struct colony_request *req, void *metrics);
/* Content type of that format. */
#define COLONY_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
