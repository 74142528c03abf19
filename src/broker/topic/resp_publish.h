/* RESP PUBLISH's durable side: the message also goes to the streams bound to
 * the channel (topic.h), and the reply waits for their fsync the way XADD's
 * does. Called by colony__cmd_publish (pubsub.c) when the server has
 * bindings. */
#ifndef COLONY_BROKER_TOPIC_RESP_PUBLISH_H
#define COLONY_BROKER_TOPIC_RESP_PUBLISH_H

#include <stddef.h>
#include "broker/conn.h"

/* Appends {channel, <channel>, message, <message>} to every stream bound to
 * the channel (srv->topics, srv->delivery), then writes the reply (receivers,
 * Redis's count; or an error naming the stream that refused) and parks it
 * until each written stream is durable. With no bound stream it just writes
 * the count: PUBLISH is exactly Redis's. */
int colony__btopic_resp_publish(colony__broker_client *c, const char *channel, size_t channel_len,
                                const char *message, size_t message_len, long long receivers);

#endif
