/* The broker client's parts (include/colony/broker_client.h): client.c runs
 * the client and its calls, publish.c publishes, subscribe.c runs the
 * long-poll of a subscription, message.c holds a delivered message and
 * settles it (batched acks). */
#ifndef COLONY_KIT_BROKER_INTERNAL_H
#define COLONY_KIT_BROKER_INTERNAL_H

#include <jansson.h>
#include "colony/broker_client.h"
#include "colony/http_client.h"
#include "core/closer.h"
#include "core/list.h"

#define COLONY__BC_MAX_PREFETCH 1000

struct colony_broker_client {
    uv_loop_t *loop;
    colony_client *http;
    char *url; /* without a trailing '/' */
    colony_broker_client_options o;
    char consumer[128]; /* default consumer name: host-pid */
    colony__list subs;  /* colony_broker_sub.link, until each is freed */
    unsigned calls;     /* HTTP calls in flight */
    int closing, forced, finished;
    uv_timer_t close_timer; /* close_timeout_ms */
    colony__closer closer;
    colony_broker_closed_cb close_cb;
    void *close_ud;
};

struct colony_broker_sub {
    colony__list link; /* in c->subs */
    colony_broker_client *c;
    char *stream, *group, *consumer, *start;
    char *stream_path, *group_path; /* "/streams/<s>" and ".../groups/<g>", encoded */
    colony_broker_handler handler;
    void *ud;
    unsigned prefetch;
    uint64_t wait_ms;
    colony_client_call *poll; /* the long-poll in flight, or NULL */
    int setting_up;           /* a setup call is in flight */
    int need_setup;           /* create the stream and group before the next poll */
    int stopped, connected, dispatching, freeing;
    unsigned in_flight; /* delivered and not yet settled, acks and nacks in flight included */
    unsigned calls;     /* its ack / nack / setup calls in flight */
    colony__list held;  /* colony_broker_msg.link: with the handler */
    json_t *acks;       /* ids to ack in the next batch */
    uint64_t backoff_ms;
    uv_timer_t retry; /* reconnect backoff */
    uv_timer_t flush; /* sends the batched acks on the next loop turn */
    colony__closer closer;
    colony_broker_closed_cb unsub_cb;
    void *unsub_ud;
};

struct colony_broker_msg {
    colony__list link;      /* in sub->held while the handler has it */
    colony_broker_sub *sub; /* NULL once detached by a close */
    json_t *obj;            /* the delivery as the broker sent it */
    const char *id;
    const char *data; /* text, or json_text */
    size_t data_len;
    char *json_text;
    unsigned deliveries;
    char *error; /* set_error */
};

/* A finished call: err 0 with the status and the body parsed as JSON (NULL if
 * it was not JSON; borrowed), or a transport error. */
typedef void (*colony__bc_done_cb)(colony_broker_client *c, int err, int status, json_t *body,
                                   void *ud);
/* Sends method path (with its query) and body (JSON text, may be NULL) to the
 * broker; extra: NULL-terminated header pairs or NULL. 0 (cb runs once), or
 * an error (cb never runs). */
int colony__bc_call(colony_broker_client *c, const char *method, const char *path, const char *body,
                    const char *const *extra, uint64_t timeout_ms, colony__bc_done_cb cb, void *ud,
                    colony_client_call **out);
/* The COLONY_E* code of a broker answer that is not 2xx. */
int colony__bc_status_error(int status, const char *error);
/* Appends s percent-encoded (unreserved bytes as is) to a malloc'd "prefix". */
char *colony__bc_path(const char *prefix, const char *s, const char *suffix);
/* A call, sub or message finished: the close moves on when nothing is left. */
void colony__bc_progress(colony_broker_client *c);

/* subscribe.c */
void colony__bsub_stop(colony_broker_sub *s);     /* no more polls */
void colony__bsub_detach(colony_broker_sub *s);   /* close timeout: drop held messages */
void colony__bsub_poll(colony_broker_sub *s);     /* polls if the prefetch window allows */
void colony__bsub_progress(colony_broker_sub *s); /* frees a stopped sub once idle */

/* message.c */
/* The messages of a poll answer, each to the handler. */
void colony__bmsg_dispatch(colony_broker_sub *s, json_t *messages);
/* Sends the batched acks now. */
void colony__bsub_flush_acks(colony_broker_sub *s);

#endif
