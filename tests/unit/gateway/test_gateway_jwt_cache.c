/* The cache of verified tokens (gateway/jwt_cache.h): what an entry keeps of
 * the claims, hits inside the token's time bounds and misses (and drops)
 * outside them, the least recently used token leaving when full, tokens too
 * long to keep, and allocation failures that leave the cache whole. */
#include "test_support.h"
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "gateway/jwt_cache.h"

static char *const names[] = {"role", "n", "missing"};

static gw_jwt_verified *entry(const char *claims_json)
{
    json_t *claims = json_loads(claims_json, 0, NULL);
    assert_non_null(claims);
    gw_jwt_verified *v = colony__gw_jwt_verified_new(claims, names, 3);
    json_decref(claims);
    assert_non_null(v);
    return v;
}

static void an_entry_keeps_the_bounds_and_header_values(void **state)
{
    (void)state;
    gw_jwt_verified *v = entry("{\"sub\": \"u-1\", \"role\": \"admin\", \"n\": 5, \"exp\": 1000,"
                               " \"obj\": {}}");
    assert_string_equal(v->sub, "u-1");
    assert_string_equal(v->values[0], "admin");
    assert_string_equal(v->values[1], "5");
    assert_null(v->values[2]);
    assert_true(v->has_exp);
    assert_false(v->has_nbf);
    colony__gw_jwt_verified_free(v);
    v = entry("{\"role\": \"bad\\nvalue\", \"n\": true}"); /* no sub; a control char */
    assert_null(v->sub);
    assert_null(v->values[0]);
    assert_string_equal(v->values[1], "true");
    colony__gw_jwt_verified_free(v);
}

static void hits_only_inside_the_time_bounds(void **state)
{
    (void)state;
    gw_jwt_cache *c = colony__gw_jwt_cache_new();
    assert_non_null(c);
    gw_jwt_verified *v = entry("{\"sub\": \"u-1\", \"exp\": 1000, \"nbf\": 500}");
    assert_int_equal(colony__gw_jwt_cache_put(c, "tok-a", v), 0);
    assert_ptr_equal(colony__gw_jwt_cache_get(c, "tok-a", 990, 0), v);
    assert_ptr_equal(colony__gw_jwt_cache_get(c, "tok-a", 1005, 10), v); /* leeway */
    assert_null(colony__gw_jwt_cache_get(c, "tok-b", 990, 0));
    assert_int_equal(c->hits, 2);
    assert_int_equal(c->misses, 1);
    /* before nbf: dropped, so the full check runs and says why */
    assert_null(colony__gw_jwt_cache_get(c, "tok-a", 400, 0));
    assert_int_equal(c->count, 0);
    assert_int_equal(colony__gw_jwt_cache_put(c, "tok-a", entry("{\"exp\": 1000}")), 0);
    assert_null(colony__gw_jwt_cache_get(c, "tok-a", 1001, 0)); /* expired: dropped */
    assert_int_equal(c->count, 0);
    assert_null(colony__gw_jwt_cache_get(c, "tok-a", 990, 0));
    /* a token put again replaces its entry */
    assert_int_equal(colony__gw_jwt_cache_put(c, "tok-c", entry("{}")), 0);
    gw_jwt_verified *again = entry("{\"sub\": \"u-2\"}");
    assert_int_equal(colony__gw_jwt_cache_put(c, "tok-c", again), 0);
    assert_int_equal(c->count, 1);
    assert_ptr_equal(colony__gw_jwt_cache_get(c, "tok-c", 1 << 30, 0), again); /* no exp */
    colony__gw_jwt_cache_free(c);
}

static void bounded_by_count_and_token_size(void **state)
{
    (void)state;
    gw_jwt_cache *c = colony__gw_jwt_cache_new();
    char tok[32];
    for (int i = 0; i < GW_JWT_CACHE_MAX; i++) {
        snprintf(tok, sizeof(tok), "tok-%d", i);
        assert_int_equal(colony__gw_jwt_cache_put(c, tok, entry("{}")), 0);
    }
    assert_non_null(colony__gw_jwt_cache_get(c, "tok-0", 0, 0)); /* used: tok-1 is now oldest */
    assert_int_equal(colony__gw_jwt_cache_put(c, "tok-new", entry("{}")), 0);
    assert_int_equal(c->count, GW_JWT_CACHE_MAX);
    assert_null(colony__gw_jwt_cache_get(c, "tok-1", 0, 0));
    assert_non_null(colony__gw_jwt_cache_get(c, "tok-0", 0, 0));
    assert_non_null(colony__gw_jwt_cache_get(c, "tok-new", 0, 0));
    char *long_tok = malloc(GW_JWT_CACHE_MAX_TOKEN + 2);
    memset(long_tok, 'x', GW_JWT_CACHE_MAX_TOKEN + 1);
    long_tok[GW_JWT_CACHE_MAX_TOKEN + 1] = '\0';
    gw_jwt_verified *v = entry("{}");
    assert_int_equal(colony__gw_jwt_cache_put(c, long_tok, v), COLONY_E2BIG);
    colony__gw_jwt_verified_free(v); /* still the caller's */
    assert_null(colony__gw_jwt_cache_get(c, long_tok, 0, 0));
    free(long_tok);
    colony__gw_jwt_cache_free(c);
}

static void allocation_failures_leave_the_cache_whole(void **state)
{
    (void)state;
    json_t *claims = json_loads("{\"sub\": \"u\", \"role\": \"r\", \"n\": 1}", 0, NULL);
    long failed_steps = 0;
    for (long n = 0; n < 50; n++) {
        gw_jwt_cache *c = colony__gw_jwt_cache_new();
        assert_non_null(c);
        colony__alloc_fail_after(n);
        gw_jwt_verified *v = colony__gw_jwt_verified_new(claims, names, 3);
        int rc = v ? colony__gw_jwt_cache_put(c, "tok", v) : COLONY_ENOMEM;
        long failures = colony__alloc_failures();
        colony__alloc_fail_reset();
        if (failures == 0) {
            assert_int_equal(rc, 0);
            assert_non_null(colony__gw_jwt_cache_get(c, "tok", 0, 0));
            colony__gw_jwt_cache_free(c);
            break;
        }
        failed_steps++;
        assert_int_equal(rc, COLONY_ENOMEM);
        if (v) colony__gw_jwt_verified_free(v); /* put failed: still ours */
        assert_int_equal(c->count, 0);
        assert_null(colony__gw_jwt_cache_get(c, "tok", 0, 0));
        colony__gw_jwt_cache_free(c);
    }
    assert_true(failed_steps >= 4);
    json_decref(claims);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_entry_keeps_the_bounds_and_header_values),
        cmocka_unit_test(hits_only_inside_the_time_bounds),
        cmocka_unit_test(bounded_by_count_and_token_size),
        cmocka_unit_test(allocation_failures_leave_the_cache_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
