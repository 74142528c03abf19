/* Spans: ids, timing, attributes, events and status. Spans come from a
 * per-thread pool, and strings they record go to a small arena of their own,
 * so a span costs no malloc in the steady state. */
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "kit/trace/trace_internal.h"

static uint64_t clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_ns(void)
{
    return clock_ns(CLOCK_REALTIME);
}

/* ---- per-thread pool: a span per request must not cost a malloc ---- */

#define SPAN_POOL_MAX 64

static _Thread_local colony_span *span_pool;
static _Thread_local size_t span_pool_len;
static _Thread_local int span_pool_registered;
static pthread_key_t span_pool_key;
static pthread_once_t span_pool_once = PTHREAD_ONCE_INIT;

static void span_destroy(colony_span *s)
{
    colony_arena_free(s->arena);
    colony__free(s);
}

/* Thread exit: the pooled spans of that thread are freed. */
static void span_pool_drain(void *unused)
{
    (void)unused;
    while (span_pool) {
        colony_span *s = span_pool;
        span_pool = s->next;
        span_destroy(s);
    }
    span_pool_len = 0;
}

static void span_pool_key_init(void)
{
    if (pthread_key_create(&span_pool_key, span_pool_drain) != 0) span_pool_key = 0;
}

static colony_span *span_alloc(void)
{
    colony_span *s = span_pool;
    if (s) {
        span_pool = s->next;
        span_pool_len--;
    } else {
        s = colony__malloc(sizeof(*s));
        if (!s) return NULL;
        s->arena = NULL;
    }
    memset(s, 0, offsetof(colony_span, arena));
    s->name = "";
    return s;
}

void colony__span_free(colony_span *s)
{
    if (!s) return;
    if (!span_pool_registered) {
        pthread_once(&span_pool_once, span_pool_key_init);
        /* Only a thread whose pool is drained at its exit may keep spans. */
        span_pool_registered = pthread_setspecific(span_pool_key, &span_pool) == 0 ? 1 : -1;
    }
    if (span_pool_registered < 0 || span_pool_len >= SPAN_POOL_MAX) {
        span_destroy(s);
        return;
    }
    if (s->arena && colony_arena_used(s->arena)) colony_arena_reset(s->arena);
    s->next = span_pool;
    span_pool = s;
    span_pool_len++;
}

/* Copies a string into the span's arena (made on first use); NULL on failure. */
static const char *span_strdup(colony_span *s, const char *str)
{
    if (!s->arena) {
        s->arena = colony_arena_new(1024, 64 * 1024);
        if (!s->arena) return NULL;
    }
    return colony_arena_strdup(s->arena, str);
}

static void set_name(colony_span *s, const char *name)
{
    if (!s->sampled || !name || !*name) return;
    const char *copy = span_strdup(s, name);
    if (copy) s->name = copy;
}

/* Common tail of both starts: ids in hex (for logs and propagation), and for
 * a sampled span its name and start time. */
static void finish_start(colony_span *s, const char *name)
{
    colony_trace_new_span_id(s->span_id);
    colony_trace_hex(s->trace_id, 16, s->trace_hex);
    colony_trace_hex(s->span_id, 8, s->span_hex);
    s->flags = s->sampled ? COLONY_TRACE_FLAG_SAMPLED : 0;
    s->recording = s->sampled && s->tracer && colony__tracer_exports(s->tracer);
    if (s->sampled) {
        set_name(s, name);
        /* A span that is not exported only shows its start time to a caller
         * of colony_trace_encode_otlp: the coarse clock (a few ms, a third
         * of the cost of a precise reading) is enough there. */
        s->start_ns = s->recording ? wall_ns() : clock_ns(CLOCK_REALTIME_COARSE);
    }
    if (s->tracer) colony__tracer_count_start(s->tracer, s->sampled);
}

colony_span *colony_span_start(colony_tracer *t, const char *name, colony_span_kind kind,
                               const colony_trace_context *parent)
{
    colony_span *s = span_alloc();
    if (!s) return NULL;
    s->tracer = t;
    s->kind = kind;
    if (parent && parent->valid) {
        memcpy(s->trace_id, parent->trace_id, 16);
        memcpy(s->parent_id, parent->span_id, 8);
        s->has_parent = 1;
    } else {
        colony_trace_new_trace_id(s->trace_id);
        parent = NULL;
    }
    s->sampled = colony_trace_should_sample(parent, s->trace_id, t ? colony__tracer_ratio(t) : 0);
    finish_start(s, name);
    return s;
}

colony_span *colony_span_start_child(colony_tracer *t, const char *name, colony_span_kind kind,
                                     const colony_span *parent)
{
    if (!parent) return colony_span_start(t, name, kind, NULL);
    if (!t) t = parent->tracer; /* children export where their parent does */
    colony_span *s = span_alloc();
    if (!s) return NULL;
    s->tracer = t;
    s->kind = kind;
    memcpy(s->trace_id, parent->trace_id, 16);
    memcpy(s->parent_id, parent->span_id, 8);
    s->has_parent = 1;
    s->sampled = parent->sampled;
    finish_start(s, name);
    return s;
}

void colony_span_update_name(colony_span *s, const char *name)
{
    if (s) set_name(s, name);
}

int colony_span_is_recording(const colony_span *s)
{
    return s && s->recording;
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
    const char *k = span_strdup(s, key);
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
    a->v.s = span_strdup(s, value ? value : "");
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
    const char *n = span_strdup(s, name ? name : "");
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
    s->status_message = message && s->sampled ? span_strdup(s, message) : NULL;
}

/* Built from the hex ids made at start: no second hex encoding. */
void colony_span_traceparent(const colony_span *s, char out[56])
{
    static const char digits[] = "0123456789abcdef";
    memcpy(out, "00-", 3);
    memcpy(out + 3, s->trace_hex, 32);
    out[35] = '-';
    memcpy(out + 36, s->span_hex, 16);
    out[52] = '-';
    out[53] = digits[s->flags >> 4];
    out[54] = digits[s->flags & 15];
    out[55] = '\0';
}

const char *colony_span_trace_id_hex(const colony_span *s)
{
    return s->trace_hex;
}

const char *colony_span_span_id_hex(const colony_span *s)
{
    return s->span_hex;
}

void colony_span_end(colony_span *s)
{
    if (!s) return;
    /* Only an exported span is read after its end (others are freed here). */
    if (s->recording) s->end_ns = wall_ns();
    if (s->sampled && s->tracer)
        colony__tracer_submit(s->tracer, s);
    else
        colony__span_free(s);
}
