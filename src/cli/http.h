/* The one way a CLI subcommand talks to a daemon: a blocking HTTP call made
 * with the public colony client (include/colony/) on a private loop. Transport
 * errors are printed to stderr, naming the method, the URL and what failed;
 * any HTTP status is a successful call that the caller judges. */
#ifndef COLONY_CLI_HTTP_H
#define COLONY_CLI_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define CLI_HTTP_TIMEOUT_MS 10000 /* a call's default bound, connect to last byte */

typedef struct cli_http_request {
    const char *method;         /* "GET" when NULL */
    const char *url;            /* absolute http:// URL */
    const char *const *headers; /* NULL-terminated name, value, ... pairs, or NULL */
    const void *body;           /* copied; or NULL */
    size_t body_len;
    uint64_t timeout_ms; /* whole call; 0 means CLI_HTTP_TIMEOUT_MS */
} cli_http_request;

typedef struct cli_http_response {
    int status;
    char *body; /* malloc'd, NUL-terminated ("" for none); freed by cli_http_response_free */
    size_t len;
    char **headers; /* malloc'd name, value, name, value, ... (num_headers pairs) */
    size_t num_headers;
} cli_http_response;

/* Performs one call. Returns 0 with res filled (any status; free it with
 * cli_http_response_free), or a negative COLONY_E* code after printing
 * "colony: METHOD URL: what failed" to stderr; res is then empty. */
int cli_http(const cli_http_request *req, cli_http_response *res);
/* Frees what cli_http put in res (safe on an empty or already freed one). */
void cli_http_response_free(cli_http_response *res);
/* A response header's value (case-insensitive name), or NULL. */
const char *cli_http_header(const cli_http_response *res, const char *name);
/* Prints "colony PREFIX: answered STATUS: BODY" (the body's first line, at
 * most 200 bytes) for a status the caller did not expect. */
void cli_http_print_status(const char *prefix, const cli_http_response *res);
/* Parses a --timeout value: "500ms", "2s", "1.5s" or plain milliseconds.
 * 0 with *ms set, or -1 for a malformed or zero value. */
int cli_http_parse_timeout(const char *text, uint64_t *ms);

#endif
