/* The client of `colony broker` (docs/broker-client.md), over its HTTP API on
 * libcolony's own HTTP client and the caller's loop: publish with a callback
 * that fires on the durable acknowledgement, and subscriptions to a stream
 * through a consumer group with a handler that acks, retries or dead-letters,
 * a prefetch bound and automatic reconnection.
 *
 *   colony_broker_client *broker = colony_service_broker(svc, NULL);
 *   colony_broker_subscribe(broker, &(colony_broker_sub_options){
 *       .stream = "orders", .group = "billing", .handler = on_order}, NULL);
 *
 * Threading: a client and everything made from it belong to one loop and are
 * used only from that loop's thread. */
#ifndef COLONY_BROKER_CLIENT_H
#define COLONY_BROKER_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <uv.h>
#include "export.h"

typedef struct colony_broker_client colony_broker_client;
typedef struct colony_broker_sub colony_broker_sub;
typedef struct colony_broker_msg colony_broker_msg;
typedef struct colony_service colony_service; /* service.h */

typedef struct colony_broker_client_options {
    const char *url;           /* "http://host:port"; NULL = $COLONY_BROKER_URL or
                                  "http://127.0.0.1:8600" */
    uint64_t timeout_ms;       /* publish, ack, nack and setup calls; 0 = 10000 */
    uint64_t retry_min_ms;     /* first reconnect backoff of a subscription; 0 = 100 */
    uint64_t retry_max_ms;     /* backoff cap; 0 = 5000 */
    uint64_t close_timeout_ms; /* close waits this long for held messages; 0 = 10000 */
} colony_broker_client_options;
/* Fills o with the defaults above. */
COLONY_API void colony_broker_client_options_init(colony_broker_client_options *o);

/* A client on loop (opts may be NULL; strings copied). NULL on a bad URL or
 * out of memory. */
COLONY_API colony_broker_client *colony_broker_client_new(uv_loop_t *loop,
                                                          const colony_broker_client_options *opts);
/* Graceful close: new publishes and subscriptions fail with COLONY_ESHUTDOWN,
 * subscriptions stop polling, publishes in flight complete (their callbacks
 * run with the broker's answer or an error), acks in flight complete, and
 * messages a handler still holds are waited for up to close_timeout_ms (a
 * later settle of one then only frees it). Then cb (may be NULL) runs, from
 * the loop, never inside this call, and the client is freed. */
typedef void (*colony_broker_closed_cb)(void *ud);
COLONY_API void colony_broker_client_close(colony_broker_client *c, colony_broker_closed_cb cb,
                                           void *ud);
/* A client on the service's loop (URL as in the options), created on first
 * call (opts are read then) and closed gracefully by a shutdown hook. NULL
 * on error. Borrowed: valid until colony_service_run returns. */
COLONY_API colony_broker_client *colony_service_broker(colony_service *svc,
                                                       const colony_broker_client_options *opts);

/* ---- publish ---- */

typedef struct colony_broker_message {
    const char *stream;          /* one of stream (created on first publish, as XADD does) */
    const char *topic;           /* or topic (to every bound stream) */
    const char *data;            /* UTF-8 text, or JSON text when json is set */
    size_t len;                  /* bytes of data; 0 = strlen(data) */
    int json;                    /* data is a JSON document: stored and delivered as JSON */
    const char *const *headers;  /* NULL-terminated name, value, ... (strings) */
    uint64_t delay_ms;           /* deliver not before now + delay */
    uint64_t ttl_ms;             /* dead-lettered as expired if not delivered within */
    const char *idempotency_key; /* a repeat within the broker's window is dropped */
} colony_broker_message;

/* What the broker answered, valid during the callback only. */
typedef struct colony_broker_reply {
    const char *id;      /* the entry's id ("ms-seq"); a topic: the first stream's; or NULL */
    int status;          /* HTTP status, 0 when no answer came */
    const char *error;   /* the broker's error code ("stream_full", ...), or NULL */
    const char *message; /* the broker's explanation, or NULL */
    int duplicate;       /* 1: dropped as a repeat of the idempotency key */
} colony_broker_reply;
/* err 0: the message is durable (the broker answered after its fsync).
 * Otherwise COLONY_ECONNREFUSED / ETIMEDOUT / ECONNRESET (no answer: maybe
 * not stored, publish again with the same idempotency key), COLONY_EINVAL
 * (400), COLONY_ENOENT (404: no binding), COLONY_E2BIG (413), COLONY_EBUSY
 * (507 stream_full), -ENOSPC (507 disk full), COLONY_EIO (other 5xx). */
typedef void (*colony_broker_publish_cb)(int err, const colony_broker_reply *r, void *ud);
/* Publishes m (copied). 0: cb runs exactly once, from the loop. COLONY_EINVAL
 * (no stream or topic, data not UTF-8 or not JSON), COLONY_ESHUTDOWN
 * (closing), COLONY_ENOMEM: cb never runs. */
COLONY_API int colony_broker_publish(colony_broker_client *c, const colony_broker_message *m,
                                     colony_broker_publish_cb cb, void *ud);

/* ---- subscribe ---- */

typedef enum colony_broker_verdict {
    COLONY_BROKER_ACK,         /* done: acked (batched with others) */
    COLONY_BROKER_RETRY,       /* nacked: redelivered after the group's backoff */
    COLONY_BROKER_DEAD_LETTER, /* to the group's dead-letter stream now */
    COLONY_BROKER_LATER,       /* the handler keeps m and settles it later */
} colony_broker_verdict;

/* Called once per delivery, in stream order. m is valid until settled: by the
 * return value, or with LATER until colony_broker_msg_settle(). */
typedef colony_broker_verdict (*colony_broker_handler)(colony_broker_msg *m, void *ud);

typedef struct colony_broker_sub_options {
    const char *stream;            /* required; created if missing */
    const char *group;             /* required; created if missing, reading from start */
    const char *consumer;          /* NULL = "<hostname>-<pid>" */
    const char *start;             /* a new group reads from "0" (default: everything) or "$" */
    colony_broker_handler handler; /* required */
    void *ud;
    unsigned prefetch; /* messages delivered and not yet settled at most; 0 = 10 */
    uint64_t wait_ms;  /* long-poll wait; 0 = 30000 */
} colony_broker_sub_options;

/* Subscribes (options copied). 0 and *out (may be NULL); the subscription
 * keeps going through broker restarts (reconnect with capped backoff; unsettled
 * entries come back after the visibility timeout). COLONY_EINVAL,
 * COLONY_ESHUTDOWN, COLONY_ENOMEM. */
COLONY_API int colony_broker_subscribe(colony_broker_client *c, const colony_broker_sub_options *o,
                                       colony_broker_sub **out);
/* Stops it: no more deliveries; held messages may still be settled; cb (may
 * be NULL) runs from the loop once nothing of it is in flight. */
COLONY_API void colony_broker_unsubscribe(colony_broker_sub *s, colony_broker_closed_cb cb,
                                          void *ud);
/* Messages delivered to the handler and not yet settled (acks in flight count). */
COLONY_API unsigned colony_broker_sub_in_flight(const colony_broker_sub *s);
/* 1 while its last call to the broker succeeded, 0 while it reconnects. */
COLONY_API int colony_broker_sub_connected(const colony_broker_sub *s);

/* ---- a delivered message (valid until settled) ---- */
COLONY_API const char *colony_broker_msg_id(const colony_broker_msg *m);
COLONY_API const char *colony_broker_msg_stream(const colony_broker_msg *m);
/* 1 on the first delivery, 2 on the first redelivery, ... */
COLONY_API unsigned colony_broker_msg_deliveries(const colony_broker_msg *m);
/* The data: the text published, or, for JSON data, its compact JSON text. */
COLONY_API const char *colony_broker_msg_data(const colony_broker_msg *m, size_t *len);
/* The JSON value of JSON data (borrowed), or NULL for text data. */
COLONY_API const json_t *colony_broker_msg_json(const colony_broker_msg *m);
/* A header's value, or NULL. */
COLONY_API const char *colony_broker_msg_header(const colony_broker_msg *m, const char *name);
/* Error text sent with a RETRY or DEAD_LETTER (kept in the dead letter);
 * copied. 0 or COLONY_ENOMEM. */
COLONY_API int colony_broker_msg_set_error(colony_broker_msg *m, const char *text);
/* Settles a message the handler kept (LATER): ACK, RETRY or DEAD_LETTER;
 * frees m. 0, COLONY_EINVAL (LATER), or COLONY_ESHUTDOWN when the client
 * was closed meanwhile (m freed; the entry comes back after the visibility
 * timeout). */
COLONY_API int colony_broker_msg_settle(colony_broker_msg *m, colony_broker_verdict v);
COLONY_API int colony_broker_msg_ack(colony_broker_msg *m);
COLONY_API int colony_broker_msg_nack(colony_broker_msg *m, int dead_letter, const char *error);

#endif
