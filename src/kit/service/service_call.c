/* Outgoing calls made on behalf of a request: a client span, trace context
 * and the caller's remaining deadline travel with the call. */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "colony/resilience.h"
#include "core/alloc.h"
#include "kit/service/service_internal.h"
#include "kit/service/service_policy.h"

#define MAX_EXTRA_HEADERS 3

typedef struct outgoing_call {
    colony_span *span;
    colony_client_done_cb cb;
    void *ud;
} outgoing_call;

static void on_call_done(colony_client_call *call, int err, const colony_client_response *res,
                         void *ud)
{
    outgoing_call *oc = ud;
    if (oc->span) {
        if (err) {
            colony_span_set_status(oc->span, COLONY_SPAN_STATUS_ERROR, colony_errname(err));
        } else {
            colony_span_set_int(oc->span, "http.status_code", res->status);
            if (res->status >= 500)
                colony_span_set_status(oc->span, COLONY_SPAN_STATUS_ERROR, NULL);
        }
        colony_span_end(oc->span);
    }
    colony_client_done_cb cb = oc->cb;
    void *cb_ud = oc->ud;
    colony__free(oc);
    cb(call, err, res, cb_ud);
}

/* The caller's headers plus the trace context and the deadline, in one array. */
static const char **with_context_headers(const char *const *headers, const char *traceparent,
                                         const char *tracestate, const char *deadline)
{
    size_t n = 0;
    while (headers && headers[n])
        n += 2;
    const char **out = colony__calloc(n + 2 * MAX_EXTRA_HEADERS + 1, sizeof(*out));
    if (!out) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i += 2) {
        /* Our context replaces any the caller set by hand. */
        if (strcasecmp(headers[i], "traceparent") == 0 ||
            strcasecmp(headers[i], "tracestate") == 0 ||
            strcasecmp(headers[i], COLONY_DEADLINE_HEADER) == 0)
            continue;
        out[k++] = headers[i];
        out[k++] = headers[i + 1];
    }
    if (traceparent) {
        out[k++] = "traceparent";
        out[k++] = traceparent;
    }
    if (traceparent && tracestate) {
        out[k++] = "tracestate";
        out[k++] = tracestate;
    }
    if (deadline) {
        out[k++] = COLONY_DEADLINE_HEADER;
        out[k++] = deadline;
    }
    return out;
}

/* The caller's tracestate travels on unchanged (W3C: vendors propagate it),
 * but only when it is valid and belongs to the trace we continued. */
static const char *incoming_tracestate(const colony_request *req)
{
    const char *ts = req ? colony_request_header(req, "tracestate") : NULL;
    const char *tp = req ? colony_request_header(req, "traceparent") : NULL;
    colony_trace_context ctx;
    if (!ts || !tp || colony_traceparent_parse(tp, strlen(tp), &ctx) != 0) return NULL;
    return colony_tracestate_validate(ts, strlen(ts)) == 0 ? ts : NULL;
}

int colony_request_call(colony_request *req, colony_client *client, const colony_client_request *r,
                        colony_client_done_cb cb, void *ud)
{
    uint64_t remaining = req ? colony_request_deadline_remaining(req) : UINT64_MAX;
    if (remaining == 0) return COLONY_ETIMEDOUT;
    colony_client_request copy = *r;
    char deadline[24] = "";
    if (remaining != UINT64_MAX) {
        if (!copy.timeout_ms || copy.timeout_ms > remaining) copy.timeout_ms = remaining;
        snprintf(deadline, sizeof(deadline), "%llu", (unsigned long long)copy.timeout_ms);
    }
    outgoing_call *oc = colony__calloc(1, sizeof(*oc));
    if (!oc) return COLONY_ENOMEM;
    oc->cb = cb;
    oc->ud = ud;
    colony_span *parent = req ? colony_request_span(req) : NULL;
    char traceparent[56];
    if (parent) {
        char name[160];
        snprintf(name, sizeof(name), "%s %s", r->method ? r->method : "GET", r->url);
        oc->span = colony_span_start_child(NULL, name, COLONY_SPAN_CLIENT, parent);
        if (oc->span) {
            colony_span_set_str(oc->span, "http.url", r->url);
            colony_span_traceparent(oc->span, traceparent);
        }
    }
    const char **headers =
        with_context_headers(r->headers, oc->span ? traceparent : NULL, incoming_tracestate(req),
                             deadline[0] ? deadline : NULL);
    if (!headers) {
        colony_span_end(oc->span);
        colony__free(oc);
        return COLONY_ENOMEM;
    }
    copy.headers = headers;
    /* With a policy the span covers the whole call, retries included, and the
     * policy refreshes the deadline header on every attempt. */
    colony_policy_set *policy = colony__request_policy(req);
    int rc = policy ? colony_policy_call(policy, client, &copy, on_call_done, oc)
                    : colony_client_request_send(client, &copy, on_call_done, oc, NULL);
    colony__free(headers); /* the client and the policy copy what they send */
    if (rc) {
        colony_span_end(oc->span);
        colony__free(oc);
    }
    return rc;
}
