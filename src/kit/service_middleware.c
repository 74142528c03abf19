/* Request metrics and tracing middleware of a colony_service. */
#include <stdio.h>
#include <string.h>
#include <uv.h>
#include "colony/error.h"
#include "colony/log.h"
#include "colony/resilience.h"
#include "kit/service_internal.h"

#define SPAN_KEY     "colony.span"
#define START_KEY    "colony.start_ns"
#define DEADLINE_KEY "colony.deadline"
/* The longest deadline a caller may impose on us. */
#define MAX_DEADLINE_MS (5 * 60 * 1000)

/* Route label: the matched pattern, never the raw path (unbounded label sets
 * would grow memory with every scanned URL). */
static const char *route_label(const colony_request *req)
{
    const char *route = colony_request_route(req);
    return route ? route : "unmatched";
}

static void record_metrics(colony_request *req, int status, void *ud)
{
    colony_service *svc = ud;
    (void)status;
    uint64_t start = (uint64_t)(uintptr_t)colony_request_get_data(req, START_KEY);
    char code[8];
    snprintf(code, sizeof(code), "%d", colony_response_status(req));
    const char *method = colony_request_method(req);
    const char *route = route_label(req);
    colony_metric_inc(colony_metric_with(svc->requests_total, method, route, code), 1);
    colony_metric_observe(colony_metric_with(svc->request_duration, method, route, code),
                          (double)(uv_hrtime() - start) / 1e9);
}

/* First in every chain: the arrival time, and the caller's deadline turned
 * into an absolute one on our clock. A malformed deadline header is ignored. */
static void context_middleware(colony_request *req, colony_chain *next, void *ud)
{
    (void)ud;
    colony_request_set_data(req, START_KEY, (void *)(uintptr_t)uv_hrtime());
    const char *v = colony_request_header(req, COLONY_DEADLINE_HEADER);
    colony_deadline *d = v ? colony_arena_alloc(colony_request_arena(req), sizeof(*d)) : NULL;
    if (d && colony_deadline_from_header(NULL, v, strlen(v), MAX_DEADLINE_MS, d) == 0)
        colony_request_set_data(req, DEADLINE_KEY, d);
    colony_next(next);
}

uint64_t colony_request_deadline_remaining(const colony_request *req)
{
    const colony_deadline *d = colony_request_get_data(req, DEADLINE_KEY);
    return d ? colony_deadline_remaining(d) : UINT64_MAX;
}

static void metrics_middleware(colony_request *req, colony_chain *next, void *ud)
{
    colony_request_on_finish(req, record_metrics, ud);
    colony_next(next);
}

static void end_span(colony_request *req, int status, void *ud)
{
    (void)ud;
    colony_span *span = colony_request_get_data(req, SPAN_KEY);
    if (!span) return;
    int code = colony_response_status(req);
    colony_span_set_str(span, "http.route", route_label(req));
    colony_span_set_int(span, "http.status_code", code);
    if (code >= 500) colony_span_set_status(span, COLONY_SPAN_STATUS_ERROR, NULL);
    if (status < 0) colony_span_set_status(span, COLONY_SPAN_STATUS_ERROR, colony_errname(status));
    colony_request_set_data(req, SPAN_KEY, NULL);
    colony_span_end(span);
}

/* Adds the traceparent of the server span to the response, so a caller can
 * find its trace. */
static void add_trace_header(colony_request *req, int status, void *ud)
{
    (void)status;
    (void)ud;
    colony_span *span = colony_request_get_data(req, SPAN_KEY);
    char tp[56];
    if (!span) return;
    colony_span_traceparent(span, tp);
    colony_response_header(req, "traceparent", tp);
}

static void tracing_middleware(colony_request *req, colony_chain *next, void *ud)
{
    colony_service *svc = ud;
    colony_trace_context parent = {0};
    const char *tp = colony_request_header(req, "traceparent");
    /* A bad traceparent is ignored and a new trace starts (the spec's rule). */
    if (tp) colony_traceparent_parse(tp, strlen(tp), &parent);
    char name[160];
    snprintf(name, sizeof(name), "%s %s", colony_request_method(req), route_label(req));
    colony_span *span = colony_span_start(svc->tracer, name, COLONY_SPAN_SERVER, &parent);
    if (span) {
        colony_span_set_str(span, "http.method", colony_request_method(req));
        colony_span_set_str(span, "http.target", colony_request_target(req));
        colony_span_set_str(span, "net.peer", colony_request_peer(req));
        colony_request_set_data(req, SPAN_KEY, span);
        colony_request_on_finish(req, end_span, svc);
        colony_request_on_response(req, add_trace_header, svc);
        /* Log lines written while the handler runs carry the trace. */
        colony_log_context *ctx = colony_arena_calloc(colony_request_arena(req), sizeof(*ctx));
        if (ctx) {
            ctx->trace_id = colony_span_trace_id_hex(span);
            ctx->span_id = colony_span_span_id_hex(span);
            const colony_log_context *prev = colony_log_set_context(ctx);
            ctx->request_id = prev ? prev->request_id : NULL; /* the server's id */
            colony_next(next);
            colony_log_set_context(prev);
            return;
        }
    }
    colony_next(next);
}

colony_span *colony_request_span(const colony_request *req)
{
    return colony_request_get_data(req, SPAN_KEY);
}

int colony__service_install_middleware(colony_service *svc)
{
    int rc = colony_router_use(svc->router, context_middleware, svc);
    if (!rc && colony_config_get_bool(svc->config, "metrics.enabled")) {
        static const char *const labels[] = {"method", "route", "status_code", NULL};
        svc->requests_total = colony_metrics_counter(svc->metrics, "http_requests_total",
                                                     "HTTP requests answered.", labels);
        svc->request_duration =
            colony_metrics_histogram(svc->metrics, "http_request_duration_seconds",
                                     "HTTP request duration in seconds.", labels, NULL, 0);
        if (!svc->requests_total || !svc->request_duration) return COLONY_ENOMEM;
        rc = colony_router_use(svc->router, metrics_middleware, svc);
    }
    if (!rc && svc->tracer) rc = colony_router_use(svc->router, tracing_middleware, svc);
    return rc;
}
