/* A stream's in-memory shape, shared by the parts of the store: log.c (open,
 * scan, append), read.c (ranges, delete, trim, retention), group.c (journal),
 * store.c (the data dir) and commit.c (fsync). Internal to src/broker/store/. */
#ifndef COLONY_BROKER_STORE_STREAM_H
#define COLONY_BROKER_STORE_STREAM_H

#include "broker/store/segment.h"
#include "broker/store/store.h"
#include "core/map.h"

typedef struct bindex {
    colony__bid id;
    uint64_t off;
} bindex;

/* One segment file: named by its first entry's id. Its sparse index holds the
 * first entry and then one entry in every index_every, so memory per segment
 * is bounded by its size over index_every, never by the entries read. */
typedef struct bseg {
    colony__bid first, last; /* entry ids */
    uint64_t entries;        /* entry records */
    uint64_t live;           /* entries neither deleted nor below the first id */
    uint64_t bytes;          /* file size: where the next record goes */
    uint64_t last_time;      /* wall-clock ms of its newest entry */
    uint64_t since_index;
    bfile *file;
    bindex *index;
    size_t nindex, capindex;
} bseg;

struct colony__bstore {
    colony__bstore_options o;
    char *dir; /* <data>/streams */
    int lock_fd;
    colony__map streams;   /* name -> colony__bstream */
    colony__map damaged;   /* name -> why (string): streams that did not open */
    benc enc;              /* scratch record encoder */
    colony__bprealloc *pa; /* zero-fill thread (prealloc.c), NULL without prealloc_bytes */
    colony__bstr *strs;    /* scratch decoded strings */
    size_t capstrs;
};

struct colony__bstream {
    colony__bstore *store;
    char *name;
    char *dir;
    bseg **segs;
    size_t nsegs, capsegs;
    colony__bid first; /* first id marker (logical trim); entries below are gone */
    colony__bid top;   /* greatest id ever added */
    uint64_t length, bytes;
    uint64_t removed_entries; /* entry records in segments removed (entries-added) */
    colony__bid max_deleted;  /* greatest id XDEL removed (max-deleted-entry-id) */
    colony__bid *deleted;     /* sorted ids of tombstoned entries at or past first */
    size_t ndeleted, capdeleted;
    bfile *unsynced[4]; /* sealed segments written since the last commit wait */
    size_t nunsynced;
    /* read hint: the offset just after entry hint_id in hint_seg, so a
     * consumer reading on from where it stopped starts there, not at the
     * index point before it */
    bseg *hint_seg;
    colony__bid hint_id;
    uint64_t hint_off;
    int range_depth; /* colony__bstream_range calls running (their callbacks must not read) */
    bfile *journal;
    uint64_t journal_bytes, journal_at_compact;
    colony__map groups; /* name -> colony__bgroup */
    /* notes.c, loaded on first use */
    struct colony__bnotes *notes;
    colony__bstr idem_key; /* meta.c: the next append's idempotency key (borrowed) */
    uint64_t idem_count;
};

/* log.c */
void colony__bseg_free(bseg *g);
int colony__bseg_note_entry(bseg *g, colony__bid id, uint64_t time_ms, uint64_t off,
                            uint32_t every);
int colony__bstream_push_seg(colony__bstream *st, bseg *g);
int colony__bstream_open(colony__bstore *s, const char *name, const char *dir, int create,
                         colony__bstream **out, char *msg, size_t msg_size);
void colony__bstream_free(colony__bstream *st);
/* append.c: writes the record in s->enc to the stream's last segment (rolling to a new
 * one named by roll_id when roll_id is given and the segment is full). */
int colony__bstream_write(colony__bstream *st, const colony__bid *roll_id, bseg **seg_out,
                          uint64_t *off_out);
int colony__bstream_deleted_find(const colony__bstream *st, colony__bid id, size_t *pos);
bseg *colony__bstream_seg_for(const colony__bstream *st, colony__bid id, size_t *pos);
/* segment.c: writes all of buf at off, or cuts the file back to off and fails. */
int colony__bwrite_all(bfile *f, const uint8_t *buf, size_t len, uint64_t off);
/* Checks every record of f: 0 with *end = the size of the valid part.
 * cut_tail (the last file written): from a bad record on, the file is cut
 * (and kept aside in <file>.damaged-<offset> if valid records follow);
 * otherwise a bad record is COLONY_EIO with msg naming file and offset.
 * rec_cb gets each record. */
typedef int (*brec_cb)(void *ud, const brec *r);
int colony__bscan(bfile *f, size_t max_record, int cut_tail, brec_cb cb, void *ud, uint64_t *end,
                  char *msg, size_t msg_size);
int colony__bstore_strs(colony__bstore *s, size_t n);
int colony__bdir_sync(const char *dir);

/* read.c: entry records of g below id (deleted or not). */
long colony__bseg_count_below(colony__bstream *st, bseg *g, colony__bid id);

/* notes.c */
void colony__bnotes_free(colony__bstream *st);
/* Makes f part of what the next colony__bcommit_wait on st syncs. */
int colony__bstream_sync_later(colony__bstream *st, bfile *f);
/* journal.c: records the counters (after segments were removed). Best effort. */
void colony__bjournal_counters(colony__bstream *st);

/* group.c */
int colony__bgroups_open(colony__bstream *st, int create, char *msg, size_t msg_size);
void colony__bgroups_free(colony__bstream *st);

#endif
