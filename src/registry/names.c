/* Per service name: its instances (sorted by ID) and its checks (sorted by
 * ServiceID, then CheckID), so /v1/health/service/:name and
 * /v1/catalog/service/:name touch only that name's data instead of scanning
 * every service and check, and a few rendered answer bodies per name,
 * dropped whenever anything they show changes. A name is never removed: its
 * index must not go backwards when its last instance leaves. */
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "registry/registry_internal.h"
#include "registry/names.h"

reg_name *colony__reg_name_get(registry *reg, const char *name)
{
    return name ? colony__map_get(&reg->names, name) : NULL;
}

reg_name *colony__reg_name_slot(registry *reg, const char *name)
{
    reg_name *nm = colony__map_get(&reg->names, name);
    if (nm) return nm;
    nm = colony__calloc(1, sizeof(*nm));
    if (!nm) return NULL;
    if (colony__map_put(&reg->names, name, nm)) {
        colony__free(nm);
        return NULL;
    }
    return nm;
}

uint64_t *colony__reg_service_index_slot(registry *reg, const char *name)
{
    reg_name *nm = colony__reg_name_slot(reg, name);
    return nm ? &nm->index : NULL;
}

static void cache_clear(reg_name *nm)
{
    for (unsigned i = 0; i < REG_RENDER_CACHE_SLOTS; i++) {
        colony__free(nm->cache[i].key);
        colony__free(nm->cache[i].body);
        nm->cache[i] = (reg_render_cache){NULL, NULL, 0};
    }
    nm->cache_next = 0;
}

void colony__reg_name_touch(registry *reg, const char *name)
{
    reg_name *nm = colony__reg_name_get(reg, name);
    if (nm) cache_clear(nm);
}

static int grow(void **items, size_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap * 2 : 4;
    while (n < need)
        n *= 2;
    void *grown = colony__realloc(*items, n * sizeof(void *));
    if (!grown) return COLONY_ENOMEM;
    *items = grown;
    *cap = n;
    return 0;
}

int colony__reg_name_reserve(reg_name *nm, int instances, int checks)
{
    if (instances && grow((void **)&nm->instances, &nm->instances_cap, nm->ninstances + 1))
        return COLONY_ENOMEM;
    if (checks && grow((void **)&nm->checks, &nm->checks_cap, nm->nchecks + 1))
        return COLONY_ENOMEM;
    return 0;
}

static int check_order(const reg_check *a, const reg_check *b)
{
    int c = strcmp(a->service_id ? a->service_id : "", b->service_id ? b->service_id : "");
    return c ? c : strcmp(a->id, b->id);
}

/* Inserts into a sorted pointer array (capacity reserved); an item with the
 * same sort key is replaced. */
static void sorted_insert(void **items, size_t *n, void *item,
                          int (*cmp)(const void *, const void *))
{
    size_t lo = 0, hi = *n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp(items[mid], item) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < *n && cmp(items[lo], item) == 0) {
        items[lo] = item;
        return;
    }
    memmove(items + lo + 1, items + lo, (*n - lo) * sizeof(*items));
    items[lo] = item;
    (*n)++;
}

static void remove_pointer(void **items, size_t *n, const void *item)
{
    for (size_t i = 0; i < *n; i++) {
        if (items[i] != item) continue;
        memmove(items + i, items + i + 1, (*n - i - 1) * sizeof(*items));
        (*n)--;
        return;
    }
}

static int cmp_service(const void *a, const void *b)
{
    return strcmp(((const reg_service *)a)->id, ((const reg_service *)b)->id);
}

static int cmp_check(const void *a, const void *b)
{
    return check_order(a, b);
}

void colony__reg_name_add_instance(reg_name *nm, reg_service *svc)
{
    sorted_insert((void **)nm->instances, &nm->ninstances, svc, cmp_service);
    cache_clear(nm);
}

void colony__reg_name_remove_instance(registry *reg, const reg_service *svc)
{
    reg_name *nm = colony__reg_name_get(reg, svc->name);
    if (!nm) return;
    remove_pointer((void **)nm->instances, &nm->ninstances, svc);
    cache_clear(nm);
}

void colony__reg_name_add_check(reg_name *nm, reg_check *chk)
{
    sorted_insert((void **)nm->checks, &nm->nchecks, chk, cmp_check);
    cache_clear(nm);
}

void colony__reg_name_remove_check(registry *reg, const reg_check *chk)
{
    reg_name *nm = colony__reg_name_get(reg, chk->service_name);
    if (!nm) return;
    remove_pointer((void **)nm->checks, &nm->nchecks, chk);
    cache_clear(nm);
}

int colony__reg_names_rebuild(registry *reg)
{
    for (size_t i = 0; i < reg->names.cap; i++) {
        reg_name *nm = reg->names.slots[i].key ? reg->names.slots[i].value : NULL;
        if (!nm) continue;
        nm->ninstances = nm->nchecks = 0;
        cache_clear(nm);
    }
    for (size_t i = 0; i < reg->services.cap; i++) {
        reg_service *s = reg->services.slots[i].key ? reg->services.slots[i].value : NULL;
        if (!s) continue;
        reg_name *nm = colony__reg_name_slot(reg, s->name);
        if (!nm || colony__reg_name_reserve(nm, 1, 0)) return COLONY_ENOMEM;
        colony__reg_name_add_instance(nm, s);
    }
    for (size_t i = 0; i < reg->checks.cap; i++) {
        reg_check *c = reg->checks.slots[i].key ? reg->checks.slots[i].value : NULL;
        if (!c || !c->service_name) continue;
        reg_name *nm = colony__reg_name_slot(reg, c->service_name);
        if (!nm || colony__reg_name_reserve(nm, 0, 1)) return COLONY_ENOMEM;
        colony__reg_name_add_check(nm, c);
    }
    return 0;
}

void colony__reg_names_free(registry *reg)
{
    for (size_t i = 0; i < reg->names.cap; i++) {
        reg_name *nm = reg->names.slots[i].key ? reg->names.slots[i].value : NULL;
        if (!nm) continue;
        cache_clear(nm);
        colony__free(nm->instances);
        colony__free(nm->checks);
        colony__free(nm);
    }
    colony__map_free(&reg->names);
}

const reg_render_cache *colony__reg_cache_get(const reg_name *nm, const char *key)
{
    for (unsigned i = 0; i < REG_RENDER_CACHE_SLOTS; i++)
        if (nm->cache[i].key && strcmp(nm->cache[i].key, key) == 0) return &nm->cache[i];
    return NULL;
}

void colony__reg_cache_put(reg_name *nm, const char *key, const char *body, size_t len)
{
    char *k = colony__strdup(key);
    char *b = colony__malloc(len + 1);
    if (!k || !b) {
        colony__free(k);
        colony__free(b);
        return;
    }
    memcpy(b, body, len);
    b[len] = '\0';
    reg_render_cache *slot = &nm->cache[nm->cache_next];
    nm->cache_next = (nm->cache_next + 1) % REG_RENDER_CACHE_SLOTS;
    colony__free(slot->key);
    colony__free(slot->body);
    *slot = (reg_render_cache){k, b, len};
}
