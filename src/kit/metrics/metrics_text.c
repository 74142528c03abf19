/* Prometheus text exposition format 0.0.4: HELP and TYPE lines, escaped
 * label values, cumulative histogram buckets with le="+Inf", _sum, _count. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "kit/metrics/metrics_internal.h"

/* Integers (counts) in plain decimal, anything else as the shortest %g text
 * that reads back as the same double. */
static void format_double(double v, char *out, size_t size)
{
    if (isnan(v)) {
        snprintf(out, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, size, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == (double)(long long)v && v > -1e15 && v < 1e15) {
        snprintf(out, size, "%lld", (long long)v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, size, "%.*g", prec, v);
        if (strtod(out, NULL) == v) return;
    }
}

/* HELP text escapes backslash and newline; label values also escape quotes. */
static int put_escaped(colony_buf *out, const char *s, int quote)
{
    int rc = 0;
    const char *run = s;
    for (; *s && !rc; s++) {
        const char *esc = *s == '\\'             ? "\\\\"
                          : *s == '\n'           ? "\\n"
                          : (quote && *s == '"') ? "\\\""
                                                 : NULL;
        if (!esc) continue;
        rc = colony_buf_append(out, run, (size_t)(s - run));
        if (!rc) rc = colony_buf_append_str(out, esc);
        run = s + 1;
    }
    if (!rc) rc = colony_buf_append(out, run, (size_t)(s - run));
    return rc;
}

/* name{l1="v1",...[,le="x"]} value\n */
static int put_sample(colony_buf *out, const colony_metric *f, const char *suffix,
                      const colony_metric_series *s, const char *le, double value)
{
    char num[40];
    int rc = colony_buf_append_str(out, f->name);
    if (!rc) rc = colony_buf_append_str(out, suffix);
    size_t nlabels = s ? f->nlabels : 0;
    if (!rc && (nlabels || le)) {
        rc = colony_buf_append(out, "{", 1);
        for (size_t i = 0; !rc && i < nlabels; i++) {
            rc = colony_buf_appendf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
            if (!rc) rc = put_escaped(out, s->values[i], 1);
            if (!rc) rc = colony_buf_append(out, "\"", 1);
        }
        if (!rc && le) rc = colony_buf_appendf(out, "%sle=\"%s\"", nlabels ? "," : "", le);
        if (!rc) rc = colony_buf_append(out, "}", 1);
    }
    format_double(value, num, sizeof(num));
    if (!rc) rc = colony_buf_appendf(out, " %s\n", num);
    return rc;
}

static const char *type_name(metric_type t)
{
    switch (t) {
    case METRIC_COUNTER:
    case METRIC_COUNTER_FN:
        return "counter";
    case METRIC_HISTOGRAM:
        return "histogram";
    default:
        return "gauge";
    }
}

static int put_histogram(colony_buf *out, const colony_metric *f, colony_metric_series *s)
{
    double sums[64 + 3];
    colony__metric_series_sum(s, sums);
    double cumulative = 0;
    char le[40];
    int rc = 0;
    for (size_t b = 0; !rc && b <= f->nbuckets; b++) {
        cumulative += sums[2 + b];
        if (b < f->nbuckets)
            format_double(f->buckets[b], le, sizeof(le));
        else
            snprintf(le, sizeof(le), "+Inf");
        rc = put_sample(out, f, "_bucket", s, le, cumulative);
    }
    if (!rc) rc = put_sample(out, f, "_sum", s, NULL, sums[0]);
    /* _count equals the +Inf bucket by definition; derive it so they never disagree. */
    if (!rc) rc = put_sample(out, f, "_count", s, NULL, cumulative);
    return rc;
}

static int put_family(colony_buf *out, colony_metric *f)
{
    int rc = colony_buf_appendf(out, "# HELP %s ", f->name);
    if (!rc) rc = put_escaped(out, f->help, 0);
    if (!rc) rc = colony_buf_appendf(out, "\n# TYPE %s %s\n", f->name, type_name(f->type));
    if (rc) return rc;
    if (f->fn) return put_sample(out, f, "", NULL, NULL, f->fn(f->fn_ud));
    /* Series are only appended: the first n links, read under the lock, are
     * stable (the link after the n-th is never read). */
    pthread_mutex_lock(&f->lock);
    colony__list *node = f->series.next;
    size_t n = f->nseries;
    pthread_mutex_unlock(&f->lock);
    for (size_t i = 0; i < n && !rc; i++) {
        if (i) node = node->next;
        colony_metric_series *s = COLONY__CONTAINER_OF(node, colony_metric_series, link);
        if (f->type == METRIC_HISTOGRAM)
            rc = put_histogram(out, f, s);
        else
            rc = put_sample(out, f, "", s, NULL, colony_metric_value(s));
    }
    return rc;
}

int colony_metrics_write(colony_metrics *m, colony_buf *out)
{
    pthread_mutex_lock(&m->lock);
    colony__list *node = m->families.next;
    size_t n = m->nfamilies;
    pthread_mutex_unlock(&m->lock);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (i) node = node->next;
        rc = put_family(out, COLONY__CONTAINER_OF(node, colony_metric, link));
    }
    return rc;
}
