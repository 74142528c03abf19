/* Deferred answers of the registry: blocking queries and write acks, answered
 * once what they show is committed. Used by the API routes and the daemon. */
#ifndef COLONY_REGISTRY_WAITERS_H
#define COLONY_REGISTRY_WAITERS_H

#include <jansson.h>
#include <stdint.h>
#include "colony/http_server.h"
#include "core/list.h"
#include "registry/registry_internal.h"

enum { TOPIC_NONE, TOPIC_SERVICE, TOPIC_CATALOG, TOPIC_CHECKS, TOPIC_KV_KEY, TOPIC_KV_PREFIX };
typedef struct reg_topic {
    int kind;
    const char *name; /* in the request arena */
} reg_topic;

typedef void (*reg_render_cb)(registry *reg, colony_request *req);
typedef struct reg_waiter reg_waiter;

/* Answers a read now or parks it: when the request has ?index=N it waits until
 * the topic's index passes N (or wait elapses); it never answers with an index
 * that is not committed yet. render writes the answer. */
void colony__reg_serve_read(registry *reg, colony_request *req, const reg_topic *topic,
                            reg_render_cb render);
/* Answers a write once everything up to reg->index is committed. body may be
 * NULL (empty); it is stolen. */
void colony__reg_ack_write(registry *reg, colony_request *req, int status, json_t *body);
/* A batch could not be committed: fails every pending ack (500), since a
 * write's ops may span that batch and the next. */
void colony__reg_waiters_failed(registry *reg);
/* Shutdown: answers every parked read whose index is committed; the others
 * wait for their commit, or get 503 when it fails (colony__reg_waiters_failed
 * with reg->shutting_down set). */
void colony__reg_waiters_flush(registry *reg);
/* Empty lists of parked reads and acks; before any other waiters call. */
void colony__reg_waiters_init(registry *reg);
/* Re-checks waiters after a commit touching ops (reg_op.node). */
void colony__reg_waiters_committed(registry *reg, const colony__list *ops);
uint64_t colony__reg_topic_index(registry *reg, const reg_topic *topic);
/* Sets X-Consul-Index (never 0) and the other Consul headers. */
void colony__reg_set_index_headers(colony_request *req, uint64_t index);

#endif
