/* Dead letters (src/broker/delivery/dead.c): max deliveries reached by
 * redelivery and by nack → a dead letter with reason, last error text and
 * count; replay of one, a range and all (new entries in the original stream,
 * removed from the dead-letter stream); purge up to an id and all; with a
 * committer, a move acks the original and a replay deletes the dead letter
 * only once the copy is durable. */
#include "broker_delivery_fixture.h"

static void set_max(const char *stream, const char *group, uint64_t max, uint64_t vis)
{
    colony__bgroup_policy gp;
    colony__bgroup_policy_default(&gp);
    gp.max_deliveries = max;
    gp.visibility_ms = vis;
    assert_int_equal(colony__bdelivery_group_policy_set(bd, stream, group, &gp), 0);
}

static void max_deliveries_by_redelivery_and_by_nack(void **state)
{
    (void)state;
    colony__bid a = bd_pub("jobs", 1, 0, 0);
    colony__bid b = bd_pub("jobs", 2, 0, 0);
    bd_next("jobs", "g", "c1", 2, 2);
    set_max("jobs", "g", 3, 1000);
    /* a: times out each time; its last nack's error text is kept */
    assert_int_equal(
        colony__bdelivery_nack(bd, "jobs", "g", a, 1000, "timeout talking to db", 21, 0), 0);
    assert_int_equal(colony__bdelivery_nack(bd, "jobs", "g", b, 1000, "bad input", 9, 0), 0);
    bd_advance(1000);
    bd_got g = bd_next("jobs", "g", "c1", 2, 2); /* count 2 */
    assert_int_equal(g.count[0], 2);
    /* b: nacked at count 2, then at count 3 = max → dead at once */
    assert_int_equal(colony__bdelivery_nack(bd, "jobs", "g", b, 0, "bad input again", 15, 0), 0);
    bd_advance(1000);
    g = bd_next("jobs", "g", "c1", 2, 2); /* count 3 */
    assert_int_equal(g.count[0], 3);
    assert_int_equal(g.count[1], 3);
    assert_int_equal(colony__bdelivery_nack(bd, "jobs", "g", b, 0, "still bad", 9, 0), 0);
    bd_deads d = bd_dead("dlq:jobs:g");
    assert_int_equal(d.n, 1);
    assert_int_equal(colony__bid_cmp(d.original[0], b), 0);
    assert_string_equal(d.reason[0], "max-deliveries");
    assert_string_equal(d.error[0], "still bad");
    assert_int_equal(d.count[0], 3);
    /* a: its third delivery times out; the next next() moves it */
    bd_advance(1000);
    bd_next("jobs", "g", "c1", 2, 0);
    d = bd_dead("dlq:jobs:g");
    assert_int_equal(d.n, 2);
    assert_int_equal(colony__bid_cmp(d.original[1], a), 0);
    assert_string_equal(d.reason[1], "max-deliveries");
    assert_string_equal(d.error[1], "timeout talking to db");
    assert_int_equal(d.count[1], 3);
    assert_string_equal(d.stream[1], "jobs");
    assert_string_equal(d.group[1], "g");
    colony__bgroup_info gi;
    colony__bgroup_info_get(colony__bgroup_get(colony__bstore_get(bd_store, "jobs"), "g"), &gi);
    assert_int_equal(gi.pending, 0);
}

/* Five dead letters in dlq:jobs:g with values 1..5. */
static void five_dead(bd_deads *out)
{
    for (int i = 1; i <= 5; i++)
        bd_pub("jobs", i, 0, 0);
    bd_got g = bd_next("jobs", "g", "c", 5, 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(colony__bdelivery_nack(bd, "jobs", "g", g.id[i], 0, "x", 1, 1), 0);
    *out = bd_dead("dlq:jobs:g");
    assert_int_equal(out->n, 5);
}

static void replay_one_range_all(void **state)
{
    (void)state;
    bd_deads d;
    five_dead(&d);
    /* one */
    assert_int_equal(colony__bdelivery_dead_replay(bd, "dlq:jobs:g", d.id[1], d.id[1]), 1);
    bd_got g = bd_next("jobs", "g", "c", 10, 1);
    assert_int_equal(g.value[0], 2);
    assert_int_equal(g.count[0], 1); /* a new entry: counted from 1 */
    bd_deads left = bd_dead("dlq:jobs:g");
    assert_int_equal(left.n, 4);
    /* a range: 3..4 */
    assert_int_equal(colony__bdelivery_dead_replay(bd, "dlq:jobs:g", d.id[2], d.id[3]), 2);
    g = bd_next("jobs", "g", "c", 10, 2);
    assert_int_equal(g.value[0], 3);
    assert_int_equal(g.value[1], 4);
    /* all */
    assert_int_equal(colony__bdelivery_dead_replay(bd, "dlq:jobs:g", bs_min, bs_max), 2);
    g = bd_next("jobs", "g", "c", 10, 2);
    assert_int_equal(g.value[0], 1);
    assert_int_equal(g.value[1], 5);
    assert_int_equal(bd_dead("dlq:jobs:g").n, 0);
    assert_int_equal(colony__bdelivery_dead_replay(bd, "nope", bs_min, bs_max), COLONY_ENOENT);
    /* replay goes through the stream's policy: a full stream (reject) stops it */
    five_dead(&d);
    colony__bstream_policy sp;
    colony__bstream_policy_default(&sp);
    sp.max_len = 1;
    sp.overflow = COLONY__BOVERFLOW_REJECT;
    assert_int_equal(colony__bdelivery_stream_policy_set(bd, "jobs", &sp), 0);
    assert_int_equal(colony__bdelivery_dead_replay(bd, "dlq:jobs:g", bs_min, bs_max),
                     COLONY__BDELIVERY_EFULL);
    assert_int_equal(bd_dead("dlq:jobs:g").n, 5);
}

static void purge_upto_and_all(void **state)
{
    (void)state;
    bd_deads d;
    five_dead(&d);
    assert_int_equal(colony__bdelivery_dead_purge(bd, "dlq:jobs:g", d.id[1]), 2);
    bd_deads left = bd_dead("dlq:jobs:g");
    assert_int_equal(left.n, 3);
    assert_int_equal(left.value[0], 3);
    assert_int_equal(colony__bdelivery_dead_purge(bd, "dlq:jobs:g", bs_max), 3);
    assert_int_equal(bd_dead("dlq:jobs:g").n, 0);
}

static int done;
static void on_done(void *ud, int err)
{
    (void)ud;
    assert_int_equal(err, 0);
    done = 1;
}

static void moves_wait_for_the_fsync(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    colony__bcommit *commit;
    assert_int_equal(colony__bcommit_new(&commit, &loop, COLONY__BSYNC_ALWAYS, 0), 0);
    colony__bdelivery_close(bd);
    colony__bdelivery_options o = {0};
    o.store = bd_store;
    o.commit = commit;
    assert_int_equal(colony__bdelivery_open(&bd, &o), 0);
    colony__bid a = bd_pub("jobs", 1, 0, 0);
    bd_next("jobs", "g", "c", 1, 1);
    assert_int_equal(colony__bdelivery_nack(bd, "jobs", "g", a, 0, "no", 2, 1), 0);
    assert_int_equal(colony__bstore_get(bd_store, "dlq:jobs:g"), colony__bdelivery_touched(bd, 0));
    assert_null(colony__bdelivery_touched(bd, 1));
    colony__bgroup *g = colony__bgroup_get(colony__bstore_get(bd_store, "jobs"), "g");
    /* copied, not yet durable: the original is still pending, and not due */
    assert_int_equal(bd_dead("dlq:jobs:g").n, 1);
    assert_non_null(colony__bgroup_pending(g, a));
    bd_next("jobs", "g", "c", 1, 0);
    done = 0;
    assert_int_equal(
        colony__bcommit_wait(commit, colony__bstore_get(bd_store, "jobs"), on_done, NULL), 0);
    assert_true(colony_test_run_until(&loop, &done, 5000));
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_null(colony__bgroup_pending(g, a));
    /* replay: the dead letter goes once the new entry is durable */
    bd_deads d = bd_dead("dlq:jobs:g");
    assert_int_equal(colony__bdelivery_dead_replay(bd, "dlq:jobs:g", d.id[0], d.id[0]), 1);
    assert_int_equal(bd_dead("dlq:jobs:g").n, 1);
    done = 0;
    assert_int_equal(
        colony__bcommit_wait(commit, colony__bstore_get(bd_store, "dlq:jobs:g"), on_done, NULL), 0);
    assert_true(colony_test_run_until(&loop, &done, 5000));
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(bd_dead("dlq:jobs:g").n, 0);
    /* a move in flight when the engine closes finds it gone and does nothing */
    colony__bid b = bd_pub("jobs", 2, 0, 0);
    bd_got got = bd_next("jobs", "g", "c", 2, 2); /* the replayed copy of 1, then 2 */
    assert_int_equal(got.value[0], 1);
    assert_int_equal(colony__bid_cmp(got.id[1], b), 0);
    assert_int_equal(colony__bdelivery_nack(bd, "jobs", "g", b, 0, NULL, 0, 1), 0);
    colony__bdelivery_close(bd);
    bd = NULL;
    done = 0;
    assert_int_equal(
        colony__bcommit_wait(commit, colony__bstore_get(bd_store, "jobs"), on_done, NULL), 0);
    assert_true(colony_test_run_until(&loop, &done, 5000));
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_non_null(colony__bgroup_pending(g, b));
    colony__bcommit_shutdown(commit);
    uv_run(&loop, UV_RUN_NOWAIT);
    colony__bcommit_close(commit);
    colony_test_loop_close(&loop);
    colony__bstore_close(bd_store);
    bd_store = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(max_deliveries_by_redelivery_and_by_nack, bd_setup,
                                        bd_teardown),
        cmocka_unit_test_setup_teardown(replay_one_range_all, bd_setup, bd_teardown),
        cmocka_unit_test_setup_teardown(purge_upto_and_all, bd_setup, bd_teardown),
        cmocka_unit_test_setup_teardown(moves_wait_for_the_fsync, bd_setup, bd_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
