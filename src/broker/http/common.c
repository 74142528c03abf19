/* What the HTTP API's handlers share: answers, names, ids, lag, and the
 * module's setup (routes of every file, shutdown of long-polls). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "broker/http/http.h"
#include "broker/stream_id.h"

int colony__bhttp_fail(colony_request *req, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    colony_respond_error(req, status, code, msg);
    return 1;
}

void colony__bhttp_reply(colony_request *req, int status, json_t *body)
{
    if (!body) {
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    colony_respond_json(req, status, body);
    json_decref(body);
}

int colony__bhttp_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    return n > 0 && n <= COLONY__BHTTP_NAME_MAX;
}

colony__bstream *colony__bhttp_stream(colony__bhttp *h, colony_request *req, const char **name)
{
    const char *s = colony_request_param(req, "stream");
    if (!colony__bhttp_name_ok(s)) {
        colony__bhttp_fail(req, 400, "bad_request", "a stream name is 1 to %d bytes",
                           COLONY__BHTTP_NAME_MAX);
        return NULL;
    }
    if (name) *name = s;
    colony__bstream *st = colony__bstore_get(h->store, s);
    if (!st) {
        const char *why = colony__bstore_damaged(h->store, s);
        if (why)
            colony__bhttp_fail(req, 503, "damaged", "stream %.300s is damaged: %s", s, why);
        else
            colony__bhttp_fail(req, 404, "not_found", "no stream %.300s", s);
    }
    return st;
}

void colony__bhttp_store_error(colony_request *req, int err, const char *what)
{
    if (err == -ENOSPC || err == -EDQUOT || err == -EFBIG)
        colony__bhttp_fail(req, 507, "insufficient_storage", "%s: the disk is full (%s)", what,
                           colony_strerror(err));
    else if (err == COLONY_E2BIG)
        colony__bhttp_fail(req, 413, "too_large", "%s: the message is larger than a record may be",
                           what);
    else {
        COLONY_LOG_WARN("broker: http store error", COLONY_LF_STR("what", what),
                        COLONY_LF_STR("error", colony_strerror(err)));
        colony__bhttp_fail(req, 500, "store_error", "%s: %s", what, colony_strerror(err));
    }
}

json_t *colony__bhttp_id_json(colony__bid id)
{
    char text[COLONY__XID_MAX_TEXT];
    size_t n = colony__xid_format(id, text);
    return json_stringn(text, n);
}

int colony__bhttp_id_parse(const char *s, colony__bid *out)
{
    if (!s || !*s) return COLONY_EINVAL;
    return colony__xid_parse(s, strlen(s), 0, 1, NULL, out) ? COLONY_EINVAL : 0;
}

uint64_t colony__bhttp_lag(colony__bstream *st, colony__bid cursor)
{
    int64_t n = colony__bstream_count_after(st, cursor);
    return n > 0 ? (uint64_t)n : 0;
}

void colony__bhttp_init(colony__bhttp *h, uv_loop_t *loop, colony__bstore *store,
                        colony__bcommit *commit, colony__broker_resp *resp,
                        const colony__bhttp_settings *set)
{
    memset(h, 0, sizeof(*h));
    h->loop = loop;
    h->store = store;
    h->commit = commit;
    h->resp = resp;
    h->set = *set;
    colony__list_init(&h->polls);
    colony__bidem_init(&h->idem, set->idem_window_ms, set->idem_max_keys);
}

/* Entries read per key remembered, at most, to rebuild the idempotency
 * window on start (publishes without a key in between cost reads too). */
#define IDEM_SCAN_PER_KEY 4

int colony__bhttp_routes(colony__bhttp *h, colony_router *r)
{
    int rc = colony__bhttp_routes_streams(h, r);
    if (!rc) rc = colony__bhttp_routes_publish(h, r);
    if (!rc) rc = colony__bhttp_routes_consume(h, r);
    if (!rc) rc = colony__bhttp_routes_settle(h, r);
    if (!rc) rc = colony__bhttp_routes_dlq(h, r);
    if (!rc) rc = colony__bhttp_routes_topics(h, r);
    if (rc) return rc;
    /* the idempotency window as it was before a restart (idempotency.c) */
    long keys = colony__bidem_load(&h->idem, h->store, colony__bstore_now(h->store),
                                   IDEM_SCAN_PER_KEY * h->set.idem_max_keys);
    if (keys < 0) return (int)keys;
    if (keys) COLONY_LOG_INFO("broker: idempotency keys rebuilt", COLONY_LF_INT("keys", keys));
    return 0;
}

void colony__bhttp_free(colony__bhttp *h)
{
    colony__bidem_free(&h->idem);
    colony__bhttp_metrics_free(h);
}

/* An answer held until the writes before it are durable. Owners: each
 * commit wait and the request's finish hook; the last one frees it. */
typedef struct durable_reply {
    colony__bhttp *h;
    colony_request *req; /* NULL once the request is over (client gone) */
    int status, refs, err;
    size_t waits;   /* commit callbacks still to come */
    uint64_t start; /* uv_hrtime at the call */
    json_t *body;
    colony__bhttp_durable_cb after;
    void *after_ud;
} durable_reply;

static void durable_release(durable_reply *w)
{
    if (--w->refs > 0) return;
    json_decref(w->body);
    colony__free(w);
}

static void durable_finished(colony_request *req, int status, void *ud)
{
    (void)req;
    (void)status;
    durable_reply *w = ud;
    w->req = NULL;
    durable_release(w);
}

static void durable_answer(durable_reply *w)
{
    w->refs++; /* the answer may finish the request inside this call */
    if (w->h->m.commit_wait)
        colony_metric_observe(colony_metric_with(w->h->m.commit_wait),
                              (double)(uv_hrtime() - w->start) / 1e9);
    if (w->after) w->after(w->after_ud, w->err);
    if (w->req) {
        if (w->err == COLONY_ENOMEM)
            colony_respond_error(w->req, 500, "internal", "out of memory");
        else if (w->err)
            colony__bhttp_store_error(w->req, w->err, "not durable (fsync failed)");
        else
            colony_respond_json(w->req, w->status, w->body);
    }
    durable_release(w);
}

static void durable_committed(void *ud, int err)
{
    durable_reply *w = ud;
    if (err && !w->err) w->err = err;
    if (--w->waits == 0) durable_answer(w);
    durable_release(w);
}

int colony__bhttp_reply_durable_n(colony__bhttp *h, colony_request *req, colony__bstream **sts,
                                  size_t n, int status, json_t *body,
                                  colony__bhttp_durable_cb after, void *ud)
{
    durable_reply *w = body ? colony__calloc(1, sizeof(*w)) : NULL;
    if (!w) {
        json_decref(body);
        if (after) after(ud, COLONY_ENOMEM);
        colony_respond_error(req, 500, "internal", "out of memory");
        return COLONY_ENOMEM;
    }
    *w = (durable_reply){.h = h,
                         .req = req,
                         .status = status,
                         .refs = 1,
                         .body = body,
                         .after = after,
                         .after_ud = ud,
                         .start = uv_hrtime()};
    if (colony_request_on_finish(req, durable_finished, w) == 0)
        w->refs++;
    else
        w->req = NULL;
    w->waits = 1; /* held by this call until every wait is issued */
    for (size_t i = 0; i < n; i++) {
        if (!sts[i]) continue;
        w->waits++;
        w->refs++;
        int rc = colony__bcommit_wait(h->commit, sts[i], durable_committed, w);
        if (rc) {
            w->waits--;
            w->refs--;
            if (!w->err) w->err = rc;
        }
    }
    if (--w->waits == 0) durable_answer(w);
    durable_release(w);
    return 0;
}

int colony__bhttp_reply_durable(colony__bhttp *h, colony_request *req, colony__bstream *st,
                                int status, json_t *body, colony__bhttp_durable_cb after, void *ud)
{
    return colony__bhttp_reply_durable_n(h, req, &st, 1, status, body, after, ud);
}

int colony__bhttp_body_json(colony_request *req, json_t **out)
{
    size_t len;
    const char *body = colony_request_body(req, &len);
    *out = NULL;
    if (len == 0) return 0;
    json_error_t err;
    *out = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
    if (*out) return 0;
    colony__bhttp_fail(req, 400, "bad_request", "invalid JSON at line %d, column %d: %s", err.line,
                       err.column, err.text);
    return COLONY_EINVAL;
}

/* The stream and every stream the engine's last call touched: what an
 * answer waits on. */
size_t colony__bhttp_touched(colony__bhttp *h, colony__bstream *st, colony__bstream **out,
                             size_t max)
{
    size_t n = 0;
    out[n++] = st;
    colony__bstream *t;
    for (size_t i = 0; n < max && (t = colony__bdelivery_touched(h->engine, i)); i++)
        out[n++] = t;
    return n;
}

int colony__bhttp_engine_ready(colony__bhttp *h, colony_request *req)
{
    if (h->engine) return 1;
    colony__bhttp_fail(req, 501, "not_implemented", "the delivery engine is not available");
    return 0;
}
