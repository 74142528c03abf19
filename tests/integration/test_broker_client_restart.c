/* The broker client through a broker crash: kill -9 while a subscriber holds
 * unacked entries; publishes fail cleanly while it is down; once the broker
 * is restarted on the same port and data dir, the subscription reconnects by
 * itself (capped backoff), the unacked entries come back (delivery count 2,
 * after the group's visibility timeout) and new publishes arrive. */
#include "test_broker_client_util.h"

typedef struct crash {
    colony_broker_msg *held[8];
    int nheld;
    int redelivered; /* deliveries with count >= 2 */
    int fresh_after; /* "after" seen */
} crash;

static colony_broker_verdict on_msg(colony_broker_msg *m, void *ud)
{
    crash *k = ud;
    size_t len;
    const char *d = colony_broker_msg_data(m, &len);
    if (len == 5 && !memcmp(d, "after", 5)) {
        k->fresh_after++;
        return COLONY_BROKER_ACK;
    }
    if (colony_broker_msg_deliveries(m) >= 2) {
        k->redelivered++;
        return COLONY_BROKER_ACK;
    }
    if (k->nheld < 8) {
        k->held[k->nheld++] = m; /* not acked before the crash */
        return COLONY_BROKER_LATER;
    }
    return COLONY_BROKER_ACK;
}

static void test_kill_and_restart(void **state)
{
    (void)state;
    setup_loop();
    broker_proc b;
    broker_start(&b);
    assert_int_equal(http_status(&b, "PUT", "/streams/work", NULL), 201);
    assert_int_equal(http_status(&b, "PUT", "/streams/work/groups/g",
                                 "{\"start\": \"0\", \"visibility_timeout\": 1000}"),
                     201);
    colony_broker_client *c = bclient_new(&b, 300);
    for (int i = 0; i < 3; i++)
        assert_int_equal(publish_wait(c, "work", "job").err, 0);
    crash k = {0};
    colony_broker_sub *sub;
    assert_int_equal(
        colony_broker_subscribe(
            c,
            &(colony_broker_sub_options){
                .stream = "work", .group = "g", .handler = on_msg, .ud = &k, .wait_ms = 1000},
            &sub),
        0);
    assert_true(RUN_UNTIL(k.nheld == 3, 15000));
    assert_true(colony_broker_sub_connected(sub));

    broker_kill(&b, SIGKILL);
    assert_true(RUN_UNTIL(!colony_broker_sub_connected(sub), 5000));
    pub_result r = publish_wait(c, "work", "lost");
    assert_int_equal(r.err, COLONY_ECONNREFUSED);
    run_for(600); /* a few reconnect attempts against nothing */

    broker_spawn(&b);
    assert_true(RUN_UNTIL(colony_broker_sub_connected(sub), 5000));
    assert_int_equal(publish_wait(c, "work", "after").err, 0);
    /* the three held entries come back once their visibility timeout passes */
    assert_true(RUN_UNTIL(k.redelivered == 3 && k.fresh_after == 1, 15000));
    /* the old deliveries, settled late: acking again is harmless */
    for (int i = 0; i < k.nheld; i++)
        assert_int_equal(colony_broker_msg_ack(k.held[i]), 0);
    assert_true(RUN_UNTIL(colony_broker_sub_in_flight(sub) == 0, 5000));
    assert_int_equal(http_field(&b, "/streams/work/groups/g", "pending"), 0);
    assert_int_equal(http_field(&b, "/streams/work", "entries"), 4); /* "lost" never stored */
    bclient_close(c);
    broker_stop(&b);
    teardown_loop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_and_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
