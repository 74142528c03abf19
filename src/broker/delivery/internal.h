/* The delivery engine's insides, shared by its files: engine.c (open, clock,
 * backoff, touched streams), policy.c (policies and their files), publish.c,
 * deliver.c (next, ack, nack, extend, next_due) and dead.c (dead letters).
 * Internal to src/broker/delivery/. */
#ifndef COLONY_BROKER_DELIVERY_INTERNAL_H
#define COLONY_BROKER_DELIVERY_INTERNAL_H

#include "broker/delivery/delivery.h"
#include "core/map.h"

#define BD_TOUCHED_MAX 16

/* Shared with moves waiting on an fsync, so a callback that runs after
 * colony__bdelivery_close finds the engine gone. */
typedef struct bd_life {
    colony__bdelivery *d; /* NULL once closed */
    size_t refs;
} bd_life;

typedef struct bd_group_pol {
    colony__bgroup_policy p;
    char *dead_letter; /* as set; NULL = derived */
    char *resolved;    /* what _get returns */
} bd_group_pol;

/* A stream's policies, loaded from <stream>/policy on first use. */
typedef struct bd_pol {
    colony__bstream *st; /* the stream they were loaded for */
    colony__bstream_policy p;
    colony__map groups; /* group name -> bd_group_pol */
} bd_pol;

struct colony__bdelivery {
    colony__bstore *store;
    colony__bcommit *commit;
    colony_clock clock;
    uint64_t rng;
    bd_life *life;
    colony__map pols; /* stream name -> bd_pol */
    colony__bstream *touched[BD_TOUCHED_MAX];
    size_t ntouched;
};

/* engine.c */
void colony__bd_touch(colony__bdelivery *d, colony__bstream *st);
/* policy.c: the stream's policies (loaded or defaults); NULL only on ENOMEM / I/O. */
bd_pol *colony__bd_pol(colony__bdelivery *d, colony__bstream *st, int *err);
/* The group's policy with its dead-letter name resolved. */
int colony__bd_group_pol(colony__bdelivery *d, colony__bstream *st, const char *group,
                         colony__bgroup_policy *out);
void colony__bd_pols_free(colony__bdelivery *d);

/* publish.c: entry metadata (a record's odd last string): 'M', then per item
 * a tag byte and a big-endian u64. */
enum { BD_META_DELIVER_AT = 1, BD_META_EXPIRE_AT = 2 };
typedef struct bd_meta {
    uint64_t deliver_at, expire_at; /* 0 = none */
} bd_meta;
void colony__bd_meta_parse(colony__bstr m, bd_meta *out);
/* colony__bdelivery_publish without resetting the touched streams (replay). */
int colony__bd_publish(colony__bdelivery *d, const char *stream, const colony__bpublish *m,
                       colony__bid *out);
/* Retention after a publish or an ack (work-queue). */
void colony__bd_retain(colony__bdelivery *d, colony__bstream *st);

/* dead.c: moves pending entry id of g to the group's dead-letter stream
 * (reason, count, the last error note) and acks it once the copy is durable;
 * an entry no longer in the stream is just acked. */
int colony__bd_dead_letter(colony__bdelivery *d, colony__bstream *st, colony__bgroup *g,
                           colony__bid id, const char *reason, uint64_t count);

#endif
