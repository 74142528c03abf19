/* Notes: one short text per (group, entry id), the delivery engine's "last
 * error sent with the nack", which must survive a restart between the nack
 * and the dead-letter move. Kept apart from the group journal (which the
 * Redis commands share) in <stream>/notes.jnl: checksummed records (segment.h
 * framing) replayed on first use, synced by the stream's next commit wait,
 * compacted into the live notes each time it has grown by 1 MiB. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "broker/store/stream.h"
#include "colony/error.h"
#include "core/alloc.h"

enum { BREC_NOTE = 40, BREC_UNNOTE = 41 }; /* notes.jnl only; strs: group[, text] */

#define NOTES_COMPACT_BYTES (1u << 20)

typedef struct bnote {
    size_t len;
    char text[];
} bnote;

struct colony__bnotes {
    bfile *file;
    uint64_t bytes, at_compact; /* file size, its size after the last compaction */
    colony__map map;            /* "<ms>-<seq> <group>" -> bnote */
};

static void note_key(char *out, size_t size, const char *group, colony__bid id)
{
    snprintf(out, size, "%" PRIu64 "-%" PRIu64 " %s", id.ms, id.seq, group);
}

static void notes_clear(colony__map *m)
{
    size_t pos = 0;
    colony__map_slot *sl;
    while ((sl = colony__map_next(m, &pos)))
        colony__free(sl->value);
    colony__map_free(m);
}

void colony__bnotes_free(colony__bstream *st)
{
    if (!st->notes) return;
    notes_clear(&st->notes->map);
    colony__bfile_unref(st->notes->file);
    colony__free(st->notes);
    st->notes = NULL;
}

int colony__bstream_sync_later(colony__bstream *st, bfile *f)
{
    for (size_t i = 0; i < st->nunsynced; i++)
        if (st->unsynced[i] == f) return 0;
    if (st->nunsynced == sizeof(st->unsynced) / sizeof(st->unsynced[0])) {
        if (fdatasync(st->unsynced[0]->fd) != 0) return COLONY_EIO; /* as append.c's roll */
        colony__bfile_unref(st->unsynced[0]);
        memmove(st->unsynced, st->unsynced + 1, --st->nunsynced * sizeof(bfile *));
    }
    st->unsynced[st->nunsynced++] = colony__bfile_ref(f);
    return 0;
}

static int set_note(colony__map *m, const char *key, const char *text, size_t len)
{
    bnote *n = colony__malloc(sizeof(*n) + len + 1);
    if (!n) return COLONY_ENOMEM;
    n->len = len;
    memcpy(n->text, text, len);
    n->text[len] = '\0';
    bnote *old = colony__map_get(m, key);
    if (colony__map_put(m, key, n)) {
        colony__free(n);
        return COLONY_ENOMEM;
    }
    colony__free(old);
    return 0;
}

static int replay(void *ud, const brec *r)
{
    struct colony__bnotes *nt = ud;
    colony__bstr s[2];
    size_t n;
    if (colony__brec_strs(r, s, 2, &n) || n < 1 || s[0].len > 255) return COLONY_EIO;
    char group[256], key[320];
    memcpy(group, s[0].data, s[0].len);
    group[s[0].len] = '\0';
    note_key(key, sizeof(key), group, r->id);
    if (r->type == BREC_NOTE && n == 2) return set_note(&nt->map, key, s[1].data, s[1].len);
    if (r->type != BREC_UNNOTE) return COLONY_EIO;
    colony__free(colony__map_remove(&nt->map, key));
    return 0;
}

/* Opens (creating) notes.jnl and replays it; a torn tail is cut. */
static int notes_load(colony__bstream *st)
{
    if (st->notes) return 0;
    struct colony__bnotes *nt = colony__calloc(1, sizeof(*nt));
    if (!nt) return COLONY_ENOMEM;
    int rc = colony__bfile_open(&nt->file, st->dir, "notes.jnl", 0);
    if (rc == COLONY_ENOENT) rc = colony__bfile_open(&nt->file, st->dir, "notes.jnl", 1);
    char msg[256];
    if (!rc)
        rc = colony__bscan(nt->file, st->store->o.max_record, 1, replay, nt, &nt->bytes, msg,
                           sizeof(msg));
    if (rc) {
        notes_clear(&nt->map);
        colony__bfile_unref(nt->file);
        colony__free(nt);
        return rc;
    }
    nt->at_compact = nt->bytes;
    st->notes = nt;
    return 0;
}

/* The record for one note, encoded into e. */
static int note_record(benc *e, uint8_t type, const char *group, colony__bid id, const char *text,
                       size_t len)
{
    colony__bstr s[2] = {{group, strlen(group)}, {text, len}};
    return colony__benc_record(e, type, id, 0, s, type == BREC_NOTE ? 2 : 1);
}

/* 1 if the note under key belongs to an entry still pending in its group
 * (an entry acked by XACK over RESP leaves its note behind: compaction drops
 * it), with the key's id and group. */
static int note_live(colony__bstream *st, const char *key, colony__bid *id, const char **group)
{
    int used = 0;
    if (sscanf(key, "%" SCNu64 "-%" SCNu64 " %n", &id->ms, &id->seq, &used) != 2 || !used) return 0;
    *group = key + used;
    colony__bgroup *g = colony__bgroup_get(st, *group);
    return g && colony__bgroup_pending(g, *id);
}

/* Forgets the notes of entries no longer pending (after a compaction that
 * left them out); out of memory, they stay until the next one. */
static void notes_prune(colony__bstream *st)
{
    struct colony__bnotes *nt = st->notes;
    char **dead = colony__malloc((nt->map.count + 1) * sizeof(char *));
    size_t n = 0, pos = 0;
    colony__map_slot *sl;
    colony__bid id;
    const char *group;
    while (dead && (sl = colony__map_next(&nt->map, &pos)))
        if (!note_live(st, sl->key, &id, &group)) dead[n++] = sl->key;
    for (size_t i = 0; i < n; i++) {
        char *key = colony__strdup(dead[i]); /* the map frees its own copy */
        if (key) colony__free(colony__map_remove(&nt->map, key));
        colony__free(key);
    }
    colony__free(dead);
}

/* Rewrites the journal as the live notes: temp file, fsync, rename, fsync dir. */
static int notes_compact(colony__bstream *st)
{
    struct colony__bnotes *nt = st->notes;
    benc e = {0};
    int rc = 0;
    size_t pos = 0;
    colony__map_slot *sl;
    while (!rc && (sl = colony__map_next(&nt->map, &pos))) {
        colony__bid id;
        const char *group;
        if (!note_live(st, sl->key, &id, &group)) continue;
        bnote *n = sl->value;
        rc = note_record(&e, BREC_NOTE, group, id, n->text, n->len);
    }
    bfile *f = NULL;
    if (!rc) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s/notes.jnl.tmp", st->dir);
        unlink(tmp);
        rc = colony__bfile_open(&f, st->dir, "notes.jnl.tmp", 1);
        if (!rc) rc = colony__bwrite_all(f, e.buf, e.len, 0);
        if (!rc && fsync(f->fd) != 0) rc = COLONY_EIO;
        if (!rc && rename(f->path, nt->file->path) != 0) rc = COLONY_EIO;
        if (!rc) rc = colony__bdir_sync(st->dir);
        if (rc && f) unlink(f->path);
    }
    if (!rc) {
        char *path = f->path;
        f->path = nt->file->path;
        nt->file->path = path;
        colony__bfile_unref(nt->file);
        nt->file = f;
        nt->bytes = nt->at_compact = e.len;
        notes_prune(st);
    } else {
        colony__bfile_unref(f);
    }
    colony__benc_free(&e);
    return rc;
}

static int notes_write(colony__bstream *st, uint8_t type, const char *group, colony__bid id,
                       const char *text, size_t len)
{
    struct colony__bnotes *nt = st->notes;
    benc *e = &st->store->enc;
    e->len = 0;
    int rc = note_record(e, type, group, id, text, len);
    if (!rc) rc = colony__bwrite_all(nt->file, e->buf, e->len, nt->bytes);
    if (rc) return rc;
    nt->bytes += e->len;
    return colony__bstream_sync_later(st, nt->file);
}

/* After the change is in memory, so the snapshot holds it; a failed
 * compaction leaves the journal as it was. */
static void notes_maybe_compact(colony__bstream *st)
{
    if (st->notes->bytes - st->notes->at_compact > NOTES_COMPACT_BYTES) (void)notes_compact(st);
}

int colony__bnote_put(colony__bstream *st, const char *group, colony__bid id, const char *text,
                      size_t len)
{
    if (strlen(group) > 255) return COLONY_EINVAL;
    int rc = notes_load(st);
    if (rc) return rc;
    char key[320];
    note_key(key, sizeof(key), group, id);
    rc = notes_write(st, BREC_NOTE, group, id, text, len);
    if (!rc) rc = set_note(&st->notes->map, key, text, len);
    if (!rc) notes_maybe_compact(st);
    return rc;
}

int colony__bnote_get(colony__bstream *st, const char *group, colony__bid id, colony__bstr *out)
{
    int rc = notes_load(st);
    if (rc) return rc;
    char key[320];
    note_key(key, sizeof(key), group, id);
    bnote *n = colony__map_get(&st->notes->map, key);
    if (!n) return COLONY_ENOENT;
    *out = (colony__bstr){n->text, n->len};
    return 0;
}

int colony__bnote_drop(colony__bstream *st, const char *group, colony__bid id)
{
    int rc = notes_load(st);
    if (rc) return rc;
    char key[320];
    note_key(key, sizeof(key), group, id);
    bnote *n = colony__map_get(&st->notes->map, key);
    if (!n) return 0;
    rc = notes_write(st, BREC_UNNOTE, group, id, NULL, 0);
    if (rc) return rc;
    colony__free(colony__map_remove(&st->notes->map, key));
    notes_maybe_compact(st);
    return 1;
}
