/* The broker's durable storage (docs/broker.md, "Storage"): one append-only
 * stream per name, kept as segment files with a checksum per record, and per
 * stream its consumer groups (cursor, pending entries with owner, delivery
 * count, last-delivery and due times, consumers) kept in a checksummed group
 * journal. No networking: the daemon (RESP and HTTP) calls this on its loop
 * thread; nothing here is thread-safe except what colony__bcommit runs on the
 * thread pool.
 *
 * Writes go to the page cache when the call returns; they are durable once a
 * colony__bcommit_wait() issued after them has called back with 0 (fsync:
 * always). Ids are Redis stream ids (ms-seq). All functions return 0 (or the
 * count stated) or a negative COLONY_E* code. */
#ifndef COLONY_BROKER_STORE_H
#define COLONY_BROKER_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "colony/clock.h"

typedef struct colony__bid {
    uint64_t ms, seq;
} colony__bid;

typedef struct colony__bstr {
    const char *data;
    size_t len;
} colony__bstr;

/* <0, 0, >0 as a is below, equal to, above b. */
int colony__bid_cmp(colony__bid a, colony__bid b);

typedef struct colony__bstore colony__bstore;
typedef struct colony__bstream colony__bstream;
typedef struct colony__bgroup colony__bgroup;

typedef struct colony__bstore_options {
    const char *dir;                /* data dir (created); flock'ed while open */
    uint64_t segment_bytes;         /* roll to a new segment past this; 0 = 64 MiB */
    uint32_t index_every;           /* sparse index: one (id, offset) per N entries; 0 = 64 */
    size_t max_record;              /* largest record; 0 = 16 MiB */
    uint64_t journal_compact_bytes; /* compact a group journal past this; 0 = 4 MiB */
    colony_clock clock;             /* wall-clock ms (ids, ages); zeroed = CLOCK_REALTIME */
    int roll_unsynced; /* 1: no fdatasync of a segment as it is sealed (for fsync: never);
                          0: sealed segments are whole on disk before the next one
                          is written, so a crash can only tear the last one */
    /* zero-fill the last segment and the group journal this far ahead of
     * their writes (a thread of the store), so a commit's fdatasync is an
     * overwrite, not an append that grows the file (docs/broker.md,
     * "Storage"); 0 = no preallocation. Skipped on tmpfs and on a disk with
     * less than 16 chunks free. */
    uint64_t prealloc_bytes;
} colony__bstore_options;

/* Opens (creating) the data dir and every stream in it: each segment's records
 * are checked; a torn tail of a stream's last segment (or journal) is cut and
 * logged (kept aside in <file>.damaged-<offset> when valid records follow the
 * bad one); a bad record in an older segment leaves that stream closed
 * (colony__bstore_damaged says why, naming file and offset) while the others
 * open. COLONY_EBUSY when another process holds the dir.
 * Free with colony__bstore_close(). */
int colony__bstore_open(colony__bstore **out, const colony__bstore_options *opts, char *msg,
                        size_t msg_size);
/* Closes every stream (files still referenced by a commit in flight are
 * closed when it ends) and releases the lock. */
void colony__bstore_close(colony__bstore *s);
uint64_t colony__bstore_now(const colony__bstore *s);

/* The stream named name, or NULL. Names are C strings. */
colony__bstream *colony__bstore_get(colony__bstore *s, const char *name);
/* Why the stream name did not open (damaged), or NULL. */
const char *colony__bstore_damaged(const colony__bstore *s, const char *name);
/* Iteration over the damaged streams: returns a name (why in *why), NULL at the end. */
const char *colony__bstore_damaged_next(const colony__bstore *s, size_t *pos, const char **why);
/* Creates a stream (its directory, fsynced). COLONY_EEXIST if it exists,
 * COLONY_EIO if a damaged stream has that name. */
int colony__bstore_create(colony__bstore *s, const char *name, colony__bstream **out);
/* Deletes a stream and its files (DEL; a damaged one too). COLONY_ENOENT if absent. */
int colony__bstore_drop(colony__bstore *s, const char *name);
/* Iteration: start with *pos = 0; NULL at the end. No create/drop meanwhile. */
colony__bstream *colony__bstore_next(const colony__bstore *s, size_t *pos);

typedef struct colony__bstream_info {
    const char *name;
    uint64_t length;   /* entries visible (XLEN) */
    uint64_t bytes;    /* bytes of its segment files */
    uint64_t segments; /* segment files */
    colony__bid first; /* first visible entry (0-0 when empty) */
    colony__bid last;  /* last entry visible */
    colony__bid top;   /* greatest id ever added (XADD refuses ids <= top) */
    size_t groups;
    uint64_t entries_added;  /* entries ever appended (XINFO entries-added) */
    colony__bid max_deleted; /* greatest id XDEL removed, 0-0 if none */
} colony__bstream_info;
/* (Reads the first and last entries: not const.) */
void colony__bstream_info_get(colony__bstream *st, colony__bstream_info *out);

/* ---- entries ---- */
enum {
    COLONY__BID_AUTO = 0,     /* "*": now-ms, next seq */
    COLONY__BID_AUTO_SEQ = 1, /* "ms-*": given ms, next seq */
    COLONY__BID_EXPLICIT = 2, /* "ms-seq" */
};
/* Appends an entry of n strings (field, value, ...). COLONY_ERANGE: the id is
 * equal or smaller than the stream's top item (or top is the last possible
 * id); COLONY_EINVAL: id 0-0;
 * COLONY_E2BIG: over max_record; I/O errors (the file is cut back to before
 * the record, so nothing half-written stays). *out = the id given. */
int colony__bstream_append(colony__bstream *st, int id_mode, colony__bid id,
                           const colony__bstr *strs, size_t n, colony__bid *out);

typedef struct colony__bentry {
    colony__bid id;
    uint64_t time_ms; /* when it was appended */
    const colony__bstr *strs;
    size_t n;
    /* The entry's metadata section (the delivery engine's delay and TTL,
     * store/meta.c): a record with an odd number of strings keeps it in the
     * last one, which views do not show. Empty for entries XADD wrote (XADD
     * always writes pairs). */
    colony__bstr meta;
} colony__bentry;
/* Called per entry; e and its strings are valid during the call only (they
 * live in a scratch buffer of the store). It may change group state (record a
 * delivery) but must not read, append, delete, trim or retain in the store.
 * Return 0 to go on, >0 to stop, <0 to stop with that error. */
typedef int (*colony__bentry_cb)(void *ud, const colony__bentry *e);
/* Entries with start <= id <= end, forward or (reverse) backward, at most
 * count (0 = all). Returns the number of entries given to cb, or an error
 * (COLONY_EIO for a record whose checksum fails, logged with file and offset). */
long colony__bstream_range(colony__bstream *st, colony__bid start, colony__bid end, int reverse,
                           size_t count, colony__bentry_cb cb, void *ud);
/* XDEL of one id: 1 deleted (a tombstone is written), 0 not there. */
int colony__bstream_delete(colony__bstream *st, colony__bid id);
/* XTRIM exact: keeps the newest maxlen entries / the entries >= minid. A
 * "first id" record makes it exact; whole segments below it are removed.
 * Returns the number of entries removed. */
long colony__bstream_trim_maxlen(colony__bstream *st, uint64_t maxlen);
long colony__bstream_trim_minid(colony__bstream *st, colony__bid minid);

/* Retention by whole segments (the segment being written is kept): a sealed
 * segment goes when its newest entry is older than max_age_ms, while the
 * stream is over max_bytes, while the entries left would still be at least
 * max_entries, or when all its entries are below needed (acked by every group:
 * the caller gives the lowest id still needed). 0 = no limit. A first-id
 * record keeps a removed file out should a crash bring it back. Returns the
 * number of segments removed. */
typedef struct colony__bretention {
    uint64_t max_age_ms, max_bytes, max_entries;
    colony__bid needed;
} colony__bretention;
long colony__bstream_retain(colony__bstream *st, const colony__bretention *r);

/* ---- consumer groups (durable in the stream's journal) ---- */
typedef struct colony__bpending {
    colony__bid id;
    const char *consumer;
    uint64_t count;   /* deliveries so far */
    uint64_t last_ms; /* last delivery */
    uint64_t due_ms;  /* redeliverable from (visibility timeout, nack delay) */
} colony__bpending;

typedef struct colony__bgroup_info {
    const char *name;
    colony__bid cursor; /* last delivered id */
    size_t pending, consumers;
    int64_t entries_read; /* Redis 7's logical read counter of cursor; -1 unknown */
} colony__bgroup_info;

/* COLONY_EEXIST (BUSYGROUP) if it exists. */
int colony__bgroup_create(colony__bstream *st, const char *name, colony__bid cursor,
                          colony__bgroup **out);
colony__bgroup *colony__bgroup_get(colony__bstream *st, const char *name);
/* Iteration as colony__bstore_next. */
colony__bgroup *colony__bgroup_next(colony__bstream *st, size_t *pos);
int colony__bgroup_destroy(colony__bstream *st, const char *name);
int colony__bgroup_setid(colony__bgroup *g, colony__bid cursor);
/* SETID with Redis 7's ENTRIESREAD (-1: unknown, as SETID without it). */
int colony__bgroup_setid_read(colony__bgroup *g, colony__bid cursor, int64_t entries_read);
/* Moves the cursor to id (past it) without a pending entry (XREADGROUP
 * NOACK), counting the read as Redis 7 does. */
int colony__bgroup_advance(colony__bgroup *g, colony__bid id);
void colony__bgroup_info_get(const colony__bgroup *g, colony__bgroup_info *out);
/* 1 when the stream has a visible entry past the group's cursor (what
 * XREADGROUP ">" would give), without reading the stream in the usual case. */
int colony__bgroup_has_new(colony__bgroup *g);
/* Redis 7's lag of the group (entries not yet delivered): 1 with *lag set,
 * 0 when it cannot be known (XDEL fragments what is ahead). */
int colony__bgroup_lag(colony__bgroup *g, int64_t *lag);
/* 1 created, 0 it existed. */
int colony__bgroup_consumer_add(colony__bgroup *g, const char *consumer);
/* Iteration over consumers: start with *pos = 0; NULL at the end, else the
 * consumer's name with *pending = the entries it holds. No changes meanwhile. */
const char *colony__bgroup_consumer_next(const colony__bgroup *g, size_t *pos, size_t *pending);
/* A consumer's last-seen time (Redis 7.0's seen-time: set when it is created
 * or used by a read or a claim; in memory only: a restart sets it to the
 * time of the restart). 1 found, 0 no such consumer. */
int colony__bgroup_consumer_seen(const colony__bgroup *g, const char *consumer, uint64_t *seen_ms,
                                 size_t *pending);
/* Marks consumer as seen now (no-op if absent). */
void colony__bgroup_consumer_touch(colony__bgroup *g, const char *consumer);
/* Removes a consumer and its pending entries: returns how many it held, or
 * COLONY_ENOENT. */
long colony__bgroup_consumer_delete(colony__bgroup *g, const char *consumer);
/* Records a delivery of id to consumer (created if new): its count goes up
 * by one (a new pending entry starts at 1), last_ms = now, due_ms as given,
 * and the cursor moves to id if id is past it. */
int colony__bgroup_deliver(colony__bgroup *g, const char *consumer, colony__bid id,
                           uint64_t due_ms);
/* XREADGROUP ">": the next entries after the group's cursor (at most count,
 * 0 = all), each recorded as delivered to consumer (due at due_ms) before it
 * is given to cb. Returns how many were delivered, or an error (those
 * delivered before it stay pending). */
long colony__bgroup_read_new(colony__bgroup *g, const char *consumer, size_t count, uint64_t due_ms,
                             colony__bentry_cb cb, void *ud);
/* XREADGROUP ">" of entries the caller has read (ids ascending, past the
 * cursor or pending already): each recorded as a first delivery to consumer
 * (count 1, last = now, due at due_ms, the cursor past it), in one journal
 * write: all of them, or none (memory as before) and an error. Returns n. */
long colony__bgroup_deliver_new(colony__bgroup *g, const char *consumer, const colony__bid *ids,
                                size_t n, uint64_t due_ms);
/* XACK of n ids in one journal write, all or none: how many were pending. */
long colony__bgroup_ack_many(colony__bgroup *g, const colony__bid *ids, size_t n);
/* XCLAIM / nack / extend: sets a pending entry's owner, count, last and due
 * times as given. COLONY_ENOENT if id is not pending. */
int colony__bgroup_update(colony__bgroup *g, const char *consumer, colony__bid id, uint64_t count,
                          uint64_t last_ms, uint64_t due_ms);
/* XCLAIM ... FORCE: sets the pending entry for id (created if absent) without
 * moving the cursor. */
int colony__bgroup_claim(colony__bgroup *g, const char *consumer, colony__bid id, uint64_t count,
                         uint64_t last_ms, uint64_t due_ms);
/* 1 acked, 0 it was not pending. */
int colony__bgroup_ack(colony__bgroup *g, colony__bid id);
/* The pending entry for id, or NULL (valid until the next change). */
const colony__bpending *colony__bgroup_pending(const colony__bgroup *g, colony__bid id);
/* Pending entries in id order from start, at most count, of one consumer
 * (or all when consumer is NULL). cb as for entries; returns the number given. */
typedef int (*colony__bpending_cb)(void *ud, const colony__bpending *p);
long colony__bgroup_pending_range(const colony__bgroup *g, colony__bid start, colony__bid end,
                                  const char *consumer, size_t count, colony__bpending_cb cb,
                                  void *ud);

/* ---- for the delivery engine (docs/broker.md, "Delivery") ---- */
/* meta.c: the stream's name and entries visible (XLEN), without the reads
 * colony__bstream_info_get makes. */
const char *colony__bstream_name(const colony__bstream *st);
uint64_t colony__bstream_length(const colony__bstream *st);
/* count.c: entries visible after id (a group's lag from its cursor), in
 * O(segments + log n) plus one read of at most index_every records; <0 on a
 * read error. */
int64_t colony__bstream_count_after(const colony__bstream *st, colony__bid id);
/* count.c: entries ever appended (XINFO's entries-added), without a read. */
uint64_t colony__bstream_added(const colony__bstream *st);
/* count.c: a group's acks and deliveries since the store opened, from every
 * door (XACK, XREADGROUP, XCLAIM, the HTTP API, the engine's own acks when it
 * moves an entry to the dead letters). A delivery is a pending entry's count
 * going up; a redelivery one whose count goes past 1. */
typedef struct colony__bgroup_stats {
    uint64_t acked, delivered, redelivered;
} colony__bgroup_stats;
void colony__bgroup_stats_get(const colony__bgroup *g, colony__bgroup_stats *out);
/* append.c: the greatest id ever added (info.top) without those reads: XADD
 * checks it on every call. */
colony__bid colony__bstream_top(const colony__bstream *st);
/* meta.c: colony__bstream_append with a metadata section (meta.len > 0) after
 * the n strings (n even); it reads back as colony__bentry.meta. */
int colony__bstream_append_meta(colony__bstream *st, int id_mode, colony__bid id,
                                const colony__bstr *strs, size_t n, colony__bstr meta,
                                colony__bid *out);
/* meta.c: the metadata items: 'M', then per item a tag byte and a
 * big-endian u64; unknown tags are skipped. The key item is last: its u64 is
 * the key's length and the key's bytes follow (a reader stops there). */
enum {
    COLONY__BMETA_DELIVER_AT = 1, /* delivery/: not delivered before (ms) */
    COLONY__BMETA_EXPIRE_AT = 2,  /* delivery/: expires at (ms) */
    COLONY__BMETA_IDEM_COUNT = 3, /* entries of the keyed publish this one belongs to */
    COLONY__BMETA_IDEM_KEY = 4,   /* the publish's idempotency key (last) */
};
#define COLONY__BMETA_KEY_MAX 1400 /* a topic publish's key holds its topic (1024) */
/* meta.c: the next colony__bstream_append_meta on st (that one only: it is
 * cleared then) also keeps key, the idempotency key of a publish of count
 * entries, in the entry's metadata. key stays the caller's and must live
 * until that append; a caller that may not reach an append (a refused
 * publish) clears it with an empty key. This way the delivery engine's
 * publish carries the key without a change to its API. */
void colony__bstream_idem_next(colony__bstream *st, colony__bstr key, uint64_t count);
/* meta.c: 1 with the entry's idempotency key and its publish's entry count, 0
 * if it has none. */
int colony__bmeta_idem(colony__bstr meta, colony__bstr *key, uint64_t *count);
/* meta.c: a small file in the stream's directory (policies), replaced
 * atomically (temp file, fsync, rename, fsync dir) before it returns. name is
 * a plain file name not ending in .seg or .jnl. */
int colony__bstream_file_put(colony__bstream *st, const char *name, const void *data, size_t len);
/* Reads it whole into *data (colony__malloc'd, NUL-terminated, the caller
 * frees). COLONY_ENOENT if absent. */
int colony__bstream_file_get(colony__bstream *st, const char *name, char **data, size_t *len);
/* notes.c: one text per (group, entry id): the last error sent with a nack.
 * Kept in <stream>/notes.jnl (checksummed records, compacted), durable with
 * the next colony__bcommit_wait on st. Replaces an older note. */
int colony__bnote_put(colony__bstream *st, const char *group, colony__bid id, const char *text,
                      size_t len);
/* 0 with *out (valid until the next note change), or COLONY_ENOENT. */
int colony__bnote_get(colony__bstream *st, const char *group, colony__bid id, colony__bstr *out);
/* 1 dropped, 0 there was none. */
int colony__bnote_drop(colony__bstream *st, const char *group, colony__bid id);

/* ---- durability: fsync always / batch / never ---- */
typedef enum colony__bsync_mode {
    COLONY__BSYNC_ALWAYS = 0, /* ack after fsync (group-committed) */
    COLONY__BSYNC_BATCH = 1,  /* ack now; fsync every interval: a crash loses up to it */
    COLONY__BSYNC_NEVER = 2,  /* ack now; the OS writes back: a crash of the machine loses
                                 what it had not written (a crash of the process loses nothing) */
} colony__bsync_mode;

typedef struct colony__bcommit colony__bcommit;
typedef void (*colony__bcommit_cb)(void *ud, int err);
/* A committer on loop (kit/durable's group commit). interval_ms for BATCH
 * (0 = 100 ms). Free with colony__bcommit_close() once idle. */
int colony__bcommit_new(colony__bcommit **out, uv_loop_t *loop, colony__bsync_mode mode,
                        uint64_t interval_ms);
/* Calls cb once everything written to st so far (entries and group journal)
 * is as durable as the mode makes it: after its fsync in ALWAYS, at once in
 * the others. Returns 0 (cb will run, possibly before this returns in BATCH
 * and NEVER) or COLONY_ENOMEM (it will not). */
int colony__bcommit_wait(colony__bcommit *c, colony__bstream *st, colony__bcommit_cb cb, void *ud);
int colony__bcommit_idle(const colony__bcommit *c);
/* The greatest id at or below which every entry of st is durable (a commit wait
 * issued after it has called back with 0), 0-0 when not known; st's top in
 * the modes that do not wait for the disk. XREADGROUP gives these without
 * waiting for a commit of its own (docs/broker.md, "Delivery records"). */
colony__bid colony__bcommit_durable_top(const colony__bcommit *c, const colony__bstream *st);
/* fdatasyncs made so far (a file not written since its last one is skipped). */
uint64_t colony__bcommit_fsyncs(const colony__bcommit *c);
/* Calls cb with each fdatasync's duration in seconds, on the thread pool
 * (cb must be thread-safe: a metrics histogram). Set before the first wait. */
typedef void (*colony__bcommit_fsync_cb)(void *ud, double seconds);
void colony__bcommit_on_fsync(colony__bcommit *c, colony__bcommit_fsync_cb cb, void *ud);
/* Gives up a failing batch at once (see kit/durable), stops the timer. */
void colony__bcommit_shutdown(colony__bcommit *c);
void colony__bcommit_close(colony__bcommit *c);

#endif
