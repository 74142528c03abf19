/* Durable group commit: writes queued on a loop are made durable in batches by
 * a user function that runs on libuv's thread pool, one batch at a time;
 * everything that arrives while a batch commits goes into the next one. An op
 * is acknowledged only after the batch holding it committed. A failed batch
 * stays the current batch and is retried with a doubling backoff capped at
 * retry_max_ms (later ops wait behind it, so storage never holds an op without
 * the ones before it); at shutdown a failing batch gets one last attempt, then
 * it and everything queued after it are given up and counted.
 *
 * The part knows nothing about the storage: the registry commits SQLite
 * transactions with it, the broker will append segment files. It is internal
 * (colony__) until its second user has shaped it; then it moves to
 * include/colony/ (docs/registry.md, "Durable group commit").
 *
 * Everything runs on the loop thread except the commit function. */
#ifndef COLONY_KIT_DURABLE_H
#define COLONY_KIT_DURABLE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "core/list.h"

typedef struct colony__durable colony__durable;

/* Thread pool: makes every op of batch (colony__list nodes embedded in the
 * caller's ops, in push order) durable, all or nothing. Returns 0 or a
 * negative error. Must not touch the loop; it is never called twice at once. */
typedef int (*colony__durable_commit_cb)(void *ud, const colony__list *batch);
/* Loop, after each attempt and before the acks: err 0 when batch is durable;
 * otherwise the attempt failed and batch will be retried, or (giving_up) it is
 * about to be acknowledged with err. Optional. */
typedef void (*colony__durable_batch_cb)(void *ud, int err, int giving_up,
                                         const colony__list *batch);
/* Loop, once per op, in push order: err 0 after the batch holding it
 * committed, or the error it was given up with at shutdown or close. The op is
 * unlinked and handed back: the callback owns (frees) it. */
typedef void (*colony__durable_ack_cb)(void *ud, colony__list *op, int err);

typedef struct colony__durable_options {
    colony__durable_commit_cb commit; /* required */
    colony__durable_ack_cb ack;       /* required */
    colony__durable_batch_cb batch;   /* optional */
    void *ud;
    const char *name;      /* component in its log lines ("registry"); static */
    uint64_t retry_min_ms; /* first retry delay; 0 = 10 ms */
    uint64_t retry_max_ms; /* backoff cap; 0 = 1 s */
} colony__durable_options;

/* Creates a committer on loop. 0, COLONY_ENOMEM or COLONY_EINVAL (missing
 * callbacks), or the uv_timer_init error; nothing to free on failure. */
int colony__durable_new(colony__durable **out, uv_loop_t *loop,
                        const colony__durable_options *opts);
/* Queues op (taken over until its ack); it commits with the next batch. */
void colony__durable_push(colony__durable *d, colony__list *op);
/* Queues every op of ops (emptied), in order, so that they commit together
 * (one by one, the first would start a batch alone). */
void colony__durable_push_all(colony__durable *d, colony__list *ops);
/* No batch committing or waiting and nothing queued. */
int colony__durable_idle(const colony__durable *d);
/* Nonzero while the last attempt failed (until a batch commits). */
int colony__durable_failing(const colony__durable *d);
/* Delay before the next retry (0 while commits succeed). */
uint64_t colony__durable_retry_delay(const colony__durable *d);
/* Attempts made (successful or not) and ops given up. */
uint64_t colony__durable_attempts(const colony__durable *d);
size_t colony__durable_lost(const colony__durable *d);
/* Shutdown: a batch waiting for its retry gets one last attempt now; if an
 * attempt fails from now on, that batch and everything queued are given up
 * (acked with the error, counted in lost) so the committer becomes idle. */
void colony__durable_shutdown(colony__durable *d);
/* Frees d once its timer has closed. A batch still committing on the thread
 * pool cannot be stopped: call only when idle (queued ops are acked with
 * COLONY_ECANCELED and counted as lost). */
void colony__durable_close(colony__durable *d);

#endif
