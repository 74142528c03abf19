/* The response cache's store (cache.h): shards of entries, each with its
 * lock, LRU and share of the byte bound; lookups, coalesced misses, commits
 * and eviction. Times are passed in (now_ms), so tests drive them. */
#include "gateway/cache.h"
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "core/hash.h"
#include "gateway/cache_internal.h"

/* ---- the store -------------------------------------------------------- */

int colony__gw_cache_init(gw_cache *c, uint64_t max_bytes)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < GW_CACHE_SHARDS; i++) {
        colony__list_init(&c->shards[i].lru);
        c->shards[i].cache = c;
    }
    c->max_bytes = max_bytes;
    c->shards[0].max_bytes = max_bytes;
    atomic_store(&c->nshards, 1);
    for (size_t i = 0; i < GW_CACHE_SHARDS; i++)
        if (uv_mutex_init(&c->shards[i].lock) != 0) {
            for (size_t k = 0; k < i; k++)
                uv_mutex_destroy(&c->shards[k].lock);
            return COLONY_ENOMEM;
        }
    c->ready = 1;
    return 0;
}

gw_cache_shard *colony__gw_cache_shard_of(gw_cache *c, const char *key)
{
    unsigned n = atomic_load(&c->nshards);
    return &c->shards[n > 1 ? colony__fnv1a(COLONY_FNV1A_OFFSET, key, strlen(key)) % n : 0];
}

static void shard_lock(gw_cache_shard *s)
{
    if (s->cache->ready) uv_mutex_lock(&s->lock);
}

void colony__gw_cache_unlock(gw_cache_shard *s)
{
    if (s && s->cache->ready) uv_mutex_unlock(&s->lock);
}

size_t colony__gw_cache_entries(gw_cache *c)
{
    size_t n = 0;
    for (size_t i = 0; i < GW_CACHE_SHARDS; i++) {
        shard_lock(&c->shards[i]);
        n += c->shards[i].count;
        colony__gw_cache_unlock(&c->shards[i]);
    }
    return n;
}

uint64_t colony__gw_cache_bytes(gw_cache *c)
{
    uint64_t n = 0;
    for (size_t i = 0; i < GW_CACHE_SHARDS; i++) {
        shard_lock(&c->shards[i]);
        n += c->shards[i].bytes;
        colony__gw_cache_unlock(&c->shards[i]);
    }
    return n;
}

static double bytes_held(void *ud)
{
    return (double)colony__gw_cache_bytes(ud);
}

static double entries_held(void *ud)
{
    return (double)colony__gw_cache_entries(ud);
}

int colony__gw_cache_metrics(gw_cache *c, colony_metrics *m)
{
    static const char *const labels[] = {"route", "status", NULL};
    c->m_requests = colony_metrics_counter(m, "gateway_cache_requests_total",
                                           "Requests of cached routes by route and cache status "
                                           "(hit, miss, bypass, expired).",
                                           labels);
    if (!c->m_requests) return COLONY_ENOMEM;
    int rc = colony_metrics_gauge_fn(m, "gateway_cache_bytes",
                                     "Bytes held by the response cache (headers and bodies).",
                                     bytes_held, c);
    if (!rc)
        rc = colony_metrics_gauge_fn(m, "gateway_cache_entries",
                                     "Responses held by the response cache.", entries_held, c);
    return rc;
}

static void vary_unref(gw_cache_shard *s, gw_cache_vary *v)
{
    if (!v || --v->refs > 0) return;
    if (v->in_map) colony__map_remove(&s->varies, v->primary);
    colony__free(v->primary);
    colony__free(v->names);
    colony__free(v);
}

static void entry_free(gw_cache_shard *s, gw_cache_entry *e)
{
    colony__map_remove(&s->entries, e->key);
    colony__list_remove(&e->lru);
    s->bytes -= e->bytes;
    s->count--;
    vary_unref(s, e->vary);
    colony__free(e->key);
    colony__free(e->headers);
    colony__free(e->body);
    colony__free(e);
}

static void evict_to(gw_cache_shard *s, uint64_t room)
{
    while (s->bytes + room > s->max_bytes && !colony__list_empty(&s->lru)) {
        gw_cache_entry *e = COLONY__CONTAINER_OF(s->lru.prev, gw_cache_entry, lru);
        entry_free(s, e);
        s->cache->stats.evicted++;
    }
}

/* Under s's lock. */
static void shard_set_share(gw_cache_shard *s, uint64_t share)
{
    s->max_bytes = share;
    evict_to(s, 0);
}

void colony__gw_cache_set_max(gw_cache *c, uint64_t max_bytes, uint64_t largest_entry)
{
    unsigned n = GW_CACHE_SHARDS;
    while (n > 1 && max_bytes / n < 2 * largest_entry)
        n /= 2;
    unsigned old = atomic_load(&c->nshards);
    c->max_bytes = max_bytes;
    for (unsigned i = 0; i < GW_CACHE_SHARDS; i++) {
        gw_cache_shard *s = &c->shards[i];
        shard_lock(s);
        if (n != old) shard_set_share(s, 0); /* entries follow the count: start empty */
        shard_set_share(s, i < n ? max_bytes / n : 0);
        colony__gw_cache_unlock(s);
    }
    atomic_store(&c->nshards, n);
}

void colony__gw_cache_retain(gw_cache *c, int (*keep)(void *ud, const char *route, size_t len),
                             void *ud)
{
    for (size_t i = 0; i < GW_CACHE_SHARDS; i++) {
        gw_cache_shard *s = &c->shards[i];
        shard_lock(s);
        colony__list *node, *tmp;
        COLONY__LIST_FOREACH_SAFE(node, tmp, &s->lru)
        {
            gw_cache_entry *e = COLONY__CONTAINER_OF(node, gw_cache_entry, lru);
            if (!keep(ud, e->key, e->route_len)) entry_free(s, e);
        }
        colony__gw_cache_unlock(s);
    }
}

/* The misses of one key waiting for the first (its leader). */
typedef struct gw_cache_pending {
    colony__list waiters; /* gw_cache_waiter.link */
    colony__list link;    /* while the cache is freed */
} gw_cache_pending;

static void wake_all(gw_cache_pending *p)
{
    colony__list *node;
    while ((node = colony__list_pop_front(&p->waiters)) != NULL) {
        gw_cache_waiter *w = COLONY__CONTAINER_OF(node, gw_cache_waiter, link);
        w->wake(w);
    }
    colony__free(p);
}

int colony__gw_cache_join(gw_cache_shard *s, const char *key, gw_cache_waiter *w)
{
    gw_cache_pending *p = colony__map_get(&s->pending, key);
    if (p) {
        colony__list_push_back(&p->waiters, &w->link);
        s->cache->stats.coalesced++;
        return 1;
    }
    if (!(p = colony__malloc(sizeof(*p)))) return COLONY_ENOMEM;
    colony__list_init(&p->waiters);
    colony__list_init(&p->link);
    if (colony__map_put(&s->pending, key, p) != 0) {
        colony__free(p);
        return COLONY_ENOMEM;
    }
    return 0;
}

void colony__gw_cache_release(gw_cache_shard *s, const char *key)
{
    shard_lock(s);
    gw_cache_pending *p = colony__map_remove(&s->pending, key);
    if (p) wake_all(p); /* a woken waiter may lead the key again: p is out of the map */
    colony__gw_cache_unlock(s);
}

void colony__gw_cache_free(gw_cache *c)
{
    for (size_t i = 0; i < GW_CACHE_SHARDS; i++) {
        gw_cache_shard *s = &c->shards[i];
        /* Waiters left (a shutdown that did not wait for their leader) are
         * woken once the map is gone, so none is left waiting and none joins
         * it again. */
        colony__list left;
        colony__list_init(&left);
        shard_lock(s);
        size_t pos = 0;
        colony__map_slot *slot;
        while ((slot = colony__map_next(&s->pending, &pos)) != NULL)
            colony__list_push_back(&left, &((gw_cache_pending *)slot->value)->link);
        colony__map_free(&s->pending);
        colony__list *node;
        while ((node = colony__list_pop_front(&left)) != NULL)
            wake_all(COLONY__CONTAINER_OF(node, gw_cache_pending, link));
        while (!colony__list_empty(&s->lru))
            entry_free(s, COLONY__CONTAINER_OF(s->lru.next, gw_cache_entry, lru));
        colony__map_free(&s->entries);
        colony__map_free(&s->varies);
        colony__gw_cache_unlock(s);
    }
    if (c->ready)
        for (size_t i = 0; i < GW_CACHE_SHARDS; i++)
            uv_mutex_destroy(&c->shards[i].lock);
    c->ready = 0;
}

uint64_t colony__gw_cache_age(const gw_cache_entry *e, uint64_t now_ms)
{
    return e->age0_s + (now_ms > e->stored_ms ? (now_ms - e->stored_ms) / 1000 : 0);
}

/* ---- keys ------------------------------------------------------------- */

/* Appends the request's value of each name in the ','-joined list (one line
 * each; absent is distinct from empty). */
static int append_vary_values(colony_buf *b, const char *names, const gw_cache_request *r)
{
    int rc = 0;
    for (const char *p = names; !rc && *p;) {
        size_t n = strcspn(p, ",");
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)(n < sizeof(name) ? n : sizeof(name) - 1), p);
        const char *v = r->header(r->ud, name);
        rc = v ? colony_buf_appendf(b, "=%s\n", v) : colony_buf_append(b, "-\n", 2);
        p += n + (p[n] == ',');
    }
    return rc;
}

/* route \n host \n target, then the route's "vary" headers. */
static char *primary_key(const gw_cache_conf *conf, const gw_cache_request *r)
{
    colony_buf b;
    colony_buf_init(&b, 64 << 10);
    int rc = colony_buf_appendf(&b, "%s\n", r->route);
    for (const char *h = r->host ? r->host : ""; !rc && *h; h++) {
        char ch = (char)tolower((unsigned char)*h);
        rc = colony_buf_append(&b, &ch, 1);
    }
    if (!rc) rc = colony_buf_appendf(&b, "\n%s\n", r->target);
    for (size_t i = 0; !rc && i < conf->nvary; i++) {
        const char *v = r->header(r->ud, conf->vary[i]);
        rc = v ? colony_buf_appendf(&b, "=%s\n", v) : colony_buf_append(&b, "-\n", 2);
    }
    if (rc) {
        colony_buf_free(&b);
        return NULL;
    }
    size_t len;
    char *key = colony_buf_detach(&b, &len);
    if (!key) key = colony__strdup(""); /* cannot happen: the route's name is there */
    return key;
}

char *colony__gw_cache_full_key(const char *primary, const char *vary, const gw_cache_request *r)
{
    colony_buf b;
    colony_buf_init(&b, 128 << 10);
    int rc = colony_buf_append_str(&b, primary);
    if (!rc) rc = colony_buf_append(&b, (char[]){KEY_VARY_MARK}, 1);
    if (!rc && vary) rc = append_vary_values(&b, vary, r);
    if (rc) {
        colony_buf_free(&b);
        return NULL;
    }
    size_t len;
    return colony_buf_detach(&b, &len);
}

/* ---- lookups ---------------------------------------------------------- */

void colony__gw_cache_count(gw_cache *c, const char *route, gw_cache_status s)
{
    static const char *const labels[] = {"", "hit", "miss", "bypass", "expired"};
    _Atomic uint64_t *n[] = {NULL, &c->stats.hits, &c->stats.misses, &c->stats.bypasses,
                             &c->stats.expired};
    if (n[s]) (*n[s])++;
    if (c->m_requests) colony_metric_inc(colony_metric_with(c->m_requests, route, labels[s]), 1);
}

gw_cache_status colony__gw_cache_lookup(gw_cache *c, const gw_cache_conf *conf,
                                        const gw_cache_request *r, uint64_t now_ms, char **key,
                                        const gw_cache_entry **hit, int *store,
                                        gw_cache_shard **locked)
{
    *key = NULL;
    *hit = NULL;
    *store = 0;
    *locked = NULL;
    int get = strcmp(r->method, "GET") == 0, head = strcmp(r->method, "HEAD") == 0;
    gw_cache_control cc;
    colony__gw_cache_control_init(&cc);
    const char *v = r->header(r->ud, "Cache-Control");
    if (v) colony__gw_cache_control_parse(&cc, v, strlen(v));
    const char *pragma = r->header(r->ud, "Pragma");
    if (pragma && !v && strcasestr(pragma, "no-cache")) cc.no_cache = 1;
    int refused = (!get && !head) || cc.no_store ||
                  ((r->credentials || r->header(r->ud, "Authorization")) && !conf->authorized);
    char *primary = refused ? NULL : primary_key(conf, r);
    if (!primary) {
        return GW_CACHE_BYPASS;
    }
    gw_cache_status status = GW_CACHE_MISS;
    gw_cache_shard *s = colony__gw_cache_shard_of(c, primary);
    shard_lock(s);
    if (cc.no_cache) {
        status = GW_CACHE_BYPASS;
    } else {
        gw_cache_vary *vary = colony__map_get(&s->varies, primary);
        char *full = colony__gw_cache_full_key(primary, vary ? vary->names : NULL, r);
        gw_cache_entry *e = full ? colony__map_get(&s->entries, full) : NULL;
        colony__free(full);
        if (e && now_ms < e->expires_ms) {
            colony__list_remove(&e->lru);
            colony__list_push_front(&s->lru, &e->lru);
            *hit = e;
            *locked = s;
            colony__free(primary);
            return GW_CACHE_HIT;
        }
        if (e) {
            entry_free(s, e);
            status = GW_CACHE_EXPIRED;
        }
    }
    if (get) {
        *key = primary;
        *store = 1;
        *locked = s;
    } else {
        colony__free(primary);
        colony__gw_cache_unlock(s);
    }
    return status;
}

/* The Vary record of primary for these names: the current one when it
 * matches, else a new one that replaces it. NULL when names is NULL (and
 * the key's record, if any, is dropped: the resource no longer varies). */
static int vary_for(gw_cache_shard *s, const char *primary, char **names, gw_cache_vary **out)
{
    *out = NULL;
    gw_cache_vary *old = colony__map_get(&s->varies, primary);
    if (old && *names && strcmp(old->names, *names) == 0) {
        old->refs++;
        *out = old;
        return 0;
    }
    if (old) { /* its entries keep it until they go (it has one at least) */
        colony__map_remove(&s->varies, primary);
        old->in_map = 0;
    }
    if (!*names) return 0;
    gw_cache_vary *v = colony__calloc(1, sizeof(*v));
    if (!v || !(v->primary = colony__strdup(primary)) ||
        colony__map_put(&s->varies, primary, v) != 0) {
        if (v) colony__free(v->primary);
        colony__free(v);
        return COLONY_ENOMEM;
    }
    v->names = *names;
    *names = NULL;
    v->refs = 1;
    v->in_map = 1;
    *out = v;
    return 0;
}

void colony__gw_cache_fill_commit(gw_cache *c, gw_cache_fill *f, uint64_t now_ms)
{
    size_t key_len = strlen(f->key);
    size_t header_bytes = f->nheaders * sizeof(*f->headers);
    for (size_t i = 0; i < f->nheaders; i++)
        header_bytes += f->headers[i].name_len + f->headers[i].value_len + 2;
    uint64_t bytes = sizeof(gw_cache_entry) + key_len + 1 + header_bytes + f->body.len;
    gw_cache_shard *s = colony__gw_cache_shard_of(c, f->primary);
    shard_lock(s);
    gw_cache_entry *old = colony__map_get(&s->entries, f->key);
    if (old) entry_free(s, old);
    /* The shard's share, not the whole bound: set_max keeps shares at least
     * twice the largest max_entry, so what a route may store fits. */
    gw_cache_entry *e = bytes <= s->max_bytes ? colony__calloc(1, sizeof(*e)) : NULL;
    if (!e) {
        colony__gw_cache_unlock(s);
        c->stats.not_stored++;
        colony__gw_cache_fill_abort(f);
        return;
    }
    evict_to(s, bytes);
    if (colony__map_put(&s->entries, f->key, e) != 0 ||
        vary_for(s, f->primary, &f->vary, &e->vary) != 0) {
        colony__map_remove(&s->entries, f->key);
        colony__gw_cache_unlock(s);
        colony__free(e);
        c->stats.not_stored++;
        colony__gw_cache_fill_abort(f);
        return;
    }
    e->shard = s;
    e->key = f->key;
    f->key = NULL;
    e->route_len = f->route_len;
    e->status = f->status;
    e->headers = f->headers;
    e->nheaders = f->nheaders;
    f->headers = NULL;
    size_t len = 0;
    e->body = f->body.len ? colony_buf_detach(&f->body, &len) : NULL;
    e->body_len = len;
    e->stored_ms = now_ms;
    e->age0_s = f->age0_s;
    e->expires_ms = now_ms + f->lifetime_ms - f->age0_s * 1000;
    e->bytes = (size_t)bytes;
    colony__list_push_front(&s->lru, &e->lru);
    s->bytes += bytes;
    s->count++;
    colony__gw_cache_unlock(s);
    c->stats.stored++;
    colony__gw_cache_fill_abort(f);
}
