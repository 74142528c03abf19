/* A test service for end-to-end tests of colony_service: trace and deadline
 * propagation across processes, span export, and graceful shutdown with
 * requests in flight.
 *   GET  /echo-context   -> {"traceparent", "tracestate", "deadline"} as received
 *   GET  /relay          -> calls <downstream>/echo-context, returns its body
 *   GET  /slow?ms=N      -> answers after N ms
 *   POST /v1/traces      -> a tiny OTLP collector: remembers span trace ids
 *   GET  /collected      -> {"spans": n, "trace_ids": [...]} */
#include <stdlib.h>
#include <string.h>
#include <colony/colony.h>

static const colony_config_setting settings[] = {
    {"downstream", COLONY_CONFIG_STRING, "", 0, "base URL that /relay calls", 0, 0},
};

static colony_service *svc;
static json_t *collected; /* trace ids of spans received on /v1/traces */

static void echo_context(colony_request *req, void *ud)
{
    (void)ud;
    const char *tp = colony_request_header(req, "traceparent");
    const char *ts = colony_request_header(req, "tracestate");
    const char *dl = colony_request_header(req, COLONY_DEADLINE_HEADER);
    json_t *body =
        json_pack("{s:s?, s:s?, s:s?}", "traceparent", tp, "tracestate", ts, "deadline", dl);
    colony_respond_json(req, 200, body);
    json_decref(body);
}

static void relayed(colony_client_call *call, int err, const colony_client_response *res, void *ud)
{
    (void)call;
    colony_request *req = ud;
    if (err) {
        colony_respond_error(req, 502, "bad_gateway", colony_strerror(err));
        return;
    }
    colony_respond(req, res->status, "application/json", res->body, res->body_len);
}

static void relay(colony_request *req, void *ud)
{
    (void)ud;
    char url[512];
    snprintf(url, sizeof(url), "%s/echo-context",
             colony_config_get_string(colony_service_config(svc), "downstream"));
    colony_client_request r = {.method = "GET", .url = url, .timeout_ms = 10000};
    int rc = colony_request_call(req, colony_service_client(svc), &r, relayed, req);
    if (rc) colony_respond_error(req, 504, "deadline", colony_strerror(rc));
}

typedef struct delayed {
    uv_timer_t timer;
    colony_request *req;
} delayed;

static void delayed_closed(uv_handle_t *h)
{
    free(h->data);
}

static void delayed_fire(uv_timer_t *t)
{
    delayed *d = t->data;
    colony_respond(d->req, 200, "text/plain", "done", 4);
    uv_close((uv_handle_t *)t, delayed_closed);
}

static void slow(colony_request *req, void *ud)
{
    (void)ud;
    const char *ms = colony_request_query_param(req, "ms");
    delayed *d = calloc(1, sizeof(*d));
    if (!d) {
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    d->req = req;
    /* test_service.sh waits for these lines: the request is in flight. */
    COLONY_LOG_INFO("slow request started", COLONY_LF_STR("ms", ms));
    uv_timer_init(colony_request_loop(req), &d->timer);
    d->timer.data = d;
    uv_timer_start(&d->timer, delayed_fire, ms ? strtoull(ms, NULL, 10) : 100, 0);
}

static void collect(colony_request *req, void *ud)
{
    (void)ud;
    json_t *doc;
    if (colony_request_json(req, 0, &doc)) return;
    size_t i, j, k;
    json_t *rs, *ss, *span;
    json_array_foreach(json_object_get(doc, "resourceSpans"), i, rs)
        json_array_foreach(json_object_get(rs, "scopeSpans"), j, ss)
            json_array_foreach(json_object_get(ss, "spans"), k, span)
                json_array_append(collected, json_object_get(span, "traceId"));
    json_decref(doc);
    colony_respond(req, 200, "application/json", "{}", 2);
}

static void show_collected(colony_request *req, void *ud)
{
    (void)ud;
    json_t *body =
        json_pack("{s:i, s:O}", "spans", (int)json_array_size(collected), "trace_ids", collected);
    colony_respond_json(req, 200, body);
    json_decref(body);
}

int main(int argc, char **argv)
{
    int code;
    colony_service_options o = {.name = "trace_relay",
                                .settings = settings,
                                .nsettings = sizeof(settings) / sizeof(settings[0]),
                                .argc = argc,
                                .argv = argv};
    svc = colony_service_new(&o, stderr, &code);
    if (!svc) return code;
    collected = json_array();
    colony_router *r = colony_service_router(svc);
    colony_router_add(r, "GET", "/echo-context", echo_context, NULL);
    colony_router_add(r, "GET", "/relay", relay, NULL);
    colony_router_add(r, "GET", "/slow", slow, NULL);
    colony_router_add(r, "POST", "/v1/traces", collect, NULL);
    colony_router_add(r, "GET", "/collected", show_collected, NULL);
    code = colony_service_run(svc);
    json_decref(collected);
    return code;
}
