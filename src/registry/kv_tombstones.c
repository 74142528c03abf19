/* KV tombstones: a deleted key stays as a tombstone so the index of its key
 * and of every prefix above it never goes backwards, which blocking queries
 * rely on. Kept forever they cost a row and some memory per key ever deleted,
 * so, as Consul's tombstone GC does, they are forgotten after a TTL and the
 * KV floor (the index every key and prefix reports at least) rises to the
 * highest ModifyIndex forgotten. Both changes go to disk in one transaction. */
#include <string.h>
#include "colony/log.h"
#include "core/alloc.h"
#include "registry/registry_internal.h"
#include "registry/store.h"

static void push(registry *reg, int type, const char *key, uint64_t index)
{
    reg_op *op = colony__calloc(1, sizeof(*op));
    if (op) op->key = colony__strdup(key);
    if (!op || !op->key) {
        /* The row stays on disk and comes back as a tombstone after a restart:
         * harmless, it is reaped again. */
        COLONY_LOG_ERROR("registry: out of memory queueing a tombstone removal",
                         COLONY_LF_STR("key", key));
        colony__free(op);
        return;
    }
    op->type = type;
    op->index = index;
    colony__reg_store_push(reg->store, op);
}

size_t colony__reg_kv_reap_tombstones(registry *reg, uint64_t now_ms)
{
    uint64_t floor = reg->kv_floor;
    size_t kept = 0, reaped = 0;
    for (size_t i = 0; i < reg->nkv; i++) {
        reg_kv *e = reg->kv[i];
        if (e->deleted && !e->deleted_at_ms) e->deleted_at_ms = now_ms; /* loaded from disk */
        /* Only committed deletions: the floor must never pass what is durable. */
        int old = e->deleted && now_ms - e->deleted_at_ms >= reg->tombstone_ttl_ms &&
                  e->modify_index <= reg->committed;
        if (!old) {
            reg->kv[kept++] = e;
            continue;
        }
        if (e->modify_index > floor) floor = e->modify_index;
        push(reg, OP_KV_DEL, e->key, e->modify_index);
        colony__free(e->key);
        colony__free(e->value);
        colony__free(e);
        reaped++;
    }
    reg->nkv = kept;
    if (reaped) {
        reg->kv_floor = floor;
        push(reg, OP_INDEX, "kvfloor", floor);
    }
    return reaped;
}

size_t colony__reg_kv_tombstones(const registry *reg)
{
    size_t n = 0;
    for (size_t i = 0; i < reg->nkv; i++)
        n += reg->kv[i]->deleted != 0;
    return n;
}
