/* Idempotency-Key: a publish repeated with the same key to the same stream or
 * topic within the window is dropped and answered with the first publish's
 * ids. Bounded: at most max_keys are remembered; past that the oldest is
 * forgotten first (it could then be published again). Every key has the same
 * window, so insertion order is expiry order: expired keys are dropped from
 * the front of one list. In memory only: a restart forgets the keys. */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
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
