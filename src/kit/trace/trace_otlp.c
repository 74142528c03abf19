/* OTLP/HTTP JSON encoding of spans (ExportTraceServiceRequest). Per the OTLP
 * JSON mapping, trace and span ids are hex strings, 64-bit integers are
 * decimal strings, and enums are numbers. */
#include <inttypes.h>
#include <math.h>
#include "colony/error.h"
#include "core/json_write.h"
#include "kit/trace/trace_internal.h"

static int put_attr(colony_buf *b, const span_attr *a)
{
    int rc = colony_buf_append_str(b, "{\"key\":");
    if (!rc) rc = colony__json_append_string(b, a->key);
    if (rc) return rc;
    switch (a->type) {
    case ATTR_STR:
        rc = colony_buf_append_str(b, ",\"value\":{\"stringValue\":");
        if (!rc) rc = colony__json_append_string(b, a->v.s);
        if (!rc) rc = colony_buf_append_str(b, "}}");
        break;
    case ATTR_INT:
        rc = colony_buf_appendf(b, ",\"value\":{\"intValue\":\"%" PRId64 "\"}}", a->v.i);
        break;
    case ATTR_DOUBLE:
        if (isfinite(a->v.d))
            rc = colony_buf_appendf(b, ",\"value\":{\"doubleValue\":%.17g}}", a->v.d);
        else
            rc = colony_buf_appendf(b, ",\"value\":{\"stringValue\":\"%g\"}}", a->v.d);
        break;
    case ATTR_BOOL:
        rc = colony_buf_appendf(b, ",\"value\":{\"boolValue\":%s}}", a->v.b ? "true" : "false");
        break;
    }
    return rc;
}

static int put_span(colony_buf *b, const colony_span *s)
{
    char parent[17] = "";
    if (s->has_parent) colony_trace_hex(s->parent_id, 8, parent);
    int rc = colony_buf_appendf(b,
                                "{\"traceId\":\"%s\",\"spanId\":\"%s\",\"parentSpanId\":\"%s\","
                                "\"flags\":%u,\"name\":",
                                s->trace_hex, s->span_hex, parent, (unsigned)s->flags);
    if (!rc) rc = colony__json_append_string(b, s->name);
    if (!rc)
        rc = colony_buf_appendf(b,
                                ",\"kind\":%d,\"startTimeUnixNano\":\"%" PRIu64
                                "\",\"endTimeUnixNano\":\"%" PRIu64 "\",\"attributes\":[",
                                (int)s->kind, s->start_ns, s->end_ns);
    for (size_t i = 0; !rc && i < s->nattrs; i++) {
        if (i) rc = colony_buf_append(b, ",", 1);
        if (!rc) rc = put_attr(b, &s->attrs[i]);
    }
    if (!rc)
        rc = colony_buf_appendf(b, "],\"droppedAttributesCount\":%zu,\"events\":[",
                                s->dropped_attrs);
    for (size_t i = 0; !rc && i < s->nevents; i++) {
        rc = colony_buf_appendf(b, "%s{\"timeUnixNano\":\"%" PRIu64 "\",\"name\":", i ? "," : "",
                                s->events[i].time_ns);
        if (!rc) rc = colony__json_append_string(b, s->events[i].name);
        if (!rc) rc = colony_buf_append(b, "}", 1);
    }
    if (!rc)
        rc = colony_buf_appendf(b, "],\"droppedEventsCount\":%zu,\"status\":{\"code\":%d",
                                s->dropped_events, (int)s->status);
    if (!rc && s->status_message) {
        rc = colony_buf_append_str(b, ",\"message\":");
        if (!rc) rc = colony__json_append_string(b, s->status_message);
    }
    if (!rc) rc = colony_buf_append_str(b, "}}");
    return rc;
}

int colony_trace_encode_otlp(const char *service_name, colony_span *const *spans, size_t n,
                             colony_buf *out)
{
    int rc = colony_buf_append_str(out, "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
                                        "{\"key\":\"service.name\",\"value\":{\"stringValue\":");
    if (!rc) rc = colony__json_append_string(out, service_name ? service_name : "unknown_service");
    if (!rc)
        rc = colony_buf_append_str(out,
                                   "}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"colony\","
                                   "\"version\":\"" COLONY_TRACE_SCOPE_VERSION "\"},\"spans\":[");
    for (size_t i = 0; !rc && i < n; i++) {
        if (i) rc = colony_buf_append(out, ",", 1);
        if (!rc) rc = put_span(out, spans[i]);
    }
    if (!rc) rc = colony_buf_append_str(out, "]}]}]}");
    return rc;
}
