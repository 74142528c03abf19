/* Idempotency-Key: a publish repeated with the same key to the same stream or
 * topic within the window is dropped and answered with the first publish's
 * ids. Bounded: at most max_keys are remembered; past that the oldest is
 * forgotten first (it could then be published again). Every key has the same
 * window, so insertion order is expiry order: expired keys are dropped from
 * the front of one list. Durable: each entry of a keyed stream publish keeps
 * the key in its metadata (store/meta.c), and colony__bidem_load rebuilds the
 * window from the streams' recent entries on start. */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "broker/http/http.h"

typedef struct idem_entry {
    colony__list link; /* in order */
    uint64_t expires_ms;
    json_t *ids;
    char key[]; /* the map's key, to remove it from the map */
} idem_entry;

void colony__bidem_init(colony__bidem *c, uint64_t window_ms, size_t max_keys)
{
    memset(c, 0, sizeof(*c));
    colony__list_init(&c->order);
    c->window_ms = window_ms;
    c->max_keys = max_keys;
}

static void drop(colony__bidem *c, idem_entry *e)
{
    colony__map_remove(&c->keys, e->key);
    colony__list_remove(&e->link);
    json_decref(e->ids);
    colony__free(e);
    c->count--;
}

static void expire(colony__bidem *c, uint64_t now)
{
    while (!colony__list_empty(&c->order)) {
        idem_entry *e = COLONY__CONTAINER_OF(c->order.next, idem_entry, link);
        if (e->expires_ms > now && c->count <= c->max_keys) break;
        drop(c, e);
    }
}

void colony__bidem_free(colony__bidem *c)
{
    while (!colony__list_empty(&c->order))
        drop(c, COLONY__CONTAINER_OF(c->order.next, idem_entry, link));
    colony__map_free(&c->keys);
}

/* "<length of target>:" target key: unambiguous whatever bytes they hold. */
static char *map_key(const char *target, const char *key)
{
    size_t tl = strlen(target), kl = strlen(key);
    char *k = colony__malloc(tl + kl + 24);
    if (!k) return NULL;
    int n = snprintf(k, 24, "%zu:", tl);
    memcpy(k + n, target, tl);
    memcpy(k + (size_t)n + tl, key, kl + 1);
    return k;
}

json_t *colony__bidem_get(colony__bidem *c, const char *target, const char *key, uint64_t now)
{
    expire(c, now);
    char *k = map_key(target, key);
    if (!k) return NULL;
    idem_entry *e = colony__map_get(&c->keys, k);
    colony__free(k);
    return e ? e->ids : NULL;
}

int colony__bidem_put(colony__bidem *c, const char *target, const char *key, json_t *ids,
                      uint64_t now)
{
    if (c->max_keys == 0 || c->window_ms == 0) return 0;
    char *k = map_key(target, key);
    if (!k) return COLONY_ENOMEM;
    size_t kl = strlen(k);
    idem_entry *old = colony__map_get(&c->keys, k);
    if (old) drop(c, old);
    idem_entry *e = colony__malloc(sizeof(*e) + kl + 1);
    if (!e) {
        colony__free(k);
        return COLONY_ENOMEM;
    }
    memcpy(e->key, k, kl + 1);
    colony__free(k);
    if (colony__map_put(&c->keys, e->key, e)) {
        colony__free(e);
        return COLONY_ENOMEM;
    }
    e->ids = json_incref(ids);
    e->expires_ms = now + c->window_ms;
    colony__list_push_back(&c->order, &e->link);
    c->count++;
    expire(c, now);
    return 0;
}

void colony__bidem_forget(colony__bidem *c, const char *target, const char *key)
{
    char *k = map_key(target, key);
    if (!k) return;
    idem_entry *e = colony__map_get(&c->keys, k);
    colony__free(k);
    if (e) drop(c, e);
}

/* ---- the window rebuilt from the entries on start ---- */

/* One keyed publish found (its entries are consecutive: one request appends
 * them in one go on the loop). */
typedef struct found {
    uint64_t time_ms;
    const char *stream;
    char *key;
    json_t *ids; /* oldest first */
    uint64_t count;
} found;

typedef struct loader {
    const char *stream;
    uint64_t from_ms; /* entries appended before it are out of the window */
    size_t budget;    /* entries still to read */
    found cur;        /* the publish being collected (reading backward) */
    found *all;
    size_t n, cap;
    int oom;
} loader;

static void found_free(found *f)
{
    colony__free(f->key);
    json_decref(f->ids);
    memset(f, 0, sizeof(*f));
}

/* The publish being collected is whole: kept. */
static void keep(loader *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        found *p = colony__realloc(l->all, cap * sizeof(*p));
        if (!p) {
            l->oom = 1;
            found_free(&l->cur);
            return;
        }
        l->all = p;
        l->cap = cap;
    }
    l->all[l->n++] = l->cur;
    memset(&l->cur, 0, sizeof(l->cur));
}

static int on_entry(void *ud, const colony__bentry *e)
{
    loader *l = ud;
    if (e->time_ms < l->from_ms || l->budget == 0 || l->oom) return 1;
    l->budget--;
    colony__bstr key = {0};
    uint64_t count;
    if (!colony__bmeta_idem(e->meta, &key, &count) || memchr(key.data, 0, key.len)) {
        found_free(&l->cur); /* a part of a publish only: not remembered */
        return 0;
    }
    if (l->cur.key && (strlen(l->cur.key) != key.len || memcmp(l->cur.key, key.data, key.len) ||
                       l->cur.count != count))
        found_free(&l->cur);
    if (!l->cur.key) {
        l->cur = (found){e->time_ms, l->stream, colony__malloc(key.len + 1), json_array(), count};
        if (!l->cur.key || !l->cur.ids) {
            found_free(&l->cur);
            l->oom = 1;
            return 1;
        }
        memcpy(l->cur.key, key.data, key.len);
        l->cur.key[key.len] = 0;
    }
    if (json_array_insert_new(l->cur.ids, 0, colony__bhttp_id_json(e->id))) {
        l->oom = 1;
        return 1;
    }
    if (json_array_size(l->cur.ids) == l->cur.count) keep(l);
    return 0;
}

static int by_time(const void *a, const void *b)
{
    const found *x = a, *y = b;
    return x->time_ms < y->time_ms ? -1 : x->time_ms > y->time_ms;
}

long colony__bidem_load(colony__bidem *c, colony__bstore *store, uint64_t now, size_t max_scan)
{
    if (c->max_keys == 0 || c->window_ms == 0) return 0;
    loader l = {.from_ms = now > c->window_ms ? now - c->window_ms : 0, .budget = max_scan};
    size_t pos = 0;
    colony__bstream *st;
    while (!l.oom && l.budget && (st = colony__bstore_next(store, &pos))) {
        l.stream = colony__bstream_name(st);
        colony__bid lo = {l.from_ms, 0}, hi = {UINT64_MAX, UINT64_MAX};
        long rc = colony__bstream_range(st, lo, hi, 1, 0, on_entry, &l);
        found_free(&l.cur); /* the oldest, cut by the window or the budget */
        if (rc < 0)
            COLONY_LOG_WARN("broker: idempotency keys of a stream not rebuilt",
                            COLONY_LF_STR("stream", l.stream), COLONY_LF_INT("error", rc));
    }
    if (l.n) qsort(l.all, l.n, sizeof(*l.all), by_time);
    long kept = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (!l.oom &&
            !colony__bidem_put(c, l.all[i].stream, l.all[i].key, l.all[i].ids, l.all[i].time_ms))
            kept++;
        found_free(&l.all[i]);
    }
    colony__free(l.all);
    if (!l.budget)
        COLONY_LOG_WARN("broker: idempotency window rebuilt from the newest entries only",
                        COLONY_LF_INT("entries_read", (int64_t)max_scan));
    return l.oom ? COLONY_ENOMEM : kept;
}
