/* The delivery state machine (src/broker/delivery/deliver.c) on a fake clock:
 * visibility timeout → redelivery with the count kept (a consumer that went
 * away gives its entries back), nack with a delay, extend, delayed publish
 * (a pending entry with no owner, count 0, due at its time), TTL → an
 * `expired` dead letter, and the metadata section staying out of the views. */
#include "broker_delivery_fixture.h"

static void visibility_timeout_redelivers_with_count(void **state)
{
    (void)state;
    colony__bid a = bd_pub("jobs", 1, 0, 0);
    bd_pub("jobs", 2, 0, 0);
    bd_got g = bd_next("jobs", "workers", "c1", 1, 1);
    assert_int_equal(colony__bid_cmp(g.id[0], a), 0);
    assert_int_equal(g.count[0], 1);
    /* c1 goes away holding entry 1; c2 gets entry 2, not entry 1 */
    g = bd_next("jobs", "workers", "c2", 10, 1);
    assert_int_equal(g.value[0], 2);
    bd_next("jobs", "workers", "c2", 10, 0);
    bd_advance(COLONY__BVISIBILITY_DEFAULT_MS - 1);
    bd_next("jobs", "workers", "c2", 10, 0);
    bd_advance(1); /* both are due now: 1 (c1's) and 2 (c2's own, unacked) */
    g = bd_next("jobs", "workers", "c2", 10, 2);
    assert_int_equal(g.value[0], 1);
    assert_int_equal(g.count[0], 2);
    assert_int_equal(g.count[1], 2);
    colony__bstream *st = colony__bstore_get(bd_store, "jobs");
    const colony__bpending *p = colony__bgroup_pending(colony__bgroup_get(st, "workers"), a);
    assert_string_equal(p->consumer, "c2");
    assert_int_equal(p->count, 2);
    /* acked: never again */
    colony__bid ids[2] = {g.id[0], g.id[1]};
    assert_int_equal(colony__bdelivery_ack(bd, "jobs", "workers", ids, 2), 2);
    assert_int_equal(colony__bdelivery_ack(bd, "jobs", "workers", ids, 2), 0);
    bd_advance(COLONY__BVISIBILITY_DEFAULT_MS);
    bd_next("jobs", "workers", "c2", 10, 0);
    assert_int_equal(colony__bdelivery_next_due(bd, "jobs", "workers"), UINT64_MAX);
}

static void nack_with_delay_and_extend(void **state)
{
    (void)state;
    colony__bid a = bd_pub("jobs", 1, 0, 0);
    bd_next("jobs", "g", "c1", 1, 1);
    assert_int_equal(colony__bdelivery_nack(bd, "jobs", "g", a, 5000, "busy", 4, 0), 0);
    assert_int_equal(colony__bdelivery_next_due(bd, "jobs", "g"), bs_clock.now_ms + 5000);
    bd_advance(4999);
    bd_next("jobs", "g", "c1", 1, 0);
    bd_advance(1);
    bd_got g = bd_next("jobs", "g", "c1", 1, 1);
    assert_int_equal(g.count[0], 2);
    /* extend: 60 s more than the 30 s visibility */
    assert_int_equal(colony__bdelivery_extend(bd, "jobs", "g", a, 60000), 0);
    bd_advance(COLONY__BVISIBILITY_DEFAULT_MS);
    bd_next("jobs", "g", "c1", 1, 0);
    bd_advance(30000);
    g = bd_next("jobs", "g", "c1", 1, 1);
    assert_int_equal(g.count[0], 3);
    colony__bid missing = {1, 1};
    assert_int_equal(colony__bdelivery_extend(bd, "jobs", "g", missing, 1), COLONY_ENOENT);
    assert_int_equal(colony__bdelivery_nack(bd, "jobs", "g", missing, 1, NULL, 0, 0),
                     COLONY_ENOENT);
    assert_int_equal(colony__bdelivery_nack(bd, "jobs", "nogroup", a, 1, NULL, 0, 0),
                     COLONY_ENOENT);
}

static void delayed_publish_waits_as_ownerless_pending(void **state)
{
    (void)state;
    uint64_t t = bs_clock.now_ms + 10000;
    colony__bid a = bd_pub("jobs", 1, t, 0);
    bd_pub("jobs", 2, 0, 0);
    bd_got g = bd_next("jobs", "g", "c1", 10, 1);
    assert_int_equal(g.value[0], 2);
    colony__bstream *st = colony__bstore_get(bd_store, "jobs");
    const colony__bpending *p = colony__bgroup_pending(colony__bgroup_get(st, "g"), a);
    assert_non_null(p);
    assert_string_equal(p->consumer, "");
    assert_int_equal(p->count, 0);
    assert_int_equal(p->due_ms, t);
    colony__bid ack = g.id[0];
    colony__bdelivery_ack(bd, "jobs", "g", &ack, 1);
    assert_int_equal(colony__bdelivery_next_due(bd, "jobs", "g"), t);
    assert_int_equal(colony__bdelivery_next_due(bd, NULL, NULL), t);
    /* it is group state: a restart keeps it waiting, ownerless, until t */
    bd_close();
    bd_open();
    st = colony__bstore_get(bd_store, "jobs");
    p = colony__bgroup_pending(colony__bgroup_get(st, "g"), a);
    assert_non_null(p);
    assert_string_equal(p->consumer, "");
    assert_int_equal(p->due_ms, t);
    bd_advance(9999);
    bd_next("jobs", "g", "c1", 10, 0);
    bd_advance(1);
    g = bd_next("jobs", "g", "c2", 10, 1);
    assert_int_equal(g.value[0], 1);
    assert_int_equal(g.count[0], 1);
}

static void ttl_expired_entry_is_dead_lettered(void **state)
{
    (void)state;
    colony__bid a = bd_pub("jobs", 1, 0, 1000);
    bd_pub("jobs", 2, 0, 0);
    bd_advance(1000);
    bd_got g = bd_next("jobs", "g", "c1", 10, 1);
    assert_int_equal(g.value[0], 2);
    bd_deads d = bd_dead("dlq:jobs:g");
    assert_int_equal(d.n, 1);
    assert_string_equal(d.reason[0], "expired");
    assert_int_equal(colony__bid_cmp(d.original[0], a), 0);
    assert_int_equal(d.value[0], 1);
    assert_int_equal(d.count[0], 0);
    /* the group no longer holds it */
    colony__bstream *st = colony__bstore_get(bd_store, "jobs");
    assert_null(colony__bgroup_pending(colony__bgroup_get(st, "g"), a));
    assert_non_null(colony__bdelivery_touched(bd, 0));
    /* a stream TTL applies to entries published without one; an entry that
     * expires while pending is dead-lettered instead of redelivered */
    colony__bstream_policy sp;
    colony__bstream_policy_default(&sp);
    sp.ttl_ms = 500;
    assert_int_equal(colony__bdelivery_stream_policy_set(bd, "jobs", &sp), 0);
    bd_pub("jobs", 3, 0, 0);
    bd_next("jobs", "g", "c1", 10, 1);
    bd_advance(COLONY__BVISIBILITY_DEFAULT_MS);
    bd_next("jobs", "g", "c1", 10, 1); /* entry 2 (no TTL) comes back; 3 expired */
    d = bd_dead("dlq:jobs:g");
    assert_int_equal(d.n, 2);
    assert_string_equal(d.reason[1], "expired");
    assert_int_equal(d.value[1], 3);
    assert_int_equal(d.count[1], 1);
}

typedef struct raw {
    size_t n, meta;
} raw;

static int raw_entry(void *ud, const colony__bentry *e)
{
    raw *r = ud;
    r->n = e->n;
    r->meta = e->meta.len;
    return 0;
}

static void metadata_stays_out_of_views(void **state)
{
    (void)state;
    colony__bid a = bd_pub("jobs", 1, bs_clock.now_ms + 5, 100);
    colony__bstream *st = colony__bstore_get(bd_store, "jobs");
    raw r = {0};
    assert_int_equal(colony__bstream_range(st, a, a, 0, 0, raw_entry, &r), 1);
    assert_int_equal(r.n, 2);
    assert_true(r.meta > 0);
    /* an XADD-style entry (pairs, no metadata) reads back as written */
    colony__bstr f[4] = {{"a", 1}, {"", 0}, {"dlq-x", 5}, {"M\x01", 2}};
    colony__bid b;
    assert_int_equal(colony__bstream_append(st, COLONY__BID_AUTO, bs_min, f, 4, &b), 0);
    assert_int_equal(colony__bstream_range(st, b, b, 0, 0, raw_entry, &r), 1);
    assert_int_equal(r.n, 4);
    assert_int_equal(r.meta, 0);
    colony__bstr odd[1] = {{"k", 1}};
    assert_int_equal(colony__bstream_append_meta(st, COLONY__BID_AUTO, bs_min, odd, 1,
                                                 (colony__bstr){"M", 1}, &b),
                     COLONY_EINVAL);
}

static void rejected_by_handler_goes_to_dead_letter(void **state)
{
    (void)state;
    colony__bid a = bd_pub("jobs", 7, 0, 0);
    bd_next("jobs", "g", "c1", 1, 1);
    const char *err = "schema: field k is not an order";
    assert_int_equal(colony__bdelivery_nack(bd, "jobs", "g", a, 0, err, strlen(err), 1), 0);
    bd_deads d = bd_dead("dlq:jobs:g");
    assert_int_equal(d.n, 1);
    assert_string_equal(d.reason[0], "rejected");
    assert_string_equal(d.error[0], err);
    assert_string_equal(d.stream[0], "jobs");
    assert_string_equal(d.group[0], "g");
    assert_int_equal(d.count[0], 1);
    assert_int_equal(d.value[0], 7);
    assert_int_equal(d.time_ms[0], bs_clock.now_ms);
    bd_advance(COLONY__BVISIBILITY_DEFAULT_MS);
    bd_next("jobs", "g", "c1", 1, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(visibility_timeout_redelivers_with_count, bd_setup,
                                        bd_teardown),
        cmocka_unit_test_setup_teardown(nack_with_delay_and_extend, bd_setup, bd_teardown),
        cmocka_unit_test_setup_teardown(delayed_publish_waits_as_ownerless_pending, bd_setup,
                                        bd_teardown),
        cmocka_unit_test_setup_teardown(ttl_expired_entry_is_dead_lettered, bd_setup, bd_teardown),
        cmocka_unit_test_setup_teardown(metadata_stays_out_of_views, bd_setup, bd_teardown),
        cmocka_unit_test_setup_teardown(rejected_by_handler_goes_to_dead_letter, bd_setup,
                                        bd_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
