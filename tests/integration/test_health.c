/* Health checks over a real server: passing, failing and timed-out checks,
 * asynchronous checks, liveness vs readiness, readiness false during
 * shutdown; and /metrics of the metrics handler. */
#include "test_support.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "colony/colony.h"

static uv_loop_t loop;
static colony_server *server;
static colony_router *router;
static colony_health *health;
static colony_client *client;
static char base_url[64];

typedef struct get_result {
    int done, err, status;
    json_t *json;
} get_result;

static void on_response(colony_client_call *call, int err, const colony_client_response *res,
                        void *ud)
{
    (void)call;
    get_result *r = ud;
    r->err = err;
    if (!err) {
        r->status = res->status;
        json_error_t jerr;
        r->json = json_loadb(res->body, res->body_len, 0, &jerr);
    }
    r->done = 1;
}

static get_result get(const char *path)
{
    char url[128];
    snprintf(url, sizeof(url), "%s%s", base_url, path);
    get_result r = {0};
    colony_client_request req = {.method = "GET", .url = url};
    assert_int_equal(colony_client_request_send(client, &req, on_response, &r, NULL), 0);
    assert_true(colony_test_run_until(&loop, &r.done, 5000));
    assert_int_equal(r.err, 0);
    return r;
}

static const char *check_field(json_t *doc, const char *check, const char *field)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(doc, "checks"), check), field));
}

static void check_ok(colony_health_probe *p, void *ud)
{
    (void)ud;
    colony_health_probe_done(p, 1, json_pack("{s:i}", "connections", 3), NULL);
}

static int db_up = 1;
static void check_db(colony_health_probe *p, void *ud)
{
    (void)ud;
    colony_health_probe_done(p, db_up, NULL, db_up ? NULL : "connection refused");
}

static void check_never_answers(colony_health_probe *p, void *ud)
{
    (void)p;
    (void)ud; /* reports nothing: the timeout must answer for it */
}

typedef struct later {
    uv_timer_t timer;
    colony_health_probe *probe;
} later;

static void later_closed(uv_handle_t *h)
{
    free(h->data);
}

static void later_fire(uv_timer_t *t)
{
    later *l = t->data;
    colony_health_probe_done(l->probe, 1, NULL, NULL);
    uv_close((uv_handle_t *)t, later_closed);
}

static void check_async(colony_health_probe *p, void *ud)
{
    (void)ud;
    later *l = calloc(1, sizeof(*l));
    l->probe = p;
    uv_timer_init(&loop, &l->timer);
    l->timer.data = l;
    uv_timer_start(&l->timer, later_fire, 30, 0);
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    router = colony_router_new();
    health = colony_health_new();
    server = colony_server_new(&loop, NULL, colony_router_handle, router);
    colony_health_watch_server(health, server);
    assert_int_equal(colony_router_add(router, "GET", "/health", colony_health_handle_live, health),
                     0);
    assert_int_equal(colony_router_add(router, "GET", "/ready", colony_health_handle_ready, health),
                     0);
    assert_int_equal(colony_server_listen(server, "127.0.0.1:0"), 0);
    snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d", colony_server_port(server));
    client = colony_client_new(&loop, NULL);
    return 0;
}

static int closed;
static void on_closed(colony_server *srv, void *ud)
{
    (void)srv;
    (void)ud;
    closed = 1;
}

static int teardown(void **state)
{
    (void)state;
    colony_client_close(client, NULL, NULL);
    if (!colony_server_is_shutting_down(server)) {
        closed = 0;
        colony_server_shutdown(server, 1000, on_closed, NULL);
    }
    colony_test_run_until(&loop, &closed, 5000);
    colony_server_free(server);
    colony_router_free(router);
    colony_health_free(health);
    colony_test_loop_close(&loop);
    return 0;
}

static void healthy_and_failing_checks(void **state)
{
    (void)state;
    assert_int_equal(colony_health_add(health, "cache", COLONY_HEALTH_BOTH, check_ok, NULL, 0), 0);
    assert_int_equal(colony_health_add(health, "cache", COLONY_HEALTH_BOTH, check_ok, NULL, 0),
                     COLONY_EEXIST);
    assert_int_equal(colony_health_add(health, "db", COLONY_HEALTH_READINESS, check_db, NULL, 0),
                     0);
    assert_int_equal(
        colony_health_add(health, "warmup", COLONY_HEALTH_READINESS, check_async, NULL, 0), 0);

    get_result r = get("/ready");
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "healthy");
    assert_non_null(json_object_get(r.json, "timestamp"));
    assert_true(json_is_number(json_object_get(r.json, "uptime")));
    assert_string_equal(check_field(r.json, "cache", "status"), "healthy");
    assert_string_equal(check_field(r.json, "warmup", "status"), "healthy");
    json_t *cache = json_object_get(json_object_get(r.json, "checks"), "cache");
    assert_true(json_is_number(json_object_get(cache, "responseTime")));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(cache, "details"), "connections")), 3);
    json_decref(r.json);

    db_up = 0;
    r = get("/ready");
    assert_int_equal(r.status, 503);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "unhealthy");
    assert_string_equal(check_field(r.json, "db", "error"), "connection refused");
    json_decref(r.json);

    /* Liveness counts only liveness checks: the failing db check is readiness-only. */
    r = get("/health");
    assert_int_equal(r.status, 200);
    assert_null(json_object_get(json_object_get(r.json, "checks"), "db"));
    json_decref(r.json);
    db_up = 1;
}

static void timed_out_check_is_unhealthy(void **state)
{
    (void)state;
    assert_int_equal(
        colony_health_add(health, "stuck", COLONY_HEALTH_LIVENESS, check_never_answers, NULL, 100),
        0);
    uint64_t t0 = colony_test_now_ms();
    get_result r = get("/health");
    assert_true(colony_test_now_ms() - t0 >= 90);
    assert_int_equal(r.status, 503);
    const char *err = check_field(r.json, "stuck", "error");
    assert_non_null(err);
    assert_non_null(strstr(err, "timed out after 100 ms"));
    json_decref(r.json);
}

static void readiness_false_once_shutdown_begins(void **state)
{
    (void)state;
    get_result r = get("/ready");
    assert_int_equal(r.status, 200);
    json_decref(r.json);
    colony_health_set_ready(health, 0);
    r = get("/ready");
    assert_int_equal(r.status, 503);
    assert_string_equal(json_string_value(json_object_get(r.json, "reason")), "not ready");
    json_decref(r.json);
    r = get("/health"); /* liveness is unaffected */
    assert_int_equal(r.status, 200);
    json_decref(r.json);
    colony_health_set_ready(health, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(healthy_and_failing_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(timed_out_check_is_unhealthy, setup, teardown),
        cmocka_unit_test_setup_teardown(readiness_false_once_shutdown_begins, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
