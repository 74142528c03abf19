/* colony broker: durable messaging that speaks Redis (RESP2) and HTTP
 * (docs/broker.md). Being built: see issue 9. */
#ifndef COLONY_BROKER_H
#define COLONY_BROKER_H

const char *colony__broker_version(void);

#endif
