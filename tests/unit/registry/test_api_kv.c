/* The KV API in process (the registry's routes on a server on the test's
 * loop, a real store in a temp dir): a recursive or keys listing that runs out
 * of memory part way answers 500 with a JSON error, never 200 with entries
 * missing. Each allocation of the request is failed once in turn. */
#include <stdlib.h>
#include "../../integration/server_test_util.h"
#include "core/alloc.h"
#include "registry/registry_internal.h"

#define NKEYS 12

static uv_loop_t loop;
static registry reg;
static char dir[64];

static void on_committed(registry *r, int err, uint64_t index, const colony__list *ops)
{
    (void)ops;
    if (!err && index > r->committed) r->committed = index;
}

static void drain(void)
{
    for (int i = 0; i < 10000 && !colony__reg_store_idle(reg.store); i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(colony__reg_store_idle(reg.store));
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

static void each_transient_failure(int port, const char *path, int expect)
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

static void test_listing_out_of_memory_answers_500(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    snprintf(dir, sizeof(dir), "/tmp/colony-kvapi-XXXXXX");
    assert_non_null(mkdtemp(dir));
    memset(&reg, 0, sizeof(reg));
    reg.loop = &loop;
    char msg[256];
    assert_int_equal(colony__reg_store_open(&reg.store, &loop, dir, msg, sizeof(msg)), 0);
    colony__reg_store_set_callback(reg.store, &reg, on_committed);
    reg.index = reg.committed = 1;
    for (int i = 0; i < NKEYS; i++) {
        char key[32];
        snprintf(key, sizeof(key), "app/k%02d", i);
        assert_int_equal(colony__reg_kv_write(&reg, key, "value", 5, 0), 0);
    }
    drain();
    colony_router *router = colony_router_new();
    assert_non_null(router);
    assert_int_equal(colony__reg_routes_kv(&reg, router), 0);
    colony_server_options opts = {0};
    int port;
    colony_server *srv = start_server(&loop, &opts, colony_router_handle, router, &port);

    each_transient_failure(port, "/v1/kv/app/?recurse", NKEYS);
    each_transient_failure(port, "/v1/kv/app/?keys", NKEYS);

    stop_server(&loop, srv, 1000);
    colony_router_free(router);
    for (size_t i = 0; i < reg.nkv; i++) {
        colony__free(reg.kv[i]->key);
        colony__free(reg.kv[i]->value);
        colony__free(reg.kv[i]);
    }
    colony__free(reg.kv);
    colony__map_free(&reg.services);
    colony__map_free(&reg.checks);
    colony__reg_names_free(&reg);
    colony__reg_store_close(reg.store);
    colony_test_loop_close(&loop);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listing_out_of_memory_answers_500),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
