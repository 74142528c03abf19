/* Shared by the store's two files: store.c (data dir, commits) and
 * store_load.c (loading at startup). Nothing else includes it. */
#ifndef COLONY_REGISTRY_STORE_INTERNAL_H
#define COLONY_REGISTRY_STORE_INTERNAL_H

#include <sqlite3.h>
#include <stdint.h>
#include "kit/durable/durable.h"
#include "registry/registry_internal.h"
#include "registry/store.h"

#define REG_STORE_PATH_MAX     4096
#define REG_INDEX_CEILING_STEP 65536u /* registry.index is rewritten once per this many */

struct reg_store {
    sqlite3 *db;
    colony__durable *durable;
    int lock_fd;      /* registry.lock, flock'ed; -1 when not open */
    uint64_t ceiling; /* registry.index; after open, read and written by commits only */
    uint64_t batches; /* commit attempts */
    registry *reg;
    reg_store_committed_cb cb;
    char dir[REG_STORE_PATH_MAX];
    char path[REG_STORE_PATH_MAX + 16];         /* DIR/registry.db */
    char ceiling_path[REG_STORE_PATH_MAX + 16]; /* DIR/registry.index */
};

/* Refuses to start on lost data (fills msg); returns COLONY_EIO. */
int colony__reg_store_refuse_lost(const reg_store *s, char *msg, size_t msg_size);
/* Writes registry.index durably (temp file, fsync, rename, fsync dir). */
int colony__reg_store_write_ceiling(reg_store *s, uint64_t ceiling);

#endif
