/* Topics and bindings (src/broker/topic/topic.c): exact and glob bindings,
 * one append per bound stream however many bindings match, the table durable
 * across close + reopen, a malformed file named with its line, and publish
 * appending to every bound stream (with the stream's policy) and naming the
 * streams to wait on. */
#include "broker_delivery_fixture.h"

static char path[128];

static colony__btopics *topics_open(void)
{
    colony__btopics *t = NULL;
    char msg[512] = "";
    int rc = colony__btopics_open(&t, path, msg, sizeof(msg));
    if (rc) fail_msg("open: %d %s", rc, msg);
    return t;
}

typedef struct names {
    char s[16][32];
    size_t n;
} names;

static int note_stream(void *ud, const char *stream)
{
    names *n = ud;
    snprintf(n->s[n->n++], sizeof(n->s[0]), "%s", stream);
    return 0;
}

static names match(colony__btopics *t, const char *topic)
{
    names n;
    memset(&n, 0, sizeof(n));
    long k = colony__btopics_match(t, topic, strlen(topic), note_stream, &n);
    assert_int_equal(k, (long)n.n);
    return n;
}

static void bindings_exact_and_pattern_durable(void **state)
{
    (void)state;
    snprintf(path, sizeof(path), "%s/bindings", bd_dir);
    colony__btopics *t = topics_open();
    assert_int_equal(colony__btopics_count(t), 0);
    assert_int_equal(colony__btopics_bind(t, "order.created", 13, "billing"), 0);
    assert_int_equal(colony__btopics_bind(t, "order.*", 7, "audit"), 0);
    assert_int_equal(colony__btopics_bind(t, "*", 1, "audit"), 0); /* same stream twice */
    assert_int_equal(colony__btopics_bind(t, "user.[a-c]*", 11, "users"), 0);
    assert_int_equal(colony__btopics_bind(t, "bin\0ary", 7, "bin"), 0);
    assert_int_equal(colony__btopics_bind(t, "order.*", 7, "audit"), COLONY_EEXIST);
    assert_int_equal(colony__btopics_bind(t, "", 0, "x"), COLONY_EINVAL);
    assert_int_equal(colony__btopics_bind(t, "x", 1, ""), COLONY_EINVAL);
    names n = match(t, "order.created");
    assert_int_equal(n.n, 2);
    assert_string_equal(n.s[0], "billing");
    assert_string_equal(n.s[1], "audit");
    n = match(t, "order.paid");
    assert_int_equal(n.n, 1);
    assert_string_equal(n.s[0], "audit");
    n = match(t, "user.bob");
    assert_int_equal(n.n, 2);
    n = match(t, "user.dave");
    assert_int_equal(n.n, 1);
    names bn;
    memset(&bn, 0, sizeof(bn));
    assert_int_equal(colony__btopics_match(t, "bin\0ary", 7, note_stream, &bn), 2);
    assert_int_equal(colony__btopics_match(t, "bin", 3, NULL, NULL), 1); /* only "*" */
    assert_int_equal(colony__btopics_unbind(t, "*", 1, "audit"), 0);
    assert_int_equal(colony__btopics_unbind(t, "*", 1, "audit"), COLONY_ENOENT);
    colony__btopics_close(t);
    /* reopen: the same bindings, in the same order */
    t = topics_open();
    assert_int_equal(colony__btopics_count(t), 4);
    size_t pos = 0, plen;
    const char *p, *s;
    assert_int_equal(colony__btopics_next(t, &pos, &p, &plen, &s), 0);
    assert_int_equal(plen, 13);
    assert_string_equal(s, "billing");
    assert_int_equal(colony__btopics_next(t, &pos, &p, &plen, &s), 0);
    assert_int_equal(colony__btopics_next(t, &pos, &p, &plen, &s), 0);
    assert_int_equal(colony__btopics_next(t, &pos, &p, &plen, &s), 0);
    assert_int_equal(plen, 7);
    assert_memory_equal(p, "bin\0ary", 7);
    assert_int_equal(colony__btopics_next(t, &pos, &p, &plen, &s), COLONY_ENOENT);
    assert_int_equal(match(t, "order.created").n, 2);
    assert_int_equal(match(t, "nothing").n, 0);
    colony__btopics_close(t);
}

static void malformed_file_names_line(void **state)
{
    (void)state;
    snprintf(path, sizeof(path), "%s/bindings", bd_dir);
    FILE *f = fopen(path, "w");
    fputs("colony-bindings 1\n61 62\nzz 62\n", f);
    fclose(f);
    colony__btopics *t = NULL;
    char msg[512] = "";
    assert_int_equal(colony__btopics_open(&t, path, msg, sizeof(msg)), COLONY_EINVAL);
    assert_non_null(strstr(msg, "bindings:3:"));
}

static void publish_appends_to_every_bound_stream(void **state)
{
    (void)state;
    snprintf(path, sizeof(path), "%s/bindings", bd_dir);
    colony__btopics *t = topics_open();
    assert_int_equal(colony__btopics_bind(t, "order.*", 7, "audit"), 0);
    assert_int_equal(colony__btopics_bind(t, "order.created", 13, "billing"), 0);
    assert_int_equal(colony__btopics_bind(t, "order.created", 13, "full"), 0);
    bd_pub("full", 0, 0, 0);
    colony__bstream_policy sp;
    colony__bstream_policy_default(&sp);
    sp.max_len = 1;
    sp.overflow = COLONY__BOVERFLOW_REJECT;
    assert_int_equal(colony__bdelivery_stream_policy_set(bd, "full", &sp), 0);
    colony__bstr f[2] = {{"k", 1}, {"v5", 2}};
    colony__bpublish m = {.strs = f, .n = 2, .deliver_at_ms = 0, .ttl_ms = 0};
    colony__btopic_target out[4];
    assert_int_equal(colony__btopics_publish(t, bd, "order.created", 13, &m, out, 4), 3);
    assert_string_equal(out[0].stream, "audit");
    assert_int_equal(out[0].err, 0);
    assert_ptr_equal(out[0].st, colony__bstore_get(bd_store, "audit"));
    assert_string_equal(out[1].stream, "billing");
    assert_int_equal(out[1].err, 0);
    assert_int_equal(out[2].err, COLONY__BDELIVERY_EFULL);
    assert_null(out[2].st);
    bd_got g = bd_next("billing", "g", "c", 10, 1);
    assert_int_equal(g.value[0], 5);
    assert_int_equal(colony__bid_cmp(g.id[0], out[1].id), 0);
    bd_next("audit", "g", "c", 10, 1);
    assert_int_equal(colony__btopics_publish(t, bd, "user.x", 6, &m, out, 4), 0);
    colony__btopics_close(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(bindings_exact_and_pattern_durable, bd_setup, bd_teardown),
        cmocka_unit_test_setup_teardown(malformed_file_names_line, bd_setup, bd_teardown),
        cmocka_unit_test_setup_teardown(publish_appends_to_every_bound_stream, bd_setup,
                                        bd_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
