/* colony broker: durable messaging that speaks Redis (RESP2) and HTTP
 * (docs/broker.md). Being built: see issue 9. */
#ifndef COLONY_BROKER_H
#define COLONY_BROKER_H

const char *colony__broker_version(void);

/* Runs `colony broker` with argv (argv[0] = "broker"); returns the exit code. */
int colony_broker_main(int argc, char **argv);

#endif
