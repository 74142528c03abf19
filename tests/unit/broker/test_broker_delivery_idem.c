/* The Idempotency-Key kept in an entry's metadata (store/meta.c) and the
 * window rebuilt from it (http/idempotency.c, colony__bidem_load):
 * - the key goes after the delivery engine's items, the engine still reads
 *   its delay and TTL right (a key made of the deliver-at tag byte is not
 *   taken for a deliver-at), and it is set for one append;
 * - the load remembers whole publishes within the window only: a batch's ids
 *   in order, not a publish with entries missing, not one older than the
 *   window, and it reads at most max_scan entries (the newest);
 * - a topic publish's key (colony__bidem_topic_key) is rebuilt with its
 *   answer when every message is in as many streams as were bound, not when
 *   a stream lacks one (a crash between two streams, or a refusal). */
#include "broker_delivery_fixture.h"
#include "broker/http/http.h"

static int last_meta(void *ud, const colony__bentry *e)
{
    colony__bstr *out = ud;
    static char copy[512];
    if (e->meta.len) memcpy(copy, e->meta.data, e->meta.len);
    *out = (colony__bstr){copy, e->meta.len};
    return 0;
}

static colony__bstr meta_of(const char *stream, colony__bid id)
{
    colony__bstr m = {0};
    assert_int_equal(
        colony__bstream_range(colony__bstore_get(bd_store, stream), id, id, 0, 1, last_meta, &m),
        1);
    return m;
}

static void key_rides_after_the_engine_items(void **state)
{
    (void)state;
    char key[41];
    for (int i = 0; i < 40; i++)
        key[i] = '\x01'; /* the deliver-at tag at every offset */
    key[40] = 0;
    colony__bstream *st;
    assert_int_equal(colony__bstore_create(bd_store, "jobs", &st), 0);
    uint64_t now = colony__bstore_now(bd_store);
    colony__bstream_idem_next(st, (colony__bstr){key, 40}, 3);
    colony__bid a = bd_pub("jobs", 1, now + 5000, 0);
    colony__bstr k;
    uint64_t count = 0;
    assert_int_equal(colony__bmeta_idem(meta_of("jobs", a), &k, &count), 1);
    assert_int_equal(k.len, 40);
    assert_memory_equal(k.data, key, 40);
    assert_int_equal(count, 3);
    /* the delay is read right: not before 5 s, then delivered (not expired) */
    bd_next("jobs", "g", "c", 10, 0);
    bd_advance(5000);
    bd_got g = bd_next("jobs", "g", "c", 10, 1);
    assert_int_equal(g.value[0], 1);
    /* one append only: the next one has no key */
    colony__bid b = bd_pub("jobs", 2, 0, 0);
    assert_int_equal(colony__bmeta_idem(meta_of("jobs", b), &k, &count), 0);
    /* with a TTL, no delay */
    colony__bstream_idem_next(st, (colony__bstr){key, 40}, 1);
    colony__bid c = bd_pub("jobs", 3, 0, 60000);
    assert_int_equal(colony__bmeta_idem(meta_of("jobs", c), &k, &count), 1);
    g = bd_next("jobs", "g", "c", 10, 2);
    assert_int_equal(g.value[1], 3);
    /* too long a key: refused, nothing appended */
    char big[COLONY__BMETA_KEY_MAX + 2];
    memset(big, 'k', sizeof(big));
    colony__bstream_idem_next(st, (colony__bstr){big, sizeof(big)}, 1);
    colony__bstr f[2] = {{"k", 1}, {"v9", 2}};
    colony__bid id;
    assert_int_equal(colony__bstream_append_meta(st, COLONY__BID_AUTO, (colony__bid){0, 0}, f, 2,
                                                 (colony__bstr){0}, &id),
                     COLONY_EINVAL);
    assert_int_equal(colony__bstream_length(st), 3);
}

static colony__bid keyed(colony__bstream *st, const char *key, uint64_t count, int v)
{
    colony__bstream_idem_next(st, (colony__bstr){key, strlen(key)}, count);
    return bd_pub(colony__bstream_name(st), v, 0, 0);
}

static void id_is(json_t *ids, size_t i, colony__bid want)
{
    char s[64];
    snprintf(s, sizeof(s), "%llu-%llu", (unsigned long long)want.ms, (unsigned long long)want.seq);
    assert_string_equal(json_string_value(json_array_get(ids, i)), s);
}

static void window_rebuilt_from_the_entries(void **state)
{
    (void)state;
    colony__bstream *st, *other;
    assert_int_equal(colony__bstore_create(bd_store, "s", &st), 0);
    assert_int_equal(colony__bstore_create(bd_store, "t", &other), 0);
    keyed(st, "old", 1, 1);
    bd_advance(61000); /* "old" is out of a 60 s window */
    colony__bid b1 = keyed(st, "batch", 2, 2);
    colony__bid b2 = keyed(st, "batch", 2, 3);
    keyed(st, "torn", 2, 4); /* one of its two entries only */
    bd_pub("s", 5, 0, 0);
    colony__bid o = keyed(other, "one", 1, 6);
    bd_advance(1000);
    uint64_t now = colony__bstore_now(bd_store);

    colony__bidem c;
    colony__bidem_init(&c, 60000, 100);
    assert_int_equal(colony__bidem_load(&c, bd_store, now, 1000), 2);
    json_t *ids = colony__bidem_get(&c, "s", "batch", now);
    assert_non_null(ids);
    assert_int_equal(json_array_size(ids), 2);
    id_is(ids, 0, b1);
    id_is(ids, 1, b2);
    ids = colony__bidem_get(&c, "t", "one", now);
    assert_non_null(ids);
    id_is(ids, 0, o);
    assert_null(colony__bidem_get(&c, "s", "old", now));
    assert_null(colony__bidem_get(&c, "s", "torn", now));
    assert_null(colony__bidem_get(&c, "s", "one", now)); /* keys are per stream */
    /* they expire as the live ones do: a window after their append */
    assert_null(colony__bidem_get(&c, "s", "batch", now + 60000));
    colony__bidem_free(&c);

    /* at most max_scan entries: only the newest of "s" are read */
    colony__bidem_init(&c, 60000, 100);
    assert_true(colony__bidem_load(&c, bd_store, now, 2) >= 0);
    assert_null(colony__bidem_get(&c, "s", "batch", now));
    colony__bidem_free(&c);
}

/* Message index of a topic publish of count messages to `bound` streams. */
static colony__bid topic_keyed(colony__bstream *st, const char *topic, const char *key,
                               uint64_t index, uint64_t count, uint64_t bound, int v)
{
    static char k[COLONY__BIDEM_TOPIC_KEY_MAX];
    size_t len = colony__bidem_topic_key(k, topic, key, index, bound);
    assert_true(len > 0);
    colony__bstream_idem_next(st, (colony__bstr){k, len}, count);
    return bd_pub(colony__bstream_name(st), v, 0, 0);
}

static void topic_keys_rebuilt_when_whole(void **state)
{
    (void)state;
    colony__bstream *a, *b;
    assert_int_equal(colony__bstore_create(bd_store, "a", &a), 0);
    assert_int_equal(colony__bstore_create(bd_store, "b", &b), 0);
    /* "k": 2 messages to 2 streams, every part there */
    colony__bid a0 = topic_keyed(a, "order.created", "k", 0, 2, 2, 1);
    colony__bid b0 = topic_keyed(b, "order.created", "k", 0, 2, 2, 1);
    colony__bid a1 = topic_keyed(a, "order.created", "k", 1, 2, 2, 2);
    colony__bid b1 = topic_keyed(b, "order.created", "k", 1, 2, 2, 2);
    /* "cut": its second stream never got it */
    topic_keyed(a, "order.created", "cut", 0, 1, 2, 3);
    /* the same key on a stream publish is another target */
    keyed(a, "k", 1, 4);
    bd_advance(1000);
    uint64_t now = colony__bstore_now(bd_store);

    colony__bidem c;
    colony__bidem_init(&c, 60000, 100);
    assert_int_equal(colony__bidem_load(&c, bd_store, now, 1000), 2);
    json_t *msgs = colony__bidem_get(&c, "topic:order.created", "k", now);
    assert_non_null(msgs);
    assert_int_equal(json_array_size(msgs), 2);
    colony__bid want[2][2] = {{a0, b0}, {a1, b1}};
    for (size_t m = 0; m < 2; m++) {
        json_t *streams = json_object_get(json_array_get(msgs, m), "streams");
        assert_int_equal(json_array_size(streams), 2);
        for (size_t i = 0; i < 2; i++) {
            json_t *one = json_array_get(streams, i);
            const char *name = json_string_value(json_object_get(one, "stream"));
            json_t *id = json_array(); /* id_is reads an array */
            json_array_append(id, json_object_get(one, "id"));
            id_is(id, 0, want[m][strcmp(name, "a") ? 1 : 0]);
            json_decref(id);
        }
    }
    assert_null(colony__bidem_get(&c, "topic:order.created", "cut", now));
    assert_non_null(colony__bidem_get(&c, "a", "k", now));
    colony__bidem_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(key_rides_after_the_engine_items, bd_setup, bd_teardown),
        cmocka_unit_test_setup_teardown(window_rebuilt_from_the_entries, bd_setup, bd_teardown),
        cmocka_unit_test_setup_teardown(topic_keys_rebuilt_when_whole, bd_setup, bd_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
