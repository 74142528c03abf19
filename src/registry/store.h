/* The registry's durable store: every state change is an op queued for
 * SQLite and group-committed off the loop (kit/durable). Used by the state
 * changes (state.c, kv_tombstones.c), the waiters and the daemon. */
#ifndef COLONY_REGISTRY_STORE_H
#define COLONY_REGISTRY_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "core/list.h"
#include "registry/registry_internal.h"

#define REG_COMMIT_RETRY_MIN_MS 10u   /* first retry of a failed commit */
#define REG_COMMIT_RETRY_MAX_MS 1000u /* backoff cap while the disk refuses */

enum { OP_SERVICE_PUT, OP_SERVICE_DEL, OP_CHECK_PUT, OP_CHECK_DEL, OP_KV_PUT, OP_INDEX, OP_KV_DEL };
typedef struct reg_op {
    int type;
    char *key;           /* service id, check id, KV key, or index topic */
    char *doc;           /* JSON document for services and checks */
    reg_kv kv;           /* for OP_KV_PUT (value copied) */
    uint64_t index;      /* global index this op belongs to */
    char *topic_service; /* service name it touches (waiter matching), or NULL */
    colony__list node;   /* in the store's queue, then its batch */
} reg_op;

/* Locks the data dir (DIR/registry.lock: COLONY_EBUSY naming the pid that
 * holds it), checks DIR/registry.db (PRAGMA quick_check; all tables or, for a
 * new database, none unless DIR/registry.index says data existed) and opens it
 * (created if new) in WAL mode with synchronous=FULL. On error msg says what,
 * naming the file. */
int colony__reg_store_open(reg_store **out, uv_loop_t *loop, const char *dir, char *msg,
                           size_t msg_size);
/* Loads everything into reg (on the loop, at startup); every read checked: an
 * error refuses the start with msg naming the file (COLONY_EIO). */
int colony__reg_store_load(reg_store *s, registry *reg, char *msg, size_t msg_size);
/* Queues an op (taken over); it is committed with the next batch (kit/durable). */
void colony__reg_store_push(reg_store *s, reg_op *op);
/* Called on the loop after each batch with the highest index it committed and
 * the batch's ops (reg_op.node; freed after the callback), or err != 0 when an
 * attempt failed: the batch is then kept and retried (nothing after it
 * commits first), except after colony__reg_store_shutdown, when it is given up. */
typedef void (*reg_store_committed_cb)(registry *reg, int err, uint64_t index,
                                       const colony__list *ops);
void colony__reg_store_set_callback(reg_store *s, registry *reg, reg_store_committed_cb cb);
int colony__reg_store_idle(const reg_store *s);
/* Nonzero while commits fail (from a failed attempt until one succeeds). */
int colony__reg_store_failing(const reg_store *s);
/* DIR/registry.db, for messages. */
const char *colony__reg_store_path(const reg_store *s);
/* Shutdown: a batch waiting to be retried gets one last attempt now; if that
 * fails it and everything queued after it are dropped (logged), so the store
 * becomes idle. */
void colony__reg_store_shutdown(reg_store *s);
/* Changes dropped by a failed commit at shutdown (0 when all were saved). */
size_t colony__reg_store_lost(const reg_store *s);
void colony__reg_store_close(reg_store *s);
void colony__reg_op_free(reg_op *op);
uint64_t colony__reg_store_batches(const reg_store *s);

#endif
