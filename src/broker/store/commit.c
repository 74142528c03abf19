/* fsync modes on top of kit/durable's group commit. A wait takes references
 * on the files the stream wrote since the last wait (its last segment, the
 * sealed segments not yet synced, its journal); the batch's commit function
 * fdatasyncs each distinct file once (and the folder of a new file) on the
 * thread pool, so the loop never blocks on the disk; a batch's files are
 * synced at the same time (the first on the pool thread, the others on a
 * helper thread), so a batch that wrote a segment and a journal waits for
 * the slower fdatasync, not their sum. A file not written since
 * its last fdatasync is skipped: on ext4 a clean file's fdatasync still costs
 * a journal flush (0.1-0.5 ms measured here). The references keep the
 * fds open if retention or a roll-over lets go of them meanwhile.
 * ALWAYS hands its waits to the committer at the next turn of the loop (a
 * zero timer), not one by one: the writes of every client read in this turn
 * then share a batch, where the first one would otherwise start a batch
 * alone and leave the rest to the next (twice the fdatasyncs at 50 clients,
 * each ~20% of the broker's CPU per op). */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include "broker/store/stream.h"
#include "colony/error.h"
#include "core/alloc.h"
#include "kit/durable/durable.h"

#define WAIT_FILES 6

typedef struct bwait {
    colony__list node;
    bfile *files[WAIT_FILES];
    uint64_t gens[WAIT_FILES]; /* each file's `written` when the wait began */
    size_t nfiles;
    colony__bid top; /* the stream's top id when the wait began */
    colony__bcommit_cb cb;
    void *ud;
} bwait;

typedef struct sync_item {
    bfile *f;
    uint64_t gen; /* the newest `written` of f the batch needs */
} sync_item;

struct colony__bcommit {
    colony__durable *durable;
    colony__bsync_mode mode;
    uv_timer_t timer;   /* BATCH: the periodic sync; ALWAYS: the next turn */
    colony__list dirty; /* waits whose files the next tick syncs (BATCH) or that
                           the next turn hands to the committer (ALWAYS) */
    uint64_t interval_ms;
    uint64_t fsyncs;                   /* fdatasyncs made (thread; read with __atomic) */
    colony__bcommit_fsync_cb on_fsync; /* set before use: each fdatasync's seconds (thread) */
    void *on_fsync_ud;
    /* ALWAYS: the helper thread that syncs a batch's other files */
    uv_thread_t helper;
    int helper_started;
    uv_mutex_t mu;
    uv_cond_t cond;
    sync_item *job; /* handed to the helper; NULL when it is done */
    size_t njob;
    int job_rc;
    int stop;
};

static void wait_free(bwait *w)
{
    for (size_t i = 0; i < w->nfiles; i++)
        colony__bfile_unref(w->files[i]);
    colony__free(w);
}

/* The newest generation of f any wait of the batch asked for. */
static uint64_t batch_gen(const colony__list *batch, const bfile *f)
{
    uint64_t gen = 0;
    for (colony__list *n = batch->next; n != batch; n = n->next) {
        bwait *w = COLONY__CONTAINER_OF(n, bwait, node);
        for (size_t i = 0; i < w->nfiles; i++)
            if (w->files[i] == f && w->gens[i] > gen) gen = w->gens[i];
    }
    return gen;
}

/* fdatasync of one file (and the folder of a new one). */
static int sync_one(colony__bcommit *c, const sync_item *it)
{
    bfile *f = it->f;
    uint64_t t0 = uv_hrtime();
    if (fdatasync(f->fd) != 0) return -errno;
    if (c->on_fsync) c->on_fsync(c->on_fsync_ud, (double)(uv_hrtime() - t0) / 1e9);
    __atomic_fetch_add(&c->fsyncs, 1, __ATOMIC_RELAXED);
    f->synced_gen = it->gen;
    if (!f->dir_synced) {
        int rc = colony__bdir_sync(f->dir);
        /* gone: the stream was dropped (DEL syncs the parent) after
         * this write; nothing of it is left to make durable */
        if (rc && rc != COLONY_ENOENT) return rc;
        f->dir_synced = 1;
    }
    return 0;
}

/* The helper thread: syncs the items it is handed while the commit thread
 * syncs the first one, so a batch that wrote the segment and the journal
 * waits for the slower of two fdatasyncs, not for their sum. */
static void helper_run(void *arg)
{
    colony__bcommit *c = arg;
    uv_mutex_lock(&c->mu);
    for (;;) {
        while (!c->stop && !c->job)
            uv_cond_wait(&c->cond, &c->mu);
        if (c->stop) break;
        sync_item *items = c->job;
        size_t n = c->njob;
        uv_mutex_unlock(&c->mu);
        int rc = 0;
        for (size_t i = 0; i < n && !rc; i++)
            rc = sync_one(c, &items[i]);
        uv_mutex_lock(&c->mu);
        c->job = NULL;
        c->job_rc = rc;
        uv_cond_broadcast(&c->cond);
    }
    uv_mutex_unlock(&c->mu);
}

/* Thread pool: each distinct file once, the first on this thread and the
 * others on the helper at the same time. */
static int commit_batch(void *ud, const colony__list *batch)
{
    colony__bcommit *c = ud;
    sync_item items[64];
    size_t n = 0;
    for (colony__list *nd = batch->next; nd != batch; nd = nd->next) {
        bwait *w = COLONY__CONTAINER_OF(nd, bwait, node);
        for (size_t i = 0; i < w->nfiles; i++) {
            bfile *f = w->files[i];
            int seen = 0;
            for (size_t k = 0; k < n && !seen; k++)
                seen = items[k].f == f;
            if (seen || f->synced_gen >= w->gens[i]) continue;
            sync_item it = {f, batch_gen(batch, f)}; /* this fdatasync covers them all */
            if (n < sizeof(items) / sizeof(items[0])) {
                items[n++] = it;
                continue;
            }
            int rc = sync_one(c, &it); /* more files than that: one by one */
            if (rc) return rc;
        }
    }
    if (n == 0) return 0;
    if (n == 1 || !c->helper_started) {
        for (size_t i = 0; i < n; i++) {
            int rc = sync_one(c, &items[i]);
            if (rc) return rc;
        }
        return 0;
    }
    uv_mutex_lock(&c->mu);
    c->job = items + 1;
    c->njob = n - 1;
    uv_cond_broadcast(&c->cond);
    uv_mutex_unlock(&c->mu);
    int rc = sync_one(c, &items[0]);
    uv_mutex_lock(&c->mu);
    while (c->job)
        uv_cond_wait(&c->cond, &c->mu);
    if (!rc) rc = c->job_rc;
    uv_mutex_unlock(&c->mu);
    return rc;
}

/* Loop, before the acks: a durable batch moves its files' durable tops, all
 * of them before the first ack, so a reader woken by the first one already
 * sees every entry the batch made durable (colony__bcommit_durable_top). */
static void batch_committed(void *ud, int err, int giving_up, const colony__list *batch)
{
    (void)ud;
    (void)giving_up;
    if (err) return;
    for (colony__list *n = batch->next; n != batch; n = n->next) {
        bwait *w = COLONY__CONTAINER_OF(n, bwait, node);
        for (size_t i = 0; i < w->nfiles; i++)
            if (colony__bid_cmp(w->top, w->files[i]->durable_top) > 0)
                w->files[i]->durable_top = w->top;
    }
}

static void commit_ack(void *ud, colony__list *op, int err)
{
    (void)ud;
    bwait *w = COLONY__CONTAINER_OF(op, bwait, node);
    w->cb(w->ud, err);
    wait_free(w);
}

/* BATCH: the files of every wait since the last tick, synced on the pool;
 * ALWAYS: the waits made in the last turn of the loop, as one batch. */
static void on_tick(uv_timer_t *t)
{
    colony__bcommit *c = t->data;
    colony__durable_push_all(c->durable, &c->dirty);
}

static void batch_done(void *ud, int err)
{
    (void)ud;
    (void)err;
}

int colony__bcommit_new(colony__bcommit **out, uv_loop_t *loop, colony__bsync_mode mode,
                        uint64_t interval_ms)
{
    colony__bcommit *c = colony__calloc(1, sizeof(*c));
    if (!c) return COLONY_ENOMEM;
    c->mode = mode;
    c->interval_ms = interval_ms ? interval_ms : 100;
    colony__list_init(&c->dirty);
    colony__durable_options o = {.commit = commit_batch,
                                 .ack = commit_ack,
                                 .batch = batch_committed,
                                 .ud = c,
                                 .name = "broker"};
    int rc = colony__durable_new(&c->durable, loop, &o);
    if (!rc) rc = uv_timer_init(loop, &c->timer);
    if (rc) {
        if (c->durable) colony__durable_close(c->durable);
        colony__free(c);
        return rc;
    }
    c->timer.data = c;
    if (mode == COLONY__BSYNC_ALWAYS && !uv_mutex_init(&c->mu)) {
        if (uv_cond_init(&c->cond))
            uv_mutex_destroy(&c->mu);
        else if (uv_thread_create(&c->helper, helper_run, c)) {
            uv_cond_destroy(&c->cond);
            uv_mutex_destroy(&c->mu);
        } else {
            c->helper_started = 1; /* without it: one file after the other */
        }
    }
    if (mode == COLONY__BSYNC_BATCH)
        uv_timer_start(&c->timer, on_tick, c->interval_ms, c->interval_ms);
    *out = c;
    return 0;
}

int colony__bcommit_wait(colony__bcommit *c, colony__bstream *st, colony__bcommit_cb cb, void *ud)
{
    if (c->mode == COLONY__BSYNC_NEVER) { /* the OS writes back in its own time */
        for (size_t i = 0; i < st->nunsynced; i++)
            colony__bfile_unref(st->unsynced[i]);
        st->nunsynced = 0;
        cb(ud, 0);
        return 0;
    }
    bwait *w = colony__calloc(1, sizeof(*w));
    if (!w) return COLONY_ENOMEM;
    for (size_t i = 0; i < st->nunsynced; i++)
        w->files[w->nfiles++] = st->unsynced[i];
    st->nunsynced = 0;
    if (st->nsegs) w->files[w->nfiles++] = colony__bfile_ref(st->segs[st->nsegs - 1]->file);
    if (st->journal) w->files[w->nfiles++] = colony__bfile_ref(st->journal);
    for (size_t i = 0; i < w->nfiles; i++)
        w->gens[i] = w->files[i]->written;
    w->top = st->top;
    if (c->mode == COLONY__BSYNC_BATCH) {
        w->cb = batch_done;
        colony__list_push_back(&c->dirty, &w->node);
        cb(ud, 0);
        return 0;
    }
    w->cb = cb;
    w->ud = ud;
    colony__list_push_back(&c->dirty, &w->node);
    if (!uv_is_active((uv_handle_t *)&c->timer)) uv_timer_start(&c->timer, on_tick, 0, 0);
    return 0;
}

/* From the last segment back: one not written since the store opened is as
 * durable as it will get; a sealed one was fdatasynced by its roll-over
 * (unless roll_unsynced: then the next wait syncs it); else the newest wait
 * that covered a segment and called back gives the bound, and also synced
 * the sealed segments before it. An underestimate only makes a reader wait
 * for the next commit. */
colony__bid colony__bcommit_durable_top(const colony__bcommit *c, const colony__bstream *st)
{
    colony__bid none = {0, 0};
    if (!c || c->mode != COLONY__BSYNC_ALWAYS) return st->top;
    for (size_t i = st->nsegs, looked = 0; i > 0 && looked < WAIT_FILES; i--, looked++) {
        const bseg *g = st->segs[i - 1];
        if (!g->entries) continue;
        if (!g->file->written || (i < st->nsegs && !st->store->o.roll_unsynced)) return g->last;
        if (colony__bid_cmp(g->file->durable_top, g->first) >= 0) return g->file->durable_top;
    }
    return none;
}

void colony__bcommit_on_fsync(colony__bcommit *c, colony__bcommit_fsync_cb cb, void *ud)
{
    c->on_fsync = cb;
    c->on_fsync_ud = ud;
}

uint64_t colony__bcommit_fsyncs(const colony__bcommit *c)
{
    return __atomic_load_n(&c->fsyncs, __ATOMIC_RELAXED);
}

int colony__bcommit_idle(const colony__bcommit *c)
{
    return colony__list_empty(&c->dirty) && colony__durable_idle(c->durable);
}

void colony__bcommit_shutdown(colony__bcommit *c)
{
    on_tick(&c->timer); /* a last sync of what BATCH acked */
    uv_timer_stop(&c->timer);
    colony__durable_shutdown(c->durable);
}

static void on_timer_closed(uv_handle_t *h)
{
    colony__free(h->data);
}

void colony__bcommit_close(colony__bcommit *c)
{
    colony__list *n;
    /* not handed to the committer (that could start a batch on the thread
     * pool now): acked here as the committer's close acks what it queued */
    while ((n = colony__list_pop_front(&c->dirty))) {
        bwait *w = COLONY__CONTAINER_OF(n, bwait, node);
        w->cb(w->ud, COLONY_ECANCELED);
        wait_free(w);
    }
    colony__durable_close(c->durable);
    if (c->helper_started) { /* idle: the helper has no job */
        uv_mutex_lock(&c->mu);
        c->stop = 1;
        uv_cond_broadcast(&c->cond);
        uv_mutex_unlock(&c->mu);
        uv_thread_join(&c->helper);
        uv_cond_destroy(&c->cond);
        uv_mutex_destroy(&c->mu);
        c->helper_started = 0;
    }
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}
