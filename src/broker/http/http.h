/* The broker's HTTP API (docs/broker.md, "HTTP API"): streams, groups,
 * publish (one JSON message or an NDJSON batch, acknowledged once durable,
 * with an idempotency key), consume by long-poll, ack / nack / extend. It
 * joins the service's router (the same server as /health, /ready, /metrics)
 * and runs on the broker's loop, over the store (store/store.h). */
#ifndef COLONY_BROKER_HTTP_H
#define COLONY_BROKER_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <jansson.h>
#include "colony/metrics.h"
#include "colony/router.h"
#include "core/list.h"
#include "core/map.h"
#include "broker/store/store.h"
#include "broker/delivery/delivery.h"
#include "broker/topic/topic.h"

typedef struct colony__broker_resp colony__broker_resp; /* conn.h */

/* Duplicate publishes dropped within a window (bounded: the oldest keys go
 * first when max_keys is reached). Rebuilt on start from the entries, which
 * keep their publish's key (colony__bidem_load). */
typedef struct colony__bidem {
    colony__map keys;   /* target "\n" key -> idem_entry */
    colony__list order; /* oldest first (same window for all: expiry order) */
    size_t count, max_keys;
    uint64_t window_ms;
} colony__bidem;

typedef struct colony__bhttp_settings {
    uint64_t idem_window_ms; /* Idempotency-Key window */
    size_t idem_max_keys;    /* keys remembered at most */
    uint64_t visibility_ms;  /* default visibility timeout of a delivery */
    uint64_t max_wait_ms;    /* longest ?wait= of a long-poll */
    size_t max_batch;        /* most messages in one NDJSON publish or one consume */
} colony__bhttp_settings;

typedef struct colony__bhttp {
    uv_loop_t *loop;
    colony__bstore *store;
    colony__bcommit *commit;
    colony__broker_resp *resp; /* XREAD BLOCK readers woken by an HTTP publish; may be NULL */
    colony__bdelivery *engine; /* policies, consume, dead letters; NULL: those answer 501 */
    colony__btopics *topics;   /* bindings; NULL: those answer 501 */
    colony__bhttp_settings set;
    colony__bidem idem;
    colony__list polls; /* long-polls waiting, oldest first (consume.c) */
    int stopping;
    struct {
        uint64_t published, acked, nacked, delivered, redelivered, idem_hits;
    } stats;
    struct { /* metrics.c; NULL families: metrics off */
        colony_metric *entries, *bytes, *pending, *lag, *dead;
        colony_metric *published, *delivered, *redelivered, *acked, *commit_wait, *fsync;
        colony__map seen; /* gauge series set by a scrape, to zero when gone */
        uint64_t epoch;
    } m;
} colony__bhttp;

/* Sets h up (nothing allocated yet); store, commit, resp are borrowed. */
void colony__bhttp_init(colony__bhttp *h, uv_loop_t *loop, colony__bstore *store,
                        colony__bcommit *commit, colony__broker_resp *resp,
                        const colony__bhttp_settings *set);
/* Adds the API's routes to r. 0 or a COLONY_E* code. */
int colony__bhttp_routes(colony__bhttp *h, colony_router *r);
/* A shutdown begins: every waiting long-poll is answered (empty) now. */
void colony__bhttp_stopping(colony__bhttp *h);
/* Frees what h holds (after the server has drained: no poll is left). */
void colony__bhttp_free(colony__bhttp *h);
/* Entries of stream name became durable (from any door): long-polls on it
 * look again. */
void colony__bhttp_wake(colony__bhttp *h, const char *name);

/* ---- internals shared by the files of this folder ---- */
#define COLONY__BHTTP_NAME_MAX 300 /* a stream name's bytes (it names a folder) */

/* Answers {"error": code, "message": msg} with status; returns 1. */
int colony__bhttp_fail(colony_request *req, int status, const char *code, const char *fmt, ...);
/* Answers the JSON value (stolen; NULL: 500 out of memory). */
void colony__bhttp_reply(colony_request *req, int status, json_t *body);
/* The stream named by the route's :stream, or NULL after answering 400/404. */
colony__bstream *colony__bhttp_stream(colony__bhttp *h, colony_request *req, const char **name);
/* 1 if name is a valid stream name (1..300 bytes). */
int colony__bhttp_name_ok(const char *name);
/* A store error as an HTTP answer (507 for a full disk, 500 otherwise). */
void colony__bhttp_store_error(colony_request *req, int err, const char *what);
/* Answers body (stolen) with status once what st wrote so far is durable
 * (fsync: always), or 507/500 if the fsync failed. after (may be NULL) runs
 * first, with the commit's result (also when this returns an error). */
typedef void (*colony__bhttp_durable_cb)(void *ud, int err);
int colony__bhttp_reply_durable(colony__bhttp *h, colony_request *req, colony__bstream *st,
                                int status, json_t *body, colony__bhttp_durable_cb after, void *ud);
/* The body as JSON whatever its Content-Type (curl -d sends a form type):
 * *out NULL for an empty body; on bad JSON it has answered 400. */
int colony__bhttp_body_json(colony_request *req, json_t **out);
/* The same once every stream of sts (NULL entries skipped) is durable. */
int colony__bhttp_reply_durable_n(colony__bhttp *h, colony_request *req, colony__bstream **sts,
                                  size_t n, int status, json_t *body,
                                  colony__bhttp_durable_cb after, void *ud);
/* A duration field of body (ms as a number, or "5s"): 0 set, 1 absent,
 * <0 after answering 400. */
int colony__bhttp_duration_field(colony_request *req, json_t *body, const char *name, uint64_t *ms);
/* st and the streams the engine's last call touched (dead-letter streams,
 * replay destinations) into out (at most max): what an answer waits on. */
size_t colony__bhttp_touched(colony__bhttp *h, colony__bstream *st, colony__bstream **out,
                             size_t max);
/* 1 if the delivery engine is there, else 0 after answering 501. */
int colony__bhttp_engine_ready(colony__bhttp *h, colony_request *req);
/* "ms-seq" JSON string. */
json_t *colony__bhttp_id_json(colony__bid id);
/* Parses "ms-seq" (or "ms"); 0 or COLONY_EINVAL. */
int colony__bhttp_id_parse(const char *s, colony__bid *out);
/* Entries after cursor (the group's lag), without reading them (store/count.c). */
uint64_t colony__bhttp_lag(colony__bstream *st, colony__bid cursor);

/* message.c: a JSON message <-> the strings of an entry. */
typedef struct colony__bmsg {
    colony__bstr *strs; /* field, value, ... (pointing into the JSON or malloc'd text) */
    size_t n;
    char *json_text; /* data encoded as JSON when it is not a string (freed by _free) */
} colony__bmsg;
/* From {"data": any, "headers": {name: string}}; 0, or COLONY_EINVAL with
 * why in err. msg borrows from obj: keep obj alive while msg is used. */
int colony__bmsg_from_json(json_t *obj, colony__bmsg *msg, char *err, size_t err_size);
void colony__bmsg_free(colony__bmsg *msg);
/* An entry as {"id", "data"?, "headers"?, "fields"?}. */
json_t *colony__bmsg_to_json(const colony__bentry *e);

/* idempotency.c */
void colony__bidem_init(colony__bidem *c, uint64_t window_ms, size_t max_keys);
void colony__bidem_free(colony__bidem *c);
/* The ids (a JSON array, borrowed) a publish with this key to target gave
 * within the window, or NULL. */
json_t *colony__bidem_get(colony__bidem *c, const char *target, const char *key, uint64_t now);
/* Remembers ids (a reference is taken) for key; 0 or COLONY_ENOMEM. */
int colony__bidem_put(colony__bidem *c, const char *target, const char *key, json_t *ids,
                      uint64_t now);
void colony__bidem_forget(colony__bidem *c, const char *target, const char *key);
/* A topic publish's key as each of its entries keeps it (store/meta.c):
 * NUL, 'T', the message's index in the request and the number of streams
 * bound to the topic (big-endian u64 each), the topic, NUL, the key. An HTTP
 * header holds no NUL, so a stream publish's key never reads as one. Its
 * length (at most COLONY__BIDEM_TOPIC_KEY_MAX), or 0 if it does not fit. */
#define COLONY__BIDEM_TOPIC_KEY_MAX (2 + 16 + 1024 + 1 + 256)
size_t colony__bidem_topic_key(char *out, const char *topic, const char *key, uint64_t index,
                               uint64_t targets);
/* Rebuilds the window on start from the keys kept in the entries of the
 * store's streams: a stream publish whose entries are all there; a topic
 * publish whose every message is in as many streams as were bound to the
 * topic (one a stream refused is not rebuilt). Entries appended within the
 * window, newest first, at most max_scan read in all. Returns the keys
 * remembered, or COLONY_ENOMEM. */
long colony__bidem_load(colony__bidem *c, colony__bstore *store, uint64_t now, size_t max_scan);

/* policy.c: policies as JSON. _parse reads the fields body names over p;
 * 0, or <0 after answering 400. */
int colony__bhttp_stream_policy_parse(colony_request *req, json_t *body, colony__bstream_policy *p);
json_t *colony__bhttp_stream_policy_json(const colony__bstream_policy *p);
int colony__bhttp_group_policy_parse(colony_request *req, json_t *body, colony__bgroup_policy *p);
json_t *colony__bhttp_group_policy_json(const colony__bgroup_policy *p);

/* metrics.c: registers the families in m and a middleware on r that reads
 * the gauges before /metrics answers. 0 or COLONY_ENOMEM. */
int colony__bhttp_metrics(colony__bhttp *h, colony_metrics *m, colony_router *r);
void colony__bhttp_metrics_free(colony__bhttp *h);

/* The route groups. */
int colony__bhttp_routes_streams(colony__bhttp *h, colony_router *r);
int colony__bhttp_routes_publish(colony__bhttp *h, colony_router *r);
int colony__bhttp_routes_consume(colony__bhttp *h, colony_router *r);
int colony__bhttp_routes_settle(colony__bhttp *h, colony_router *r);
int colony__bhttp_routes_dlq(colony__bhttp *h, colony_router *r);
int colony__bhttp_routes_topics(colony__bhttp *h, colony_router *r);

#endif
