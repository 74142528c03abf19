/* Trace context per the W3C spec's valid and invalid cases, sampling,
 * spans and their OTLP/JSON encoding. */
#include "test_support.h"
#include <jansson.h>
#include <string.h>
#include "colony/colony.h"
#include "colony/trace.h"

static int parse(const char *s, colony_trace_context *ctx)
{
    return colony_traceparent_parse(s, strlen(s), ctx);
}

static void traceparent_valid(void **state)
{
    (void)state;
    colony_trace_context c;
    assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &c), 0);
    assert_true(c.valid);
    assert_int_equal(c.trace_id[0], 0x4b);
    assert_int_equal(c.trace_id[15], 0x36);
    assert_int_equal(c.span_id[7], 0xb7);
    assert_int_equal(c.flags, 1);
    assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &c), 0);
    assert_int_equal(c.flags, 0);
    /* A future version may append fields after a dash, and unknown flags are kept. */
    assert_int_equal(parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what", &c), 0);
    assert_int_equal(c.flags, 9);
    assert_int_equal(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &c), 0);
    char out[56];
    colony_traceparent_format(c.trace_id, c.span_id, 1, out);
    assert_string_equal(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
}

static void traceparent_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",     /* no flags */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", /* v00 with extra */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", /* v00 with extra */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* version ff */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  /* zero parent id */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  /* uppercase */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",  /* uppercase */
        "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* non-hex version */
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",  /* non-hex trace */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",  /* non-hex flags */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* separator */
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
        "00-4bf92f3577b34da6a3ce929d0e0e47-3600f067aa0ba902b7-01",   /* shifted */
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* leading space */
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.x", /* future, no dash */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        colony_trace_context c;
        c.valid = 7;
        if (parse(bad[i], &c) != COLONY_EINVAL) fail_msg("accepted: '%s'", bad[i]);
        assert_int_equal(c.valid, 0);
    }
}

static int ts(const char *s)
{
    return colony_tracestate_validate(s, strlen(s));
}

static void tracestate_rules(void **state)
{
    (void)state;
    assert_int_equal(ts("rojo=00f067aa0ba902b7"), 0);
    assert_int_equal(ts("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"), 0);
    assert_int_equal(ts(" rojo=1 ,\tcongo=2\t"), 0);
    assert_int_equal(ts("rojo=1,,congo=2"), 0); /* empty members are allowed */
    assert_int_equal(ts("tenant1@vendor=x"), 0);
    assert_int_equal(ts("1tenant@vendor=x"), 0);
    assert_int_equal(ts("a/b*c_d-e=v"), 0);
    assert_int_equal(ts(""), 0);
    assert_int_equal(ts("Rojo=1"), COLONY_EINVAL);        /* uppercase key */
    assert_int_equal(ts("1rojo=1"), COLONY_EINVAL);       /* simple key starts with a digit */
    assert_int_equal(ts("rojo"), COLONY_EINVAL);          /* no '=' */
    assert_int_equal(ts("rojo=1,rojo=2"), COLONY_EINVAL); /* duplicate */
    assert_int_equal(ts("rojo=a,b"), COLONY_EINVAL);      /* "b" is not a member */
    assert_int_equal(ts("rojo=a=b"), COLONY_EINVAL);      /* '=' in value */
    assert_int_equal(ts("rojo="), COLONY_EINVAL);         /* empty value */
    assert_int_equal(ts("rojo=\x01"), COLONY_EINVAL);
    assert_int_equal(ts("t@Vendor=1"), COLONY_EINVAL);
    assert_int_equal(ts("t@vendorvendorvendor=1"), COLONY_EINVAL); /* system id > 14 */
    char many[600] = "";
    for (int i = 0; i < 33; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%sk%d=v", i ? "," : "", i);
    assert_int_equal(ts(many), COLONY_EINVAL); /* 33 members */
    *strrchr(many, ',') = '\0';
    assert_int_equal(ts(many), 0); /* 32 members */
}

static void sampling_is_parent_based_and_deterministic(void **state)
{
    (void)state;
    colony_trace_context parent;
    parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &parent);
    uint8_t id[16];
    colony_trace_new_trace_id(id);
    assert_false(colony_trace_should_sample(&parent, id, 1.0)); /* follows the parent */
    parent.flags = 1;
    assert_true(colony_trace_should_sample(&parent, id, 0.0));
    int sampled = 0;
    for (int i = 0; i < 10000; i++) {
        colony_trace_new_trace_id(id);
        int a = colony_trace_should_sample(NULL, id, 0.25);
        assert_int_equal(a, colony_trace_should_sample(NULL, id, 0.25));
        sampled += a;
    }
    assert_in_range(sampled, 2200, 2800);
    assert_false(colony_trace_should_sample(NULL, id, 0));
}

static void spans_encode_as_otlp_json(void **state)
{
    (void)state;
    colony_tracer *t = colony_tracer_new(NULL); /* ratio 1, no export */
    colony_trace_context parent;
    parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &parent);
    colony_span *server = colony_span_start(t, "GET /users/:id", COLONY_SPAN_SERVER, &parent);
    assert_true(colony_span_is_sampled(server));
    assert_string_equal(colony_span_trace_id_hex(server), "4bf92f3577b34da6a3ce929d0e0e4736");
    colony_span_set_str(server, "http.method", "GET");
    colony_span_set_int(server, "http.status_code", 200);
    colony_span_set_int(server, "http.status_code", 404); /* last write wins */
    colony_span_set_bool(server, "ok", 0);
    colony_span_set_double(server, "ratio", 0.5);
    colony_span_add_event(server, "cache \"miss\"");
    colony_span_set_status(server, COLONY_SPAN_STATUS_ERROR, "not found");
    colony_span *client = colony_span_start_child(t, "GET users", COLONY_SPAN_CLIENT, server);
    char tp[56];
    colony_span_traceparent(client, tp);
    colony_trace_context down;
    assert_int_equal(colony_traceparent_parse(tp, strlen(tp), &down), 0);
    assert_memory_equal(down.trace_id, parent.trace_id, 16);
    assert_memory_equal(colony_span_span_id_hex(client), tp + 36, 16);

    colony_buf b;
    colony_buf_init(&b, 1 << 20);
    colony_span *spans[] = {server, client};
    assert_int_equal(colony_trace_encode_otlp("orders", spans, 2, &b), 0);
    json_error_t err;
    json_t *doc = json_loads(b.data, 0, &err);
    assert_non_null(doc);
    json_t *rs = json_array_get(json_object_get(doc, "resourceSpans"), 0);
    json_t *attr =
        json_array_get(json_object_get(json_object_get(rs, "resource"), "attributes"), 0);
    assert_string_equal(json_string_value(json_object_get(attr, "key")), "service.name");
    json_t *list = json_object_get(json_array_get(json_object_get(rs, "scopeSpans"), 0), "spans");
    assert_int_equal(json_array_size(list), 2);
    json_t *s0 = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(s0, "traceId")),
                        "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(json_string_value(json_object_get(s0, "parentSpanId")), "00f067aa0ba902b7");
    assert_int_equal(json_integer_value(json_object_get(s0, "kind")), 2);
    json_t *attrs = json_object_get(s0, "attributes");
    assert_int_equal(json_array_size(attrs), 4);
    json_t *code = json_object_get(json_array_get(attrs, 1), "value");
    assert_string_equal(json_string_value(json_object_get(code, "intValue")), "404");
    json_t *ev = json_array_get(json_object_get(s0, "events"), 0);
    assert_string_equal(json_string_value(json_object_get(ev, "name")), "cache \"miss\"");
    json_t *status = json_object_get(s0, "status");
    assert_int_equal(json_integer_value(json_object_get(status, "code")), 2);
    assert_string_equal(json_string_value(json_object_get(status, "message")), "not found");
    json_t *s1 = json_array_get(list, 1);
    assert_string_equal(json_string_value(json_object_get(s1, "parentSpanId")),
                        colony_span_span_id_hex(server));
    json_decref(doc);
    colony_buf_free(&b);
    colony_span_end(client);
    colony_span_end(server);
    colony_tracer_stats st;
    colony_tracer_get_stats(t, &st);
    assert_int_equal(st.started, 2);
    assert_int_equal(st.sampled, 2);
    colony_tracer_free(t, 0);
}

static void unsampled_spans_record_nothing(void **state)
{
    (void)state;
    colony_tracer_options o = {.sample_ratio = 0};
    colony_tracer *t = colony_tracer_new(&o);
    colony_span *s = colony_span_start(t, "x", COLONY_SPAN_INTERNAL, NULL);
    assert_false(colony_span_is_sampled(s));
    colony_span_set_str(s, "k", "v");
    char tp[56];
    colony_span_traceparent(s, tp);
    assert_string_equal(tp + 53, "00");
    colony_span_end(s);
    colony_tracer_free(t, 0);
}

/* Recording = sampled and exported: without an endpoint a sampled span still
 * propagates "-01" but instrumentation is told not to build attributes. */
static void recording_needs_an_exporting_tracer(void **state)
{
    (void)state;
    colony_tracer *local = colony_tracer_new(NULL);
    colony_span *s = colony_span_start(local, NULL, COLONY_SPAN_SERVER, NULL);
    assert_true(colony_span_is_sampled(s));
    assert_false(colony_span_is_recording(s));
    colony_span_end(s);
    colony_tracer_free(local, 0);

    colony_tracer_options o = {.sample_ratio = 1, .endpoint = "http://127.0.0.1:9/v1/traces"};
    colony_tracer *exporting = colony_tracer_new(&o);
    assert_non_null(exporting);
    s = colony_span_start(exporting, "x", COLONY_SPAN_SERVER, NULL);
    assert_true(colony_span_is_recording(s));
    colony_span *child = colony_span_start_child(NULL, "y", COLONY_SPAN_CLIENT, s);
    assert_true(colony_span_is_recording(child));
    colony_span_end(child);
    colony_span_end(s);
    o.sample_ratio = 0;
    colony_tracer *unsampled = colony_tracer_new(&o);
    s = colony_span_start(unsampled, "x", COLONY_SPAN_SERVER, NULL);
    assert_false(colony_span_is_recording(s));
    colony_span_end(s);
    colony_tracer_free(unsampled, 0);
    colony_tracer_free(exporting, 0);
    assert_false(colony_span_is_recording(NULL));
}

/* Spans are reused from a per-thread pool: nothing of an ended span (name,
 * attributes, events, status, parent) may show in the next one. */
static void pooled_spans_start_clean(void **state)
{
    (void)state;
    colony_tracer *t = colony_tracer_new(NULL);
    colony_trace_context parent;
    parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &parent);
    for (int i = 0; i < 200; i++) {
        colony_span *s = colony_span_start(t, "old", COLONY_SPAN_SERVER, &parent);
        colony_span_set_str(s, "k", "v");
        colony_span_add_event(s, "e");
        colony_span_set_status(s, COLONY_SPAN_STATUS_ERROR, "bad");
        colony_span_end(s);
    }
    colony_span *s = colony_span_start(t, NULL, COLONY_SPAN_INTERNAL, NULL);
    colony_span_update_name(s, "GET /fresh");
    colony_buf b;
    colony_buf_init(&b, 1 << 20);
    colony_span *spans[] = {s};
    assert_int_equal(colony_trace_encode_otlp("svc", spans, 1, &b), 0);
    json_error_t err;
    json_t *doc = json_loads(b.data, 0, &err);
    assert_non_null(doc);
    json_t *rs = json_array_get(json_object_get(doc, "resourceSpans"), 0);
    json_t *js = json_array_get(
        json_object_get(json_array_get(json_object_get(rs, "scopeSpans"), 0), "spans"), 0);
    assert_string_equal(json_string_value(json_object_get(js, "name")), "GET /fresh");
    assert_string_equal(json_string_value(json_object_get(js, "parentSpanId")), "");
    assert_int_equal(json_array_size(json_object_get(js, "attributes")), 0);
    assert_int_equal(json_array_size(json_object_get(js, "events")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(js, "status"), "code")), 0);
    assert_int_equal(json_integer_value(json_object_get(js, "kind")), 1);
    assert_string_not_equal(colony_span_trace_id_hex(s), "4bf92f3577b34da6a3ce929d0e0e4736");
    json_decref(doc);
    colony_buf_free(&b);
    colony_span_end(s);
    colony_tracer_free(t, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(traceparent_valid),
        cmocka_unit_test(traceparent_invalid),
        cmocka_unit_test(tracestate_rules),
        cmocka_unit_test(sampling_is_parent_based_and_deterministic),
        cmocka_unit_test(spans_encode_as_otlp_json),
        cmocka_unit_test(unsampled_spans_record_nothing),
        cmocka_unit_test(recording_needs_an_exporting_tracer),
        cmocka_unit_test(pooled_spans_start_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
