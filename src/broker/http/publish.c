/* Publishing over HTTP:
 *
 *   POST /streams/:stream/messages   {"data": ..., "headers": {...}}
 *                                    or NDJSON (Content-Type: application/x-ndjson),
 *                                    one message per line
 *
 * Every message of a request is checked before any is appended (a bad line:
 * 400 naming it, nothing appended); then all are appended and the answer
 * waits for one group commit (fsync: always) covering them. An
 * Idempotency-Key header drops a repeat within the window (idempotency.c)
 * and answers with the first publish's ids. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "colony/config.h"
#include "colony/error.h"
#include "core/alloc.h"
#include "broker/conn.h"
#include "broker/commands.h"
#include "broker/http/http.h"

#define MAX_KEY_LEN 256

typedef struct batch {
    json_t **objs; /* parsed messages */
    colony__bmsg *msgs;
    uint64_t *delay, *ttl; /* per message, ms (0: none) */
    size_t n;
    uint64_t q_delay, q_ttl; /* ?delay= and ?ttl=: for messages without their own */
} batch;

static void batch_free(batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        colony__bmsg_free(&b->msgs[i]);
        json_decref(b->objs[i]);
    }
    colony__free(b->objs);
    colony__free(b->msgs);
    colony__free(b->delay);
    colony__free(b->ttl);
}

/* ?name= as a duration; 0 when absent. */
static int query_duration(colony_request *req, const char *name, uint64_t *ms)
{
    const char *s = colony_request_query_param(req, name);
    int64_t v = 0;
    *ms = 0;
    if (!s || !*s) return 0;
    if (colony_config_parse_duration(s, &v) || v < 0) {
        colony__bhttp_fail(req, 400, "bad_request", "%s is a duration (\"30s\", \"500ms\")", name);
        return COLONY_EINVAL;
    }
    *ms = (uint64_t)v;
    return 0;
}

static int is_ndjson(colony_request *req)
{
    const char *ct = colony_request_header(req, "Content-Type");
    return ct && (strncasecmp(ct, "application/x-ndjson", 20) == 0 ||
                  strncasecmp(ct, "application/jsonl", 17) == 0);
}

/* One message from text (line: its number in a batch, 0 for a single). */
static int parse_one(colony_request *req, batch *b, const char *text, size_t len, size_t line)
{
    json_error_t jerr;
    char why[300];
    json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!obj) {
        if (line)
            colony__bhttp_fail(req, 400, "bad_request", "line %zu: invalid JSON at column %d: %s",
                               line, jerr.column, jerr.text);
        else
            colony__bhttp_fail(req, 400, "bad_request", "invalid JSON at line %d, column %d: %s",
                               jerr.line, jerr.column, jerr.text);
        return COLONY_EINVAL;
    }
    b->objs[b->n] = obj;
    b->delay[b->n] = b->q_delay;
    b->ttl[b->n] = b->q_ttl;
    int rc = json_is_object(obj) ? 0 : COLONY_EINVAL;
    for (int k = 0; !rc && k < 2; k++) {
        const char *f = k ? "ttl" : "delay";
        json_t *v = json_object_get(obj, f);
        int64_t ms = -1;
        if (!v) continue;
        if (json_is_integer(v))
            ms = json_integer_value(v);
        else if (json_is_string(v) && colony_config_parse_duration(json_string_value(v), &ms))
            ms = -1;
        if (ms < 0) {
            json_decref(obj);
            if (line)
                colony__bhttp_fail(req, 400, "bad_request", "line %zu: \"%s\" is a duration", line,
                                   f);
            else
                colony__bhttp_fail(req, 400, "bad_request", "\"%s\" is a duration", f);
            return COLONY_EINVAL;
        }
        (k ? b->ttl : b->delay)[b->n] = (uint64_t)ms;
    }
    rc = colony__bmsg_from_json(obj, &b->msgs[b->n], why, sizeof(why));
    if (rc) {
        json_decref(obj);
        if (rc == COLONY_ENOMEM)
            colony_respond_error(req, 500, "internal", "out of memory");
        else if (line)
            colony__bhttp_fail(req, 400, "bad_request", "line %zu: %s", line, why);
        else
            colony__bhttp_fail(req, 400, "bad_request", "%s", why);
        return rc;
    }
    b->n++;
    return 0;
}

/* Parses the body into b; on failure it has answered. */
static int parse_body(colony__bhttp *h, colony_request *req, batch *b)
{
    size_t len;
    const char *body = colony_request_body(req, &len);
    size_t lines = 1;
    int nd = is_ndjson(req);
    if (nd)
        for (size_t i = 0; i < len; i++)
            lines += body[i] == '\n';
    if (lines > h->set.max_batch + 1) { /* + 1: the empty line after the last newline */
        colony__bhttp_fail(req, 413, "too_large", "more than %zu messages in one publish",
                           h->set.max_batch);
        return COLONY_E2BIG;
    }
    if (query_duration(req, "delay", &b->q_delay) || query_duration(req, "ttl", &b->q_ttl))
        return COLONY_EINVAL;
    b->objs = colony__calloc(lines, sizeof(*b->objs));
    b->msgs = colony__calloc(lines, sizeof(*b->msgs));
    b->delay = colony__calloc(lines, sizeof(*b->delay));
    b->ttl = colony__calloc(lines, sizeof(*b->ttl));
    if (!b->objs || !b->msgs || !b->delay || !b->ttl) {
        colony_respond_error(req, 500, "internal", "out of memory");
        return COLONY_ENOMEM;
    }
    if (!nd) return parse_one(req, b, body ? body : "", len, 0);
    size_t start = 0, line = 0;
    while (start < len) {
        const char *nl = memchr(body + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - body) : len;
        line++;
        size_t e = end;
        while (e > start && (body[e - 1] == '\r' || body[e - 1] == ' ' || body[e - 1] == '\t'))
            e--;
        if (e > start) {
            int rc = parse_one(req, b, body + start, e - start, line);
            if (rc) return rc;
        }
        start = end + 1;
    }
    if (b->n == 0) {
        colony__bhttp_fail(req, 400, "bad_request", "no message in the NDJSON body");
        return COLONY_EINVAL;
    }
    return 0;
}

/* What the commit callback needs: the streams whose readers to wake, and
 * the key to forget if the fsync failed. */
typedef struct published {
    colony__bhttp *h;
    char *key;       /* Idempotency-Key, or NULL */
    char *target;    /* the key's scope: the stream's name, or "topic:" + topic */
    colony_buf wake; /* stream names, each ending with a NUL */
} published;

static void published_free(published *p)
{
    colony__free(p->key);
    colony__free(p->target);
    colony_buf_free(&p->wake);
    colony__free(p);
}

static void on_durable(void *ud, int err)
{
    published *p = ud;
    if (err) {
        if (p->key) colony__bidem_forget(&p->h->idem, p->target, p->key);
    } else {
        for (size_t off = 0; off < p->wake.len; off += strlen(p->wake.data + off) + 1) {
            const char *name = p->wake.data + off;
            if (p->h->resp) /* XREAD BLOCK readers, and (its hook) the long-polls */
                colony__xread_wake(p->h->resp, name);
            else
                colony__bhttp_wake(p->h, name);
        }
        if (p->h->resp) colony__broker_resp_flush_dirty(p->h->resp);
    }
    published_free(p);
}

static published *published_new(colony__bhttp *h, const char *target, const char *key)
{
    published *p = colony__calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->h = h;
    colony_buf_init(&p->wake, 1 << 20);
    p->target = colony__strdup(target);
    p->key = key ? colony__strdup(key) : NULL;
    if (!p->target || (key && !p->key)) {
        published_free(p);
        return NULL;
    }
    return p;
}

static int published_wake(published *p, const char *name)
{
    return colony_buf_append(&p->wake, name, strlen(name) + 1);
}

/* Message i of b to the stream: through the engine (its max length,
 * overflow, TTL, delay) when there is one, else straight to the store. */
static int append_one(colony__bhttp *h, colony__bstream *st, const char *name, const batch *b,
                      size_t i, const char *key, colony__bid *id)
{
    /* the key rides with each entry of the publish (store/meta.c), so a
     * restart can rebuild the window from the entries (idempotency.c) */
    if (!h->engine && (b->delay[i] || b->ttl[i])) return COLONY_ENOTSUP;
    if (key) colony__bstream_idem_next(st, (colony__bstr){key, strlen(key)}, b->n);
    int rc;
    if (!h->engine) {
        rc = colony__bstream_append_meta(st, COLONY__BID_AUTO, (colony__bid){0, 0}, b->msgs[i].strs,
                                         b->msgs[i].n, (colony__bstr){0}, id);
    } else {
        colony__bpublish m = {.strs = b->msgs[i].strs, .n = b->msgs[i].n, .ttl_ms = b->ttl[i]};
        if (b->delay[i]) m.deliver_at_ms = colony__bdelivery_now(h->engine) + b->delay[i];
        rc = colony__bdelivery_publish(h->engine, name, &m, id);
    }
    colony__bstream_idem_next(st, (colony__bstr){0}, 0); /* if refused before its append */
    return rc;
}

/* An append's error as an answer: 507 stream_full for max length + reject. */
static void publish_error(colony_request *req, int rc, const char *name, size_t done)
{
    if (rc == COLONY__BDELIVERY_EFULL)
        colony__bhttp_fail(req, 507, "stream_full",
                           "stream %.300s is at its max length and its overflow is reject "
                           "(%zu message(s) of this request were appended before)",
                           name, done);
    else if (rc == COLONY_ENOTSUP)
        colony__bhttp_fail(req, 501, "not_implemented",
                           "delay and ttl need the delivery engine, not available");
    else
        colony__bhttp_store_error(req, rc, "publish failed");
}

static void publish_stream(colony_request *req, void *ud)
{
    colony__bhttp *h = ud;
    const char *name;
    colony__bstream *st = colony__bhttp_stream(h, req, &name);
    if (!st) return;
    const char *key = colony_request_header(req, "Idempotency-Key");
    if (key && (strlen(key) == 0 || strlen(key) > MAX_KEY_LEN)) {
        colony__bhttp_fail(req, 400, "bad_request", "Idempotency-Key is 1 to %d bytes",
                           MAX_KEY_LEN);
        return;
    }
    uint64_t now = colony__bstore_now(h->store);
    json_t *seen = key ? colony__bidem_get(&h->idem, name, key, now) : NULL;
    if (seen) {
        /* the first publish may still wait for its fsync: answer after a
         * commit of the stream, which covers it */
        h->stats.idem_hits++;
        json_t *reply = json_array_size(seen) == 1 && !is_ndjson(req)
                            ? json_pack("{s:O, s:b}", "id", json_array_get(seen, 0), "duplicate", 1)
                            : json_pack("{s:O, s:b}", "ids", seen, "duplicate", 1);
        colony__bhttp_reply_durable(h, req, st, 200, reply, NULL, NULL);
        return;
    }
    batch b = {0};
    if (parse_body(h, req, &b)) {
        batch_free(&b);
        return;
    }
    json_t *ids = json_array();
    int rc = ids ? 0 : COLONY_ENOMEM;
    size_t done = 0;
    for (; !rc && done < b.n; done++) {
        colony__bid id;
        rc = append_one(h, st, name, &b, done, key, &id);
        if (!rc) rc = json_array_append_new(ids, colony__bhttp_id_json(id)) ? COLONY_ENOMEM : 0;
        if (rc) break;
    }
    batch_free(&b);
    h->stats.published += done;
    if (rc) {
        /* those appended before the failure are kept (durable with the next
         * commit); the answer says which */
        publish_error(req, rc, name, done);
        json_decref(ids);
        return;
    }
    if (key && colony__bidem_put(&h->idem, name, key, ids, now)) key = NULL;
    published *p = published_new(h, name, key);
    if (p && published_wake(p, name)) {
        published_free(p);
        p = NULL;
    }
    if (!p) {
        if (key) colony__bidem_forget(&h->idem, name, key);
        json_decref(ids);
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    json_t *reply = json_array_size(ids) == 1 && !is_ndjson(req)
                        ? json_pack("{s:O}", "id", json_array_get(ids, 0))
                        : json_pack("{s:O}", "ids", ids);
    json_decref(ids);
    colony__bstream *sts[9] = {st};
    size_t ns = 1;
    colony__bstream *t;
    for (size_t i = 0; h->engine && ns < 9 && (t = colony__bdelivery_touched(h->engine, i)); i++)
        sts[ns++] = t;
    colony__bhttp_reply_durable_n(h, req, sts, ns, 201, reply, on_durable, p);
}

#define MAX_TARGETS 64 /* streams one topic publish reaches at most */

/* Message i of b to every stream bound to topic: its targets as JSON, the
 * streams to wait on appended to sts (grown), their names to p->wake. */
static int publish_one_topic(colony__bhttp *h, const char *topic, const batch *b, size_t i,
                             published *p, colony__bstream ***sts, size_t *ns, size_t *cap,
                             json_t **out)
{
    colony__btopic_target t[MAX_TARGETS];
    colony__bpublish m = {.strs = b->msgs[i].strs, .n = b->msgs[i].n, .ttl_ms = b->ttl[i]};
    if (b->delay[i]) m.deliver_at_ms = colony__bdelivery_now(h->engine) + b->delay[i];
    long n =
        colony__btopics_publish(h->topics, h->engine, topic, strlen(topic), &m, t, MAX_TARGETS);
    if (n < 0) return (int)n;
    json_t *arr = json_array();
    if (!arr) return COLONY_ENOMEM;
    size_t got = (size_t)n < MAX_TARGETS ? (size_t)n : MAX_TARGETS;
    for (size_t k = 0; k < got; k++) {
        json_t *o = t[k].err ? json_pack("{s:s, s:s}", "stream", t[k].stream, "error",
                                         t[k].err == COLONY__BDELIVERY_EFULL
                                             ? "stream full (max length, overflow reject)"
                                             : colony_strerror(t[k].err))
                             : json_pack("{s:s, s:o}", "stream", t[k].stream, "id",
                                         colony__bhttp_id_json(t[k].id));
        if (json_array_append_new(arr, o)) goto oom;
        if (t[k].err || !t[k].st) continue;
        if (*ns + 9 > *cap) {
            size_t nc = *cap * 2 + 16;
            colony__bstream **g = colony__realloc(*sts, nc * sizeof(**sts));
            if (!g) goto oom;
            *sts = g;
            *cap = nc;
        }
        (*sts)[(*ns)++] = t[k].st;
        if (published_wake(p, t[k].stream)) goto oom;
    }
    colony__bstream *x;
    for (size_t k = 0; *ns < *cap && (x = colony__bdelivery_touched(h->engine, k)); k++)
        (*sts)[(*ns)++] = x;
    *out = arr;
    return 0;
oom:
    json_decref(arr);
    return COLONY_ENOMEM;
}

/* POST /topics/:topic/messages: as a stream publish, to every bound stream
 * (each under its own policy). The answer lists, per message, each stream
 * with the id appended or why it refused; 404 when no stream is bound. */
static void publish_topic(colony_request *req, void *ud)
{
    colony__bhttp *h = ud;
    if (!h->topics || !h->engine) {
        colony__bhttp_fail(req, 501, "not_implemented", "topics are not available");
        return;
    }
    const char *topic = colony_request_param(req, "topic");
    if (!topic || !*topic || strlen(topic) > 1024) {
        colony__bhttp_fail(req, 400, "bad_request", "a topic name is 1 to 1024 bytes");
        return;
    }
    const char *key = colony_request_header(req, "Idempotency-Key");
    if (key && (strlen(key) == 0 || strlen(key) > MAX_KEY_LEN)) {
        colony__bhttp_fail(req, 400, "bad_request", "Idempotency-Key is 1 to %d bytes",
                           MAX_KEY_LEN);
        return;
    }
    char target[1040];
    snprintf(target, sizeof(target), "topic:%s", topic);
    uint64_t now = colony__bstore_now(h->store);
    json_t *seen = key ? colony__bidem_get(&h->idem, target, key, now) : NULL;
    if (seen) {
        h->stats.idem_hits++;
        colony__bhttp_reply(req, 200, json_pack("{s:O, s:b}", "messages", seen, "duplicate", 1));
        return;
    }
    batch b = {0};
    if (parse_body(h, req, &b)) {
        batch_free(&b);
        return;
    }
    published *p = published_new(h, target, NULL);
    json_t *msgs = json_array();
    colony__bstream **sts = NULL;
    size_t ns = 0, cap = 0;
    int rc = p && msgs ? 0 : COLONY_ENOMEM;
    for (size_t i = 0; !rc && i < b.n; i++) {
        json_t *one = NULL;
        rc = publish_one_topic(h, topic, &b, i, p, &sts, &ns, &cap, &one);
        if (!rc && json_array_append_new(msgs, json_pack("{s:o}", "streams", one)))
            rc = COLONY_ENOMEM;
    }
    batch_free(&b);
    if (!rc && ns == 0 && json_array_size(msgs) &&
        json_array_size(json_object_get(json_array_get(msgs, 0), "streams")) == 0) {
        colony__free(sts);
        json_decref(msgs);
        published_free(p);
        colony__bhttp_fail(req, 404, "no_binding", "no stream is bound to topic %.300s", topic);
        return;
    }
    if (rc) {
        colony__free(sts);
        json_decref(msgs);
        if (p) published_free(p);
        colony__bhttp_store_error(req, rc, "publish failed");
        return;
    }
    h->stats.published += b.n;
    if (key && !colony__bidem_put(&h->idem, target, key, msgs, now)) p->key = colony__strdup(key);
    json_t *reply = json_pack("{s:O}", "messages", msgs);
    json_decref(msgs);
    colony__bhttp_reply_durable_n(h, req, sts, ns, 201, reply, on_durable, p);
    colony__free(sts);
}

int colony__bhttp_routes_publish(colony__bhttp *h, colony_router *r)
{
    int rc = colony_router_add(r, "POST", "/streams/:stream/messages", publish_stream, h);
    if (!rc) rc = colony_router_add(r, "POST", "/topics/:topic/messages", publish_topic, h);
    return rc;
}
