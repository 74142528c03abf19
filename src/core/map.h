/* One string-keyed hash map for the whole tree: open addressing with linear
 * probing and backward-shift deletion, keys copied. Keys come from clients
 * (service IDs, KV keys, origins), so the hash is SipHash-1-3 under a random
 * per-process key: a client cannot choose keys that collide. Not thread-safe. */
#ifndef COLONY_CORE_MAP_H
#define COLONY_CORE_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct colony__map_slot {
    char *key; /* NULL: empty slot */
    void *value;
    uint64_t hash;
} colony__map_slot;

typedef struct colony__map {
    colony__map_slot *slots;
    size_t cap, count;
} colony__map;

/* A zero-filled colony__map is an empty map; no init call is needed. */
void *colony__map_get(const colony__map *m, const char *key);
/* Inserts or replaces the value for key; 0 or COLONY_ENOMEM (map unchanged). */
int colony__map_put(colony__map *m, const char *key, void *value);
/* Removes key and returns its value (NULL if absent). */
void *colony__map_remove(colony__map *m, const char *key);
/* Frees the slots and keys (not the values) and leaves an empty map. */
void colony__map_free(colony__map *m);

/* Iteration: for (size_t i = 0; i < m->cap; i++) if (m->slots[i].key) ...
 * colony__map_next() hides the empty slots: start with *pos = 0; returns the
 * next occupied slot or NULL. Do not put or remove while iterating. */
colony__map_slot *colony__map_next(const colony__map *m, size_t *pos);

/* SipHash-1-3 of n bytes under this process's random key: the hash to use
 * wherever a client chooses the keys of a table. */
uint64_t colony__hash_keyed(const void *data, size_t n);

#endif
