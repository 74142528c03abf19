/* Span layout shared by span.c, trace_otlp.c and trace_export.c. */
#ifndef COLONY_KIT_TRACE_INTERNAL_H
#define COLONY_KIT_TRACE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include "colony/arena.h"
#include "colony/trace.h"
#include "core/list.h"

#define SPAN_MAX_ATTRS             64
#define SPAN_MAX_EVENTS            32
#define COLONY_TRACE_SCOPE_VERSION "0.1.0"

typedef enum span_attr_type { ATTR_STR, ATTR_INT, ATTR_DOUBLE, ATTR_BOOL } span_attr_type;

typedef struct span_attr {
    const char *key;
    span_attr_type type;
    union {
        const char *s;
        int64_t i;
        double d;
        int b;
    } v;
} span_attr;

typedef struct span_event {
    const char *name;
    uint64_t time_ns;
} span_event;

/* A span. Spans are pooled per thread: the fields up to `arena` are reset
 * when a span is reused; the arena (created on the first string copy, reset
 * on reuse) and the attribute/event arrays are kept as they are. */
struct colony_span {
    colony_tracer *tracer;
    uint8_t trace_id[16], span_id[8], parent_id[8];
    uint8_t flags;
    int has_parent;
    int sampled;   /* the sampled flag that propagates downstream */
    int recording; /* sampled and the tracer exports: instrumentation records */
    const char *name;
    colony_span_kind kind;
    uint64_t start_ns, end_ns;
    size_t nattrs, dropped_attrs;
    size_t nevents, dropped_events;
    colony_span_status status;
    const char *status_message;
    char trace_hex[33], span_hex[17];
    struct colony_span *next; /* the thread's pool of free spans */
    colony__list queue_link;  /* the tracer's export queue */
    /* ---- kept across reuse ---- */
    colony_arena *arena;
    span_attr attrs[SPAN_MAX_ATTRS];
    span_event events[SPAN_MAX_EVENTS];
};

/* Hands an ended, sampled span to the tracer's export queue (or frees it). */
void colony__tracer_submit(colony_tracer *t, colony_span *s);
double colony__tracer_ratio(const colony_tracer *t);
/* 1 when the tracer sends spans somewhere (it has an export endpoint). */
int colony__tracer_exports(const colony_tracer *t);
void colony__tracer_count_start(colony_tracer *t, int sampled);
void colony__span_free(colony_span *s);

#endif
