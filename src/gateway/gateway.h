/* Entry point of the `colony gateway` daemon, called by the CLI. */
#ifndef COLONY_GATEWAY_GATEWAY_H
#define COLONY_GATEWAY_GATEWAY_H

/* Runs the gateway with argv (argv[0] = "gateway"); returns the exit code:
 * 0 after a graceful stop, 1 when it cannot start, 2 for a bad config. */
int colony_gateway_main(int argc, char **argv);

#endif
