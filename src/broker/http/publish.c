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
#include "colony/error.h"
#include "core/alloc.h"
#include "broker/conn.h"
#include "broker/commands.h"
#include "broker/http/http.h"

#define MAX_KEY_LEN 256

typedef struct batch {
    json_t **objs; /* parsed messages */
    colony__bmsg *msgs;
    size_t n;
} batch;

static void batch_free(batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        colony__bmsg_free(&b->msgs[i]);
        json_decref(b->objs[i]);
    }
    colony__free(b->objs);
    colony__free(b->msgs);
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
    int rc = colony__bmsg_from_json(obj, &b->msgs[b->n], why, sizeof(why));
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
    b->objs = colony__calloc(lines, sizeof(*b->objs));
    b->msgs = colony__calloc(lines, sizeof(*b->msgs));
    if (!b->objs || !b->msgs) {
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

/* What the commit callback needs: where to wake, which key to forget if the
 * fsync failed. */
typedef struct published {
    colony__bhttp *h;
    char *key; /* Idempotency-Key, or NULL */
    char name[];
} published;

static void on_durable(void *ud, int err)
{
    published *p = ud;
    if (err) {
        if (p->key) colony__bidem_forget(&p->h->idem, p->name, p->key);
    } else {
        colony__bhttp_wake(p->h, p->name);
        if (p->h->resp) {
            colony__xread_wake(p->h->resp, p->name);
            colony__broker_resp_flush_dirty(p->h->resp);
        }
    }
    colony__free(p->key);
    colony__free(p);
}

static published *published_new(colony__bhttp *h, const char *name, const char *key)
{
    size_t n = strlen(name);
    published *p = colony__malloc(sizeof(*p) + n + 1);
    if (!p) return NULL;
    p->h = h;
    memcpy(p->name, name, n + 1);
    p->key = key ? colony__strdup(key) : NULL;
    if (key && !p->key) {
        colony__free(p);
        return NULL;
    }
    return p;
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
        rc = colony__bstream_append(st, COLONY__BID_AUTO, (colony__bid){0, 0}, b.msgs[done].strs,
                                    b.msgs[done].n, &id);
        if (!rc) rc = json_array_append_new(ids, colony__bhttp_id_json(id)) ? COLONY_ENOMEM : 0;
        if (rc) break;
    }
    batch_free(&b);
    h->stats.published += done;
    if (rc) {
        /* those appended before the failure are kept (durable with the next
         * commit); the answer says which */
        colony__bhttp_store_error(req, rc, "publish failed");
        json_decref(ids);
        return;
    }
    if (key && colony__bidem_put(&h->idem, name, key, ids, now)) key = NULL;
    published *p = published_new(h, name, key);
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
    colony__bhttp_reply_durable(h, req, st, 201, reply, on_durable, p);
}

int colony__bhttp_routes_publish(colony__bhttp *h, colony_router *r)
{
    return colony_router_add(r, "POST", "/streams/:stream/messages", publish_stream, h);
}
