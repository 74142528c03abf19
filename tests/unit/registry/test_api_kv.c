/* The KV API in process (the registry's routes on a server on the test's
 * loop, a real store in a temp dir):
 * - a recursive or keys listing that runs out of memory part way answers 500
 *   with a JSON error, never 200 with entries missing (each allocation of the
 *   request is failed once in turn);
 * - blocking queries (waiters.c) are answered at their timeout, by a commit
 *   or by the shutdown flush, and each waiter is freed with its timer closed
 *   (LeakSanitizer and colony_test_loop_close check it). */
#include <stdlib.h>
#include "registry_state_fixture.h"
#include "server_test_util.h"
#include "core/alloc.h"
#include "registry/registry_internal.h"
#include "registry/store.h"
#include "registry/waiters.h"
#include "registry/names.h"
#include "registry/api.h"

#define NKEYS 12

static uv_loop_t loop;
static registry reg;
static char dir[64];

static colony_server *srv;
static colony_router *router;
static int port;

static void drain(void)
{
    reg_fixture_drain(&reg, &loop);
}

typedef struct listing {
    const char *path;
    int ok, errors, closed, expect;
} listing;

/* One GET; 200 must hold every key, anything else must be a JSON 500. */
static void get_listing(tclient *t)
{
    listing *l = t->arg;
    tconn *c = tc_connect(t->port);
    TCHECK(t, c != NULL);
    if (!c) return;
    char req[256];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", l->path);
    tresp r;
    if (tc_send(c, req) != 0 || tc_read_response(c, &r, 0) != 0) {
        l->closed++;
        tc_close(c);
        return;
    }
    if (r.status == 200) {
        /* counted without jansson: its allocations on this thread would race
         * with the injection meant for the loop */
        int keys = 0;
        for (const char *p = r.body; (p = strstr(p, "\"app/k")) != NULL; p++)
            keys++;
        TCHECK(t, keys == l->expect);
        l->ok++;
    } else {
        TCHECK(t, r.status == 500 || r.status == 503);
        TCHECK(t, strstr(r.head, "application/json") && strstr(r.body, "\"error\""));
        l->errors++;
    }
    tc_close(c);
}

static void each_transient_failure(const char *path, int expect)
{
    listing l = {.path = path, .expect = expect};
    long injected = 0;
    for (long n = 0; n < 400; n++) {
        tclient t = {.port = port, .fn = get_listing, .arg = &l};
        colony__alloc_fail_once_after(n);
        run_client(&loop, &t, 20000);
        injected += colony__alloc_failures();
        colony__alloc_fail_reset();
    }
    assert_true(injected > 0);
    assert_true(l.errors > 0); /* some failures hit the listing itself */
    assert_true(l.ok > 0);
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    reg_fixture_open(&reg, &loop, dir, "kvapi");
    for (int i = 0; i < NKEYS; i++) {
        char key[32];
        snprintf(key, sizeof(key), "app/k%02d", i);
        assert_int_equal(colony__reg_kv_write(&reg, key, "value", 5, 0), 0);
    }
    drain();
    router = colony_router_new();
    assert_non_null(router);
    assert_int_equal(colony__reg_routes_kv(&reg, router), 0);
    colony_server_options opts = {0};
    srv = start_server(&loop, &opts, colony_router_handle, router, &port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stop_server(&loop, srv, 1000);
    colony_router_free(router);
    drain();
    reg_fixture_close(&reg);
    colony_test_loop_close(&loop);
    reg_fixture_remove_dir(dir);
    return 0;
}

static void test_listing_out_of_memory_answers_500(void **state)
{
    (void)state;
    each_transient_failure("/v1/kv/app/?recurse", NKEYS);
    each_transient_failure("/v1/kv/app/?keys", NKEYS);
}

typedef struct blocking {
    char path[128];
    int status;
    unsigned long long index;
    uint64_t ms;
} blocking;

static void blocking_get(tclient *t)
{
    blocking *b = t->arg;
    tconn *c = tc_connect(t->port);
    TCHECK(t, c != NULL);
    if (!c) return;
    char req[256];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", b->path);
    TCHECK(t, tc_send(c, req) == 0);
    uint64_t t0 = colony_test_now_ms();
    tresp r;
    TCHECK(t, tc_read_response(c, &r, 0) == 0);
    b->ms = colony_test_now_ms() - t0;
    b->status = r.status;
    const char *idx = tc_find_header(r.head, "X-Consul-Index");
    b->index = idx ? strtoull(idx, NULL, 10) : 0;
    tc_close(c);
}

static void test_blocking_query_times_out(void **state)
{
    (void)state;
    blocking b;
    memset(&b, 0, sizeof(b));
    snprintf(b.path, sizeof(b.path), "/v1/kv/app/k00?index=%llu&wait=40ms",
             (unsigned long long)reg.committed);
    tclient t = {.port = port, .fn = blocking_get, .arg = &b};
    run_client(&loop, &t, 5000);
    assert_int_equal(b.status, 200);
    assert_true(b.ms >= 35);
    assert_int_equal(b.index, colony__reg_kv_find(&reg, "app/k00")->modify_index);
}

static void write_key(uv_timer_t *timer)
{
    assert_int_equal(colony__reg_kv_write(&reg, "app/k00", "new", 3, 0), 0);
    uv_close((uv_handle_t *)timer, NULL);
}

static void test_blocking_query_is_woken_by_a_commit(void **state)
{
    (void)state;
    blocking b;
    memset(&b, 0, sizeof(b));
    uint64_t before = colony__reg_kv_find(&reg, "app/k00")->modify_index;
    snprintf(b.path, sizeof(b.path), "/v1/kv/app/k00?index=%llu&wait=10s",
             (unsigned long long)before);
    uv_timer_t timer;
    assert_int_equal(uv_timer_init(&loop, &timer), 0);
    assert_int_equal(uv_timer_start(&timer, write_key, 50, 0), 0);
    tclient t = {.port = port, .fn = blocking_get, .arg = &b};
    run_client(&loop, &t, 5000);
    assert_int_equal(b.status, 200);
    assert_true(b.ms < 5000);
    assert_true(b.index > before);
}

static void flush_waiters(uv_timer_t *timer)
{
    assert_false(colony__list_empty(&reg.waiters)); /* the query is parked */
    reg.shutting_down = 1;
    colony__reg_waiters_flush(&reg);
    uv_close((uv_handle_t *)timer, NULL);
}

/* A parked query answered by the shutdown flush: the waiter and its 10 s
 * timer are released (colony_test_loop_close would find the timer open,
 * LeakSanitizer the waiter). */
static void test_shutdown_flush_answers_and_frees_a_parked_query(void **state)
{
    (void)state;
    blocking b;
    memset(&b, 0, sizeof(b));
    snprintf(b.path, sizeof(b.path), "/v1/kv/app/k01?index=%llu&wait=10s",
             (unsigned long long)reg.committed);
    uv_timer_t timer;
    assert_int_equal(uv_timer_init(&loop, &timer), 0);
    assert_int_equal(uv_timer_start(&timer, flush_waiters, 50, 0), 0);
    tclient t = {.port = port, .fn = blocking_get, .arg = &b};
    run_client(&loop, &t, 5000);
    assert_int_equal(b.status, 200);
    assert_true(b.ms < 5000);
    assert_true(colony__list_empty(&reg.waiters));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_listing_out_of_memory_answers_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocking_query_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocking_query_is_woken_by_a_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_flush_answers_and_frees_a_parked_query, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
