/* Small helpers for the registry: a string-keyed hash map, Go duration
 * strings, check status names and lenient JSON field lookup. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "registry/registry_internal.h"

static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static size_t find_slot(const reg_map *m, const char *key, uint64_t h)
{
    size_t i = (size_t)h & (m->cap - 1);
    while (m->slots[i].key) {
        if (m->slots[i].hash == h && strcmp(m->slots[i].key, key) == 0) return i;
        i = (i + 1) & (m->cap - 1);
    }
    return i;
}

void *colony__reg_map_get(const reg_map *m, const char *key)
{
    if (!m->cap) return NULL;
    size_t i = find_slot(m, key, hash_key(key));
    return m->slots[i].key ? m->slots[i].value : NULL;
}

static int grow(reg_map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    reg_map_slot *slots = colony__calloc(cap, sizeof(*slots));
    if (!slots) return COLONY_ENOMEM;
    reg_map old = *m;
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

int colony__reg_map_put(reg_map *m, const char *key, void *value)
{
    if ((m->count + 1) * 4 >= m->cap * 3 && grow(m)) return COLONY_ENOMEM;
    uint64_t h = hash_key(key);
    size_t i = find_slot(m, key, h);
    if (m->slots[i].key) {
        m->slots[i].value = value;
        return 0;
    }
    char *copy = colony__strdup(key);
    if (!copy) return COLONY_ENOMEM;
    m->slots[i] = (reg_map_slot){copy, value, h};
    m->count++;
    return 0;
}

/* Linear probing with backward-shift deletion: no tombstones to clean up. */
void *colony__reg_map_remove(reg_map *m, const char *key)
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

void colony__reg_map_free(reg_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        colony__free(m->slots[i].key);
    colony__free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}

const char *colony__reg_status_name(int status)
{
    switch (status) {
    case REG_PASSING:
        return "passing";
    case REG_WARNING:
        return "warning";
    default:
        return "critical";
    }
}

int colony__reg_status_parse(const char *s)
{
    if (!s) return -1;
    if (strcmp(s, "passing") == 0) return REG_PASSING;
    if (strcmp(s, "warning") == 0) return REG_WARNING;
    if (strcmp(s, "critical") == 0) return REG_CRITICAL;
    return -1;
}

static double unit_ms(const char *u, size_t n)
{
    static const struct {
        const char *name;
        double ms;
    } units[] = {{"ns", 1e-6}, {"us", 1e-3}, {"\xc2\xb5s", 1e-3}, {"\xce\xbcs", 1e-3},
                 {"ms", 1},    {"s", 1000},  {"m", 60000},        {"h", 3600000}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strlen(units[i].name) == n && memcmp(units[i].name, u, n) == 0) return units[i].ms;
    return -1;
}

/* Follows Go's time.ParseDuration: an optional sign, then one or more
 * <decimal><unit> pairs; "0" alone is allowed. Negative durations are refused. */
int colony__reg_parse_duration(const char *s, uint64_t *out_ms)
{
    if (!s || !*s) return COLONY_EINVAL;
    if (*s == '+') s++;
    if (*s == '-') return COLONY_EINVAL;
    if (strcmp(s, "0") == 0) {
        *out_ms = 0;
        return 0;
    }
    double total = 0;
    while (*s) {
        const char *start = s;
        while (isdigit((unsigned char)*s) || *s == '.')
            s++;
        if (s == start) return COLONY_EINVAL;
        char num[64];
        size_t nlen = (size_t)(s - start);
        if (nlen >= sizeof(num)) return COLONY_EINVAL;
        memcpy(num, start, nlen);
        num[nlen] = '\0';
        if (strchr(num, '.') != strrchr(num, '.') || strcmp(num, ".") == 0) return COLONY_EINVAL;
        const char *ustart = s;
        while (*s && !isdigit((unsigned char)*s) && *s != '.')
            s++;
        double mul = unit_ms(ustart, (size_t)(s - ustart));
        if (mul < 0) return COLONY_EINVAL;
        total += strtod(num, NULL) * mul;
        if (total > 9.2e15) return COLONY_ERANGE;
    }
    *out_ms = (uint64_t)ceil(total);
    return 0;
}

static int same_field(const char *a, const char *b)
{
    for (;;) {
        while (*a == '_')
            a++;
        while (*b == '_')
            b++;
        if (!*a || !*b) return *a == *b;
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
        a++;
        b++;
    }
}

json_t *colony__reg_field(const json_t *obj, const char *name)
{
    if (!json_is_object(obj)) return NULL;
    json_t *v = json_object_get(obj, name);
    if (v) return v;
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)obj, k, val)
    {
        if (same_field(k, name)) return val;
    }
    return NULL;
}
