/* One HTTP call through its origin's policy:
 *   rate limit (once per call) -> [bulkhead slot -> breaker allow -> send with
 *   what the deadline leaves -> breaker record, release slot -> retry?
 *   backoff timer]* -> fallback -> caller's callback, exactly once.
 * Each call owns one uv timer, used for the bulkhead queue timeout, the
 * backoff wait and for delivering outcomes that arise inside
 * colony_policy_call() (so the callback never runs from inside it). */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "kit/resilience/policy_internal.h"

#define MAX_ORIGIN_LEN 256

typedef enum call_phase {
    PHASE_QUEUED,    /* waiting for a bulkhead slot */
    PHASE_IN_FLIGHT, /* an attempt is on the wire */
    PHASE_BACKOFF,   /* waiting to retry */
    PHASE_DELIVER,   /* the outcome is known; the timer delivers it */
    PHASE_DONE,      /* delivered; the timer is closing */
} call_phase;

struct policy_call {
    colony_policy_set *ps;
    policy_origin *po;
    colony_client *client;
    colony_client_request req; /* points into the copies below */
    char *method, *url, *body;
    const char **headers; /* caller's headers + 2 slots for the deadline + NULL */
    size_t deadline_slot; /* index of the reserved slots */
    char deadline_value[24];
    colony_client_request user; /* the caller's streaming callbacks */
    colony_client_done_cb cb;
    void *ud;
    colony_deadline deadline;
    int retryable;
    unsigned attempts;
    uint64_t attempt_start;
    colony_client_call *inflight;
    int holds_slot;
    int pending_err;
    call_phase phase;
    uv_timer_t timer;
    policy_call *prev, *next;
};

static void on_timer(uv_timer_t *t);

/* ---------------------------------------------------------------- copying */

/* Copies method, URL, headers and body once, so retries can resend them after
 * the caller's memory is gone. The caller's deadline header is dropped when
 * the policy sends its own. */
static int copy_request(policy_call *c, const colony_client_request *r, int drop_deadline)
{
    c->req = *r;
    c->method = colony__strdup(r->method ? r->method : "GET");
    c->url = colony__strdup(r->url);
    if (!c->method || !c->url) return COLONY_ENOMEM;
    c->req.method = c->method;
    c->req.url = c->url;
    if (r->body && r->body_len) {
        c->body = colony__malloc(r->body_len);
        if (!c->body) return COLONY_ENOMEM;
        memcpy(c->body, r->body, r->body_len);
        c->req.body = c->body;
    }
    size_t n = 0, bytes = 0;
    while (r->headers && r->headers[n] && r->headers[n + 1]) {
        bytes += strlen(r->headers[n]) + strlen(r->headers[n + 1]) + 2;
        n += 2;
    }
    /* One block: the pointer array, then the strings. */
    size_t slots = n + 3;
    c->headers = colony__malloc(slots * sizeof(char *) + bytes);
    if (!c->headers) return COLONY_ENOMEM;
    char *text = (char *)(c->headers + slots);
    size_t k = 0;
    for (size_t i = 0; i < n; i += 2) {
        if (drop_deadline && strcasecmp(r->headers[i], COLONY_DEADLINE_HEADER) == 0) continue;
        for (int j = 0; j < 2; j++) {
            size_t len = strlen(r->headers[i + j]) + 1;
            memcpy(text, r->headers[i + j], len);
            c->headers[k++] = text;
            text += len;
        }
    }
    c->deadline_slot = k;
    c->headers[k] = c->headers[k + 1] = c->headers[k + 2] = NULL;
    c->req.headers = c->headers;
    return 0;
}

/* ------------------------------------------------------ streaming wrappers */

static void wrap_body(colony_client_call *call, void *ud)
{
    policy_call *c = ud;
    c->user.body_cb(call, c->ud);
}

static int wrap_head(colony_client_call *call, const colony_client_response *res, void *ud)
{
    policy_call *c = ud;
    return c->user.head_cb(call, res, c->ud);
}

static void wrap_data(colony_client_call *call, const char *data, size_t len, void *ud)
{
    policy_call *c = ud;
    c->user.data_cb(call, data, len, c->ud);
}

/* --------------------------------------------------------------- delivery */

static void call_free(uv_handle_t *h)
{
    policy_call *c = h->data;
    colony_policy_set *ps = c->ps;
    colony__free(c->method);
    colony__free(c->url);
    colony__free(c->body);
    colony__free(c->headers);
    colony__free(c);
    ps->open_handles--;
    colony__policy_maybe_free(ps);
}

static void unlink_call(policy_call *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->ps->calls = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static int fallback_covers(const colony_policy_options *o, int err, int status)
{
    unsigned on =
        o->fallback_on ? o->fallback_on : (COLONY_FALLBACK_ON_REJECT | COLONY_FALLBACK_ON_FAILURE);
    if (err == COLONY_EBUSY) return (on & COLONY_FALLBACK_ON_REJECT) != 0;
    if (err == COLONY_ECANCELED) return 0;
    if (err || status >= 500) return (on & COLONY_FALLBACK_ON_FAILURE) != 0;
    return 0;
}

/* The one place the caller's callback runs. The fallback may replace a
 * failure or rejection with its own response. */
static void deliver(policy_call *c, colony_client_call *call, int err,
                    const colony_client_response *res)
{
    const colony_policy_options *o = &c->po->opts;
    colony_client_response substitute;
    int status = res ? res->status : 0;
    if (o->fallback && fallback_covers(o, err, status)) {
        memset(&substitute, 0, sizeof(substitute));
        substitute.version_minor = 1;
        if (o->fallback(c->po->origin, err, status, &substitute, o->fallback_ud) == 0) {
            err = 0;
            res = &substitute;
        }
    }
    c->phase = PHASE_DONE;
    unlink_call(c);
    c->ps->active--;
    uv_timer_stop(&c->timer);
    c->cb(call, err, err ? NULL : res, c->ud);
    uv_close((uv_handle_t *)&c->timer, call_free);
}

/* Delivers err from the timer: for outcomes known outside a client callback. */
static void deliver_later(policy_call *c, int err)
{
    c->phase = PHASE_DELIVER;
    c->pending_err = err;
    uv_timer_start(&c->timer, on_timer, 0, 0);
}

/* ---------------------------------------------------------------- attempts */

static void start_attempt(policy_call *c);

/* Connect errors, timeouts, protocol errors and 5xx count against the origin;
 * a cancelled call or a local limit (E2BIG, EBUSY) says nothing about it. */
static int outcome_failed(int err, int status)
{
    if (err == COLONY_ECANCELED || err == COLONY_E2BIG || err == COLONY_EBUSY ||
        err == COLONY_EINVAL)
        return 0;
    return err != 0 || status >= 500;
}

static void release_slot(policy_call *c)
{
    if (!c->holds_slot) return;
    c->holds_slot = 0;
    colony_bulkhead_release(c->po->bulkhead); /* may start a queued call */
}

static void on_attempt_done(colony_client_call *call, int err, const colony_client_response *res,
                            void *ud)
{
    policy_call *c = ud;
    policy_origin *po = c->po;
    c->inflight = NULL;
    int status = res ? res->status : 0;
    uint64_t now = colony_clock_now(&c->ps->clock);
    uint64_t duration = now >= c->attempt_start ? now - c->attempt_start : 0;
    if (po->breaker) colony_breaker_record(po->breaker, !outcome_failed(err, status), duration);
    release_slot(c);
    if (c->retryable && !c->ps->closing && err != COLONY_ECANCELED) {
        uint64_t delay = 0;
        colony_retry_verdict v = colony_retry_next(&po->opts.retry, c->method, c->attempts, err,
                                                   status, &c->deadline, &delay);
        if (v == COLONY_RETRY_GO) {
            colony_metric_inc(po->retries, 1);
            c->phase = PHASE_BACKOFF;
            uv_timer_start(&c->timer, on_timer, delay, 0);
            return;
        }
    }
    deliver(c, call, err, res);
}

/* Sends one attempt with what the deadline leaves (and the policy's own
 * per-attempt timeout), telling the callee the same through the header. */
static void send_attempt(policy_call *c)
{
    policy_origin *po = c->po;
    uint64_t remaining = colony_deadline_remaining(&c->deadline);
    if (remaining == 0) {
        release_slot(c);
        deliver_later(c, COLONY_ETIMEDOUT);
        return;
    }
    uint64_t timeout = po->opts.attempt_timeout_ms;
    if (remaining != UINT64_MAX && (!timeout || timeout > remaining)) timeout = remaining;
    c->req.timeout_ms = timeout;
    if (po->opts.propagate_deadline && remaining != UINT64_MAX) {
        snprintf(c->deadline_value, sizeof(c->deadline_value), "%llu",
                 (unsigned long long)remaining);
        c->headers[c->deadline_slot] = COLONY_DEADLINE_HEADER;
        c->headers[c->deadline_slot + 1] = c->deadline_value;
    }
    c->attempts++;
    c->attempt_start = colony_clock_now(&c->ps->clock);
    c->phase = PHASE_IN_FLIGHT;
    int rc = colony_client_request_send(c->client, &c->req, on_attempt_done, c, &c->inflight);
    if (rc) {
        c->inflight = NULL;
        /* Nothing reached the origin: a neutral outcome frees a half-open trial. */
        if (po->breaker) colony_breaker_record(po->breaker, 1, 0);
        release_slot(c);
        deliver_later(c, rc);
    }
}

static void on_slot(colony_bulkhead *b, int err, void *ud)
{
    (void)b;
    policy_call *c = ud;
    if (c->phase == PHASE_QUEUED) uv_timer_stop(&c->timer);
    if (err) {
        deliver_later(c, err);
        return;
    }
    c->holds_slot = b != NULL;
    if (c->ps->closing) {
        release_slot(c);
        deliver_later(c, COLONY_ECANCELED);
        return;
    }
    if (c->po->breaker && colony_breaker_allow(c->po->breaker) != 0) {
        colony_metric_inc(c->po->rejections, 1);
        release_slot(c);
        deliver_later(c, COLONY_EBUSY);
        return;
    }
    send_attempt(c);
}

/* Waits for a bulkhead slot, at most the queue timeout or what the deadline
 * leaves, whichever is shorter. */
static void start_attempt(policy_call *c)
{
    policy_origin *po = c->po;
    if (colony_deadline_expired(&c->deadline)) {
        deliver_later(c, COLONY_ETIMEDOUT);
        return;
    }
    if (!po->bulkhead) {
        on_slot(NULL, 0, c);
        return;
    }
    c->phase = PHASE_QUEUED;
    if (colony_bulkhead_acquire(po->bulkhead, on_slot, c) != 0) {
        deliver_later(c, COLONY_EBUSY);
        return;
    }
    if (c->phase != PHASE_QUEUED) return; /* got a slot at once */
    uint64_t wait = colony_deadline_remaining(&c->deadline);
    uint64_t queue_timeout = po->opts.bulkhead.queue_timeout_ms;
    if (queue_timeout && queue_timeout < wait) wait = queue_timeout;
    if (wait != UINT64_MAX) uv_timer_start(&c->timer, on_timer, wait, 0);
}

static void on_timer(uv_timer_t *t)
{
    policy_call *c = t->data;
    switch (c->phase) {
    case PHASE_QUEUED:
        colony_bulkhead_cancel(c->po->bulkhead, on_slot, c);
        deliver(c, NULL, COLONY_ETIMEDOUT, NULL);
        break;
    case PHASE_BACKOFF:
        if (c->ps->closing)
            deliver(c, NULL, COLONY_ECANCELED, NULL);
        else
            start_attempt(c);
        break;
    case PHASE_DELIVER:
        deliver(c, NULL, c->pending_err, NULL);
        break;
    case PHASE_IN_FLIGHT:
    case PHASE_DONE:
        break;
    }
}

/* ------------------------------------------------------------------ public */

int colony_policy_call(colony_policy_set *ps, colony_client *client, const colony_client_request *r,
                       colony_client_done_cb cb, void *ud)
{
    if (!ps || !client || !r || !r->url || !cb) return COLONY_EINVAL;
    if (ps->closing) return COLONY_ESHUTDOWN;
    char origin[MAX_ORIGIN_LEN];
    if (colony__policy_origin_of(r->url, origin, sizeof(origin)) != 0) return COLONY_EINVAL;
    int err = 0;
    policy_origin *po = colony__policy_origin_get(ps, origin, &err);
    if (!po) return err;
    policy_call *c = colony__calloc(1, sizeof(*c));
    if (!c) return COLONY_ENOMEM;
    c->ps = ps;
    c->po = po;
    c->client = client;
    c->cb = cb;
    c->ud = ud;
    /* The total deadline: the policy's and the request's own timeout. */
    uint64_t total = po->opts.deadline_ms;
    if (r->timeout_ms && (!total || r->timeout_ms < total)) total = r->timeout_ms;
    c->deadline = total ? colony_deadline_in(&ps->clock, total) : colony_deadline_none(&ps->clock);
    int rc = copy_request(c, r, po->opts.propagate_deadline && total);
    if (rc) {
        colony__free(c->method);
        colony__free(c->url);
        colony__free(c->body);
        colony__free(c->headers);
        colony__free(c);
        return rc;
    }
    c->user = *r;
    if (r->body_cb) c->req.body_cb = wrap_body;
    if (r->head_cb) c->req.head_cb = wrap_head;
    if (r->data_cb) c->req.data_cb = wrap_data;
    c->retryable = !r->body_cb && !r->head_cb && !r->data_cb && po->opts.retry.max_attempts > 1;
    uv_timer_init(ps->loop, &c->timer);
    c->timer.data = c;
    ps->open_handles++;
    ps->active++;
    c->next = ps->calls;
    if (ps->calls) ps->calls->prev = c;
    ps->calls = c;
    if (po->budget) colony_retry_budget_record_request(po->budget);
    if (po->limiter && colony_token_bucket_take(po->limiter, 1, NULL) != 0) {
        deliver_later(c, COLONY_EBUSY);
        return 0;
    }
    start_attempt(c);
    return 0;
}

/* Every call in progress ends with ECANCELED: queued and waiting ones from
 * their timer, in-flight ones through the client's cancellation. */
void colony__policy_cancel_all(colony_policy_set *ps)
{
    for (policy_call *c = ps->calls; c; c = c->next) {
        switch (c->phase) {
        case PHASE_QUEUED:
            colony_bulkhead_cancel(c->po->bulkhead, on_slot, c);
            deliver_later(c, COLONY_ECANCELED);
            break;
        case PHASE_BACKOFF:
            deliver_later(c, COLONY_ECANCELED);
            break;
        case PHASE_IN_FLIGHT:
            if (c->inflight) colony_client_call_cancel(c->inflight);
            break;
        case PHASE_DELIVER:
        case PHASE_DONE:
            break;
        }
    }
}
