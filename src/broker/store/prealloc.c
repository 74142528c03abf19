/* Preallocation of the files a commit fdatasyncs (docs/broker.md, "Storage").
 * On ext4 an fdatasync after an append that grew the file must commit the new
 * size and block allocation: a jbd2 transaction, which also waits for the
 * ordered data of every other file written on that disk (the slow, long tail
 * of the commit path on a shared machine). An overwrite inside blocks already
 * written and sized needs no transaction: only the data and a cache flush.
 * So the last segment and the group journal are zero-filled ahead of their
 * writes, in chunks, by one thread per store that also fdatasyncs each chunk:
 * the commits then only overwrite.
 *
 * The thread and the loop share a file while a chunk is being zeroed: the
 * loop reserves every write under the file's lock (f->reserved, the end of
 * what it wrote), and the thread zeroes only past it, one piece at a time
 * under the same lock; it never overwrites a record. Recovery sees zeros
 * after the last record (colony__bscan: an all-zero tail is a clean end). */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include "broker/store/stream.h"
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "core/list.h"

#define PIECE        65536u
#define TMPFS_MAGIC_ 0x01021994
/* do not preallocate on a disk with less free than this many chunks */
#define FREE_CHUNKS 16u

typedef struct pjob {
    colony__list node;
    bfile *f;
    uint64_t start, end;
} pjob;

struct colony__bprealloc {
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cond;
    colony__list jobs;
    int stop;
    uint64_t chunk;
    uint64_t chunks_done; /* (thread; read with __atomic) */
};

static const uint8_t zeros[PIECE];

/* Zeroes [start, end) past the loop's reservation, then fdatasyncs it. A
 * failure (a full disk) cuts back what this job added and stops
 * preallocation of the file: its writes are plain appends from then on. */
static int zero_range(bfile *f, uint64_t start, uint64_t end)
{
    for (uint64_t off = start; off < end; off += PIECE) {
        uint64_t hi = off + PIECE < end ? off + PIECE : end;
        uv_mutex_lock(&f->mu);
        uint64_t lo = off > f->reserved ? off : f->reserved;
        int rc = 0;
        if (f->sealed) rc = COLONY_ECANCELED;
        while (!rc && lo < hi) {
            ssize_t k = pwrite(f->fd, zeros, (size_t)(hi - lo), (off_t)lo);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) {
                rc = k < 0 ? -errno : COLONY_EIO;
                uint64_t keep = start > f->reserved ? start : f->reserved;
                if (ftruncate(f->fd, (off_t)keep) != 0) { /* zeros past the end: harmless */
                }
                break;
            }
            lo += (uint64_t)k;
        }
        uv_mutex_unlock(&f->mu);
        if (rc) return rc;
    }
    return fdatasync(f->fd) == 0 ? 0 : -errno;
}

static int disk_fits(bfile *f, uint64_t chunk)
{
    struct statfs sf;
    if (fstatfs(f->fd, &sf) != 0) return 0;
    if (sf.f_type == TMPFS_MAGIC_) return 0; /* memory: nothing to gain, RAM to lose */
    return (uint64_t)sf.f_bavail * (uint64_t)sf.f_bsize >= FREE_CHUNKS * chunk;
}

static void run(void *arg)
{
    colony__bprealloc *p = arg;
    uv_mutex_lock(&p->mu);
    for (;;) {
        colony__list *n;
        while (!p->stop && colony__list_empty(&p->jobs))
            uv_cond_wait(&p->cond, &p->mu);
        if (p->stop) break;
        n = colony__list_pop_front(&p->jobs);
        uv_mutex_unlock(&p->mu);
        pjob *j = COLONY__CONTAINER_OF(n, pjob, node);
        int rc = disk_fits(j->f, p->chunk) ? zero_range(j->f, j->start, j->end) : -ENOSPC;
        if (rc)
            __atomic_store_n(&j->f->prealloc_failed, 1, __ATOMIC_RELEASE);
        else
            __atomic_fetch_add(&p->chunks_done, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&j->f->zeroing, 0, __ATOMIC_RELEASE);
        colony__bfile_unref(j->f);
        colony__free(j);
        uv_mutex_lock(&p->mu);
    }
    uv_mutex_unlock(&p->mu);
}

int colony__bprealloc_new(colony__bprealloc **out, uint64_t chunk)
{
    colony__bprealloc *p = colony__calloc(1, sizeof(*p));
    if (!p) return COLONY_ENOMEM;
    p->chunk = chunk;
    colony__list_init(&p->jobs);
    int rc = uv_mutex_init(&p->mu);
    if (rc) goto fail_mu;
    if ((rc = uv_cond_init(&p->cond))) goto fail_cond;
    if ((rc = uv_thread_create(&p->thread, run, p))) goto fail_thread;
    *out = p;
    return 0;
fail_thread:
    uv_cond_destroy(&p->cond);
fail_cond:
    uv_mutex_destroy(&p->mu);
fail_mu:
    colony__free(p);
    return rc;
}

void colony__bprealloc_free(colony__bprealloc *p)
{
    if (!p) return;
    uv_mutex_lock(&p->mu);
    p->stop = 1;
    uv_cond_signal(&p->cond);
    uv_mutex_unlock(&p->mu);
    uv_thread_join(&p->thread);
    colony__list *n;
    while ((n = colony__list_pop_front(&p->jobs))) {
        pjob *j = COLONY__CONTAINER_OF(n, pjob, node);
        __atomic_store_n(&j->f->zeroing, 0, __ATOMIC_RELEASE);
        colony__bfile_unref(j->f);
        colony__free(j);
    }
    uv_cond_destroy(&p->cond);
    uv_mutex_destroy(&p->mu);
    colony__free(p);
}

uint64_t colony__bprealloc_chunks(const colony__bprealloc *p)
{
    return p ? __atomic_load_n(&p->chunks_done, __ATOMIC_RELAXED) : 0;
}

void colony__bfile_prealloc(bfile *f, colony__bprealloc *p, uint64_t logical_end, uint64_t limit)
{
    if (!p) return;
    struct stat sb;
    f->pa = p;
    f->limit = limit;
    /* a zero tail left by an earlier run is allocated already */
    f->zero_end = fstat(f->fd, &sb) == 0 && (uint64_t)sb.st_size > logical_end
                      ? (uint64_t)sb.st_size
                      : logical_end;
    colony__bfile_prealloc_after(f, logical_end);
}

void colony__bfile_prealloc_after(bfile *f, uint64_t end)
{
    colony__bprealloc *p = f->pa;
    if (!p || __atomic_load_n(&f->zeroing, __ATOMIC_ACQUIRE) ||
        __atomic_load_n(&f->prealloc_failed, __ATOMIC_ACQUIRE))
        return;
    if (end + p->chunk / 2 <= f->zero_end || f->zero_end >= f->limit) return;
    uint64_t start = f->zero_end > end ? f->zero_end : end;
    uint64_t stop = start + p->chunk < f->limit ? start + p->chunk : f->limit;
    if (stop <= start) return;
    pjob *j = colony__calloc(1, sizeof(*j));
    if (!j) return; /* only slower */
    j->f = colony__bfile_ref(f);
    j->start = start;
    j->end = stop;
    f->zero_end = stop;
    f->reserved = end; /* no lock needed: no job of f runs now */
    __atomic_store_n(&f->zeroing, 1, __ATOMIC_RELEASE);
    uv_mutex_lock(&p->mu);
    colony__list_push_back(&p->jobs, &j->node);
    uv_cond_signal(&p->cond);
    uv_mutex_unlock(&p->mu);
}

void colony__bfile_reserve(bfile *f, uint64_t end)
{
    if (!__atomic_load_n(&f->zeroing, __ATOMIC_ACQUIRE)) return;
    uv_mutex_lock(&f->mu);
    if (end > f->reserved) f->reserved = end;
    uv_mutex_unlock(&f->mu);
}

void colony__bfile_seal(bfile *f, uint64_t end)
{
    if (!f->pa) return;
    uv_mutex_lock(&f->mu);
    f->sealed = 1;
    if (f->zero_end > end && ftruncate(f->fd, (off_t)end) != 0)
        COLONY_LOG_WARN("broker store: cannot cut a sealed file's preallocated tail",
                        COLONY_LF_STR("file", f->path));
    uv_mutex_unlock(&f->mu);
    f->pa = NULL;
}
