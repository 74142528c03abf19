/* The string map of map.h and its keyed hash. */
#include "core/map.h"
#include <string.h>
#include <sys/random.h>
#include <pthread.h>
#include "colony/error.h"
#include "core/alloc.h"

static uint64_t sip_key[2];
static pthread_once_t sip_key_once = PTHREAD_ONCE_INIT;

/* A fixed key would let a client precompute collisions; getrandom on Linux
 * does not fail once the pool is initialised, and a fallback from the clock
 * and address-space layout still differs per process. */
static void sip_key_init(void)
{
    if (getrandom(sip_key, sizeof(sip_key), 0) != (ssize_t)sizeof(sip_key)) {
        sip_key[0] = (uint64_t)(uintptr_t)&sip_key ^ 0x736f6d6570736575ull;
        sip_key[1] = (uint64_t)(uintptr_t)sip_key_init ^ 0x646f72616e646f6dull;
    }
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

uint64_t colony__hash_keyed(const void *data, size_t n)
{
    pthread_once(&sip_key_once, sip_key_init);
    const unsigned char *p = data;
    uint64_t v0 = sip_key[0] ^ 0x736f6d6570736575ull, v1 = sip_key[1] ^ 0x646f72616e646f6dull;
    uint64_t v2 = sip_key[0] ^ 0x6c7967656e657261ull, v3 = sip_key[1] ^ 0x7465646279746573ull;
    size_t whole = n & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m;
        memcpy(&m, p + i, 8); /* little-endian hosts only, as the rest of the tree */
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t last = (uint64_t)n << 56;
    for (size_t i = 0; i < (n & 7); i++)
        last |= (uint64_t)p[whole + i] << (8 * i);
    v3 ^= last;
    SIPROUND;
    v0 ^= last;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static size_t find_slot(const colony__map *m, const char *key, uint64_t h)
{
    size_t i = (size_t)h & (m->cap - 1);
    while (m->slots[i].key) {
        if (m->slots[i].hash == h && strcmp(m->slots[i].key, key) == 0) return i;
        i = (i + 1) & (m->cap - 1);
    }
    return i;
}

static uint64_t hash_key(const char *key)
{
    return colony__hash_keyed(key, strlen(key));
}

void *colony__map_get(const colony__map *m, const char *key)
{
    if (!m->cap) return NULL;
    size_t i = find_slot(m, key, hash_key(key));
    return m->slots[i].key ? m->slots[i].value : NULL;
}

static int grow(colony__map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    colony__map_slot *slots = colony__calloc(cap, sizeof(*slots));
    if (!slots) return COLONY_ENOMEM;
    colony__map old = *m;
    m->slots = slots;
    m->cap = cap;
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.slots[i].key) continue;
        size_t j = find_slot(m, old.slots[i].key, old.slots[i].hash);
        m->slots[j] = old.slots[i];
    }
    colony__free(old.slots);
    return 0;
}

int colony__map_put(colony__map *m, const char *key, void *value)
{
    uint64_t h = hash_key(key);
    if (m->cap) {
        size_t i = find_slot(m, key, h);
        if (m->slots[i].key) {
            m->slots[i].value = value;
            return 0;
        }
    }
    char *copy = colony__strdup(key);
    if (!copy) return COLONY_ENOMEM;
    if ((m->count + 1) * 4 >= m->cap * 3 && grow(m)) {
        colony__free(copy);
        return COLONY_ENOMEM;
    }
    m->slots[find_slot(m, key, h)] = (colony__map_slot){copy, value, h};
    m->count++;
    return 0;
}

/* Backward-shift deletion keeps probe chains whole without tombstones. */
void *colony__map_remove(colony__map *m, const char *key)
{
    if (!m->cap) return NULL;
    size_t i = find_slot(m, key, hash_key(key));
    if (!m->slots[i].key) return NULL;
    void *value = m->slots[i].value;
    colony__free(m->slots[i].key);
    m->slots[i].key = NULL;
    m->count--;
    size_t j = i;
    for (;;) {
        j = (j + 1) & (m->cap - 1);
        if (!m->slots[j].key) break;
        size_t home = (size_t)m->slots[j].hash & (m->cap - 1);
        /* move j back to i unless its home lies cyclically in (i, j] */
        int stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (stays) continue;
        m->slots[i] = m->slots[j];
        m->slots[j].key = NULL;
        i = j;
    }
    return value;
}

colony__map_slot *colony__map_next(const colony__map *m, size_t *pos)
{
    for (; *pos < m->cap; (*pos)++)
        if (m->slots[*pos].key) return &m->slots[(*pos)++];
    return NULL;
}

void colony__map_free(colony__map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        colony__free(m->slots[i].key);
    colony__free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}
