/* Consuming over HTTP, through the delivery engine (delivery/delivery.h):
 *
 *   GET  /streams/:stream/groups/:group/messages?consumer=c&max=N&wait=30s
 *   GET  /streams/:stream/groups/:group/messages?consumer=c&stream=1&prefetch=N
 *
 * (ack, nack and extend are settle.c)
 *
 * A long-poll answers at once when something is due; else it waits (a poll
 * on h->polls) until a publish to its stream becomes durable (any door:
 * colony__bhttp_wake), until the engine's next due time for the group (its
 * timer is armed at the earlier of that and the deadline), or until the
 * deadline (an empty answer). First deliveries of durable entries are
 * answered at once, as RESP's XREADGROUP `>` is: their delivery records are
 * synced by the stream's next commit (docs/broker.md, "Delivery records");
 * every other delivery (a redelivery, an entry not durable yet, a move to the
 * dead letters) is answered once its commit is done. */
#include <stdlib.h>
#include <string.h>
#include "colony/config.h"
#include "colony/error.h"
#include "core/alloc.h"
#include "core/closer.h"
#include "broker/http/http.h"

#define CONSUMER_MAX 255
#define MIN_REARM_MS 5 /* a due time that gave nothing is looked at again after this */

typedef struct poll {
    colony__list link; /* in h->polls */
    colony__bhttp *h;
    colony_request *req; /* NULL once answered or gone */
    char *stream, *group, *consumer;
    size_t max;
    uint64_t deadline; /* uv_now */
    int streaming;     /* an NDJSON response that stays open: max is the prefetch window */
    uv_timer_t timer;
    colony__closer closer;
} poll;

/* ---- one delivery attempt ---- */

typedef struct collect {
    json_t *arr;
    int rc;
    size_t redelivered;
    colony__bid durable; /* the stream's durable top before the call */
    int must_wait;       /* a delivery that needs its commit before the answer */
} collect;

static collect collect_start(colony__bhttp *h, colony__bstream *st)
{
    collect c = {json_array(), 0, 0, colony__bcommit_durable_top(h->commit, st), 0};
    return c;
}

/* The answer may go out before the commit when every delivery is a first
 * one of a durable entry and the engine wrote to no other stream (a dead
 * letter's copy must be durable before its move is told). A crash before
 * the next commit loses at most those first delivery records: the entries
 * come again, counted once less, never lost. */
static int answer_now(colony__bhttp *h, const collect *c)
{
    return !c->must_wait && !colony__bdelivery_touched(h->engine, 0);
}

static int on_delivered(void *ud, const colony__bdelivered *d)
{
    collect *c = ud;
    colony__bentry e = {.id = d->id, .time_ms = d->time_ms, .strs = d->strs, .n = d->n};
    if (d->count > 1) c->redelivered++;
    if (d->count != 1 || colony__bid_cmp(d->id, c->durable) > 0) c->must_wait = 1;
    json_t *m = colony__bmsg_to_json(&e);
    if (!m || json_object_set_new(m, "deliveries", json_integer((json_int_t)d->count)) ||
        json_object_set_new(m, "due_ms", json_integer((json_int_t)d->due_ms)) ||
        json_array_append_new(c->arr, m)) {
        c->rc = COLONY_ENOMEM;
        return COLONY_ENOMEM;
    }
    return 0;
}

/* Delivers up to max to consumer: >0 answered with that many, 0 nothing due
 * (not answered), <0 answered with the error. */
static long try_deliver(colony__bhttp *h, colony_request *req, const char *stream,
                        const char *group, const char *consumer, size_t max)
{
    colony__bstream *st = colony__bstore_get(h->store, stream);
    if (!st || !colony__bgroup_get(st, group)) {
        colony__bhttp_fail(req, 404, "not_found", "no %s %.300s", st ? "group" : "stream",
                           st ? group : stream);
        return COLONY_ENOENT;
    }
    collect c = collect_start(h, st);
    if (!c.arr) {
        colony_respond_error(req, 500, "internal", "out of memory");
        return COLONY_ENOMEM;
    }
    long n = colony__bdelivery_next(h->engine, stream, group, consumer, max, on_delivered, &c);
    if (n < 0 || c.rc) {
        json_decref(c.arr);
        colony__bhttp_store_error(req, n < 0 ? (int)n : c.rc, "delivery failed");
        return n < 0 ? n : c.rc;
    }
    if (n == 0) {
        json_decref(c.arr);
        return 0;
    }
    h->stats.delivered += (uint64_t)n;
    if (answer_now(h, &c)) {
        colony__bhttp_reply(req, 200, json_pack("{s:o}", "messages", c.arr));
        return n;
    }
    colony__bstream *sts[8];
    size_t ns = colony__bhttp_touched(h, st, sts, 8);
    colony__bhttp_reply_durable_n(h, req, sts, ns, 200, json_pack("{s:o}", "messages", c.arr), NULL,
                                  NULL);
    return n;
}

static void answer_empty(colony_request *req)
{
    colony__bhttp_reply(req, 200, json_pack("{s:[]}", "messages"));
}

/* ---- waiting polls ---- */

static void poll_free(void *ud)
{
    poll *p = ud;
    colony__free(p->stream);
    colony__free(p->group);
    colony__free(p->consumer);
    colony__free(p);
}

static void poll_finished(colony_request *req, int status, void *ud)
{
    (void)req;
    (void)status;
    poll *p = ud;
    colony__list_remove(&p->link);
    p->req = NULL;
    colony__closer_close(&p->closer, (uv_handle_t *)&p->timer);
    colony__closer_finish(&p->closer, p->h->loop);
}

static void poll_timeout(uv_timer_t *t);

/* Arms the timer at the earlier of the deadline and the group's next due time. */
static void poll_arm(poll *p)
{
    colony__bhttp *h = p->h;
    uint64_t now = uv_now(h->loop);
    uint64_t left = p->deadline > now ? p->deadline - now : 0;
    uint64_t due = colony__bdelivery_next_due(h->engine, p->stream, p->group);
    if (due != UINT64_MAX) {
        uint64_t wall = colony__bdelivery_now(h->engine);
        uint64_t in = due > wall ? due - wall : 0;
        if (in < MIN_REARM_MS) in = MIN_REARM_MS;
        if (in < left) left = in;
    }
    uv_timer_start(&p->timer, poll_timeout, left, 0);
}

static void stream_check(poll *p);

/* The poll's answer is given (or being given): it leaves the list and its
 * timer stops, so no wake-up looks again; poll_finished frees it when the
 * request is over. */
static void poll_done(poll *p)
{
    if (!p->req) return;
    colony__list_remove(&p->link);
    uv_timer_stop(&p->timer);
    p->req = NULL;
}

/* Looks again: answers (and ends the poll) when something was delivered,
 * on an error, or at the deadline; else re-arms. */
static void poll_check(poll *p)
{
    colony_request *req = p->req;
    if (!req) return;
    if (p->streaming) {
        stream_check(p);
        return;
    }
    if (p->h->stopping) {
        poll_done(p);
        answer_empty(req);
        return;
    }
    /* taken out first: an answer held for its fsync must not be given twice */
    poll_done(p);
    long n = try_deliver(p->h, req, p->stream, p->group, p->consumer, p->max);
    if (n != 0) return; /* answered */
    if (uv_now(p->h->loop) >= p->deadline) {
        answer_empty(req);
        return;
    }
    p->req = req; /* waits on */
    colony__list_push_back(&p->h->polls, &p->link);
    poll_arm(p);
}

static void poll_timeout(uv_timer_t *t)
{
    poll_check(t->data);
}

/* ---- streamed consume: NDJSON lines on one open response ----
 * At most p->max entries of the consumer are pending at a time (the
 * prefetch window): more are sent as acks (or nacks, or redelivery to
 * others) bring the consumer's pending count down. Lines are written once
 * their deliveries are durable. */

typedef struct stream_batch {
    poll *p;
    colony_buf text;
    size_t waits;
    int err;
} stream_batch;

static void batch_written(void *ud, int err)
{
    stream_batch *b = ud;
    if (err && !b->err) b->err = err;
    if (--b->waits > 0) return;
    poll *p = b->p;
    colony_request *req = p->req;
    if (req && (b->err || colony_response_write(req, b->text.data, b->text.len, NULL, NULL))) {
        poll_done(p);
        colony_response_abort(req);
    }
    colony_buf_free(&b->text);
    colony__free(b);
    colony__closer_release(&p->closer);
}

static size_t consumer_pending(const colony__bgroup *g, const char *consumer)
{
    size_t pos = 0, pending;
    const char *c;
    while ((c = colony__bgroup_consumer_next(g, &pos, &pending)))
        if (strcmp(c, consumer) == 0) return pending;
    return 0;
}

/* Sends what the window allows, then re-arms at the group's next due time. */
static void stream_check(poll *p)
{
    colony__bhttp *h = p->h;
    colony__bstream *st = colony__bstore_get(h->store, p->stream);
    colony__bgroup *g = st ? colony__bgroup_get(st, p->group) : NULL;
    if (h->stopping || !g) {
        colony_request *req = p->req;
        poll_done(p);
        colony_response_end(req); /* the group or the broker is going */
        return;
    }
    size_t held = consumer_pending(g, p->consumer);
    if (held < p->max) {
        collect c = collect_start(h, st);
        long n = c.arr ? colony__bdelivery_next(h->engine, p->stream, p->group, p->consumer,
                                                p->max - held, on_delivered, &c)
                       : COLONY_ENOMEM;
        stream_batch *b = n > 0 && !c.rc ? colony__calloc(1, sizeof(*b)) : NULL;
        if (n < 0 || c.rc || (n > 0 && !b)) {
            json_decref(c.arr);
            colony_request *req = p->req;
            poll_done(p);
            colony_response_abort(req);
            return;
        }
        if (n > 0) {
            h->stats.delivered += (uint64_t)n;
            colony_buf_init(&b->text, SIZE_MAX);
            size_t i;
            json_t *m;
            int rc = 0;
            json_array_foreach(c.arr, i, m)
            {
                char *line = json_dumps(m, JSON_COMPACT);
                rc = !line || colony_buf_append_str(&b->text, line) ||
                     colony_buf_append(&b->text, "\n", 1);
                free(line);
                if (rc) break;
            }
            json_decref(c.arr);
            if (rc) {
                colony_buf_free(&b->text);
                colony__free(b);
                colony_request *req = p->req;
                poll_done(p);
                colony_response_abort(req);
                return;
            }
            b->p = p;
            colony__bstream *sts[8];
            size_t ns = answer_now(h, &c) ? 0 : colony__bhttp_touched(h, st, sts, 8);
            colony__closer_hold(&p->closer);
            b->waits = 1;
            for (size_t k = 0; k < ns; k++) {
                b->waits++;
                if (colony__bcommit_wait(h->commit, sts[k], batch_written, b)) {
                    b->waits--;
                    b->err = COLONY_ENOMEM;
                }
            }
            batch_written(b, 0);
        } else {
            json_decref(c.arr);
        }
    }
    p->deadline = uv_now(h->loop) + 60000; /* look again at least once a minute */
    poll_arm(p);
}

/* Starts a streamed consume on req; 0, or it has answered an error. */
static void start_stream(poll *p)
{
    colony_request *req = p->req;
    if (colony_response_header(req, "Content-Type", "application/x-ndjson") ||
        colony_response_start(req, 200)) {
        poll_done(p);
        colony_response_abort(req);
        return;
    }
    stream_check(p);
}

void colony__bhttp_wake(colony__bhttp *h, const char *name)
{
    if (!h->engine) return;
    /* a poll answered here leaves the list: walk a snapshot */
    colony__list todo, *n;
    colony__list_init(&todo);
    while (!colony__list_empty(&h->polls)) {
        n = h->polls.next;
        colony__list_remove(n);
        colony__list_push_back(&todo, n);
    }
    while (!colony__list_empty(&todo)) {
        n = todo.next;
        colony__list_remove(n);
        colony__list_push_back(&h->polls, n);
        poll *p = COLONY__CONTAINER_OF(n, poll, link);
        if (!name || strcmp(p->stream, name) == 0) poll_check(p);
    }
}

void colony__bhttp_stopping(colony__bhttp *h)
{
    h->stopping = 1;
    colony__bhttp_wake(h, NULL);
}

static int wait_param(colony__bhttp *h, colony_request *req, uint64_t *ms)
{
    const char *w = colony_request_query_param(req, "wait");
    *ms = 0;
    if (!w || !*w) return 0;
    int64_t v;
    if (colony_config_parse_duration(w, &v) || v < 0) {
        colony__bhttp_fail(req, 400, "bad_request", "wait is a duration (\"30s\", \"500ms\")");
        return COLONY_EINVAL;
    }
    *ms = (uint64_t)v > h->set.max_wait_ms ? h->set.max_wait_ms : (uint64_t)v;
    return 0;
}

static int count_param(colony_request *req, const char *name, size_t dflt, size_t max, size_t *out)
{
    const char *s = colony_request_query_param(req, name);
    *out = dflt;
    if (!s || !*s) return 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || *s == '-' || v == 0 || v > max) {
        colony__bhttp_fail(req, 400, "bad_request", "%s is 1 to %zu", name, max);
        return COLONY_EINVAL;
    }
    *out = (size_t)v;
    return 0;
}

static void get_messages(colony_request *req, void *ud)
{
    colony__bhttp *h = ud;
    if (!colony__bhttp_engine_ready(h, req)) return;
    const char *stream = colony_request_param(req, "stream");
    const char *group = colony_request_param(req, "group");
    const char *consumer = colony_request_query_param(req, "consumer");
    if (!consumer || !*consumer || strlen(consumer) > CONSUMER_MAX) {
        colony__bhttp_fail(req, 400, "bad_request", "consumer=NAME (1 to %d bytes) is required",
                           CONSUMER_MAX);
        return;
    }
    if (!colony__bhttp_name_ok(stream)) {
        colony__bhttp_fail(req, 400, "bad_request", "a stream name is 1 to %d bytes",
                           COLONY__BHTTP_NAME_MAX);
        return;
    }
    size_t max;
    uint64_t wait_ms;
    const char *accept = colony_request_header(req, "Accept");
    const char *sq = colony_request_query_param(req, "stream");
    int streaming = (sq && (!strcmp(sq, "1") || !strcmp(sq, "true"))) ||
                    (accept && strstr(accept, "application/x-ndjson"));
    if (streaming ? count_param(req, "prefetch", 10, h->set.max_batch, &max)
                  : count_param(req, "max", 1, h->set.max_batch, &max))
        return;
    if (wait_param(h, req, &wait_ms)) return;
    if (streaming) {
        colony__bstream *st = colony__bstore_get(h->store, stream);
        if (!st || !colony__bgroup_get(st, group)) {
            colony__bhttp_fail(req, 404, "not_found", "no %s %.300s", st ? "group" : "stream",
                               st ? group : stream);
            return;
        }
        if (h->stopping) {
            colony__bhttp_fail(req, 503, "stopping", "the broker is shutting down");
            return;
        }
    } else {
        long n = try_deliver(h, req, stream, group, consumer, max);
        if (n != 0) return;
        if (wait_ms == 0 || h->stopping) {
            answer_empty(req);
            return;
        }
    }
    poll *p = colony__calloc(1, sizeof(*p));
    if (!p || !(p->stream = colony__strdup(stream)) || !(p->group = colony__strdup(group)) ||
        !(p->consumer = colony__strdup(consumer))) {
        if (p) poll_free(p);
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    p->h = h;
    p->req = req;
    p->max = max;
    p->deadline = uv_now(h->loop) + wait_ms;
    colony__closer_init(&p->closer, poll_free, p);
    uv_timer_init(h->loop, &p->timer);
    p->timer.data = p;
    if (colony_request_on_finish(req, poll_finished, p)) {
        colony__closer_close(&p->closer, (uv_handle_t *)&p->timer);
        colony__closer_finish(&p->closer, h->loop);
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    colony__list_push_back(&h->polls, &p->link);
    p->streaming = streaming;
    if (streaming)
        start_stream(p);
    else
        poll_arm(p);
}

int colony__bhttp_routes_consume(colony__bhttp *h, colony_router *r)
{
    return colony_router_add(r, "GET", "/streams/:stream/groups/:group/messages", get_messages, h);
}
