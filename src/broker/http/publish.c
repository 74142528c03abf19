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
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "colony/config.h"
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "broker/conn.h"
#include "broker/commands.h"
#include "broker/http/http.h"

#define MAX_KEY_LEN 256

typedef struct batch {
    json_t **objs; /* parsed messages */
    colony__bmsg *msgs;
    uint64_t *delay, *ttl; /* per message, ms (0: none) */
    size_t *line;          /* per message, its line in an NDJSON body (1 for a single) */
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
    colony__free(b->line);
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
    b->line[b->n] = line ? line : 1;
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
    b->line = colony__calloc(lines, sizeof(*b->line));
    if (!b->objs || !b->msgs || !b->delay || !b->ttl || !b->line) {
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

/* An append's error: status, code and message of its answer. */
static int append_error(int rc, const char *name, char *msg, size_t size, const char **code)
{
    if (rc == COLONY__BDELIVERY_EFULL) {
        *code = "stream_full";
        snprintf(msg, size, "stream %.300s is at its max length and its overflow is reject", name);
        return 507;
    }
    if (rc == COLONY_ENOTSUP) {
        *code = "not_implemented";
        snprintf(msg, size, "delay and ttl need the delivery engine, not available");
        return 501;
    }
    if (rc == -ENOSPC || rc == -EDQUOT || rc == -EFBIG) {
        *code = "insufficient_storage";
        snprintf(msg, size, "publish failed: the disk is full (%s)", colony_strerror(rc));
        return 507;
    }
    if (rc == COLONY_E2BIG) {
        *code = "too_large";
        snprintf(msg, size, "publish failed: the message is larger than a record may be");
        return 413;
    }
    *code = rc == COLONY_ENOMEM ? "internal" : "store_error";
    snprintf(msg, size, "publish failed: %s", colony_strerror(rc));
    return 500;
}

/* A batch that failed at message `done`: the messages before it were
 * appended. They are kept and acknowledged: the error answer waits for their
 * commit and lists them ("stored": line and id each), and says from which
 * line to publish again ("retry_from_line"); nothing after it was appended.
 * (Undoing them would take another write, which a full disk refuses too.) */
static void publish_partial(colony__bhttp *h, colony_request *req, colony__bstream *st,
                            const char *name, const batch *b, json_t *ids, size_t done, int rc)
{
    char msg[400];
    const char *code;
    int status = append_error(rc, name, msg, sizeof(msg), &code);
    if (status == 500 && rc != COLONY_ENOMEM)
        COLONY_LOG_WARN("broker: http store error", COLONY_LF_STR("what", "publish"),
                        COLONY_LF_STR("error", colony_strerror(rc)));
    if (done == 0) {
        json_decref(ids);
        colony_respond_error(req, status, code, msg);
        return;
    }
    json_t *stored = json_array();
    for (size_t i = 0; stored && i < done; i++)
        if (json_array_append_new(stored, json_pack("{s:I, s:O}", "line", (json_int_t)b->line[i],
                                                    "id", json_array_get(ids, i)))) {
            json_decref(stored);
            stored = NULL;
        }
    json_decref(ids);
    size_t len = strlen(msg);
    snprintf(msg + len, sizeof(msg) - len, " (line %zu; the %zu message(s) before it are stored)",
             b->line[done], done);
    json_t *body = stored
                       ? json_pack("{s:s, s:s, s:o, s:I}", "error", code, "message", msg, "stored",
                                   stored, "retry_from_line", (json_int_t)b->line[done])
                       : NULL;
    published *p = published_new(h, name, NULL);
    if (p && published_wake(p, name)) {
        published_free(p);
        p = NULL;
    }
    if (!p || !body) {
        if (p) published_free(p);
        json_decref(body);
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    colony__bstream *sts[9] = {st};
    size_t ns = 1;
    colony__bstream *t;
    for (size_t i = 0; h->engine && ns < 9 && (t = colony__bdelivery_touched(h->engine, i)); i++)
        sts[ns++] = t;
    colony__bhttp_reply_durable_n(h, req, sts, ns, status, body, on_durable, p);
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
    h->stats.published += done;
    if (rc) {
        publish_partial(h, req, st, name, &b, ids, done, rc);
        batch_free(&b);
        return;
    }
    batch_free(&b);
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
                             const char *key, uint64_t bound, published *p, colony__bstream ***sts,
                             size_t *ns, size_t *cap, json_t **out)
{
    colony__btopic_target t[MAX_TARGETS];
    colony__bpublish m = {.strs = b->msgs[i].strs, .n = b->msgs[i].n, .ttl_ms = b->ttl[i]};
    if (b->delay[i]) m.deliver_at_ms = colony__bdelivery_now(h->engine) + b->delay[i];
    /* the key rides with each entry, with the message's index and the number
     * of streams bound, so a restart rebuilds the whole answer (idempotency.c) */
    char kept[COLONY__BIDEM_TOPIC_KEY_MAX];
    if (key) {
        m.idem_key.data = kept;
        m.idem_key.len = colony__bidem_topic_key(kept, topic, key, i, bound);
        m.idem_count = b->n;
        if (!m.idem_key.len) return COLONY_EINVAL;
    }
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

/* A repeat of a topic publish: its first answer, once the streams it named
 * have had a commit (the first one may still wait for its fsync). */
static void reply_topic_duplicate(colony__bhttp *h, colony_request *req, json_t *seen)
{
    colony__bstream *sts[MAX_TARGETS];
    size_t ns = 0, i, k;
    json_t *msg, *one;
    json_array_foreach(seen, i, msg)
    {
        json_array_foreach(json_object_get(msg, "streams"), k, one)
        {
            const char *name = json_string_value(json_object_get(one, "stream"));
            colony__bstream *st = name && json_object_get(one, "id") && ns < MAX_TARGETS
                                      ? colony__bstore_get(h->store, name)
                                      : NULL;
            int dup = 0;
            for (size_t j = 0; j < ns && !dup; j++)
                dup = sts[j] == st;
            if (st && !dup) sts[ns++] = st;
        }
    }
    colony__bhttp_reply_durable_n(h, req, sts, ns, 200,
                                  json_pack("{s:O, s:b}", "messages", seen, "duplicate", 1), NULL,
                                  NULL);
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
        reply_topic_duplicate(h, req, seen);
        return;
    }
    /* streams bound now: every message of this publish goes to each of them
     * (or is refused by it), which the key's entries record */
    long bound = colony__btopics_match(h->topics, topic, strlen(topic), NULL, NULL);
    if (bound < 0) {
        colony__bhttp_store_error(req, (int)bound, "publish failed");
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
        rc = publish_one_topic(h, topic, &b, i, key, (uint64_t)bound, p, &sts, &ns, &cap, &one);
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
