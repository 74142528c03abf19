/* Span layout shared by span.c, trace_otlp.c and trace_export.c. */
#ifndef COLONY_KIT_TRACE_INTERNAL_H
#define COLONY_KIT_TRACE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include "colony/arena.h"
#include "colony/trace.h"

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

/* A span and everything it holds live in one arena, freed in one go. */
struct colony_span {
    colony_arena *arena;
    colony_tracer *tracer;
    uint8_t trace_id[16], span_id[8], parent_id[8];
    int has_parent;
    uint8_t flags;
    int sampled;
    const char *name;
    colony_span_kind kind;
    uint64_t start_ns, end_ns;
    span_attr attrs[SPAN_MAX_ATTRS];
    size_t nattrs, dropped_attrs;
    span_event events[SPAN_MAX_EVENTS];
    size_t nevents, dropped_events;
    colony_span_status status;
    const char *status_message;
    char trace_hex[33], span_hex[17];
    struct colony_span *next; /* export queue */
};

/* Hands an ended, sampled span to the tracer's export queue (or frees it). */
void colony__tracer_submit(colony_tracer *t, colony_span *s);
double colony__tracer_ratio(const colony_tracer *t);
void colony__tracer_count_start(colony_tracer *t, int sampled);
void colony__span_free(colony_span *s);

#endif
