/* Topics and bindings (docs/broker.md, "Topics"): a binding maps a topic name
 * or a glob pattern (Redis's syntax, glob.c: `order.*`) to a stream; a
 * publish to a topic appends to every stream bound to it. Bindings are
 * durable: the whole table is rewritten atomically (temp file, fsync, rename,
 * fsync dir) on each change, before the call returns. Runs on the daemon's
 * loop thread; no networking. Topic names are binary (RESP channels). */
#ifndef COLONY_BROKER_TOPIC_H
#define COLONY_BROKER_TOPIC_H

#include <stddef.h>
#include <stdint.h>
#include "broker/delivery/delivery.h"

typedef struct colony__btopics colony__btopics;

/* Loads the bindings kept in the file path (e.g. <data-dir>/bindings; absent
 * = none). A malformed file fails with msg naming file, line and reason.
 * Free with colony__btopics_close(). */
int colony__btopics_open(colony__btopics **out, const char *path, char *msg, size_t msg_size);
void colony__btopics_close(colony__btopics *t);

/* Binds pattern (an exact topic name, or a glob when it has * ? [ or \) to
 * stream; durable when it returns. COLONY_EEXIST if that binding exists,
 * COLONY_EINVAL for an empty pattern or stream name. */
int colony__btopics_bind(colony__btopics *t, const char *pattern, size_t pattern_len,
                         const char *stream);
/* Removes the binding; durable when it returns. COLONY_ENOENT if absent. */
int colony__btopics_unbind(colony__btopics *t, const char *pattern, size_t pattern_len,
                           const char *stream);
/* Iteration over the bindings, in the order they were made: start with
 * *pos = 0; returns 0 with the binding's pattern (and its length) and stream,
 * or COLONY_ENOENT at the end. Pointers valid until the next change. */
int colony__btopics_next(const colony__btopics *t, size_t *pos, const char **pattern,
                         size_t *pattern_len, const char **stream);
/* Number of bindings. */
size_t colony__btopics_count(const colony__btopics *t);

/* Calls cb once per stream bound to topic (several bindings to one stream
 * count once), in binding order. Returns the number of streams, or the
 * first error cb returned (<0). */
typedef int (*colony__btopic_stream_cb)(void *ud, const char *stream);
long colony__btopics_match(const colony__btopics *t, const char *topic, size_t topic_len,
                           colony__btopic_stream_cb cb, void *ud);

/* One stream a publish went to: what the caller waits on. */
typedef struct colony__btopic_target {
    const char *stream;  /* bound stream's name (the binding's; valid until a change) */
    colony__bstream *st; /* NULL when err */
    colony__bid id;      /* the entry appended */
    int err;             /* 0, or why this stream refused (COLONY__BDELIVERY_EFULL...) */
} colony__btopic_target;
/* Publishes m (colony__bdelivery_publish, so each stream's policy applies)
 * to every stream bound to topic, creating a missing stream. out gets one
 * target per stream, up to max_out. Returns the number of bound streams
 * (0: none, nothing written), or a negative code if a stream could not be
 * matched. The caller acknowledges its publisher after colony__bcommit_wait
 * on each target's st (and colony__bdelivery_touched streams) has called
 * back, and reports targets whose err is set. */
long colony__btopics_publish(colony__btopics *t, colony__bdelivery *d, const char *topic,
                             size_t topic_len, const colony__bpublish *m,
                             colony__btopic_target *out, size_t max_out);

#endif
