/* The gateway's response cache with times passed in (a controllable clock):
 * Cache-Control parsing, what is stored and what is not (shared-cache rules),
 * expiry by max-age, s-maxage, Age and the route's ttl, Vary keys, LRU
 * eviction at the byte bound, the shards' shares, a reload's retain,
 * allocation failures; and the
 * "cache" keys of the routes file, every mistake refused with its line. */
#include "gateway_config_fixture.h"
#include "test_support.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "colony/colony.h"
#include "core/alloc.h"
#include "gateway/cache.h"
#include "gateway/config.h"

/* ---- a request and a response without a server ---- */

typedef struct fake_req {
    const char *headers[16]; /* name, value, ..., NULL */
} fake_req;

static const char *fake_header(void *ud, const char *name)
{
    fake_req *f = ud;
    for (size_t i = 0; f->headers[i]; i += 2)
        if (strcasecmp(f->headers[i], name) == 0) return f->headers[i + 1];
    return NULL;
}

static gw_cache_request request(fake_req *f, const char *method, const char *target)
{
    return (gw_cache_request){.method = method,
                              .route = "r",
                              .host = "api.example",
                              .target = target,
                              .header = fake_header,
                              .ud = f};
}

static colony_client_response response(int status, colony_http_header *h, size_t n)
{
    return (colony_client_response){.status = status, .headers = h, .num_headers = n};
}

#define H(n, v)                                                                                    \
    {                                                                                              \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                         \
    }

static gw_cache_conf conf_default(void)
{
    return (gw_cache_conf){.ttl_ms = 60000,
                           .max_ttl_ms = 86400000,
                           .max_entry = 1 << 20,
                           .statuses = GW_CACHE_STATUS_200};
}

/* Looks up r; on a miss stores res with body; returns the lookup's status. */
static gw_cache_status fetch(gw_cache *c, const gw_cache_conf *conf, const gw_cache_request *r,
                             const colony_client_response *res, const char *body, uint64_t now,
                             const gw_cache_entry **hit)
{
    char *key;
    int store;
    gw_cache_shard *locked;
    gw_cache_status s = colony__gw_cache_lookup(c, conf, r, now, &key, hit, &store, &locked);
    colony__gw_cache_unlock(locked); /* one thread: the hit stays valid */
    colony__gw_cache_count(c, r->route, s);
    if (*hit) return s;
    if (store) {
        assert_non_null(key);
        gw_cache_fill *f = colony__gw_cache_fill_begin(c, conf, key, r, res, now);
        if (f) {
            if (body && colony__gw_cache_fill_add(f, body, strlen(body)) != 0)
                colony__gw_cache_fill_abort(f);
            else
                colony__gw_cache_fill_commit(c, f, now);
        }
    }
    colony__free(key);
    return s;
}

/* The status a second lookup gets after a first one stored res. */
static gw_cache_status stored_then(const colony_client_response *res, const gw_cache_conf *conf,
                                   uint64_t later)
{
    gw_cache c;
    colony__gw_cache_init(&c, 1 << 20);
    fake_req f = {{NULL}};
    gw_cache_request r = request(&f, "GET", "/a");
    const gw_cache_entry *hit;
    assert_int_equal(fetch(&c, conf, &r, res, "body", 1000, &hit), GW_CACHE_MISS);
    gw_cache_status s = fetch(&c, conf, &r, res, "body", 1000 + later, &hit);
    colony__gw_cache_free(&c);
    return s;
}

/* ---- Cache-Control ---- */

static gw_cache_control cc_of(const char *v)
{
    gw_cache_control cc;
    colony__gw_cache_control_init(&cc);
    colony__gw_cache_control_parse(&cc, v, strlen(v));
    return cc;
}

static void cache_control_parsing(void **state)
{
    (void)state;
    gw_cache_control cc = cc_of("max-age=60, s-maxage=10");
    assert_int_equal(cc.max_age, 60);
    assert_int_equal(cc.s_maxage, 10);
    assert_false(cc.no_store || cc.no_cache || cc.is_private || cc.is_public);
    cc = cc_of("No-Store");
    assert_true(cc.no_store);
    assert_int_equal(cc.max_age, -1);
    cc = cc_of("private=\"Set-Cookie, X-A\", max-age=5");
    assert_true(cc.is_private);
    assert_int_equal(cc.max_age, 5); /* the comma in the quotes is not a separator */
    cc = cc_of("no-cache=\"a,b\",public,max-age=\"7\"");
    assert_true(cc.no_cache);
    assert_true(cc.is_public);
    assert_int_equal(cc.max_age, 7);
    cc = cc_of("max-age=abc, s-maxage=-1, max-stale");
    assert_int_equal(cc.max_age, -1);
    assert_int_equal(cc.s_maxage, -1);
    cc = cc_of("max-age=99999999999999999999");
    assert_true(cc.max_age > 0); /* saturates, never wraps negative */
    cc = cc_of("");
    assert_int_equal(cc.max_age, -1);
    /* several headers add up */
    colony__gw_cache_control_init(&cc);
    colony__gw_cache_control_parse(&cc, "public", 6);
    colony__gw_cache_control_parse(&cc, "max-age=3", 9);
    assert_true(cc.is_public);
    assert_int_equal(cc.max_age, 3);
    /* a value that ends inside a quote or after '=' */
    cc = cc_of("private=\"unterminated");
    assert_true(cc.is_private);
    cc = cc_of("max-age=");
    assert_int_equal(cc.max_age, -1);
}

/* ---- hit, miss, what is stored ---- */

static void miss_then_hit_with_headers_and_age(void **state)
{
    (void)state;
    gw_cache c;
    colony__gw_cache_init(&c, 1 << 20);
    gw_cache_conf conf = conf_default();
    fake_req f = {{NULL}};
    gw_cache_request r = request(&f, "GET", "/a?x=1");
    colony_http_header h[] = {H("Content-Type", "text/plain"),
                              H("Content-Length", "5"),
                              H("Date", "Thu, 01 Jan 2026 00:00:00 GMT"),
                              H("Connection", "close"),
                              H("X-Kept", "yes"),
                              H("Cache-Control", "max-age=30")};
    colony_client_response res = response(200, h, 6);
    const gw_cache_entry *hit;
    assert_int_equal(fetch(&c, &conf, &r, &res, "hello", 1000, &hit), GW_CACHE_MISS);
    assert_int_equal(colony__gw_cache_entries(&c), 1);
    assert_int_equal(fetch(&c, &conf, &r, &res, NULL, 4500, &hit), GW_CACHE_HIT);
    assert_non_null(hit);
    assert_int_equal(hit->status, 200);
    assert_int_equal(hit->body_len, 5);
    assert_memory_equal(hit->body, "hello", 5);
    assert_int_equal(colony__gw_cache_age(hit, 4500), 3);
    /* kept: end-to-end headers; dropped: framing, Date, hop-by-hop */
    assert_int_equal(hit->nheaders, 3);
    assert_string_equal(hit->headers[0].name, "Content-Type");
    assert_string_equal(hit->headers[1].name, "X-Kept");
    assert_string_equal(hit->headers[2].name, "Cache-Control");
    /* HEAD is answered from the GET */
    r.method = "HEAD";
    assert_int_equal(fetch(&c, &conf, &r, &res, NULL, 4500, &hit), GW_CACHE_HIT);
    /* another query, another host: other keys; the host's case does not matter */
    r.method = "GET";
    r.target = "/a?x=2";
    assert_int_equal(fetch(&c, &conf, &r, &res, NULL, 4500, &hit), GW_CACHE_MISS);
    r.target = "/a?x=1";
    r.host = "API.Example";
    assert_int_equal(fetch(&c, &conf, &r, &res, NULL, 4500, &hit), GW_CACHE_HIT);
    r.host = "other.example";
    assert_int_equal(fetch(&c, &conf, &r, &res, NULL, 4500, &hit), GW_CACHE_MISS);
    assert_int_equal(c.stats.hits, 3);
    assert_int_equal(c.stats.misses, 3);
    colony__gw_cache_free(&c);
}

static void what_is_not_stored(void **state)
{
    (void)state;
    gw_cache_conf conf = conf_default();
    colony_http_header no_store[] = {H("Cache-Control", "no-store")};
    colony_http_header priv[] = {H("Cache-Control", "private, max-age=60")};
    colony_http_header no_cache[] = {H("Cache-Control", "no-cache")};
    colony_http_header zero[] = {H("Cache-Control", "max-age=0")};
    colony_http_header star[] = {H("Vary", "Accept, *")};
    colony_http_header cookie[] = {H("Set-Cookie", "sid=1"), H("X-A", "1")};
    colony_http_header big[] = {H("Content-Length", "2000000")};
    colony_http_header plain[] = {H("X-A", "1")};
    colony_client_response r;
    r = response(200, no_store, 1);
    assert_int_equal(stored_then(&r, &conf, 0), GW_CACHE_MISS);
    r = response(200, priv, 1);
    assert_int_equal(stored_then(&r, &conf, 0), GW_CACHE_MISS);
    r = response(200, no_cache, 1);
    assert_int_equal(stored_then(&r, &conf, 0), GW_CACHE_MISS);
    r = response(200, zero, 1);
    assert_int_equal(stored_then(&r, &conf, 0), GW_CACHE_MISS);
    r = response(200, star, 1);
    assert_int_equal(stored_then(&r, &conf, 0), GW_CACHE_MISS);
    r = response(200, cookie, 2);
    assert_int_equal(stored_then(&r, &conf, 0), GW_CACHE_MISS);
    r = response(200, big, 1);
    assert_int_equal(stored_then(&r, &conf, 0), GW_CACHE_MISS);
    r = response(500, plain, 1);
    assert_int_equal(stored_then(&r, &conf, 0), GW_CACHE_MISS);
    r = response(404, plain, 1);
    assert_int_equal(stored_then(&r, &conf, 0), GW_CACHE_MISS);
    r = response(200, plain, 1);
    assert_int_equal(stored_then(&r, &conf, 0), GW_CACHE_HIT);
    /* statuses and set_cookie widen it */
    conf.statuses |= GW_CACHE_STATUS_404;
    r = response(404, plain, 1);
    assert_int_equal(stored_then(&r, &conf, 0), GW_CACHE_HIT);
    conf.set_cookie = 1;
    gw_cache c;
    colony__gw_cache_init(&c, 1 << 20);
    fake_req f = {{NULL}};
    gw_cache_request rq = request(&f, "GET", "/c");
    const gw_cache_entry *hit;
    r = response(200, cookie, 2);
    fetch(&c, &conf, &rq, &r, "b", 0, &hit);
    assert_int_equal(fetch(&c, &conf, &rq, &r, NULL, 0, &hit), GW_CACHE_HIT);
    assert_int_equal(hit->nheaders, 1); /* stored without the cookie */
    assert_string_equal(hit->headers[0].name, "X-A");
    /* a body that outgrows max_entry (no Content-Length) is refused */
    conf.max_entry = 4;
    rq.target = "/chunked";
    r = response(200, plain, 1);
    assert_int_equal(fetch(&c, &conf, &rq, &r, "too long", 0, &hit), GW_CACHE_MISS);
    assert_int_equal(fetch(&c, &conf, &rq, &r, NULL, 0, &hit), GW_CACHE_MISS);
    colony__gw_cache_free(&c);
}

/* A lookup counted as the proxy counts it. */
static gw_cache_status look(gw_cache *c, const gw_cache_conf *conf, const gw_cache_request *r,
                            uint64_t now, char **key, const gw_cache_entry **hit, int *store)
{
    gw_cache_shard *locked;
    gw_cache_status s = colony__gw_cache_lookup(c, conf, r, now, key, hit, store, &locked);
    colony__gw_cache_unlock(locked);
    colony__gw_cache_count(c, r->route, s);
    return s;
}

static void requests_that_bypass(void **state)
{
    (void)state;
    gw_cache c;
    colony__gw_cache_init(&c, 1 << 20);
    gw_cache_conf conf = conf_default();
    colony_http_header h[] = {H("X-A", "1")};
    colony_client_response res = response(200, h, 1);
    fake_req plain = {{NULL}};
    gw_cache_request r = request(&plain, "GET", "/b");
    const gw_cache_entry *hit;
    char *key;
    int store;
    /* HEAD misses are not stored (no body) */
    r.method = "HEAD";
    assert_int_equal(look(&c, &conf, &r, 0, &key, &hit, &store), GW_CACHE_MISS);
    assert_false(store);
    assert_null(key);
    r.method = "POST";
    assert_int_equal(look(&c, &conf, &r, 0, &key, &hit, &store), GW_CACHE_BYPASS);
    assert_false(store);
    r.method = "GET";
    fetch(&c, &conf, &r, &res, "x", 0, &hit);
    /* no-store: neither served nor stored */
    fake_req ns = {{"Cache-Control", "no-store", NULL}};
    gw_cache_request r2 = request(&ns, "GET", "/b");
    assert_int_equal(look(&c, &conf, &r2, 0, &key, &hit, &store), GW_CACHE_BYPASS);
    assert_false(store);
    assert_null(hit);
    /* no-cache (or Pragma): not served, the fresh answer replaces the stored one */
    fake_req nc = {{"Pragma", "no-cache", NULL}};
    r2 = request(&nc, "GET", "/b");
    assert_int_equal(look(&c, &conf, &r2, 0, &key, &hit, &store), GW_CACHE_BYPASS);
    assert_true(store);
    assert_non_null(key);
    colony__free(key);
    /* Authorization: bypassed unless the route says "authorized" */
    fake_req auth = {{"Authorization", "Bearer t", NULL}};
    r2 = request(&auth, "GET", "/b");
    assert_int_equal(look(&c, &conf, &r2, 0, &key, &hit, &store), GW_CACHE_BYPASS);
    assert_false(store);
    /* so is a route that checks API keys or tokens (the key names no consumer) */
    r.credentials = 1;
    assert_int_equal(look(&c, &conf, &r, 0, &key, &hit, &store), GW_CACHE_BYPASS);
    assert_false(store);
    conf.authorized = 1;
    assert_int_equal(look(&c, &conf, &r2, 0, &key, &hit, &store), GW_CACHE_HIT);
    assert_int_equal(look(&c, &conf, &r, 0, &key, &hit, &store), GW_CACHE_HIT);
    assert_int_equal(c.stats.bypasses, 5);
    colony__gw_cache_free(&c);
}

/* ---- expiry ---- */

static void expiry_by_ttl_max_age_s_maxage_and_age(void **state)
{
    (void)state;
    gw_cache_conf conf = conf_default();
    conf.ttl_ms = 5000;
    colony_http_header none[] = {H("X-A", "1")};
    colony_http_header max_age[] = {H("Cache-Control", "max-age=2")};
    colony_http_header s_max[] = {H("Cache-Control", "max-age=100, s-maxage=1")};
    colony_http_header aged[] = {H("Cache-Control", "max-age=3"), H("Age", "2")};
    colony_http_header too_old[] = {H("Cache-Control", "max-age=3"), H("Age", "3")};
    colony_http_header long_age[] = {H("Cache-Control", "max-age=1000")};
    colony_client_response r;
    r = response(200, none, 1); /* the route's ttl */
    assert_int_equal(stored_then(&r, &conf, 4999), GW_CACHE_HIT);
    assert_int_equal(stored_then(&r, &conf, 5000), GW_CACHE_EXPIRED);
    r = response(200, max_age, 1);
    assert_int_equal(stored_then(&r, &conf, 1999), GW_CACHE_HIT);
    assert_int_equal(stored_then(&r, &conf, 2000), GW_CACHE_EXPIRED);
    r = response(200, s_max, 1); /* s-maxage wins in a shared cache */
    assert_int_equal(stored_then(&r, &conf, 999), GW_CACHE_HIT);
    assert_int_equal(stored_then(&r, &conf, 1000), GW_CACHE_EXPIRED);
    r = response(200, aged, 2); /* 2 of its 3 seconds spent upstream */
    assert_int_equal(stored_then(&r, &conf, 999), GW_CACHE_HIT);
    assert_int_equal(stored_then(&r, &conf, 1000), GW_CACHE_EXPIRED);
    r = response(200, too_old, 2);
    assert_int_equal(stored_then(&r, &conf, 0), GW_CACHE_MISS);
    /* Expires less Date, when there is no max-age; one that cannot be read is past */
    colony_http_header expires[] = {H("Date", "Sun, 06 Nov 1994 08:49:37 GMT"),
                                    H("Expires", "Sun, 06 Nov 1994 08:49:40 GMT")};
    r = response(200, expires, 2);
    assert_int_equal(stored_then(&r, &conf, 2999), GW_CACHE_HIT);
    assert_int_equal(stored_then(&r, &conf, 3000), GW_CACHE_EXPIRED);
    colony_http_header expires_0[] = {H("Expires", "0")};
    r = response(200, expires_0, 1);
    assert_int_equal(stored_then(&r, &conf, 0), GW_CACHE_MISS);
    colony_http_header expires_and_max_age[] = {H("Expires", "0"), H("Cache-Control", "max-age=2")};
    r = response(200, expires_and_max_age, 2); /* max-age wins */
    assert_int_equal(stored_then(&r, &conf, 1999), GW_CACHE_HIT);
    conf.max_ttl_ms = 10000; /* caps what the upstream says */
    r = response(200, long_age, 1);
    assert_int_equal(stored_then(&r, &conf, 9999), GW_CACHE_HIT);
    assert_int_equal(stored_then(&r, &conf, 10000), GW_CACHE_EXPIRED);
    conf.ttl_ms = 0; /* no default: only what the upstream marks fresh */
    r = response(200, none, 1);
    assert_int_equal(stored_then(&r, &conf, 0), GW_CACHE_MISS);
    /* an expired entry is dropped and its replacement stored */
    gw_cache c;
    colony__gw_cache_init(&c, 1 << 20);
    fake_req f = {{NULL}};
    gw_cache_request rq = request(&f, "GET", "/e");
    const gw_cache_entry *hit;
    r = response(200, max_age, 1);
    fetch(&c, &conf, &rq, &r, "one", 0, &hit);
    assert_int_equal(fetch(&c, &conf, &rq, &r, "two", 2000, &hit), GW_CACHE_EXPIRED);
    assert_int_equal(colony__gw_cache_entries(&c), 1);
    assert_int_equal(fetch(&c, &conf, &rq, &r, NULL, 2500, &hit), GW_CACHE_HIT);
    assert_memory_equal(hit->body, "two", 3);
    assert_int_equal(c.stats.expired, 1);
    colony__gw_cache_free(&c);
}

/* ---- Vary ---- */

static void vary_keys(void **state)
{
    (void)state;
    gw_cache c;
    colony__gw_cache_init(&c, 1 << 20);
    gw_cache_conf conf = conf_default();
    colony_http_header vary[] = {H("Vary", "Accept-Encoding"), H("Vary", "x-lang")};
    colony_client_response res = response(200, vary, 2);
    fake_req gzip = {{"Accept-Encoding", "gzip", "X-Lang", "fr", NULL}};
    fake_req br = {{"Accept-Encoding", "br", "X-Lang", "fr", NULL}};
    fake_req gzip_de = {{"accept-encoding", "gzip", "x-lang", "de", NULL}};
    fake_req absent = {{"X-Lang", "fr", NULL}};
    gw_cache_request r1 = request(&gzip, "GET", "/v"), r2 = request(&br, "GET", "/v"),
                     r3 = request(&gzip_de, "GET", "/v"), r4 = request(&absent, "GET", "/v");
    const gw_cache_entry *hit;
    assert_int_equal(fetch(&c, &conf, &r1, &res, "gzip", 0, &hit), GW_CACHE_MISS);
    assert_int_equal(fetch(&c, &conf, &r1, &res, NULL, 0, &hit), GW_CACHE_HIT);
    assert_int_equal(fetch(&c, &conf, &r2, &res, "br", 0, &hit), GW_CACHE_MISS);
    assert_int_equal(fetch(&c, &conf, &r3, &res, "de", 0, &hit), GW_CACHE_MISS);
    assert_int_equal(fetch(&c, &conf, &r4, &res, "none", 0, &hit), GW_CACHE_MISS);
    assert_int_equal(colony__gw_cache_entries(&c), 4); /* the variants live side by side */
    assert_int_equal(fetch(&c, &conf, &r2, &res, NULL, 0, &hit), GW_CACHE_HIT);
    assert_memory_equal(hit->body, "br", 2);
    assert_int_equal(fetch(&c, &conf, &r1, &res, NULL, 0, &hit), GW_CACHE_HIT);
    assert_memory_equal(hit->body, "gzip", 4);
    assert_int_equal(fetch(&c, &conf, &r4, &res, NULL, 0, &hit), GW_CACHE_HIT);
    assert_memory_equal(hit->body, "none", 4);
    /* the route's own "vary" is always part of the key */
    char *names[] = {"X-Tenant"};
    conf.vary = names;
    conf.nvary = 1;
    colony_http_header plain[] = {H("X-A", "1")};
    res = response(200, plain, 1);
    fake_req t1 = {{"X-Tenant", "a", NULL}}, t2 = {{"X-Tenant", "b", NULL}};
    gw_cache_request q1 = request(&t1, "GET", "/t"), q2 = request(&t2, "GET", "/t");
    assert_int_equal(fetch(&c, &conf, &q1, &res, "a", 0, &hit), GW_CACHE_MISS);
    assert_int_equal(fetch(&c, &conf, &q2, &res, "b", 0, &hit), GW_CACHE_MISS);
    assert_int_equal(fetch(&c, &conf, &q1, &res, NULL, 0, &hit), GW_CACHE_HIT);
    assert_memory_equal(hit->body, "a", 1);
    /* a resource that stops varying: the new answer is found without Vary values */
    conf.nvary = 0;
    fake_req any = {{"Accept-Encoding", "zstd", NULL}};
    gw_cache_request r5 = request(&any, "GET", "/v");
    assert_int_equal(fetch(&c, &conf, &r5, &res, "flat", 0, &hit), GW_CACHE_MISS);
    assert_int_equal(fetch(&c, &conf, &r1, &res, NULL, 0, &hit), GW_CACHE_HIT);
    assert_memory_equal(hit->body, "flat", 4);
    colony__gw_cache_free(&c);
}

/* ---- the byte bound ---- */

static void lru_eviction_at_the_byte_bound(void **state)
{
    (void)state;
    gw_cache_conf conf = conf_default();
    colony_http_header h[] = {H("X-A", "1")};
    colony_client_response res = response(200, h, 1);
    char body[1001];
    memset(body, 'b', 1000);
    body[1000] = '\0';
    /* measure one entry, then bound the cache to three */
    gw_cache c;
    colony__gw_cache_init(&c, 1 << 20);
    fake_req f = {{NULL}};
    gw_cache_request r = request(&f, "GET", "/0");
    const gw_cache_entry *hit;
    fetch(&c, &conf, &r, &res, body, 0, &hit);
    uint64_t one = colony__gw_cache_bytes(&c);
    assert_true(one > 1000 && one < 1400); /* body, headers, key and the entry itself */
    colony__gw_cache_free(&c);
    colony__gw_cache_init(&c, 3 * one + one / 2);
    const char *paths[] = {"/1", "/2", "/3", "/4"};
    for (int i = 0; i < 3; i++) {
        r.target = paths[i];
        fetch(&c, &conf, &r, &res, body, 0, &hit);
    }
    assert_int_equal(colony__gw_cache_entries(&c), 3);
    r.target = "/1"; /* used: /2 is now the least recently used */
    assert_int_equal(fetch(&c, &conf, &r, &res, NULL, 0, &hit), GW_CACHE_HIT);
    r.target = "/4";
    fetch(&c, &conf, &r, &res, body, 0, &hit);
    assert_int_equal(colony__gw_cache_entries(&c), 3);
    assert_true(colony__gw_cache_bytes(&c) <= c.max_bytes);
    assert_int_equal(c.stats.evicted, 1);
    r.target = "/2";
    assert_int_equal(fetch(&c, &conf, &r, &res, NULL, 0, &hit), GW_CACHE_MISS);
    r.target = "/1";
    assert_int_equal(fetch(&c, &conf, &r, &res, NULL, 0, &hit), GW_CACHE_HIT);
    /* a smaller bound (a reload) evicts at once */
    colony__gw_cache_set_max(&c, one + 10, one); /* one shard */
    assert_int_equal(colony__gw_cache_entries(&c), 1);
    assert_true(colony__gw_cache_bytes(&c) <= one + 10);
    /* an answer larger than the whole cache is not stored and evicts nothing */
    char large[3001];
    memset(large, 'L', 3000);
    large[3000] = '\0';
    r.target = "/large";
    fetch(&c, &conf, &r, &res, large, 0, &hit);
    assert_int_equal(colony__gw_cache_entries(&c), 1);
    assert_int_equal(fetch(&c, &conf, &r, &res, NULL, 0, &hit), GW_CACHE_MISS);
    colony__gw_cache_free(&c);
    assert_int_equal(colony__gw_cache_bytes(&c), 0);
}

/* The shards: their count follows the bound so that one share holds at
 * least twice the largest max_entry; an answer larger than an eighth of the
 * bound (what a fixed 8-way split would allow) but within max_entry is
 * stored; no shard passes its share and the whole never passes the bound. */
static void shards_hold_the_largest_entry(void **state)
{
    (void)state;
    gw_cache c;
    assert_int_equal(colony__gw_cache_init(&c, 64 << 20), 0);
    assert_int_equal(atomic_load(&c.nshards), 1);
    colony__gw_cache_set_max(&c, 64 << 20, 1 << 20); /* the defaults */
    assert_int_equal(atomic_load(&c.nshards), 8);
    colony__gw_cache_set_max(&c, 16 << 10, 4 << 10);
    assert_int_equal(atomic_load(&c.nshards), 2);
    colony__gw_cache_set_max(&c, 16 << 10, 16 << 10);
    assert_int_equal(atomic_load(&c.nshards), 1);
    colony__gw_cache_set_max(&c, 1 << 20, 256 << 10);
    assert_int_equal(atomic_load(&c.nshards), 2);
    assert_int_equal(c.shards[0].max_bytes, 512 << 10);
    assert_int_equal(c.shards[2].max_bytes, 0);

    gw_cache_conf conf = conf_default();
    conf.max_entry = 256 << 10;
    size_t len = 200 << 10;
    char *body = malloc(len + 1);
    assert_non_null(body);
    memset(body, 'x', len);
    body[len] = '\0';
    colony_http_header h[] = {H("X-A", "1")};
    colony_client_response res = response(200, h, 1);
    fake_req f = {{NULL}};
    gw_cache_request r = request(&f, "GET", "/big0");
    const gw_cache_entry *hit;
    assert_int_equal(fetch(&c, &conf, &r, &res, body, 0, &hit), GW_CACHE_MISS);
    assert_int_equal(fetch(&c, &conf, &r, &res, NULL, 0, &hit), GW_CACHE_HIT);
    assert_int_equal(hit->body_len, len);
    char path[16];
    for (int i = 1; i < 20; i++) {
        snprintf(path, sizeof(path), "/big%d", i);
        r.target = path;
        assert_int_equal(fetch(&c, &conf, &r, &res, body, 0, &hit), GW_CACHE_MISS);
        assert_int_equal(fetch(&c, &conf, &r, &res, NULL, 0, &hit), GW_CACHE_HIT);
        assert_true(colony__gw_cache_bytes(&c) <= 1 << 20);
        for (size_t k = 0; k < GW_CACHE_SHARDS; k++)
            assert_true(c.shards[k].bytes <= c.shards[k].max_bytes);
    }
    size_t n = colony__gw_cache_entries(&c);
    assert_true(n >= 1 && n <= 4); /* two 200 KiB answers per 512 KiB share at most */
    assert_true(c.stats.evicted >= 16);
    /* a new shard count starts empty (an entry's shard follows the count) */
    colony__gw_cache_set_max(&c, 1 << 20, 128 << 10);
    assert_int_equal(atomic_load(&c.nshards), 4);
    assert_int_equal(colony__gw_cache_entries(&c), 0);
    free(body);
    colony__gw_cache_free(&c);
}

typedef struct test_waiter {
    gw_cache_waiter w;
    int woken;
    int *order, *next;
} test_waiter;

static void test_wake(gw_cache_waiter *w)
{
    test_waiter *t = (test_waiter *)w;
    t->woken++;
    *t->order = (*t->next)++;
}

static void concurrent_misses_coalesce(void **state)
{
    (void)state;
    gw_cache c;
    colony__gw_cache_init(&c, 1 << 20);
    int next = 0, order[3] = {-1, -1, -1};
    test_waiter w[3];
    for (int i = 0; i < 3; i++)
        w[i] = (test_waiter){.w.wake = test_wake, .order = &order[i], .next = &next};
    assert_int_equal(colony__gw_cache_join(colony__gw_cache_shard_of(&c, "k"), "k", &w[0].w),
                     0); /* leads */
    assert_int_equal(colony__gw_cache_join(colony__gw_cache_shard_of(&c, "k"), "k", &w[1].w),
                     1); /* waits */
    assert_int_equal(colony__gw_cache_join(colony__gw_cache_shard_of(&c, "k"), "k", &w[2].w), 1);
    assert_int_equal(
        colony__gw_cache_join(colony__gw_cache_shard_of(&c, "other"), "other", &w[0].w),
        0); /* keys apart */
    assert_int_equal(c.stats.coalesced, 2);
    colony__gw_cache_release(colony__gw_cache_shard_of(&c, "k"), "k");
    assert_int_equal(w[1].woken, 1);
    assert_int_equal(w[2].woken, 1);
    assert_int_equal(order[1], 0); /* in the order they came */
    assert_int_equal(order[2], 1);
    assert_int_equal(w[0].woken, 0);
    colony__gw_cache_release(colony__gw_cache_shard_of(&c, "k"), "k"); /* twice: nothing more */
    assert_int_equal(w[1].woken, 1);
    assert_int_equal(colony__gw_cache_join(colony__gw_cache_shard_of(&c, "k"), "k", &w[1].w),
                     0); /* a new leader */
    colony__gw_cache_release(colony__gw_cache_shard_of(&c, "k"), "k");
    /* a waiter left at free is woken, never forgotten */
    assert_int_equal(
        colony__gw_cache_join(colony__gw_cache_shard_of(&c, "other"), "other", &w[2].w), 1);
    colony__gw_cache_free(&c);
    assert_int_equal(w[2].woken, 2);
    /* no memory to lead: the caller goes alone */
    colony__gw_cache_init(&c, 1 << 20);
    colony__alloc_fail_after(0);
    int rc = colony__gw_cache_join(colony__gw_cache_shard_of(&c, "k"), "k", &w[0].w);
    colony__alloc_fail_reset();
    assert_int_equal(rc, COLONY_ENOMEM);
    colony__gw_cache_free(&c);
}

static int keep_route_a(void *ud, const char *route, size_t len)
{
    (void)ud;
    return len == 1 && route[0] == 'a';
}

static void a_reload_keeps_routes_by_name(void **state)
{
    (void)state;
    gw_cache c;
    colony__gw_cache_init(&c, 1 << 20);
    gw_cache_conf conf = conf_default();
    colony_http_header h[] = {H("Vary", "X-V")};
    colony_client_response res = response(200, h, 1);
    fake_req f = {{"X-V", "1", NULL}};
    gw_cache_request ra = request(&f, "GET", "/x"), rb = request(&f, "GET", "/x");
    ra.route = "a";
    rb.route = "ab";
    const gw_cache_entry *hit;
    fetch(&c, &conf, &ra, &res, "a", 0, &hit);
    fetch(&c, &conf, &rb, &res, "ab", 0, &hit);
    assert_int_equal(colony__gw_cache_entries(&c), 2);
    colony__gw_cache_retain(&c, keep_route_a, NULL);
    assert_int_equal(colony__gw_cache_entries(&c), 1);
    assert_int_equal(fetch(&c, &conf, &ra, &res, NULL, 0, &hit), GW_CACHE_HIT);
    assert_int_equal(fetch(&c, &conf, &rb, &res, NULL, 0, &hit), GW_CACHE_MISS);
    colony__gw_cache_free(&c);
}

static void allocation_failures_leave_it_consistent(void **state)
{
    (void)state;
    gw_cache_conf conf = conf_default();
    colony_http_header h[] = {H("Vary", "X-V"), H("X-A", "1")};
    colony_client_response res = response(200, h, 2);
    fake_req f = {{"X-V", "1", NULL}};
    long injected = 0;
    for (long n = 0;; n++) {
        gw_cache c;
        colony__gw_cache_init(&c, 1 << 20);
        gw_cache_request r = request(&f, "GET", "/x");
        const gw_cache_entry *hit;
        colony__alloc_fail_after(n);
        fetch(&c, &conf, &r, &res, "body", 0, &hit);
        long failures = colony__alloc_failures();
        colony__alloc_fail_reset();
        injected += failures;
        gw_cache_status s = fetch(&c, &conf, &r, &res, NULL, 0, &hit);
        if (failures == 0) {
            assert_int_equal(s, GW_CACHE_HIT);
            colony__gw_cache_free(&c);
            break;
        }
        /* stored whole or not at all */
        assert_true(s == GW_CACHE_HIT || s == GW_CACHE_MISS);
        if (s == GW_CACHE_HIT) assert_memory_equal(hit->body, "body", 4);
        colony__gw_cache_free(&c);
    }
    assert_true(injected > 5);
}

/* ---- the routes file ---- */

static const char good[] = "{\n"
                           "  \"cache\": {\"max_bytes\": \"8mb\"},\n"
                           "  \"upstreams\": {\"u\": {\"targets\": [\"http://127.0.0.1:1\"]}},\n"
                           "  \"routes\": [\n"
                           "    {\"name\": \"r\", \"prefix\": \"/\", \"upstream\": \"u\",\n"
                           "     \"cache\": {\"ttl\": \"30s\", \"max_ttl\": \"1h\",\n"
                           "               \"max_entry\": \"64kb\", \"vary\": [\"Accept\"],\n"
                           "               \"statuses\": [200, 404], \"authorized\": false,\n"
                           "               \"set_cookie\": true}}\n"
                           "  ]\n"
                           "}\n";

static const char plain_file[] =
    "{\"upstreams\": {\"u\": {\"targets\": [\"http://127.0.0.1:1\"]}},\n"
    " \"routes\": [{\"prefix\": \"/\", \"upstream\": \"u\", \"cache\": {}},\n"
    "            {\"prefix\": \"/n\", \"upstream\": \"u\"}]}";

static void cache_in_the_routes_file(void **state)
{
    (void)state;
    gw_config *cfg;
    colony_config_error err;
    assert_int_equal(gw_test_build(good, &cfg, &err), 0);
    assert_int_equal(cfg->cache_max_bytes, 8 << 20);
    const gw_cache_conf *c = cfg->routes[0].cache;
    assert_non_null(c);
    assert_int_equal(c->ttl_ms, 30000);
    assert_int_equal(c->max_ttl_ms, 3600000);
    assert_int_equal(c->max_entry, 64 << 10);
    assert_int_equal(c->nvary, 1);
    assert_string_equal(c->vary[0], "Accept");
    assert_int_equal(c->statuses, GW_CACHE_STATUS_200 | GW_CACHE_STATUS_404);
    assert_false(c->authorized);
    assert_true(c->set_cookie);
    colony__gw_config_unref(cfg);
    /* defaults: {} caches 200s for 60 s, 1 MiB bodies, in 64 MiB */
    assert_int_equal(gw_test_build(plain_file, &cfg, &err), 0);
    assert_int_equal(cfg->cache_max_bytes, GW_CACHE_DEFAULT_MAX_BYTES);
    c = cfg->routes[0].cache;
    assert_int_equal(c->ttl_ms, GW_CACHE_DEFAULT_TTL_MS);
    assert_int_equal(c->max_entry, GW_CACHE_DEFAULT_MAX_ENTRY);
    assert_int_equal(c->statuses, GW_CACHE_STATUS_200);
    assert_null(cfg->routes[1].cache);
    colony__gw_config_unref(cfg);
}

static void mistakes_name_their_line(void **state)
{
    (void)state;
    const char *rc = "routes.0.cache";
    gw_test_refused_in(good, "\"ttl\": \"30s\"", "\"tll\": \"30s\"", 6, "routes.0.cache.tll",
                       "unknown key");
    gw_test_refused_in(good, "\"ttl\": \"30s\"", "\"ttl\": \"soon\"", 6, "routes.0.cache.ttl",
                       "duration");
    gw_test_refused_in(good, "\"ttl\": \"30s\"", "\"ttl\": \"2h\"", 6, "routes.0.cache.ttl",
                       "longer than \"max_ttl\"");
    gw_test_refused_in(good, "\"max_ttl\": \"1h\"", "\"max_ttl\": 0", 6, "routes.0.cache.max_ttl",
                       "store nothing");
    gw_test_refused_in(good, "\"max_entry\": \"64kb\"", "\"max_entry\": \"lots\"", 7,
                       "routes.0.cache.max_entry", "must be a size");
    gw_test_refused_in(good, "\"max_entry\": \"64kb\"", "\"max_entry\": \"16mb\"", 7,
                       "routes.0.cache.max_entry", "larger than the cache");
    gw_test_refused_in(good, "\"vary\": [\"Accept\"]", "\"vary\": \"Accept\"", 7,
                       "routes.0.cache.vary", "array of 1 to 8");
    gw_test_refused_in(good, "\"vary\": [\"Accept\"]", "\"vary\": [\"Connection\"]", 7,
                       "routes.0.cache.vary", "hop-by-hop");
    gw_test_refused_in(good, "\"vary\": [\"Accept\"]", "\"vary\": [\"Accept\", \"accept\"]", 7,
                       "routes.0.cache.vary", "listed twice");
    gw_test_refused_in(good, "\"vary\": [\"Accept\"]", "\"vary\": [\"Bad Name\"]", 7,
                       "routes.0.cache.vary", "not a header name");
    gw_test_refused_in(good, "\"statuses\": [200, 404]", "\"statuses\": [200, 500]", 8,
                       "routes.0.cache.statuses", "200, 301 and 404");
    gw_test_refused_in(good, "\"statuses\": [200, 404]", "\"statuses\": []", 8,
                       "routes.0.cache.statuses", "list of 200, 301, 404");
    gw_test_refused_in(good, "\"authorized\": false", "\"authorized\": \"no\"", 8,
                       "routes.0.cache.authorized", "true or false");
    gw_test_refused_in(good, "\"set_cookie\": true", "\"set_cookie\": 1", 9,
                       "routes.0.cache.set_cookie", "true or false");
    gw_test_refused_in(plain_file, "\"cache\": {}", "\"cache\": true", 2, rc, "must be an object");
    gw_test_refused_in(good, "{\"max_bytes\": \"8mb\"}", "{\"max_bytes\": \"1\"}", 2,
                       "cache.max_bytes", "from 1024");
    gw_test_refused_in(good, "{\"max_bytes\": \"8mb\"}", "{\"max_byte\": \"8mb\"}", 2,
                       "cache.max_byte", "unknown key");
    gw_test_refused_in(good, "{\"max_bytes\": \"8mb\"}", "[]", 2, "cache", "must be an object");
}

static void config_allocation_failures(void **state)
{
    (void)state;
    assert_true(gw_test_allocation_failures(good) > 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cache_control_parsing),
        cmocka_unit_test(miss_then_hit_with_headers_and_age),
        cmocka_unit_test(what_is_not_stored),
        cmocka_unit_test(requests_that_bypass),
        cmocka_unit_test(expiry_by_ttl_max_age_s_maxage_and_age),
        cmocka_unit_test(vary_keys),
        cmocka_unit_test(lru_eviction_at_the_byte_bound),
        cmocka_unit_test(a_reload_keeps_routes_by_name),
        cmocka_unit_test(shards_hold_the_largest_entry),
        cmocka_unit_test(concurrent_misses_coalesce),
        cmocka_unit_test(allocation_failures_leave_it_consistent),
        cmocka_unit_test(cache_in_the_routes_file),
        cmocka_unit_test(mistakes_name_their_line),
        cmocka_unit_test(config_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
