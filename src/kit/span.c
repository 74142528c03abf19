/* Spans: ids, timing, attributes, events and status, each span in its own
 * small arena so recording costs no per-attribute malloc. */
#include <string.h>
#include <time.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "kit/trace_internal.h"

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static colony_span *span_new(colony_tracer *t, const char *name, colony_span_kind kind)
{
    colony_arena *a = colony_arena_new(sizeof(colony_span) + 1024, 64 * 1024);
    if (!a) return NULL;
    colony_span *s = colony_arena_calloc(a, sizeof(*s));
    if (!s) {
        colony_arena_free(a);
        return NULL;
    }
    s->arena = a;
    s->tracer = t;
    s->kind = kind;
    s->name = colony_arena_strdup(a, name ? name : "");
    if (!s->name) s->name = "";
    s->start_ns = wall_ns();
    return s;
}

static void finish_start(colony_span *s)
{
    colony_trace_new_span_id(s->span_id);
    colony_trace_hex(s->trace_id, 16, s->trace_hex);
    colony_trace_hex(s->span_id, 8, s->span_hex);
    s->flags = s->sampled ? COLONY_TRACE_FLAG_SAMPLED : 0;
    if (s->tracer) colony__tracer_count_start(s->tracer, s->sampled);
}

colony_span *colony_span_start(colony_tracer *t, const char *name, colony_span_kind kind,
                               const colony_trace_context *parent)
{
    colony_span *s = span_new(t, name, kind);
    if (!s) return NULL;
    if (parent && parent->valid) {
        memcpy(s->trace_id, parent->trace_id, 16);
        memcpy(s->parent_id, parent->span_id, 8);
        s->has_parent = 1;
    } else {
        colony_trace_new_trace_id(s->trace_id);
        parent = NULL;
    }
    s->sampled = colony_trace_should_sample(parent, s->trace_id, t ? colony__tracer_ratio(t) : 0);
    finish_start(s);
    return s;
}

colony_span *colony_span_start_child(colony_tracer *t, const char *name, colony_span_kind kind,
                                     const colony_span *parent)
{
    if (!parent) return colony_span_start(t, name, kind, NULL);
    if (!t) t = parent->tracer; /* children export where their parent does */
    colony_span *s = span_new(t, name, kind);
    if (!s) return NULL;
    memcpy(s->trace_id, parent->trace_id, 16);
    memcpy(s->parent_id, parent->span_id, 8);
    s->has_parent = 1;
    s->sampled = parent->sampled;
    finish_start(s);
    return s;
}

int colony_span_is_sampled(const colony_span *s)
{
    return s && s->sampled;
}

static span_attr *attr_slot(colony_span *s, const char *key)
{
    if (!s || !s->sampled || !key) return NULL;
    for (size_t i = 0; i < s->nattrs; i++)
        if (strcmp(s->attrs[i].key, key) == 0) return &s->attrs[i]; /* last write wins */
    if (s->nattrs == SPAN_MAX_ATTRS) {
        s->dropped_attrs++;
        return NULL;
    }
    const char *k = colony_arena_strdup(s->arena, key);
    if (!k) {
        s->dropped_attrs++;
        return NULL;
    }
    span_attr *a = &s->attrs[s->nattrs++];
    a->key = k;
    return a;
}

void colony_span_set_str(colony_span *s, const char *key, const char *value)
{
    span_attr *a = attr_slot(s, key);
    if (!a) return;
    a->type = ATTR_STR;
    a->v.s = colony_arena_strdup(s->arena, value ? value : "");
    if (!a->v.s) a->v.s = "";
}

void colony_span_set_int(colony_span *s, const char *key, int64_t value)
{
    span_attr *a = attr_slot(s, key);
    if (!a) return;
    a->type = ATTR_INT;
    a->v.i = value;
}

void colony_span_set_double(colony_span *s, const char *key, double value)
{
    span_attr *a = attr_slot(s, key);
    if (!a) return;
    a->type = ATTR_DOUBLE;
    a->v.d = value;
}

void colony_span_set_bool(colony_span *s, const char *key, int value)
{
    span_attr *a = attr_slot(s, key);
    if (!a) return;
    a->type = ATTR_BOOL;
    a->v.b = !!value;
}

void colony_span_add_event(colony_span *s, const char *name)
{
    if (!s || !s->sampled) return;
    if (s->nevents == SPAN_MAX_EVENTS) {
        s->dropped_events++;
        return;
    }
    const char *n = colony_arena_strdup(s->arena, name ? name : "");
    if (!n) {
        s->dropped_events++;
        return;
    }
    s->events[s->nevents].name = n;
    s->events[s->nevents].time_ns = wall_ns();
    s->nevents++;
}

void colony_span_set_status(colony_span *s, colony_span_status status, const char *message)
{
    if (!s) return;
    /* OK is final (the spec: a later ERROR must not override an explicit OK). */
    if (s->status == COLONY_SPAN_STATUS_OK) return;
    s->status = status;
    s->status_message = message ? colony_arena_strdup(s->arena, message) : NULL;
}

void colony_span_traceparent(const colony_span *s, char out[56])
{
    colony_traceparent_format(s->trace_id, s->span_id, s->flags, out);
}

const char *colony_span_trace_id_hex(const colony_span *s)
{
    return s->trace_hex;
}

const char *colony_span_span_id_hex(const colony_span *s)
{
    return s->span_hex;
}

void colony__span_free(colony_span *s)
{
    if (s) colony_arena_free(s->arena);
}

void colony_span_end(colony_span *s)
{
    if (!s) return;
    s->end_ns = wall_ns();
    if (s->sampled && s->tracer)
        colony__tracer_submit(s->tracer, s);
    else
        colony__span_free(s);
}
