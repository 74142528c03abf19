/* Metrics registry: families, lock-free series lookup and per-thread cells. */
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "core/hash.h"
#include "kit/metrics/metrics_internal.h"

static const double default_buckets[] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};

static atomic_int next_thread_slot;
static atomic_uint_fast64_t next_family_id;
static _Thread_local int thread_slot = -1;

/* Each thread gets a private cell index on first update; past the slot count
 * threads share the locked overflow cell (-2). */
static int my_slot(void)
{
    if (thread_slot == -1) {
        int s = atomic_fetch_add_explicit(&next_thread_slot, 1, memory_order_relaxed);
        thread_slot = s < METRICS_THREAD_SLOTS ? s : -2;
    }
    return thread_slot;
}

static int valid_name(const char *s, int allow_colon)
{
    if (!s || !*s) return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (allow_colon && c == ':') || (p != s && c >= '0' && c <= '9');
        if (!ok) return 0;
    }
    return 1;
}

colony_metrics *colony_metrics_new(void)
{
    colony_metrics *m = colony__calloc(1, sizeof(*m));
    if (!m) return NULL;
    pthread_mutex_init(&m->lock, NULL);
    colony__list_init(&m->families);
    return m;
}

static void series_free(colony_metric_series *s, size_t nlabels)
{
    for (size_t i = 0; i < nlabels; i++)
        colony__free(s->values[i]);
    colony__free(s->values);
    for (int i = 0; i < METRICS_THREAD_SLOTS; i++)
        colony__free((void *)atomic_load(&s->cells[i]));
    colony__free((void *)s->overflow);
    colony__free(s);
}

static void family_free(colony_metric *f)
{
    colony__list *node, *tmp;
    COLONY__LIST_FOREACH_SAFE(node, tmp, &f->series)
    series_free(COLONY__CONTAINER_OF(node, colony_metric_series, link), f->nlabels);
    colony__free(atomic_load(&f->table));
    for (series_table *t = f->retired; t;) {
        series_table *next = t->retired_next;
        colony__free(t);
        t = next;
    }
    for (size_t i = 0; i < f->nlabels; i++)
        colony__free(f->labels[i]);
    colony__free(f->name);
    colony__free(f->help);
    colony__free(f->buckets);
    pthread_mutex_destroy(&f->lock);
    colony__free(f);
}

void colony_metrics_free(colony_metrics *m)
{
    if (!m) return;
    colony__list *node, *tmp;
    COLONY__LIST_FOREACH_SAFE(node, tmp, &m->families)
    family_free(COLONY__CONTAINER_OF(node, colony_metric, link));
    pthread_mutex_destroy(&m->lock);
    colony__free(m);
}

static colony_metric *find_family(colony_metrics *m, const char *name)
{
    colony__list *node, *tmp;
    COLONY__LIST_FOREACH_SAFE(node, tmp, &m->families)
    {
        colony_metric *f = COLONY__CONTAINER_OF(node, colony_metric, link);
        if (strcmp(f->name, name) == 0) return f;
    }
    return NULL;
}

static int same_shape(const colony_metric *f, metric_type type, const char *const *labels)
{
    if (f->type != type) return 0;
    size_t n = 0;
    for (; labels && labels[n]; n++)
        if (n >= f->nlabels || strcmp(labels[n], f->labels[n]) != 0) return 0;
    return n == f->nlabels;
}

static colony_metric *family_new(const char *name, const char *help, metric_type type,
                                 const char *const *labels)
{
    colony_metric *f = colony__calloc(1, sizeof(*f));
    if (!f) return NULL;
    f->type = type;
    f->id = (uint64_t)atomic_fetch_add_explicit(&next_family_id, 1, memory_order_relaxed) + 1;
    pthread_mutex_init(&f->lock, NULL);
    colony__list_init(&f->series);
    f->max_series = COLONY_METRIC_MAX_SERIES_DEFAULT;
    f->name = colony__strdup(name);
    f->help = colony__strdup(help ? help : "");
    if (!f->name || !f->help) goto fail;
    for (; labels && labels[f->nlabels]; f->nlabels++) {
        f->labels[f->nlabels] = colony__strdup(labels[f->nlabels]);
        if (!f->labels[f->nlabels]) goto fail;
    }
    series_table *t = colony__calloc(1, sizeof(*t) + 16 * sizeof(t->slots[0]));
    if (!t) goto fail;
    t->cap = 16;
    atomic_init(&f->table, t);
    return f;
fail:
    family_free(f);
    return NULL;
}

static int valid_labels(const char *const *labels)
{
    size_t n = 0;
    for (; labels && labels[n]; n++) {
        if (!valid_name(labels[n], 0) || strncmp(labels[n], "__", 2) == 0) return 0;
        if (strcmp(labels[n], "le") == 0 || strcmp(labels[n], "quantile") == 0) return 0;
        for (size_t j = 0; j < n; j++)
            if (strcmp(labels[j], labels[n]) == 0) return 0;
    }
    return n <= METRICS_MAX_LABELS;
}

/* Registers a family, or returns the existing one of the same shape. On
 * failure NULL, and *err (if err) says why: COLONY_EINVAL or COLONY_ENOMEM. */
static colony_metric *register_family(colony_metrics *m, const char *name, const char *help,
                                      metric_type type, const char *const *labels,
                                      const double *buckets, size_t nbuckets, int *err)
{
    int dummy;
    if (!err) err = &dummy;
    *err = COLONY_EINVAL;
    if (!m || !valid_name(name, 1) || !valid_labels(labels)) return NULL;
    pthread_mutex_lock(&m->lock);
    colony_metric *f = find_family(m, name);
    if (f) {
        pthread_mutex_unlock(&m->lock);
        if (!same_shape(f, type, labels)) return NULL;
        *err = 0;
        return f;
    }
    *err = COLONY_ENOMEM;
    f = family_new(name, help, type, labels);
    if (f && type == METRIC_HISTOGRAM) {
        f->buckets = colony__malloc(nbuckets * sizeof(double));
        if (!f->buckets) {
            family_free(f);
            f = NULL;
        } else {
            memcpy(f->buckets, buckets, nbuckets * sizeof(double));
            f->nbuckets = nbuckets;
        }
    }
    if (f) {
        f->registry = m;
        colony__list_push_back(&m->families, &f->link);
        m->nfamilies++;
        *err = 0;
    }
    pthread_mutex_unlock(&m->lock);
    return f;
}

colony_metric *colony_metrics_counter(colony_metrics *m, const char *name, const char *help,
                                      const char *const *label_names)
{
    return register_family(m, name, help, METRIC_COUNTER, label_names, NULL, 0, NULL);
}

colony_metric *colony_metrics_gauge(colony_metrics *m, const char *name, const char *help,
                                    const char *const *label_names)
{
    return register_family(m, name, help, METRIC_GAUGE, label_names, NULL, 0, NULL);
}

colony_metric *colony_metrics_histogram(colony_metrics *m, const char *name, const char *help,
                                        const char *const *label_names, const double *buckets,
                                        size_t nbuckets)
{
    if (!buckets) {
        buckets = default_buckets;
        nbuckets = sizeof(default_buckets) / sizeof(default_buckets[0]);
    }
    if (nbuckets == 0 || nbuckets > 64) return NULL;
    for (size_t i = 0; i < nbuckets; i++)
        if (!isfinite(buckets[i]) || (i && buckets[i] <= buckets[i - 1])) return NULL;
    return register_family(m, name, help, METRIC_HISTOGRAM, label_names, buckets, nbuckets, NULL);
}

int colony__metrics_fn(colony_metrics *m, const char *name, const char *help, metric_type type,
                       colony_gauge_fn fn, void *ud)
{
    if (!fn) return COLONY_EINVAL;
    int rc;
    colony_metric *f = register_family(m, name, help, type, NULL, NULL, 0, &rc);
    if (!f) return rc;
    f->fn = fn;
    f->fn_ud = ud;
    return 0;
}

int colony_metrics_gauge_fn(colony_metrics *m, const char *name, const char *help,
                            colony_gauge_fn fn, void *ud)
{
    return colony__metrics_fn(m, name, help, METRIC_GAUGE_FN, fn, ud);
}

/* FNV-1a over the values, with a separator that cannot occur in C strings. */
static uint64_t hash_values(const char *const *values, size_t n)
{
    static const unsigned char separator = 0xff;
    uint64_t h = COLONY_FNV1A_OFFSET;
    for (size_t i = 0; i < n; i++) {
        h = colony__fnv1a(h, values[i], strlen(values[i]));
        h = colony__fnv1a(h, &separator, 1);
    }
    return h;
}

static int series_matches(const colony_metric_series *s, uint64_t h, const char *const *values,
                          size_t n)
{
    if (s->hash != h) return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->values[i], values[i]) != 0) return 0;
    return 1;
}

static colony_metric_series *table_find(series_table *t, uint64_t h, const char *const *values,
                                        size_t n)
{
    for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        colony_metric_series *s = atomic_load_explicit(&t->slots[i], memory_order_acquire);
        if (!s) return NULL;
        if (series_matches(s, h, values, n)) return s;
    }
}

static void table_put(series_table *t, colony_metric_series *s)
{
    size_t i = s->hash & (t->cap - 1);
    while (atomic_load_explicit(&t->slots[i], memory_order_relaxed))
        i = (i + 1) & (t->cap - 1);
    atomic_store_explicit(&t->slots[i], s, memory_order_release);
}

static colony_metric_series *series_new(colony_metric *f, uint64_t h, const char *const *values)
{
    colony_metric_series *s = colony__calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->family = f;
    s->hash = h;
    s->values = colony__calloc(f->nlabels ? f->nlabels : 1, sizeof(char *));
    if (!s->values) {
        colony__free(s);
        return NULL;
    }
    for (size_t i = 0; i < f->nlabels; i++) {
        s->values[i] = colony__strdup(values[i]);
        if (!s->values[i]) {
            series_free(s, f->nlabels);
            return NULL;
        }
    }
    return s;
}

/* Slow path under the family lock: insert, growing the table (a new table is
 * published; readers still on the old one see a consistent, shorter view).
 * Past max_series a new label set gets the overflow series instead, so label
 * values fed by clients cannot grow memory or the exposition without bound. */
static colony_metric_series *series_insert(colony_metric *f, uint64_t h, const char *const *values)
{
    const char *overflow_values[METRICS_MAX_LABELS];
    int overflow = 0;
    pthread_mutex_lock(&f->lock);
    series_table *t = atomic_load_explicit(&f->table, memory_order_acquire);
    colony_metric_series *s = table_find(t, h, values, f->nlabels);
    if (s) goto out;
    if (f->nseries - (f->overflow_series ? 1 : 0) >= f->max_series) {
        if ((s = f->overflow_series)) goto out;
        for (size_t i = 0; i < f->nlabels; i++)
            overflow_values[i] = COLONY_METRIC_OVERFLOW_VALUE;
        values = overflow_values;
        h = hash_values(values, f->nlabels);
        overflow = 1;
        if ((s = table_find(t, h, values, f->nlabels))) { /* registered by hand earlier */
            f->overflow_series = s;
            goto out;
        }
    }
    if ((f->nseries + 1) * 2 > t->cap) {
        series_table *bigger = colony__calloc(1, sizeof(*t) + 2 * t->cap * sizeof(t->slots[0]));
        if (!bigger) goto out;
        bigger->cap = 2 * t->cap;
        colony__list *node, *tmp;
        COLONY__LIST_FOREACH_SAFE(node, tmp, &f->series)
        table_put(bigger, COLONY__CONTAINER_OF(node, colony_metric_series, link));
        t->retired_next = f->retired;
        f->retired = t;
        atomic_store_explicit(&f->table, bigger, memory_order_release);
        t = bigger;
    }
    s = series_new(f, h, values);
    if (!s) goto out;
    table_put(t, s);
    colony__list_push_back(&f->series, &s->link);
    f->nseries++;
    if (overflow) f->overflow_series = s;
out:
    pthread_mutex_unlock(&f->lock);
    return s;
}

colony_metric_series *colony_metric_with_values(colony_metric *f, const char *const *values)
{
    if (!f || f->fn) return NULL;
    for (size_t i = 0; i < f->nlabels; i++)
        if (!values || !values[i]) return NULL;
    uint64_t h = hash_values(values, f->nlabels);
    series_table *t = atomic_load_explicit(&f->table, memory_order_acquire);
    colony_metric_series *s = table_find(t, h, values, f->nlabels);
    return s ? s : series_insert(f, h, values);
}

colony_metric_series *colony_metric_with(colony_metric *f, ...)
{
    if (!f) return NULL;
    const char *values[METRICS_MAX_LABELS + 1] = {0};
    va_list ap;
    va_start(ap, f);
    for (size_t i = 0; i < f->nlabels; i++)
        values[i] = va_arg(ap, const char *);
    va_end(ap);
    return colony_metric_with_values(f, values);
}

int colony_metric_set_max_series(colony_metric *f, size_t max_series)
{
    if (!f || max_series == 0) return COLONY_EINVAL;
    pthread_mutex_lock(&f->lock);
    f->max_series = max_series;
    pthread_mutex_unlock(&f->lock);
    return 0;
}

size_t colony_metric_series_count(colony_metric *f)
{
    if (!f) return 0;
    pthread_mutex_lock(&f->lock);
    size_t n = f->nseries;
    pthread_mutex_unlock(&f->lock);
    return n;
}

size_t colony__metric_cell_width(const colony_metric *f)
{
    /* sum, count, one per finite bucket, +Inf */
    return f->type == METRIC_HISTOGRAM ? f->nbuckets + 3 : 1;
}

/* This thread's cell, allocated on first use; NULL means "use the overflow
 * cell under the lock" (or allocation failed, then the update is dropped). */
static metric_value *my_cell(colony_metric_series *s, int *locked)
{
    int slot = my_slot();
    *locked = 0;
    if (slot >= 0) {
        metric_value *c = atomic_load_explicit(&s->cells[slot], memory_order_relaxed);
        if (c) return c;
        c = colony__calloc(colony__metric_cell_width(s->family), sizeof(metric_value));
        if (c) atomic_store_explicit(&s->cells[slot], c, memory_order_release);
        return c;
    }
    pthread_mutex_lock(&s->family->lock);
    if (!s->overflow)
        s->overflow = colony__calloc(colony__metric_cell_width(s->family), sizeof(metric_value));
    if (!s->overflow) {
        pthread_mutex_unlock(&s->family->lock);
        return NULL;
    }
    *locked = 1;
    return s->overflow;
}

static void cell_add(metric_value *v, double x)
{
    double cur = atomic_load_explicit(v, memory_order_relaxed);
    atomic_store_explicit(v, cur + x, memory_order_relaxed);
}

void colony_metric_inc(colony_metric_series *s, double v)
{
    if (!s) return;
    if (s->family->type == METRIC_GAUGE) {
        double cur = atomic_load_explicit(&s->gauge, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(&s->gauge, &cur, cur + v,
                                                      memory_order_relaxed, memory_order_relaxed)) {
        }
        return;
    }
    if (s->family->type != METRIC_COUNTER || !(v >= 0)) return;
    int locked;
    metric_value *c = my_cell(s, &locked);
    if (c) cell_add(&c[0], v);
    if (locked) pthread_mutex_unlock(&s->family->lock);
}

void colony_metric_set(colony_metric_series *s, double v)
{
    if (s && s->family->type == METRIC_GAUGE)
        atomic_store_explicit(&s->gauge, v, memory_order_relaxed);
}

void colony_metric_observe(colony_metric_series *s, double v)
{
    if (!s || s->family->type != METRIC_HISTOGRAM || isnan(v)) return;
    const colony_metric *f = s->family;
    size_t b = 0;
    while (b < f->nbuckets && v > f->buckets[b])
        b++;
    int locked;
    metric_value *c = my_cell(s, &locked);
    if (c) {
        cell_add(&c[0], v);
        cell_add(&c[1], 1);
        cell_add(&c[2 + b], 1); /* b == nbuckets is the +Inf bucket */
    }
    if (locked) pthread_mutex_unlock(&s->family->lock);
}

void colony__metric_series_sum(colony_metric_series *s, double *out)
{
    size_t w = colony__metric_cell_width(s->family);
    memset(out, 0, w * sizeof(double));
    for (int i = 0; i < METRICS_THREAD_SLOTS; i++) {
        metric_value *c = atomic_load_explicit(&s->cells[i], memory_order_acquire);
        for (size_t j = 0; c && j < w; j++)
            out[j] += atomic_load_explicit(&c[j], memory_order_relaxed);
    }
    pthread_mutex_lock(&s->family->lock);
    for (size_t j = 0; s->overflow && j < w; j++)
        out[j] += atomic_load_explicit(&s->overflow[j], memory_order_relaxed);
    pthread_mutex_unlock(&s->family->lock);
}

double colony_metric_value(const colony_metric_series *s)
{
    if (!s) return 0;
    if (s->family->type == METRIC_GAUGE) return atomic_load(&((colony_metric_series *)s)->gauge);
    if (s->family->type != METRIC_COUNTER) return 0;
    double v;
    colony__metric_series_sum((colony_metric_series *)s, &v);
    return v;
}
