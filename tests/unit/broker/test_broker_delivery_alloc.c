/* Every allocation of a whole delivery + topics script is failed in turn
 * (core/alloc.h's test hook): each call returns 0 or COLONY_ENOMEM, never
 * crashes, and nothing leaks (the test links LeakSanitizer). */
#include "broker_delivery_fixture.h"
#include "core/alloc.h"

static int ignore(void *ud, const colony__bdelivered *e)
{
    (void)ud;
    (void)e;
    return 0;
}

static int ignore_dead(void *ud, const colony__bdead *e)
{
    (void)ud;
    (void)e;
    return 0;
}

#define TRY(x)                                                                                     \
    do {                                                                                           \
        long r_ = (x);                                                                             \
        if (r_ < 0) {                                                                              \
            rc = (int)r_;                                                                          \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

static int script(const char *path)
{
    colony__bstore_options o = bs_options(path);
    colony__bstore *s = NULL;
    colony__bdelivery *d = NULL;
    colony__btopics *t = NULL;
    char msg[256], bpath[128];
    int rc = colony__bstore_open(&s, &o, msg, sizeof(msg));
    if (rc) return rc;
    colony__bdelivery_options dopt = {0};
    dopt.store = s;
    dopt.seed = 1;
    TRY(colony__bdelivery_open(&d, &dopt));
    snprintf(bpath, sizeof(bpath), "%s/bindings", path);
    TRY(colony__btopics_open(&t, bpath, msg, sizeof(msg)));
    TRY(colony__btopics_bind(t, "order.*", 7, "jobs"));
    colony__bstr f[2] = {{"k", 1}, {"v", 1}};
    colony__bpublish m = {.strs = f, .n = 2, .deliver_at_ms = 0, .ttl_ms = 0};
    colony__btopic_target out[2];
    TRY(colony__btopics_publish(t, d, "order.new", 9, &m, out, 2));
    TRY(out[0].err);
    colony__bstream_policy sp;
    colony__bstream_policy_default(&sp);
    sp.max_len = 10;
    sp.ttl_ms = 100000;
    TRY(colony__bdelivery_stream_policy_set(d, "jobs", &sp));
    m.deliver_at_ms = bs_clock.now_ms + 10;
    colony__bid id;
    TRY(colony__bdelivery_publish(d, "jobs", &m, &id));
    TRY(colony__bdelivery_next(d, "jobs", "g", "c", 10, ignore, NULL));
    colony__bgroup_policy gp;
    colony__bgroup_policy_default(&gp);
    gp.max_deliveries = 2;
    TRY(colony__bdelivery_group_policy_set(d, "jobs", "g", &gp));
    TRY(colony__bdelivery_nack(d, "jobs", "g", out[0].id, 0, "boom", 4, 0));
    colony_fake_clock_advance(&bs_clock, 20);
    TRY(colony__bdelivery_next(d, "jobs", "g", "c", 10, ignore, NULL));
    TRY(colony__bdelivery_nack(d, "jobs", "g", out[0].id, 0, "boom", 4, 0));
    TRY(colony__bdelivery_extend(d, "jobs", "g", id, 5));
    TRY(colony__bdelivery_ack(d, "jobs", "g", &id, 1));
    TRY(colony__bdelivery_dead_list(d, "dlq:jobs:g", bs_min, bs_max, 0, ignore_dead, NULL));
    TRY(colony__bdelivery_dead_replay(d, "dlq:jobs:g", bs_min, bs_max));
    TRY(colony__bdelivery_dead_purge(d, "dlq:jobs:g", bs_max));
    TRY(colony__btopics_unbind(t, "order.*", 7, "jobs"));
    colony__bdelivery_close(d);
    d = NULL;
    TRY(colony__bdelivery_open(&d, &dopt));
    TRY(colony__bdelivery_group_policy_get(d, "jobs", "g", &gp));
out:
    colony__btopics_close(t);
    colony__bdelivery_close(d);
    colony__bstore_close(s);
    return rc;
}

static void allocation_failures_are_handled(void **state)
{
    (void)state;
    long failing_runs = 0;
    int clean = 0;
    for (long n = 0; n < 100000 && !clean; n++) {
        char path[64];
        bs_tmpdir(path, sizeof(path));
        colony_fake_clock_init(&bs_clock, 1000000);
        colony__alloc_fail_once_after(n);
        int rc = script(path);
        long injected = colony__alloc_failures();
        colony__alloc_fail_reset();
        bs_rmtree(path);
        clean = injected == 0;
        if (clean) {
            assert_int_equal(rc, 0);
        } else {
            failing_runs++;
            if (rc != 0 && rc != COLONY_ENOMEM) fail_msg("allocation %ld: rc %d", n, rc);
        }
    }
    assert_true(clean);
    print_message("allocations failed in turn: %ld\n", failing_runs);
    assert_true(failing_runs >= 30);
}

int main(void)
{
    colony_log_set_level(COLONY_LOG_ERROR + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(allocation_failures_are_handled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
