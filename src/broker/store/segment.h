/* One file of records: the framing shared by a stream's segment files and its
 * group journal, the scan that checks every record on open, and reads by
 * offset. Internal to src/broker/store/.
 *
 * A record is a 36-byte header then its body, little-endian:
 *   0  u32 crc     CRC32C of bytes 4 .. 36+len (header rest and body)
 *   4  u32 len     body length
 *   8  u8  type    BREC_* ; 3 bytes zero
 *   12 u64 ms      entry id (ms-seq): the entry, the deleted entry, ...
 *   20 u64 seq
 *   28 u64 time    wall-clock ms when written (retention by age)
 *   36 body        len bytes
 * A body of strings is u32 count, then per string u32 length and bytes. */
#ifndef COLONY_BROKER_STORE_SEGMENT_H
#define COLONY_BROKER_STORE_SEGMENT_H

#include <stddef.h>
#include <stdint.h>
#include "broker/store/store.h"

#define BREC_HEADER 36u

enum {
    BREC_ENTRY = 1,       /* a stream entry; body: its field/value strings */
    BREC_DELETE = 2,      /* XDEL tombstone; id: the entry deleted */
    BREC_FIRST = 3,       /* logical trim: entries below id are gone */
    BREC_GROUP = 10,      /* journal: group created or SETID; id: cursor; strs: name */
    BREC_UNGROUP = 11,    /* journal: group destroyed; strs: name */
    BREC_CONSUMER = 12,   /* journal: consumer added; strs: group, consumer */
    BREC_UNCONSUMER = 13, /* journal: consumer deleted with its pending */
    BREC_PENDING = 14,    /* journal: entry id delivered/claimed/nacked/extended;
                             strs: group, consumer, u64 count, u64 due ms */
    BREC_ACK = 15,        /* journal: entry id acked; strs: group */
    BREC_COUNTERS = 16,   /* journal: id: greatest id ever deleted; time: entries in
                             removed segments (XINFO's max-deleted-entry-id and
                             entries-added outlive the segments); strs: "" */
};

/* A file open for records. Refcounted: a sync in flight keeps it (and its fd)
 * alive after the store let go of it. Touched on the loop only, except fd,
 * path and dir (immutable) and dir_synced, synced_gen (commit thread only). */
typedef struct colony__bprealloc colony__bprealloc;

typedef struct bfile {
    int fd;
    int refs;            /* atomic: the preallocation thread lets go of its own */
    int dir_synced;      /* the directory entry of a new file was fsynced */
    uint64_t written;    /* writes so far (loop) */
    uint64_t synced_gen; /* `written` as of the last fdatasync (thread) */
    /* the stream's top id when the newest commit wait that covered this file
     * was issued, set once that wait is durable (loop; commit.c) */
    colony__bid durable_top;
    char *path;
    char *dir;
    /* preallocation (prealloc.c): set for the last segment and the journal
     * when the store preallocates; pa NULL otherwise */
    colony__bprealloc *pa;
    uint64_t limit;      /* never zero-fill past this (segment_bytes, ...) (loop) */
    uint64_t zero_end;   /* zero-filled, or asked to be, up to here (loop) */
    int zeroing;         /* a chunk is being zero-filled (atomic) */
    int prealloc_failed; /* a chunk failed (full disk): plain appends (atomic) */
    uv_mutex_t mu;       /* guards reserved and sealed while zeroing */
    uint64_t reserved;   /* the loop's writes end here: the thread zeroes past it */
    int sealed;          /* no more zero-filling: the file was cut to its records */
} bfile;

int colony__bfile_open(bfile **out, const char *dir, const char *name, int create);
/* prealloc.c: the store's zero-filling thread (chunk bytes at a time). */
int colony__bprealloc_new(colony__bprealloc **out, uint64_t chunk);
void colony__bprealloc_free(colony__bprealloc *p);
/* Chunks zero-filled and synced so far. */
uint64_t colony__bprealloc_chunks(const colony__bprealloc *p);
/* Zero-fills f ahead of its writes (records end at logical_end), never past
 * limit. No-op when p is NULL. */
void colony__bfile_prealloc(bfile *f, colony__bprealloc *p, uint64_t logical_end, uint64_t limit);
/* Loop, before a write to f that ends at end: keeps a running zero-fill off it. */
void colony__bfile_reserve(bfile *f, uint64_t end);
/* Loop, after a write to f that ends at end: asks for the next chunk when
 * less than half a chunk of zeros is left ahead. */
void colony__bfile_prealloc_after(bfile *f, uint64_t end);
/* Loop: f is done (a sealed segment): stops its zero-fill and cuts the
 * zeros past end. */
void colony__bfile_seal(bfile *f, uint64_t end);
bfile *colony__bfile_ref(bfile *f);
void colony__bfile_unref(bfile *f);

/* A decoded record; strs point into the reader's buffer. */
typedef struct brec {
    uint8_t type;
    colony__bid id;
    uint64_t time_ms;
    uint64_t off;  /* where the record starts in its file */
    uint64_t size; /* header + body */
    const uint8_t *body;
    uint32_t body_len;
} brec;

/* Encodes one record into a growable buffer (buf/len/cap, capped by max). */
typedef struct benc {
    uint8_t *buf;
    size_t len, cap;
} benc;
int colony__benc_record(benc *e, uint8_t type, colony__bid id, uint64_t time_ms,
                        const colony__bstr *strs, size_t n);
/* Adds a u64 as an 8-byte string to the record being built (journal counts). */
void colony__benc_free(benc *e);

/* Decodes body strings: *n set to the count; strs[i] filled up to max.
 * COLONY_EIO on a malformed body. */
int colony__brec_strs(const brec *r, colony__bstr *strs, size_t max, size_t *n);
uint64_t colony__bget64(const uint8_t *p);
void colony__bput64(uint8_t *p, uint64_t v);

/* Sequential and random reads of one file, with a buffer capped at the
 * largest record allowed. */
typedef struct breader {
    int fd;
    uint8_t *buf;
    size_t cap, max_record;
    uint64_t buf_off; /* file offset of buf[0] */
    size_t buf_len;
    unsigned fills;
} breader;
void colony__breader_init(breader *r, int fd, size_t max_record);
void colony__breader_free(breader *r);
/* Reads the record at off. 0 with rec filled, 1 at a clean end of file,
 * COLONY_EAGAIN for a torn record (short header or body, bad length, bad
 * checksum: rec->off says where), another negative error for I/O. */
int colony__breader_at(breader *r, uint64_t off, brec *rec);

uint32_t colony__crc32c(uint32_t crc, const void *data, size_t n);

#endif
