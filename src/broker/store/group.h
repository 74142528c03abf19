/* Consumer groups in memory and their journal, shared by group_state.c (the
 * in-memory state), journal.c (records, replay, compaction) and group.c (the
 * API). Internal to src/broker/store/. */
#ifndef COLONY_BROKER_STORE_GROUP_H
#define COLONY_BROKER_STORE_GROUP_H

#include <string.h>
#include "broker/store/stream.h"

typedef struct bconsumer {
    char *name;
    size_t pending;
    uint64_t seen_ms; /* in memory only (XINFO CONSUMERS idle) */
} bconsumer;

struct colony__bgroup {
    colony__bstream *st;
    char *name;
    colony__bid cursor;
    int64_t entries_read; /* -1: unknown (journal: BREC_GROUP time = entries_read + 1) */
    colony__bpending *pend;
    size_t npend, cappend;
    colony__map consumers;                  /* name -> bconsumer */
    uint64_t acked, delivered, redelivered; /* since open, any door (count.c: /metrics) */
};

#define STR(s) ((colony__bstr){(s), strlen(s)})

/* group_state.c: the in-memory side; only the functions that allocate fail. */
void colony__bgroup_free_one(colony__bgroup *g);
colony__bgroup *colony__bgroup_new(colony__bstream *st, const char *name, colony__bid cursor);
bconsumer *colony__bconsumer_get(colony__bgroup *g, const char *name, int create);
size_t colony__bconsumer_drop(colony__bgroup *g, bconsumer *c);
size_t colony__bpend_find(const colony__bgroup *g, colony__bid id, int *found);
int colony__bpend_reserve(colony__bgroup *g);
/* Sets (or adds, room reserved) a pending entry; cannot fail. */
void colony__bpend_apply(colony__bgroup *g, bconsumer *c, colony__bid id, uint64_t count,
                         uint64_t last_ms, uint64_t due_ms, int deliver);
int colony__bpend_remove(colony__bgroup *g, colony__bid id);

/* journal.c */
int colony__bjournal_put(colony__bstream *st, uint8_t type, colony__bid id, uint64_t time_ms,
                         const colony__bstr *strs, size_t n);
/* Appends the records encoded in the store's encoder (st->store->enc) in
 * one write: all of them, or none and an error. */
int colony__bjournal_put_encoded(colony__bstream *st);
/* After a change is applied in memory: compacts when the journal has grown. */
void colony__bjournal_maybe_compact(colony__bstream *st);
/* A BREC_PENDING record's strings; a delivery past the cursor carries the
 * group's entries_read after it as a sixth. Returns how many. */
size_t colony__bjournal_pending_strs(const colony__bgroup *g, const colony__bpending *p,
                                     int deliver, int64_t entries_read, uint8_t nums[24],
                                     colony__bstr strs[6]);
/* count.c: counts a pending entry set to count (before it is applied). */
void colony__bgroup_count_delivery(colony__bgroup *g, colony__bid id, uint64_t count);
/* group.c: entries_read once id (past the cursor) is read, as Redis 7 counts. */
int64_t colony__bgroup_read_counter(colony__bgroup *g, colony__bid id);

#endif
