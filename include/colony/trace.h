/* Distributed tracing: W3C Trace Context (traceparent/tracestate) parsed and
 * validated exactly per the spec, spans with attributes, events and status,
 * parent-based ratio sampling, and batched non-blocking export as OTLP/HTTP
 * JSON. A bad traceparent is ignored and a new trace starts; a bad tracestate
 * is dropped without affecting the traceparent. */
#ifndef COLONY_TRACE_H
#define COLONY_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "export.h"

/* ---- trace context ---- */
typedef struct colony_trace_context {
    uint8_t trace_id[16];
    uint8_t span_id[8]; /* the parent span, as received in traceparent */
    uint8_t flags;      /* bit 0: sampled */
    int valid;          /* 1 after a successful parse */
} colony_trace_context;

#define COLONY_TRACE_FLAG_SAMPLED 0x01
#define COLONY_TRACEPARENT_LEN    55
#define COLONY_TRACESTATE_MAX     512 /* bytes kept when propagating */

/* Parses a traceparent header value. 0 on success (ctx->valid = 1), else
 * COLONY_EINVAL with ctx zeroed: wrong length or separators, uppercase or
 * non-hex digits, version ff, all-zero trace-id or parent-id, or (for version
 * 00) trailing data. Higher versions may carry more fields after "-". */
COLONY_API int colony_traceparent_parse(const char *value, size_t len, colony_trace_context *ctx);
/* Writes "00-<trace>-<span>-<flags>" (55 chars + NUL) into out[56]. */
COLONY_API void colony_traceparent_format(const uint8_t trace_id[16], const uint8_t span_id[8],
                                          uint8_t flags, char out[56]);
/* Validates a tracestate value: at most 32 list-members key=value separated by
 * commas with optional spaces or tabs, keys per the spec (simple or
 * tenant@system), values of printable ASCII without ',' or '=' not ending in
 * a space, no duplicate keys. Returns 0 or COLONY_EINVAL. */
COLONY_API int colony_tracestate_validate(const char *value, size_t len);

/* Random non-zero ids (OpenSSL-free: a per-thread xoshiro seeded from getrandom). */
COLONY_API void colony_trace_new_trace_id(uint8_t out[16]);
COLONY_API void colony_trace_new_span_id(uint8_t out[8]);
/* Lowercase hex of n bytes into out[2n+1]. */
COLONY_API void colony_trace_hex(const uint8_t *bytes, size_t n, char *out);

/* Parent-based ratio sampling: follows the parent's sampled flag when there
 * is a valid parent, else samples trace ids whose low 8 bytes fall under
 * ratio (0..1) — deterministic per trace id, so every service agrees. */
COLONY_API int colony_trace_should_sample(const colony_trace_context *parent,
                                          const uint8_t trace_id[16], double ratio);

/* ---- spans ---- */
typedef enum colony_span_kind {
    COLONY_SPAN_INTERNAL = 1,
    COLONY_SPAN_SERVER = 2,
    COLONY_SPAN_CLIENT = 3,
    COLONY_SPAN_PRODUCER = 4,
    COLONY_SPAN_CONSUMER = 5,
} colony_span_kind;

typedef enum colony_span_status {
    COLONY_SPAN_STATUS_UNSET = 0,
    COLONY_SPAN_STATUS_OK = 1,
    COLONY_SPAN_STATUS_ERROR = 2,
} colony_span_status;

typedef struct colony_span colony_span;
typedef struct colony_tracer colony_tracer;

/* Starts a span; name may be NULL (see colony_span_update_name). parent may
 * be NULL or an invalid context (a new trace starts). The span is sampled per
 * the tracer's ratio; an unsampled span still has ids (for propagation and
 * logs) but records nothing and is not exported. Spans are pooled per thread.
 * NULL on allocation failure. End it with colony_span_end(), which hands it to
 * the exporter (or frees it). */
COLONY_API colony_span *colony_span_start(colony_tracer *t, const char *name, colony_span_kind kind,
                                          const colony_trace_context *parent);
/* A child of another span in the same process; t NULL = the parent's tracer. */
COLONY_API colony_span *colony_span_start_child(colony_tracer *t, const char *name,
                                                colony_span_kind kind, const colony_span *parent);
/* Sampled vs recording:
 * - sampled: the trace-flags bit this span propagates downstream (traceparent
 *   "-01"); a sampled span keeps what colony_span_set_* give it, so
 *   colony_trace_encode_otlp can encode it.
 * - recording: sampled AND its tracer exports (has an endpoint), i.e. what is
 *   set on the span will leave the process. Instrumentation should skip
 *   building attributes, events and names when a span is not recording; a
 *   span always has ids (for propagation and logs) either way. A sampled span
 *   that is not recording keeps its start time to the coarse clock's
 *   precision (a few ms) and takes no end time. */
COLONY_API int colony_span_is_sampled(const colony_span *s);
COLONY_API int colony_span_is_recording(const colony_span *s);
/* Sets the span's name (copied; ignored unless sampled): lets a caller that
 * started a span with a NULL name build the name only when it is recording. */
COLONY_API void colony_span_update_name(colony_span *s, const char *name);
/* Attributes (copied; at most 64 per span, later ones are counted as dropped). */
COLONY_API void colony_span_set_str(colony_span *s, const char *key, const char *value);
COLONY_API void colony_span_set_int(colony_span *s, const char *key, int64_t value);
COLONY_API void colony_span_set_double(colony_span *s, const char *key, double value);
COLONY_API void colony_span_set_bool(colony_span *s, const char *key, int value);
/* An event now (at most 32 per span), with no attributes. */
COLONY_API void colony_span_add_event(colony_span *s, const char *name);
COLONY_API void colony_span_set_status(colony_span *s, colony_span_status status,
                                       const char *message);
/* The traceparent to send downstream: this span as the parent. out[56]. */
COLONY_API void colony_span_traceparent(const colony_span *s, char out[56]);
/* Hex ids, NUL-terminated, valid while the span lives (for log context). */
COLONY_API const char *colony_span_trace_id_hex(const colony_span *s);
COLONY_API const char *colony_span_span_id_hex(const colony_span *s);
/* Ends the span (records the end time) and passes ownership to the tracer;
 * it must happen before colony_tracer_free of that tracer begins. */
COLONY_API void colony_span_end(colony_span *s);

/* ---- tracer and export ---- */
typedef struct colony_tracer_options {
    const char *service_name; /* resource attribute service.name */
    double
        sample_ratio; /* 0..1 for root spans; default 1 when a tracer is created with NULL opts */
    const char *endpoint; /* OTLP/HTTP traces URL (http://host:4318/v1/traces); NULL = no export */
    size_t max_queue;     /* 2048 spans waiting for export; more are dropped and counted */
    size_t max_batch;     /* 512 spans per export request */
    uint64_t flush_interval_ms; /* 5000 */
} colony_tracer_options;
/* Fills o with the defaults above: every root span sampled, no export. */
COLONY_API void colony_tracer_options_init(colony_tracer_options *o);

/* Creates a tracer. With an endpoint it starts an exporter thread with its own
 * loop; span_end only enqueues (never blocks on I/O). NULL on failure. */
COLONY_API colony_tracer *colony_tracer_new(const colony_tracer_options *opts);
/* Flushes what is queued (bounded by timeout_ms), stops the exporter and frees.
 * No span of this tracer may end (or start) during or after this call: stop
 * every thread that ends spans first (colony_service frees its server and
 * workers before its tracer). */
COLONY_API void colony_tracer_free(colony_tracer *t, uint64_t timeout_ms);

typedef struct colony_tracer_stats {
    uint64_t started, sampled, exported, dropped, export_errors;
} colony_tracer_stats;
COLONY_API void colony_tracer_get_stats(colony_tracer *t, colony_tracer_stats *out);

/* Encodes spans as one OTLP/JSON ExportTraceServiceRequest; for tests and sinks. */
COLONY_API int colony_trace_encode_otlp(const char *service_name, colony_span *const *spans,
                                        size_t n, colony_buf *out);

#endif
