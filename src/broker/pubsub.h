/* Redis pub/sub, at most once as in Redis: channels and glob patterns
 * (Redis's glob syntax), the clients subscribed to each, PUBLISH's
 * delivery, and the per-client state that puts a RESP2 client in subscribed
 * mode. Channel names are binary (NUL included). */
#ifndef COLONY_BROKER_PUBSUB_H
#define COLONY_BROKER_PUBSUB_H

#include <stddef.h>
#include <stdint.h>
#include "core/list.h"
#include "core/map.h"

/* Where "a published message also reaches the durable streams bound to that
 * channel" plugs in: PUBLISH calls this after delivering to the subscribers
 * (before it replies). 0, or a negative COLONY_E* code, which PUBLISH turns
 * into an error reply (the subscribers have been served already; Redis's
 * count of receivers does not include streams). NULL until the streams and
 * bindings exist. */
typedef int (*colony__broker_publish_hook)(void *ud, const char *channel, size_t channel_len,
                                           const char *message, size_t message_len);

/* A client's subscriptions (inside colony__broker_client). */
typedef struct colony__broker_subs {
    colony__map channels, patterns; /* key -> subscription */
    colony__list channel_order, pattern_order;
    size_t nchannels, npatterns;
} colony__broker_subs;

/* The server's table of channels and patterns. */
typedef struct colony__broker_pubsub {
    colony__map channels; /* key -> topic with its subscribers */
    colony__map patterns;
    size_t npattern_subs; /* PUBSUB NUMPAT: pattern subscriptions of all clients */
    colony__broker_publish_hook hook;
    void *hook_ud;
} colony__broker_pubsub;

struct colony__broker_client;

void colony__broker_subs_init(colony__broker_subs *s);
/* Drops every subscription of c (client closing, RESET); sends nothing. */
void colony__broker_subs_drop(struct colony__broker_client *c);
/* Channels plus patterns: a client with any is in subscribed mode. */
size_t colony__broker_subs_count(const colony__broker_subs *s);
void colony__broker_pubsub_free(colony__broker_pubsub *ps);

/* 1 if string matches the glob pattern (glob.c: *, ?, [abc], [^a-z], \x
 * escapes, case-sensitive, as Redis documents them), else 0. */
int colony__broker_glob_match(const char *pattern, size_t plen, const char *string, size_t slen);

#endif
