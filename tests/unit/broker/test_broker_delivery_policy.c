/* Delivery policies (src/broker/delivery/policy.c, publish.c, engine.c):
 * backoff schedules (fixed, linear = the seed's retryDelay × retryCount,
 * exponential with a cap, jitter within its bounds), a nack without a delay
 * following the group's backoff, max length with drop-oldest and reject,
 * work-queue retention, and every policy surviving close + reopen. */
#include "broker_delivery_fixture.h"

static void backoff_schedules(void **state)
{
    (void)state;
    colony__bbackoff fixed = {COLONY__BBACKOFF_FIXED, 1000, 0, 0};
    colony__bbackoff linear = {COLONY__BBACKOFF_LINEAR, 1000, 0, 0};
    colony__bbackoff expo = {COLONY__BBACKOFF_EXPONENTIAL, 100, 5000, 0};
    uint64_t want_exp[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000};
    for (uint64_t c = 1; c <= 8; c++) {
        assert_int_equal(colony__bdelivery_backoff(bd, &fixed, c), 1000);
        assert_int_equal(colony__bdelivery_backoff(bd, &linear, c), 1000 * c);
        assert_int_equal(colony__bdelivery_backoff(bd, &expo, c), want_exp[c - 1]);
    }
    /* no overflow far out */
    assert_int_equal(colony__bdelivery_backoff(bd, &expo, 1000), 5000);
    colony__bbackoff uncapped = {COLONY__BBACKOFF_EXPONENTIAL, 100, 0, 0};
    assert_int_equal(colony__bdelivery_backoff(bd, &uncapped, 200), UINT64_MAX);
    /* jitter: within [d - 25%, d], and not always the same */
    colony__bbackoff jit = {COLONY__BBACKOFF_EXPONENTIAL, 1000, 0, 25};
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t v = colony__bdelivery_backoff(bd, &jit, 3);
        assert_true(v >= 3000 && v <= 4000);
        if (v < lo) lo = v;
        if (v > hi) hi = v;
    }
    assert_true(hi - lo > 500);
}

static void nack_follows_group_backoff(void **state)
{
    (void)state;
    colony__bid a = bd_pub("jobs", 1, 0, 0);
    bd_next("jobs", "g", "c1", 1, 1);
    colony__bgroup_policy gp;
    colony__bgroup_policy_default(&gp);
    gp.backoff = (colony__bbackoff){COLONY__BBACKOFF_LINEAR, 2000, 0, 0}; /* retryDelay 2 s */
    assert_int_equal(colony__bdelivery_group_policy_set(bd, "jobs", "g", &gp), 0);
    for (uint64_t count = 1; count <= 3; count++) {
        uint64_t t0 = bs_clock.now_ms;
        assert_int_equal(
            colony__bdelivery_nack(bd, "jobs", "g", a, COLONY__BNACK_BACKOFF, NULL, 0, 0), 0);
        assert_int_equal(colony__bdelivery_next_due(bd, "jobs", "g"), t0 + 2000 * count);
        bd_advance(2000 * count - 1);
        bd_next("jobs", "g", "c1", 1, 0);
        bd_advance(1);
        bd_got g = bd_next("jobs", "g", "c1", 1, 1);
        assert_int_equal(g.count[0], count + 1);
    }
}

static void max_length_drop_oldest_and_reject(void **state)
{
    (void)state;
    bd_pub("a", 0, 0, 0);
    bd_pub("b", 0, 0, 0);
    colony__bstream_policy sp;
    colony__bstream_policy_default(&sp);
    sp.max_len = 3;
    assert_int_equal(colony__bdelivery_stream_policy_set(bd, "a", &sp), 0);
    sp.overflow = COLONY__BOVERFLOW_REJECT;
    assert_int_equal(colony__bdelivery_stream_policy_set(bd, "b", &sp), 0);
    for (int i = 1; i <= 5; i++)
        bd_pub("a", i, 0, 0);
    colony__bstream_info info;
    colony__bstream_info_get(colony__bstore_get(bd_store, "a"), &info);
    assert_int_equal(info.length, 3);
    bd_got g = bd_next("a", "g", "c", 10, 3);
    assert_int_equal(g.value[0], 3);
    assert_int_equal(g.value[2], 5);
    bd_pub("b", 1, 0, 0);
    bd_pub("b", 2, 0, 0);
    colony__bstr f[2] = {{"k", 1}, {"v9", 2}};
    colony__bpublish m = {.strs = f, .n = 2, .deliver_at_ms = 0, .ttl_ms = 0};
    colony__bid id;
    assert_int_equal(colony__bdelivery_publish(bd, "b", &m, &id), COLONY__BDELIVERY_EFULL);
    colony__bstream_info_get(colony__bstore_get(bd_store, "b"), &info);
    assert_int_equal(info.length, 3);
    sp.overflow = 7;
    assert_int_equal(colony__bdelivery_stream_policy_set(bd, "b", &sp), COLONY_EINVAL);
    assert_int_equal(colony__bdelivery_stream_policy_set(bd, "nope", &sp), COLONY_ENOENT);
}

static void work_queue_retention_drops_acked_segments(void **state)
{
    (void)state;
    bd_pub("q", 0, 0, 0);
    colony__bstream *st = colony__bstore_get(bd_store, "q");
    colony__bgroup *g;
    assert_int_equal(colony__bgroup_create(st, "g1", bs_min, &g), 0);
    assert_int_equal(colony__bgroup_create(st, "g2", bs_min, &g), 0);
    colony__bstream_policy sp;
    colony__bstream_policy_default(&sp);
    sp.work_queue = 1;
    assert_int_equal(colony__bdelivery_stream_policy_set(bd, "q", &sp), 0);
    char big[600];
    memset(big, 'x', sizeof(big));
    colony__bstr f[2] = {{"k", 1}, {big, sizeof(big)}};
    colony__bpublish m = {.strs = f, .n = 2, .deliver_at_ms = 0, .ttl_ms = 0};
    for (int i = 0; i < 40; i++) { /* ~10 segments of 4 KiB */
        colony__bid id;
        assert_int_equal(colony__bdelivery_publish(bd, "q", &m, &id), 0);
    }
    colony__bstream_info before, after;
    colony__bstream_info_get(st, &before);
    assert_true(before.segments >= 5);
    /* g1 acks everything: g2 still needs it all; then g2 acks too */
    for (int grp = 0; grp < 2; grp++) {
        const char *gname = grp ? "g2" : "g1";
        bd_got got = bd_next("q", gname, "c", 64, 41);
        assert_int_equal(colony__bdelivery_ack(bd, "q", gname, got.id, got.n), 41);
        colony__bstream_info_get(st, &after);
        if (!grp) assert_int_equal(after.segments, before.segments);
    }
    assert_int_equal(after.segments, 1); /* only the segment being written stays */
    assert_true(after.length < before.length);
}

/* max-entries retention, applied after each publish: whole sealed segments
 * go while the entries left stay at least max_entries. */
static void retention_max_entries_on_publish(void **state)
{
    (void)state;
    bd_pub("r", 0, 0, 0);
    colony__bstream_policy sp;
    colony__bstream_policy_default(&sp);
    sp.max_entries = 10;
    assert_int_equal(colony__bdelivery_stream_policy_set(bd, "r", &sp), 0);
    char big[600];
    memset(big, 'x', sizeof(big));
    colony__bstr f[2] = {{"k", 1}, {big, sizeof(big)}};
    colony__bpublish m = {.strs = f, .n = 2, .deliver_at_ms = 0, .ttl_ms = 0};
    for (int i = 0; i < 60; i++) {
        colony__bid id;
        assert_int_equal(colony__bdelivery_publish(bd, "r", &m, &id), 0);
    }
    colony__bstream_info info;
    colony__bstream_info_get(colony__bstore_get(bd_store, "r"), &info);
    assert_true(info.length >= 10);
    assert_true(info.length < 30); /* 61 published, older segments gone */
}

/* Policies and the last error text come back after close + reopen. */
static void policies_survive_reopen(void **state)
{
    (void)state;
    colony__bid a = bd_pub("orders", 1, 0, 0);
    bd_next("orders", "billing", "c1", 1, 1);
    colony__bstream_policy sp;
    colony__bstream_policy_default(&sp);
    sp = (colony__bstream_policy){10, COLONY__BOVERFLOW_REJECT, 1500, 86400000, 1 << 20, 1000, 1};
    assert_int_equal(colony__bdelivery_stream_policy_set(bd, "orders", &sp), 0);
    colony__bgroup_policy gp;
    colony__bgroup_policy_default(&gp);
    gp.visibility_ms = 5000;
    gp.max_deliveries = 2;
    gp.backoff = (colony__bbackoff){COLONY__BBACKOFF_EXPONENTIAL, 100, 3000, 10};
    gp.dead_letter = "orders failed\n";
    assert_int_equal(colony__bdelivery_group_policy_set(bd, "orders", "billing", &gp), 0);
    assert_int_equal(colony__bdelivery_nack(bd, "orders", "billing", a, 0, "card declined", 13, 0),
                     0);
    bd_close();
    bd_open();
    colony__bstream_policy sp2;
    assert_int_equal(colony__bdelivery_stream_policy_get(bd, "orders", &sp2), 0);
    /* field by field: the struct's padding bytes are unspecified */
    assert_int_equal(sp2.max_len, sp.max_len);
    assert_int_equal(sp2.overflow, sp.overflow);
    assert_int_equal(sp2.ttl_ms, sp.ttl_ms);
    assert_int_equal(sp2.max_age_ms, sp.max_age_ms);
    assert_int_equal(sp2.max_bytes, sp.max_bytes);
    assert_int_equal(sp2.max_entries, sp.max_entries);
    assert_int_equal(sp2.work_queue, sp.work_queue);
    colony__bgroup_policy gp2;
    assert_int_equal(colony__bdelivery_group_policy_get(bd, "orders", "billing", &gp2), 0);
    assert_int_equal(gp2.visibility_ms, 5000);
    assert_int_equal(gp2.max_deliveries, 2);
    assert_int_equal(gp2.backoff.kind, COLONY__BBACKOFF_EXPONENTIAL);
    assert_int_equal(gp2.backoff.delay_ms, 100);
    assert_int_equal(gp2.backoff.cap_ms, 3000);
    assert_int_equal(gp2.backoff.jitter_pct, 10);
    assert_string_equal(gp2.dead_letter, "orders failed\n");
    /* a group without a policy gets the defaults and the derived name */
    colony__bgroup *g;
    assert_int_equal(
        colony__bgroup_create(colony__bstore_get(bd_store, "orders"), "audit", bs_min, &g), 0);
    assert_int_equal(colony__bdelivery_group_policy_get(bd, "orders", "audit", &gp2), 0);
    assert_int_equal(gp2.visibility_ms, COLONY__BVISIBILITY_DEFAULT_MS);
    assert_int_equal(gp2.max_deliveries, COLONY__BMAX_DELIVERIES_DEFAULT);
    assert_string_equal(gp2.dead_letter, "dlq:orders:audit");
    /* the second delivery is the last: its nack dead-letters with the error
     * text and count kept across the reopen */
    bd_got got = bd_next("orders", "billing", "c1", 1, 1);
    assert_int_equal(got.count[0], 2);
    assert_int_equal(colony__bdelivery_nack(bd, "orders", "billing", a, 0, NULL, 0, 0), 0);
    bd_deads d = bd_dead("orders failed\n");
    assert_int_equal(d.n, 1);
    assert_string_equal(d.reason[0], "max-deliveries");
    assert_string_equal(d.error[0], "card declined");
    assert_int_equal(d.count[0], 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(backoff_schedules, bd_setup, bd_teardown),
        cmocka_unit_test_setup_teardown(nack_follows_group_backoff, bd_setup, bd_teardown),
        cmocka_unit_test_setup_teardown(max_length_drop_oldest_and_reject, bd_setup, bd_teardown),
        cmocka_unit_test_setup_teardown(work_queue_retention_drops_acked_segments, bd_setup,
                                        bd_teardown),
        cmocka_unit_test_setup_teardown(retention_max_entries_on_publish, bd_setup, bd_teardown),
        cmocka_unit_test_setup_teardown(policies_survive_reopen, bd_setup, bd_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
