/* The broker as a CLI subcommand's daemon: where its HTTP API is (--broker
 * URL, $COLONY_BROKER_URL, or http://127.0.0.1:8600) and calls to it made
 * with cli_http (cli/http.h). Shared by colony streams, publish and dlq. */
#ifndef COLONY_CLI_BROKER_CLIENT_H
#define COLONY_CLI_BROKER_CLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "cli/http.h"

typedef struct cli_broker {
    const char *url;
    uint64_t timeout_ms;
} cli_broker;

/* Removes --broker URL and --timeout D from argv (in place) and fills b.
 * 0, or -1 after printing what was wrong. */
int cli_broker_args(cli_broker *b, int *argc, char **argv);
/* Appends s percent-encoded (a path segment or query value) to out (size n). */
void cli_broker_escape(const char *s, char *out, size_t n);
/* One call; returns the answer's JSON when the status is want (0: any 2xx;
 * a new reference), else NULL after printing "colony WHAT: ..." with the status
 * and the broker's message. */
json_t *cli_broker_call(const cli_broker *b, const char *what, const char *method, const char *path,
                        const char *const *headers, const void *body, size_t len, int want);

#endif
