/* The registry's in-memory state on a real SQLite store in a temporary
 * folder, for the registry's unit tests (they reach its internals): open,
 * drain the store, free the state, remove the folder. */
#ifndef COLONY_REGISTRY_STATE_FIXTURE_H
#define COLONY_REGISTRY_STATE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/alloc.h"
#include "registry/names.h"
#include "registry/registry_internal.h"
#include "registry/store.h"
#include "registry/waiters.h"
#include "test_support.h"

/* Advances `committed` and wakes the waiters of a committed batch; a failed
 * batch leaves both as they are (the store retries it). */
static inline void reg_fixture_committed(registry *r, int err, uint64_t index,
                                         const colony__list *ops)
{
    if (err) return;
    if (index > r->committed) r->committed = index;
    colony__reg_waiters_committed(r, ops);
}

/* A fresh state on loop with its store in a new folder under /tmp named after
 * tag (written into dir, at least 64 bytes). */
static inline void reg_fixture_open(registry *reg, uv_loop_t *loop, char *dir, const char *tag)
{
    snprintf(dir, 64, "/tmp/colony-%s-XXXXXX", tag);
    assert_non_null(mkdtemp(dir));
    memset(reg, 0, sizeof(*reg));
    reg->loop = loop;
    colony__reg_waiters_init(reg);
    char msg[512];
    assert_int_equal(colony__reg_store_open(&reg->store, loop, dir, msg, sizeof(msg)), 0);
    colony__reg_store_set_callback(reg->store, reg, reg_fixture_committed);
    reg->index = reg->committed = 1;
}

/* Runs the loop until the store has committed everything queued. */
static inline void reg_fixture_drain(registry *reg, uv_loop_t *loop)
{
    for (int i = 0; i < 10000 && !colony__reg_store_idle(reg->store); i++)
        uv_run(loop, UV_RUN_ONCE);
    assert_true(colony__reg_store_idle(reg->store));
}

/* Frees the state (a test with armed checks stops them first) and closes
 * the store. */
static inline void reg_fixture_close(registry *reg)
{
    colony__reg_state_free(reg);
    colony__reg_store_close(reg->store);
    reg->store = NULL;
}

static inline void reg_fixture_remove_dir(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

#endif
