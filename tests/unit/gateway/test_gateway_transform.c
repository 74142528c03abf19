/* Request header transforms: set replaces every header of its name (any
 * case), add appends, remove deletes; a client's X-Colony-Deadline-Ms never
 * passes (the gateway writes its own per attempt) and Host stays last for the
 * per-attempt address. */
#include "test_support.h"
#include <string.h>
#include "colony/colony.h"
#include "gateway/transform.h"

static size_t count(const char *const *h, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; h[i]; i += 2)
        n += strcasecmp(h[i], name) == 0;
    return n;
}

static const char *value_of(const char *const *h, const char *name)
{
    for (size_t i = 0; h[i]; i += 2)
        if (strcasecmp(h[i], name) == 0) return h[i + 1];
    return NULL;
}

static void request_transforms(void **state)
{
    (void)state;
    colony_arena *a = colony_arena_new(4096, 1 << 20);
    assert_non_null(a);
    const char *before[] = {
        "x-env",  "dev",  "X-Env", "test", "Cookie", "c=1", "Accept", "*/*", "X-Colony-Deadline-Ms",
        "999999", "Host", NULL,    NULL};
    gw_forward f = {.headers = before, .host_slot = 10, .arena = a, .path_query = "/x"};
    char *set[] = {"X-Env", "prod"};
    char *add[] = {"Accept", "application/json"};
    char *rm[] = {"cookie"};
    gw_route_conf r = {0};
    r.request_headers = (gw_header_ops){set, 1, add, 1, rm, 1};
    size_t slot = 0;
    assert_int_equal(colony__gw_transform_request(&f, &r, &slot), 0);
    assert_int_equal(count(f.headers, "X-Env"), 1);
    assert_string_equal(value_of(f.headers, "X-Env"), "prod");
    assert_int_equal(count(f.headers, "Cookie"), 0);
    assert_int_equal(count(f.headers, "Accept"), 2); /* the client's and the added one */
    assert_int_equal(count(f.headers, "X-Colony-Deadline-Ms"), 1);
    assert_string_equal(f.headers[slot], "X-Colony-Deadline-Ms");
    assert_int_equal(colony__gw_transform_deadline(&f, slot, 1234), 0);
    assert_string_equal(value_of(f.headers, "X-Colony-Deadline-Ms"), "1234");
    /* Host is the last pair, its value filled per attempt */
    assert_string_equal(f.headers[f.host_slot], "Host");
    assert_null(f.headers[f.host_slot + 2]);
    colony_client_request out;
    assert_int_equal(colony__gw_forward_target(&f, "127.0.0.1:9", 0, NULL, &out), 0);
    assert_string_equal(value_of(out.headers, "Host"), "127.0.0.1:9");
    assert_string_equal(out.url, "http://127.0.0.1:9/x");
    colony_arena_free(a);
}

static void no_transforms_keep_everything(void **state)
{
    (void)state;
    colony_arena *a = colony_arena_new(4096, 1 << 20);
    const char *before[] = {"A", "1", "B", "2", "Host", NULL, NULL};
    gw_forward f = {.headers = before, .host_slot = 4, .arena = a};
    gw_route_conf r = {0};
    size_t slot;
    assert_int_equal(colony__gw_transform_request(&f, &r, &slot), 0);
    assert_string_equal(value_of(f.headers, "A"), "1");
    assert_string_equal(value_of(f.headers, "B"), "2");
    assert_int_equal(slot, 4);
    assert_int_equal(f.host_slot, 6);
    colony_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_transforms),
        cmocka_unit_test(no_transforms_keep_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
