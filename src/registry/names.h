/* Per service name: its instances and checks indexed, and rendered answers
 * cached (the health endpoints answer from these). */
#ifndef COLONY_REGISTRY_NAMES_H
#define COLONY_REGISTRY_NAMES_H

#include "registry/registry_internal.h"

#define REG_RENDER_CACHE_SLOTS 8u /* variants (passing/all, tag filters) kept per name */
typedef struct reg_render_cache {
    char *key; /* variant: endpoint, ?passing, tags; NULL = empty slot */
    char *body;
    size_t len;
} reg_render_cache;
typedef struct reg_name {
    uint64_t index;          /* last change to any instance or check of the name */
    reg_service **instances; /* sorted by ID */
    size_t ninstances, instances_cap;
    reg_check **checks; /* checks whose ServiceName is the name, sorted by (ServiceID, ID) */
    size_t nchecks, checks_cap;
    reg_render_cache cache[REG_RENDER_CACHE_SLOTS];
    unsigned cache_next; /* slot replaced on the next miss when all are used */
} reg_name;

reg_name *colony__reg_name_get(registry *reg, const char *name);  /* NULL if unknown */
reg_name *colony__reg_name_slot(registry *reg, const char *name); /* creates; NULL on ENOMEM */
/* Room for one more instance / check, so the insert after a map change cannot fail. */
int colony__reg_name_reserve(reg_name *nm, int instances, int checks);
void colony__reg_name_add_instance(reg_name *nm, reg_service *svc); /* after reserve */
void colony__reg_name_remove_instance(registry *reg, const reg_service *svc);
void colony__reg_name_add_check(reg_name *nm, reg_check *chk); /* after reserve */
void colony__reg_name_remove_check(registry *reg, const reg_check *chk);
/* Rebuilds every name's lists from the services and checks maps (after load). */
int colony__reg_names_rebuild(registry *reg);
void colony__reg_names_free(registry *reg);
/* The cached body for a variant key, or NULL. */
const reg_render_cache *colony__reg_cache_get(const reg_name *nm, const char *key);
/* Keeps a copy of a rendered body (best effort: silently skipped without memory). */
void colony__reg_cache_put(reg_name *nm, const char *key, const char *body, size_t len);

#endif
