/* Blocking calls to the registry's HTTP API for the CLI (services, kv), made
 * with the public colony client on a private loop. */
#ifndef COLONY_CLI_REGISTRY_CLIENT_H
#define COLONY_CLI_REGISTRY_CLIENT_H

#include <stddef.h>

typedef struct cli_registry {
    const char *url;   /* --registry, $COLONY_REGISTRY_URL, or http://127.0.0.1:8500 */
    const char *token; /* --token or $COLONY_REGISTRY_TOKEN, may be NULL */
} cli_registry;

typedef struct cli_response {
    int status;
    char *body; /* malloc'd, NUL-terminated */
    size_t len;
} cli_response;

/* Removes --registry URL and --token T from argv (in place) and fills reg. */
int cli_registry_args(cli_registry *reg, int *argc, char **argv);
/* Performs one call; returns 0 with out filled (free out->body), or a
 * negative error code (message printed to stderr). */
int cli_registry_call(const cli_registry *reg, const char *method, const char *path,
                      const void *body, size_t len, cli_response *out);

#endif
