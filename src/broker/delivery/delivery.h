/* The broker's delivery engine (docs/broker.md, "Delivery"): per-stream and
 * per-group policies (durable), delivery to a group's consumers with
 * visibility timeouts, ack / nack with backoff / extend, max deliveries, dead
 * letters (list, get, replay, purge), delayed publish, per-entry TTL, max
 * length with drop-oldest or reject. It sits on the store (store/store.h) and
 * is what the HTTP API and the C client's server side call; RESP's XREADGROUP
 * reads the same groups without the policies.
 *
 * It runs on the daemon's loop thread, reads time from the clock given in its
 * options (wall-clock ms: due times are durable) and owns no timers: the
 * daemon asks colony__bdelivery_next_due() and arms one.
 *
 * Durability: every call writes to the store's page cache; the caller makes
 * it durable with colony__bcommit_wait() on the streams it names (the stream,
 * and for publish/next/nack the streams colony__bdelivery_touched() lists)
 * before it acknowledges to its client. Moves between streams (dead-lettering,
 * replay) wait for the destination's fsync themselves (options.commit) before
 * they remove the source.
 *
 * All functions return 0 (or the count stated) or a negative COLONY_E* code:
 * COLONY_ENOENT no such stream / group / entry, COLONY_EINVAL bad argument,
 * COLONY__BDELIVERY_EFULL a publish refused by max length + reject. */
#ifndef COLONY_BROKER_DELIVERY_H
#define COLONY_BROKER_DELIVERY_H

#include <stddef.h>
#include <stdint.h>
#include "broker/store/store.h"
#include "colony/clock.h"

/* Publish refused: the stream is at max length and its overflow is reject.
 * The doors answer "stream full" (HTTP 507 / RESP -ERR). */
#define COLONY__BDELIVERY_EFULL COLONY_EBUSY

typedef struct colony__bdelivery colony__bdelivery;

typedef struct colony__bdelivery_options {
    colony__bstore *store;   /* required; outlives the engine */
    colony__bcommit *commit; /* moves wait for the destination's fsync through it;
                                NULL: a move completes at once (tests, fsync never) */
    colony_clock clock;      /* wall-clock ms; zeroed = the store's clock */
    uint64_t seed;           /* jitter's PRNG seed; 0 = from the clock */
    char *msg;               /* reserved (unused): a bad policy file is logged, with its
                                line, when its stream is first used, and that call fails */
    size_t msg_size;
} colony__bdelivery_options;

/* Makes an engine on o->store; each stream's policies are read from its
 * directory when the stream is first used. Free with _close(). */
int colony__bdelivery_open(colony__bdelivery **out, const colony__bdelivery_options *o);
/* Frees the engine; moves still waiting on an fsync are finished by their
 * callbacks, which find the engine gone and do nothing (the pending entry is
 * redelivered and moved again after a restart). */
void colony__bdelivery_close(colony__bdelivery *d);
uint64_t colony__bdelivery_now(const colony__bdelivery *d);
/* The store it was opened on. */
colony__bstore *colony__bdelivery_store(const colony__bdelivery *d);

/* ---- policies (durable: written atomically to <stream dir>/policy) ---- */
enum {
    COLONY__BOVERFLOW_DROP_OLDEST = 0, /* trim the oldest entries to make room */
    COLONY__BOVERFLOW_REJECT = 1,      /* refuse the publish: COLONY__BDELIVERY_EFULL */
};
typedef struct colony__bstream_policy {
    uint64_t max_len;                            /* entries; 0 = unlimited */
    int overflow;                                /* COLONY__BOVERFLOW_* */
    uint64_t ttl_ms;                             /* default per-entry TTL; 0 = none */
    uint64_t max_age_ms, max_bytes, max_entries; /* retention by segment; 0 = none */
    int work_queue; /* retention: an entry goes once every group acked it */
} colony__bstream_policy;

enum {
    COLONY__BBACKOFF_FIXED = 0,       /* delay_ms */
    COLONY__BBACKOFF_LINEAR = 1,      /* delay_ms × count (the seed's retryDelay × retryCount) */
    COLONY__BBACKOFF_EXPONENTIAL = 2, /* delay_ms × 2^(count-1) */
};
typedef struct colony__bbackoff {
    int kind;            /* COLONY__BBACKOFF_* */
    uint64_t delay_ms;   /* the fixed delay, or the base */
    uint64_t cap_ms;     /* no delay above this; 0 = no cap */
    uint32_t jitter_pct; /* 0-100: the delay is lowered by a random 0..pct% of itself */
} colony__bbackoff;

#define COLONY__BVISIBILITY_DEFAULT_MS  30000
#define COLONY__BMAX_DELIVERIES_DEFAULT 20 /* RabbitMQ 4 quorum queues' delivery-limit */
typedef struct colony__bgroup_policy {
    uint64_t visibility_ms;   /* delivered entries come back after it; 0 = 30 s */
    uint64_t max_deliveries;  /* then dead letter; 0 = unlimited */
    colony__bbackoff backoff; /* nack without a delay */
    const char *dead_letter;  /* stream name; NULL or "" = "dlq:<stream>:<group>" */
} colony__bgroup_policy;

/* Defaults: no limits, no TTL, drop-oldest. */
void colony__bstream_policy_default(colony__bstream_policy *p);
/* Defaults: 30 s, 20 deliveries, fixed backoff of 0 (at once), derived dead letter. */
void colony__bgroup_policy_default(colony__bgroup_policy *p);
/* Sets (durably, before it returns) a stream's policy. The stream must exist. */
int colony__bdelivery_stream_policy_set(colony__bdelivery *d, const char *stream,
                                        const colony__bstream_policy *p);
/* The stream's policy (defaults when none was set); ENOENT: no stream. */
int colony__bdelivery_stream_policy_get(colony__bdelivery *d, const char *stream,
                                        colony__bstream_policy *out);
/* Sets (durably) a group's policy; the group must exist. */
int colony__bdelivery_group_policy_set(colony__bdelivery *d, const char *stream, const char *group,
                                       const colony__bgroup_policy *p);
/* The group's policy; out->dead_letter is the resolved name, owned by the
 * engine, valid until the next policy change or close. */
int colony__bdelivery_group_policy_get(colony__bdelivery *d, const char *stream, const char *group,
                                       colony__bgroup_policy *out);
/* The delay for a nack of an entry delivered count times (count >= 1) under b,
 * jitter included. */
uint64_t colony__bdelivery_backoff(colony__bdelivery *d, const colony__bbackoff *b, uint64_t count);

/* ---- publish ---- */
typedef struct colony__bpublish {
    const colony__bstr *strs; /* field, value, ... (as XADD) */
    size_t n;                 /* even */
    uint64_t deliver_at_ms;   /* not delivered to groups before; 0 = now */
    uint64_t ttl_ms;          /* expires this long after the publish (delay included);
                                 0 = the stream's */
    colony__bstr idem_key;    /* kept in the entry's metadata (colony__bstream_idem_next)
                                 with idem_count; empty = none */
    uint64_t idem_count;
} colony__bpublish;
/* Appends m to stream (created if missing) under its policy: max length
 * (drop-oldest trims, reject refuses with COLONY__BDELIVERY_EFULL), TTL and
 * delay kept in the entry's metadata (not shown by XRANGE). *out = the id. */
int colony__bdelivery_publish(colony__bdelivery *d, const char *stream, const colony__bpublish *m,
                              colony__bid *out);

/* ---- delivery ---- */
typedef struct colony__bdelivered {
    colony__bid id;
    uint64_t count;           /* deliveries including this one (1 = first) */
    uint64_t time_ms;         /* when it was appended */
    uint64_t due_ms;          /* redelivered from then unless acked or extended */
    const colony__bstr *strs; /* field, value, ...: valid during the callback only */
    size_t n;
} colony__bdelivered;
/* Per entry handed out; return 0 to go on, <0 to stop with that error (the
 * entry stays pending: it comes back after the visibility timeout). */
typedef int (*colony__bdelivered_cb)(void *ud, const colony__bdelivered *e);

/* Gives consumer of group (the group and consumer are created if missing;
 * the group at the start of the stream) up to count entries (0 = 1): first
 * pending entries whose due time has passed (redelivered, count + 1), then
 * new ones (due = now + visibility). An entry past max deliveries, or
 * expired, goes to the dead-letter stream instead; a new entry not yet
 * deliverable (delayed) becomes a pending entry with no owner ("") and count
 * 0, due at its time. Returns how many were given to cb. */
long colony__bdelivery_next(colony__bdelivery *d, const char *stream, const char *group,
                            const char *consumer, size_t count, colony__bdelivered_cb cb, void *ud);
/* Acks ids in group: returns how many were pending (and now are not). */
long colony__bdelivery_ack(colony__bdelivery *d, const char *stream, const char *group,
                           const colony__bid *ids, size_t n);
/* Gives id back: due = now + delay_ms, or, when delay_ms is UINT64_MAX, now +
 * the group's backoff for its count. error (may be NULL) is kept (durably,
 * with the next commit wait) as the entry's last error. At max deliveries the
 * entry is dead-lettered at once (reason max-deliveries); dead_letter = 1
 * dead-letters it now (reason rejected). ENOENT: not pending. */
#define COLONY__BNACK_BACKOFF UINT64_MAX
int colony__bdelivery_nack(colony__bdelivery *d, const char *stream, const char *group,
                           colony__bid id, uint64_t delay_ms, const char *error, size_t error_len,
                           int dead_letter);
/* More time: due = now + ms. ENOENT: not pending. */
int colony__bdelivery_extend(colony__bdelivery *d, const char *stream, const char *group,
                             colony__bid id, uint64_t ms);
/* When the next entry of group becomes deliverable: now if new entries wait
 * or a pending entry is due, else the earliest due time; UINT64_MAX: none.
 * With stream NULL: the earliest over every group of every stream (groups
 * read only over RESP count too: a daemon arms its timer from the groups it
 * has waiters on, else it would wake for entries nobody here asks for). */
uint64_t colony__bdelivery_next_due(colony__bdelivery *d, const char *stream, const char *group);
/* Streams written by the last publish / next / nack / replay besides the one
 * named in the call (dead-letter streams, replay destinations): the caller
 * waits on them too. Returns the i-th, NULL past the end. */
colony__bstream *colony__bdelivery_touched(const colony__bdelivery *d, size_t i);

/* ---- dead letters ----
 * A dead-letter stream is an ordinary stream. Each entry's fields are the
 * original's fields, then these (reserved names, so a view shows them):
 *   dlq-stream, dlq-group, dlq-id, dlq-reason (max-deliveries | rejected |
 *   expired), dlq-error, dlq-count, dlq-time (ms). */
typedef struct colony__bdead {
    colony__bid id;                      /* in the dead-letter stream */
    const char *stream, *group, *reason; /* not NUL-terminated: lengths below */
    size_t stream_len, group_len, reason_len;
    colony__bid original;
    const char *error;
    size_t error_len;
    uint64_t count, time_ms;
    const colony__bstr *strs; /* the original fields */
    size_t n;
} colony__bdead;
typedef int (*colony__bdead_cb)(void *ud, const colony__bdead *e);
/* Dead letters of dlq (a dead-letter stream's name) with start <= id <= end,
 * at most count (0 = all), in id order. Returns how many were given to cb. */
long colony__bdelivery_dead_list(colony__bdelivery *d, const char *dlq, colony__bid start,
                                 colony__bid end, size_t count, colony__bdead_cb cb, void *ud);
/* Re-publishes the dead letters in [start, end] (start == end: one) to their
 * original streams as new entries, and deletes each from dlq once its copy is
 * durable (through options.commit). Returns how many were re-published. */
long colony__bdelivery_dead_replay(colony__bdelivery *d, const char *dlq, colony__bid start,
                                   colony__bid end);
/* Deletes the dead letters with id <= upto (bs max = all). Returns how many. */
long colony__bdelivery_dead_purge(colony__bdelivery *d, const char *dlq, colony__bid upto);

#endif
