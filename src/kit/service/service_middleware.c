/* The middleware of a colony_service: deadline, request metrics and tracing,
 * in one chain step with one on_finish hook per request. */
#include <string.h>
#include <uv.h>
#include "colony/error.h"
#include "colony/log.h"
#include "colony/resilience.h"
#include "kit/metrics/metrics_internal.h"
#include "kit/service/service_internal.h"

#define SPAN_KEY     "colony.span"
#define DEADLINE_KEY "colony.deadline"
/* The longest deadline a caller may impose on us. */
#define MAX_DEADLINE_MS (5 * 60 * 1000)

/* Route label: the matched pattern, never the raw path (unbounded label sets
 * would grow memory with every scanned URL); every unmatched path is the one
 * value "unmatched". */
static const char *route_label(const colony_request *req)
{
    const char *route = colony_request_route(req);
    return route ? route : "unmatched";
}

/* Method label: the nine standard methods as they are, anything else (a
 * client may send any token) the one value "OTHER", so invented methods
 * cannot grow the label set (prom-client users learn to do the same). */
static const char *method_label(const char *method)
{
    static const char *const standard[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                           "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    for (size_t i = 0; i < sizeof(standard) / sizeof(standard[0]); i++)
        if (strcmp(method, standard[i]) == 0) return standard[i];
    return "OTHER";
}

/* "200" without snprintf; status is 100..999 once a response started, 0 when
 * none was sent. */
static void status_label(int status, char out[8])
{
    if (status < 0 || status > 9999) status = 0;
    char tmp[8];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + status % 10);
        status /= 10;
    } while (status);
    for (int i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
}

/* Up to 8 bytes of the method packed in a word (0 = too long to pack). */
static uint64_t method_word(const char *method)
{
    uint64_t w = 0;
    for (size_t i = 0; method[i]; i++) {
        if (i == 8) return 0;
        w |= (uint64_t)(unsigned char)method[i] << (8 * i);
    }
    return w;
}

/* A per-thread, direct-mapped cache of the request series, so the steady
 * state costs no hashing or label formatting. Keyed by the family's id (never
 * reused, so an entry of a freed registry can never match), the route
 * pattern's pointer (router patterns are stable; the text is compared too, so
 * a reused address cannot pick the wrong series), the packed method and the
 * status. */
#define SERIES_CACHE_SIZE 64

typedef struct series_cache_entry {
    uint64_t total_id, duration_id, method;
    const char *route;
    int status;
    colony_metric_series *total, *duration;
} series_cache_entry;

static _Thread_local series_cache_entry series_cache[SERIES_CACHE_SIZE];

static void request_series(colony_service *svc, const char *method, const char *route, int status,
                           colony_metric_series **total, colony_metric_series **duration)
{
    uint64_t mw = method_word(method);
    uint64_t total_id = svc->requests_total->id, duration_id = svc->request_duration->id;
    size_t slot =
        (size_t)(((uintptr_t)route >> 4) ^ mw ^ (uint64_t)status * 0x9e3779b1u) % SERIES_CACHE_SIZE;
    series_cache_entry *e = &series_cache[slot];
    if (mw && e->total_id == total_id && e->duration_id == duration_id && e->method == mw &&
        e->status == status && e->route == route && strcmp(e->total->values[1], route) == 0) {
        *total = e->total;
        *duration = e->duration;
        return;
    }
    char code[8];
    status_label(status, code);
    const char *values[] = {method, route, code};
    *total = colony_metric_with_values(svc->requests_total, values);
    *duration = colony_metric_with_values(svc->request_duration, values);
    if (!mw || !*total || !*duration) return;
    *e = (series_cache_entry){total_id, duration_id, mw, route, status, *total, *duration};
}

/* What a request's observation needs at its end, in one arena allocation:
 * the start time for the duration histogram, the server span, and the log
 * context that carries the span's ids while the handler runs. */
typedef struct request_observation {
    colony_service *svc;
    uint64_t start_ns;
    colony_span *span;
    colony_log_context log_ctx;
} request_observation;

static void record_metrics(colony_request *req, const request_observation *o)
{
    colony_metric_series *total, *duration;
    request_series(o->svc, method_label(colony_request_method(req)), route_label(req),
                   colony_response_status(req), &total, &duration);
    colony_metric_inc(total, 1);
    colony_metric_observe(duration, (double)(uv_hrtime() - o->start_ns) / 1e9);
}

/* The caller's deadline turned into an absolute one on our clock. A
 * malformed deadline header is ignored. */
static void read_deadline(colony_request *req)
{
    const char *v = colony_request_header(req, COLONY_DEADLINE_HEADER);
    colony_deadline *d = v ? colony_arena_alloc(colony_request_arena(req), sizeof(*d)) : NULL;
    if (d && colony_deadline_from_header(NULL, v, strlen(v), MAX_DEADLINE_MS, d) == 0)
        colony_request_set_data(req, DEADLINE_KEY, d);
}

uint64_t colony_request_deadline_remaining(const colony_request *req)
{
    const colony_deadline *d = colony_request_get_data(req, DEADLINE_KEY);
    return d ? colony_deadline_remaining(d) : UINT64_MAX;
}

static void end_span(colony_request *req, int status, colony_span *span)
{
    int code = colony_response_status(req);
    if (colony_span_is_recording(span)) {
        colony_span_set_str(span, "http.route", route_label(req));
        colony_span_set_int(span, "http.status_code", code);
    }
    if (code >= 500) colony_span_set_status(span, COLONY_SPAN_STATUS_ERROR, NULL);
    if (status < 0) colony_span_set_status(span, COLONY_SPAN_STATUS_ERROR, colony_errname(status));
    colony_request_set_data(req, SPAN_KEY, NULL);
    colony_span_end(span);
}

/* Name ("GET /users/:id") and attributes, only for a span whose data leaves
 * the process: building them costs more than the rest of the span. */
static void describe_server_span(colony_span *span, colony_request *req)
{
    const char *method = method_label(colony_request_method(req)), *route = route_label(req);
    char name[160];
    size_t ml = strlen(method), rl = strlen(route);
    if (ml > 40) ml = 40;
    if (rl > sizeof(name) - ml - 2) rl = sizeof(name) - ml - 2;
    memcpy(name, method, ml);
    name[ml] = ' ';
    memcpy(name + ml + 1, route, rl);
    name[ml + 1 + rl] = '\0';
    colony_span_update_name(span, name);
    colony_span_set_str(span, "http.method", colony_request_method(req));
    colony_span_set_str(span, "http.target", colony_request_target(req));
    colony_span_set_str(span, "net.peer", colony_request_peer(req));
}

/* The server span: continues the caller's trace (a bad traceparent is
 * ignored and a new trace starts, the spec's rule) and puts its traceparent on
 * the response so the caller can find the trace. The header is set now
 * (response headers wait on the request until it answers): cheaper than an
 * on_response hook. */
static colony_span *start_server_span(colony_service *svc, colony_request *req)
{
    colony_trace_context parent;
    parent.valid = 0;
    const char *tp = colony_request_header(req, "traceparent");
    if (tp) colony_traceparent_parse(tp, strlen(tp), &parent);
    colony_span *span = colony_span_start(svc->tracer, NULL, COLONY_SPAN_SERVER, &parent);
    if (!span) return NULL;
    if (colony_span_is_recording(span)) describe_server_span(span, req);
    colony_request_set_data(req, SPAN_KEY, span);
    char traceparent[56];
    colony_span_traceparent(span, traceparent);
    colony_response_header(req, "traceparent", traceparent);
    return span;
}

/* The one on_finish hook: the span ends first, then the request is counted. */
static void finish_observation(colony_request *req, int status, void *ud)
{
    request_observation *o = ud;
    if (o->span) end_span(req, status, o->span);
    if (o->svc->requests_total) record_metrics(req, o);
}

/* First in every chain (one middleware, one hook and one allocation for
 * all of it): the deadline, then whichever of metrics and tracing are on. */
static void service_middleware(colony_request *req, colony_chain *next, void *ud)
{
    colony_service *svc = ud;
    read_deadline(req);
    if (!svc->requests_total && !svc->tracer) {
        colony_next(next);
        return;
    }
    request_observation *o = colony_arena_alloc(colony_request_arena(req), sizeof(*o));
    if (!o) {
        colony_next(next);
        return;
    }
    o->svc = svc;
    o->start_ns = svc->requests_total ? uv_hrtime() : 0;
    o->span = svc->tracer ? start_server_span(svc, req) : NULL;
    if (colony_request_on_finish(req, finish_observation, o) != 0) {
        if (o->span) { /* no hook would end it */
            colony_request_set_data(req, SPAN_KEY, NULL);
            colony_span_end(o->span);
        }
        colony_next(next);
        return;
    }
    if (!o->span) {
        colony_next(next);
        return;
    }
    /* Log lines written while the handler runs carry the trace. */
    o->log_ctx.trace_id = colony_span_trace_id_hex(o->span);
    o->log_ctx.span_id = colony_span_span_id_hex(o->span);
    const colony_log_context *prev = colony_log_set_context(&o->log_ctx);
    o->log_ctx.request_id = prev ? prev->request_id : NULL; /* the server's id */
    colony_next(next);
    colony_log_set_context(prev);
}

colony_span *colony_request_span(const colony_request *req)
{
    return colony_request_get_data(req, SPAN_KEY);
}

int colony__service_install_middleware(colony_service *svc)
{
    if (colony_config_get_bool(svc->config, "metrics.enabled")) {
        static const char *const labels[] = {"method", "route", "status_code", NULL};
        svc->requests_total = colony_metrics_counter(svc->metrics, "http_requests_total",
                                                     "HTTP requests answered.", labels);
        svc->request_duration =
            colony_metrics_histogram(svc->metrics, "http_request_duration_seconds",
                                     "HTTP request duration in seconds.", labels, NULL, 0);
        if (!svc->requests_total || !svc->request_duration) return COLONY_ENOMEM;
    }
    return colony_router_use(svc->router, service_middleware, svc);
}
