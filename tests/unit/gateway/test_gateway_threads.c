/* What the gateway's workers share, hammered from several threads at once:
 * a rate limit of N admits exactly N across workers (each worker's limiter
 * takes from the main loop's buckets), also for many keys over the striped
 * buckets, a breaker shared by the workers opens
 * on failures recorded by all of them, a runtime's reference count
 * drops to zero exactly once, whichever thread lets go last, and the https
 * marking of a registry instance is read with the pick, under the lock the
 * registry's changes are made under, while those changes go on. */
#include "test_support.h"
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>
#include "colony/colony.h"
#include "colony/clock.h"
#include "gateway/breaker.h"
#include "gateway/config.h"
#include "gateway/config_health.h"
#include "gateway/ratelimit.h"
#include "gateway/runtime.h"

#define THREADS 4

/* ---- rate limit ---- */

typedef struct rl_worker {
    gw_ratelimit rl; /* this "worker's" limiter, taking from the store */
    const gw_ratelimit_conf *conf;
    unsigned allowed;
} rl_worker;

static void take_many(void *arg)
{
    rl_worker *w = arg;
    for (int i = 0; i < 2000; i++) {
        gw_rl_result r;
        if (colony__gw_ratelimit_take_local(&w->rl, "api", w->conf, "1.2.3.4", &r) == 0 &&
            r.outcome == GW_RL_ALLOW)
            w->allowed++;
    }
}

static void a_limit_holds_across_workers(void **state)
{
    (void)state;
    colony_fake_clock fake; /* time stands still: no refill during the run */
    colony_fake_clock_init(&fake, 1000000);
    gw_ratelimit store;
    assert_int_equal(colony__gw_ratelimit_init(&store, NULL, NULL, colony_clock_fake(&fake)), 0);
    gw_ratelimit_conf c = {.limit = 1000, .window_ms = 3600 * 1000, .burst = 1000};
    rl_worker w[THREADS];
    uv_thread_t t[THREADS];
    memset(w, 0, sizeof(w));
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(colony__gw_ratelimit_init_worker(&w[i].rl, NULL, &store), 0);
        w[i].conf = &c;
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(uv_thread_create(&t[i], take_many, &w[i]), 0);
    unsigned allowed = 0;
    for (int i = 0; i < THREADS; i++) {
        uv_thread_join(&t[i]);
        allowed += w[i].allowed;
        assert_int_equal(colony__gw_ratelimit_keys(&w[i].rl), 0); /* the store's buckets */
    }
    assert_int_equal(allowed, 1000);
    assert_int_equal(colony__gw_ratelimit_keys(&store), 1);
    for (int i = 0; i < THREADS; i++)
        colony__gw_ratelimit_close(&w[i].rl, NULL, NULL);
    colony__gw_ratelimit_close(&store, NULL, NULL);
}

/* Many keys over the striped buckets: every thread takes from every key,
 * in its own order, so threads meet on each stripe's lock. Each key admits
 * exactly its limit, and the keys spread over many stripes (locks). */
#define KEYS  64
#define LIMIT 50

typedef struct rl_spread {
    gw_ratelimit rl;
    const gw_ratelimit_conf *conf;
    unsigned offset;
    unsigned allowed[KEYS];
} rl_spread;

static void take_spread(void *arg)
{
    rl_spread *w = arg;
    for (int round = 0; round < 2 * LIMIT; round++)
        for (unsigned k = 0; k < KEYS; k++) {
            unsigned key_i = (k + w->offset) % KEYS;
            char key[32];
            snprintf(key, sizeof(key), "10.0.%u.%u", key_i / 8, key_i % 8);
            gw_rl_result r;
            if (colony__gw_ratelimit_take_local(&w->rl, "api", w->conf, key, &r) == 0 &&
                r.outcome == GW_RL_ALLOW)
                w->allowed[key_i]++;
        }
}

static void striped_buckets_stay_exact(void **state)
{
    (void)state;
    colony_fake_clock fake;
    colony_fake_clock_init(&fake, 1000000);
    gw_ratelimit store;
    assert_int_equal(colony__gw_ratelimit_init(&store, NULL, NULL, colony_clock_fake(&fake)), 0);
    gw_ratelimit_conf c = {.limit = LIMIT, .window_ms = 3600 * 1000, .burst = LIMIT};
    static rl_spread w[THREADS];
    uv_thread_t t[THREADS];
    memset(w, 0, sizeof(w));
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(colony__gw_ratelimit_init_worker(&w[i].rl, NULL, &store), 0);
        w[i].conf = &c;
        w[i].offset = (unsigned)i * KEYS / THREADS;
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(uv_thread_create(&t[i], take_spread, &w[i]), 0);
    for (int i = 0; i < THREADS; i++)
        uv_thread_join(&t[i]);
    unsigned total = 0;
    for (unsigned k = 0; k < KEYS; k++) {
        unsigned allowed = 0;
        for (int i = 0; i < THREADS; i++)
            allowed += w[i].allowed[k];
        assert_int_equal(allowed, LIMIT); /* 4 threads x 100 tries, exactly 50 pass */
        total += allowed;
    }
    assert_int_equal(total, KEYS * LIMIT);
    assert_int_equal(colony__gw_ratelimit_keys(&store), KEYS);
    /* the keys are spread: no stripe holds most of them */
    unsigned used = 0;
    for (unsigned i = 0; i < store.nstripes; i++) {
        used += store.stripes[i].nkeys > 0;
        assert_true(store.stripes[i].nkeys < KEYS / 2);
    }
    assert_int_equal(store.nstripes, GW_RL_STRIPES);
    assert_true(used >= GW_RL_STRIPES / 2);
    /* and a key is always in the stripe its hash picks */
    assert_ptr_equal(colony__gw_ratelimit_stripe(&w[1].rl, "api", "10.0.0.1"),
                     colony__gw_ratelimit_stripe(&store, "api", "10.0.0.1"));
    for (int i = 0; i < THREADS; i++)
        colony__gw_ratelimit_close(&w[i].rl, NULL, NULL);
    colony__gw_ratelimit_close(&store, NULL, NULL);
}

/* ---- breaker ---- */

static void record_failures(void *arg)
{
    gw_breaker_share *s = arg;
    for (int i = 0; i < 5000; i++) {
        if (colony__gw_breaker_allow(s) == 0) colony__gw_breaker_record(s, 0, 1);
    }
}

static void a_breaker_opens_on_failures_seen_by_all(void **state)
{
    (void)state;
    gw_upstream u;
    memset(&u, 0, sizeof(u));
    u.name = "api";
    colony__gw_breaker_init(&u.breaker);
    u.breaker.enabled = 1;
    u.breaker.min_calls = 20;
    u.breaker.window_calls = 20;
    u.breaker.failure_percent = 50;
    u.breaker.open_ms = 3600 * 1000;
    gw_breaker_share *s;
    assert_int_equal(colony__gw_breaker_get(&u, NULL, &s), 0);
    assert_non_null(s);
    uv_thread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(uv_thread_create(&t[i], record_failures, s), 0);
    for (int i = 0; i < THREADS; i++)
        uv_thread_join(&t[i]);
    assert_int_equal(colony__gw_breaker_state(s), COLONY_BREAKER_OPEN);
    assert_int_not_equal(colony__gw_breaker_allow(s), 0); /* every worker is refused now */
    colony__gw_breaker_put(s);
}

/* ---- runtime references ---- */

static atomic_int reaped;

static void count_reap(gw_runtime *rt, void *ud)
{
    (void)ud;
    atomic_fetch_add(&reaped, 1);
    colony__gw_runtime_free(rt);
}

static void ref_unref(void *arg)
{
    gw_runtime *rt = arg;
    for (int i = 0; i < 100000; i++) {
        colony__gw_runtime_ref(rt);
        colony__gw_runtime_unref(rt);
    }
    colony__gw_runtime_unref(rt); /* this thread's own reference */
}

static void a_runtime_is_freed_once(void **state)
{
    (void)state;
    gw_config *cfg;
    colony_config_error err;
    const char *routes[] = {"/=http://127.0.0.1:1"};
    assert_int_equal(colony__gw_config_quick(routes, 1, &cfg, &err), 0);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    gw_runtime *rt;
    assert_int_equal(colony__gw_runtime_new(&loop, cfg, NULL, 1, NULL, &rt), 0);
    colony__gw_config_unref(cfg);
    rt->reap = count_reap;
    atomic_store(&reaped, 0);
    uv_thread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        colony__gw_runtime_ref(rt); /* one per thread, dropped by it */
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(uv_thread_create(&t[i], ref_unref, rt), 0);
    colony__gw_runtime_unref(rt); /* the creator's */
    for (int i = 0; i < THREADS; i++)
        uv_thread_join(&t[i]);
    assert_int_equal(atomic_load(&reaped), 1);
    colony_test_loop_close(&loop);
}

/* ---- https marking of registry instances ---- */

typedef struct marking_run {
    gw_upstream_rt *u;
    atomic_int stop;
    unsigned picks, https, failed;
} marking_run;

/* The registry's side (feed_balancer): the instance set, rewritten under the
 * upstream's lock, its marking flipping each time. */
static void set_marking(gw_upstream_rt *u, int tls)
{
    colony_endpoint_spec spec = {
        .id = "a", .address = "127.0.0.1:1", .weight = 1, .user = tls ? GW_ENDPOINT_TLS : NULL};
    uv_mutex_lock(&u->lock);
    assert_int_equal(colony_balancer_set_endpoints(u->balancer, &spec, 1), 0);
    uv_mutex_unlock(&u->lock);
}

static void flip_marking(void *arg)
{
    marking_run *r = arg;
    for (int i = 0; i < 20000 && !atomic_load(&r->stop); i++)
        set_marking(r->u, i & 1);
}

static void pick_marked(void *arg)
{
    marking_run *r = arg;
    for (int i = 0; i < 20000; i++) {
        colony_endpoint *ep;
        int https = -1;
        if (colony__gw_upstream_pick(r->u, NULL, 0, 1000, &ep, &https) != 0 ||
            (https != 0 && https != 1)) {
            r->failed++;
            continue;
        }
        r->picks++;
        r->https += (unsigned)https;
        colony__gw_upstream_release(r->u, ep, 0, 1, 0, 1000);
    }
}

static void marking_is_read_with_the_pick(void **state)
{
    (void)state;
    gw_config *cfg;
    colony_config_error err;
    const char *routes[] = {"/=http://127.0.0.1:1"};
    assert_int_equal(colony__gw_config_quick(routes, 1, &cfg, &err), 0);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    gw_runtime *rt;
    assert_int_equal(colony__gw_runtime_new(&loop, cfg, NULL, 1, NULL, &rt), 0);
    colony__gw_config_unref(cfg);
    gw_upstream_rt *u = &rt->ups[0];
    marking_run runs[THREADS - 1], flipper = {.u = u};
    uv_thread_t t[THREADS];
    memset(runs, 0, sizeof(runs));
    assert_int_equal(uv_thread_create(&t[0], flip_marking, &flipper), 0);
    for (int i = 0; i < THREADS - 1; i++) {
        runs[i].u = u;
        assert_int_equal(uv_thread_create(&t[i + 1], pick_marked, &runs[i]), 0);
    }
    for (int i = 1; i < THREADS; i++)
        uv_thread_join(&t[i]);
    atomic_store(&flipper.stop, 1);
    uv_thread_join(&t[0]);
    for (int i = 0; i < THREADS - 1; i++) {
        assert_int_equal(runs[i].failed, 0);
        assert_int_equal(runs[i].picks, 20000);
    }
    /* once the set settles, the pick says what the registry marked */
    colony_endpoint *ep;
    int https = -1;
    set_marking(u, 1);
    assert_int_equal(colony__gw_upstream_pick(u, NULL, 0, 1000, &ep, &https), 0);
    assert_int_equal(https, 1);
    colony__gw_upstream_release(u, ep, 0, 1, 0, 1000);
    set_marking(u, 0);
    assert_int_equal(colony__gw_upstream_pick(u, NULL, 0, 1000, &ep, &https), 0);
    assert_int_equal(https, 0);
    colony__gw_upstream_release(u, ep, 0, 1, 0, 1000);
    colony__gw_runtime_unref(rt);
    colony_test_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_limit_holds_across_workers),
        cmocka_unit_test(striped_buckets_stay_exact),
        cmocka_unit_test(a_breaker_opens_on_failures_seen_by_all),
        cmocka_unit_test(a_runtime_is_freed_once),
        cmocka_unit_test(marking_is_read_with_the_pick),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
