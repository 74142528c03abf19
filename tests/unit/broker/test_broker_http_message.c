/* The HTTP API's pure parts: the Idempotency-Key cache (src/broker/http/
 * idempotency.c: window, bound, scope, forget, allocation failures) and the
 * message <-> entry mapping (message.c: fields written, read back, entries
 * from XADD, bad messages, bytes that are not UTF-8). */
#include "test_support.h"
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "broker/http/http.h"

static void idem_window_and_scope(void **state)
{
    (void)state;
    colony__bidem c;
    colony__bidem_init(&c, 1000, 100);
    json_t *ids = json_pack("[s]", "1-0");
    assert_int_equal(colony__bidem_put(&c, "orders", "k", ids, 5000), 0);
    assert_non_null(colony__bidem_get(&c, "orders", "k", 5999));
    assert_string_equal(
        json_string_value(json_array_get(colony__bidem_get(&c, "orders", "k", 5999), 0)), "1-0");
    assert_null(colony__bidem_get(&c, "other", "k", 5999));  /* per stream */
    assert_null(colony__bidem_get(&c, "order", "sk", 5999)); /* no ambiguity */
    assert_null(colony__bidem_get(&c, "orders", "k", 6000)); /* window over */
    assert_int_equal(c.count, 0);
    assert_int_equal(colony__bidem_put(&c, "orders", "k", ids, 7000), 0);
    colony__bidem_forget(&c, "orders", "k");
    assert_null(colony__bidem_get(&c, "orders", "k", 7001));
    json_decref(ids);
    colony__bidem_free(&c);
}

static void idem_is_bounded(void **state)
{
    (void)state;
    colony__bidem c;
    colony__bidem_init(&c, 60000, 10);
    json_t *ids = json_pack("[s]", "1-0");
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(colony__bidem_put(&c, "s", key, ids, 1000), 0);
        assert_true(c.count <= 10);
    }
    assert_null(colony__bidem_get(&c, "s", "k0", 1001)); /* the oldest went first */
    assert_non_null(colony__bidem_get(&c, "s", "k999", 1001));
    /* a key put again replaces itself */
    assert_int_equal(colony__bidem_put(&c, "s", "k999", ids, 1002), 0);
    assert_int_equal(c.count, 10);
    json_decref(ids);
    colony__bidem_free(&c);
}

static void idem_allocation_failures(void **state)
{
    (void)state;
    json_t *ids = json_pack("[s]", "1-0");
    for (long n = 0; n < 8; n++) {
        colony__bidem c;
        colony__bidem_init(&c, 60000, 10);
        colony__alloc_fail_after(n);
        int rc = colony__bidem_put(&c, "s", "k", ids, 1);
        colony__alloc_fail_reset();
        assert_true(rc == 0 || rc == COLONY_ENOMEM);
        if (rc == 0) assert_non_null(colony__bidem_get(&c, "s", "k", 2));
        colony__bidem_free(&c);
    }
    json_decref(ids);
}

static const colony__bstr *find(const colony__bmsg *m, const char *field)
{
    for (size_t i = 0; i + 1 < m->n; i += 2)
        if (m->strs[i].len == strlen(field) && !memcmp(m->strs[i].data, field, m->strs[i].len))
            return &m->strs[i + 1];
    return NULL;
}

static json_t *round_trip(const colony__bmsg *m)
{
    colony__bentry e = {.id = {5, 1}, .strs = m->strs, .n = m->n};
    return colony__bmsg_to_json(&e);
}

static void message_fields(void **state)
{
    (void)state;
    char err[200];
    colony__bmsg m;
    json_t *in =
        json_loads("{\"data\": \"hi\", \"headers\": {\"trace\": \"t1\", \"a\": \"b\"}}", 0, NULL);
    assert_int_equal(colony__bmsg_from_json(in, &m, err, sizeof(err)), 0);
    assert_int_equal(m.n, 6);
    assert_memory_equal(find(&m, "data")->data, "hi", 2);
    assert_memory_equal(find(&m, "h:trace")->data, "t1", 2);
    json_t *out = round_trip(&m);
    assert_string_equal(json_string_value(json_object_get(out, "id")), "5-1");
    assert_string_equal(json_string_value(json_object_get(out, "data")), "hi");
    assert_string_equal(json_string_value(json_object_get(json_object_get(out, "headers"), "a")),
                        "b");
    assert_null(json_object_get(out, "fields"));
    json_decref(out);
    colony__bmsg_free(&m);
    json_decref(in);

    in = json_loads("{\"data\": {\"id\": [1, 2]}, \"delay\": 5}", 0, NULL);
    assert_int_equal(colony__bmsg_from_json(in, &m, err, sizeof(err)), 0);
    assert_int_equal(m.n, 2);
    assert_non_null(find(&m, "json"));
    out = round_trip(&m);
    assert_int_equal(
        json_integer_value(json_array_get(json_object_get(json_object_get(out, "data"), "id"), 1)),
        2);
    json_decref(out);
    colony__bmsg_free(&m);
    json_decref(in);
}

static void message_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "[1]",
        "{}",
        "{\"data\": 1, \"x\": 2}",
        "{\"data\": 1, \"headers\": []}",
        "{\"data\": 1, \"headers\": {\"a\": 1}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[200] = "";
        colony__bmsg m;
        json_t *in = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        assert_int_equal(colony__bmsg_from_json(in, &m, err, sizeof(err)), COLONY_EINVAL);
        assert_true(strlen(err) > 0);
        json_decref(in);
    }
}

static void entries_from_xadd(void **state)
{
    (void)state;
    /* fields an XADD wrote: "data" read as data, others under fields, bytes
     * that are not UTF-8 as '?', an odd "json" that does not parse a field */
    colony__bstr strs[] = {{"data", 4}, {"x\xff", 2}, {"k", 1}, {"v", 1}, {"json", 4}, {"{", 1}};
    colony__bentry e = {.id = {1, 2}, .strs = strs, .n = 6};
    json_t *out = colony__bmsg_to_json(&e);
    assert_non_null(out);
    assert_string_equal(json_string_value(json_object_get(out, "data")), "x?");
    json_t *fields = json_object_get(out, "fields");
    assert_string_equal(json_string_value(json_object_get(fields, "k")), "v");
    assert_string_equal(json_string_value(json_object_get(fields, "json")), "{");
    json_decref(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idem_window_and_scope),    cmocka_unit_test(idem_is_bounded),
        cmocka_unit_test(idem_allocation_failures), cmocka_unit_test(message_fields),
        cmocka_unit_test(message_errors),           cmocka_unit_test(entries_from_xadd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
