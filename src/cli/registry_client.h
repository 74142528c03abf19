/* The registry as a CLI subcommand's daemon: where it is (--registry,
 * $COLONY_REGISTRY_URL), its ACL token, and calls to its HTTP API made with
 * cli_http (cli/http.h). */
#ifndef COLONY_CLI_REGISTRY_CLIENT_H
#define COLONY_CLI_REGISTRY_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include "cli/http.h"

typedef struct cli_registry {
    const char *url;     /* --registry, $COLONY_REGISTRY_URL, or http://127.0.0.1:8500 */
    const char *token;   /* --token or $COLONY_REGISTRY_TOKEN, may be NULL */
    uint64_t timeout_ms; /* --timeout, or CLI_HTTP_TIMEOUT_MS */
} cli_registry;

/* Removes --registry URL, --token T and --timeout D from argv (in place) and
 * fills reg. 0, or -1 after printing what was wrong. */
int cli_registry_args(cli_registry *reg, int *argc, char **argv);
/* One call to PATH (starting with '/') on the registry, with the token as
 * X-Consul-Token. As cli_http: 0 with res filled (free it with
 * cli_http_response_free), or a negative error code (message printed). */
int cli_registry_call(const cli_registry *reg, const char *method, const char *path,
                      const void *body, size_t len, cli_http_response *res);

#endif
