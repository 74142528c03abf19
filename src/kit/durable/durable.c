/* The group committer of durable.h. One batch at a time runs on the thread
 * pool; `pending` collects what arrives meanwhile. A batch that failed stays
 * in `batch` and is retried by `retry_timer`. */
#include "kit/durable/durable.h"
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"

#define DEFAULT_RETRY_MIN_MS 10u
#define DEFAULT_RETRY_MAX_MS 1000u

struct colony__durable {
    uv_loop_t *loop;
    colony__durable_options opts;
    uv_work_t work;
    uv_timer_t retry_timer; /* d is freed by its close callback */
    colony__list pending;   /* queued, not yet committing */
    colony__list batch;     /* committing, or waiting for its retry */
    int busy;               /* batch is non-empty: committing or waiting */
    int result;             /* the commit function's return (thread pool → loop) */
    int failing;            /* the last attempt failed */
    int stopping;           /* shutdown: a failed attempt gives up */
    uint64_t retry_delay_ms;
    uint64_t attempts;
    size_t lost;
};

/* Moves every node of src (in order) to the empty list dst; src ends empty. */
static void list_move(colony__list *dst, colony__list *src)
{
    colony__list_init(dst);
    if (colony__list_empty(src)) return;
    dst->next = src->next;
    dst->prev = src->prev;
    dst->next->prev = dst;
    dst->prev->next = dst;
    colony__list_init(src);
}

static void list_append(colony__list *dst, colony__list *src)
{
    colony__list *n;
    while ((n = colony__list_pop_front(src)) != NULL)
        colony__list_push_back(dst, n);
}

static size_t list_count(const colony__list *head)
{
    size_t n = 0;
    for (const colony__list *p = head->next; p != head; p = p->next)
        n++;
    return n;
}

/* Hands every op of ops back to its owner with err. */
static void ack_all(colony__durable *d, colony__list *ops, int err)
{
    colony__list *n;
    while ((n = colony__list_pop_front(ops)) != NULL)
        d->opts.ack(d->opts.ud, n, err);
}

int colony__durable_new(colony__durable **out, uv_loop_t *loop, const colony__durable_options *opts)
{
    *out = NULL;
    if (!opts || !opts->commit || !opts->ack) return COLONY_EINVAL;
    colony__durable *d = colony__calloc(1, sizeof(*d));
    if (!d) return COLONY_ENOMEM;
    d->loop = loop;
    d->opts = *opts;
    if (!d->opts.name) d->opts.name = "durable";
    if (!d->opts.retry_min_ms) d->opts.retry_min_ms = DEFAULT_RETRY_MIN_MS;
    if (!d->opts.retry_max_ms) d->opts.retry_max_ms = DEFAULT_RETRY_MAX_MS;
    if (d->opts.retry_max_ms < d->opts.retry_min_ms) d->opts.retry_max_ms = d->opts.retry_min_ms;
    colony__list_init(&d->pending);
    colony__list_init(&d->batch);
    int rc = uv_timer_init(loop, &d->retry_timer);
    if (rc) {
        colony__free(d);
        return rc;
    }
    d->retry_timer.data = d;
    d->work.data = d;
    *out = d;
    return 0;
}

/* Thread pool side. */
static void commit_work(uv_work_t *w)
{
    colony__durable *d = w->data;
    d->result = d->opts.commit(d->opts.ud, &d->batch);
}

static void start_batch(colony__durable *d);
static void queue_commit(colony__durable *d);

static void retry_fire(uv_timer_t *t)
{
    queue_commit(t->data);
}

/* Gives up the failed batch and everything queued behind it (shutdown only). */
static void give_up(colony__durable *d, int err)
{
    colony__list gone;
    list_move(&gone, &d->batch);
    list_append(&gone, &d->pending);
    size_t n = list_count(&gone);
    d->lost += n;
    d->busy = 0;
    COLONY_LOG_ERROR("giving up on a failed commit at shutdown; changes not saved",
                     COLONY_LF_STR("component", d->opts.name),
                     COLONY_LF_STR("error", colony_strerror(err)),
                     COLONY_LF_INT("changes", (long long)n));
    if (d->opts.batch) d->opts.batch(d->opts.ud, err, 1, &gone);
    ack_all(d, &gone, err);
}

static void commit_done(uv_work_t *w, int status)
{
    colony__durable *d = w->data;
    d->attempts++;
    int err = status ? status : d->result;
    if (err && d->stopping) {
        give_up(d, err);
        return;
    }
    if (err) {
        d->failing = 1;
        d->retry_delay_ms = d->retry_delay_ms ? d->retry_delay_ms * 2 : d->opts.retry_min_ms;
        if (d->retry_delay_ms > d->opts.retry_max_ms) d->retry_delay_ms = d->opts.retry_max_ms;
        COLONY_LOG_WARN("commit failed, retrying", COLONY_LF_STR("component", d->opts.name),
                        COLONY_LF_STR("error", colony_strerror(err)),
                        COLONY_LF_INT("retry_ms", (long long)d->retry_delay_ms));
        if (d->opts.batch) d->opts.batch(d->opts.ud, err, 0, &d->batch);
        /* Cannot fail: the timer is open until colony__durable_close. */
        (void)uv_timer_start(&d->retry_timer, retry_fire, d->retry_delay_ms, 0);
        return;
    }
    colony__list done;
    list_move(&done, &d->batch);
    d->busy = 0;
    d->failing = 0;
    d->retry_delay_ms = 0;
    if (d->opts.batch) d->opts.batch(d->opts.ud, 0, 0, &done);
    ack_all(d, &done, 0);
    start_batch(d);
}

static void queue_commit(colony__durable *d)
{
    int rc = uv_queue_work(d->loop, &d->work, commit_work, commit_done);
    if (rc) {
        d->result = rc;
        commit_done(&d->work, rc);
    }
}

static void start_batch(colony__durable *d)
{
    if (d->busy || colony__list_empty(&d->pending)) return;
    list_move(&d->batch, &d->pending);
    d->busy = 1;
    queue_commit(d);
}

void colony__durable_push(colony__durable *d, colony__list *op)
{
    colony__list_push_back(&d->pending, op);
    start_batch(d);
}

void colony__durable_push_all(colony__durable *d, colony__list *ops)
{
    list_append(&d->pending, ops);
    start_batch(d);
}

int colony__durable_idle(const colony__durable *d)
{
    return !d->busy && colony__list_empty(&d->pending);
}

int colony__durable_failing(const colony__durable *d)
{
    return d->failing;
}

uint64_t colony__durable_retry_delay(const colony__durable *d)
{
    return d->retry_delay_ms;
}

uint64_t colony__durable_attempts(const colony__durable *d)
{
    return d->attempts;
}

size_t colony__durable_lost(const colony__durable *d)
{
    return d->lost;
}

void colony__durable_shutdown(colony__durable *d)
{
    d->stopping = 1;
    if (d->busy && uv_is_active((uv_handle_t *)&d->retry_timer)) {
        uv_timer_stop(&d->retry_timer);
        queue_commit(d); /* the last attempt, now */
    }
}

static void timer_closed(uv_handle_t *h)
{
    colony__free(h->data);
}

void colony__durable_close(colony__durable *d)
{
    if (!d) return;
    if (d->busy && uv_is_active((uv_handle_t *)&d->retry_timer)) {
        uv_timer_stop(&d->retry_timer);
        d->busy = 0;
        d->lost += list_count(&d->batch);
        ack_all(d, &d->batch, COLONY_ECANCELED);
    }
    d->lost += list_count(&d->pending);
    ack_all(d, &d->pending, COLONY_ECANCELED);
    uv_close((uv_handle_t *)&d->retry_timer, timer_closed);
}
