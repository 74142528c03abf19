/* The registry's address and token from flags and environment; calls go
 * through cli_http. */
#include "cli/registry_client.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The value of --NAME V or --NAME=V at argv[*i] (advancing *i past V), or
 * NULL when argv[*i] is another argument. *missing is set for --NAME alone. */
static const char *flag_value(const char *name, int argc, char **argv, int *i, int *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0) return NULL;
    if (a[n] == '=') return a + n + 1;
    if (a[n] != '\0') return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

int cli_registry_args(cli_registry *reg, int *argc, char **argv)
{
    reg->url = getenv("COLONY_REGISTRY_URL");
    if (!reg->url || !*reg->url) reg->url = "http://127.0.0.1:8500";
    reg->token = getenv("COLONY_REGISTRY_TOKEN");
    reg->timeout_ms = CLI_HTTP_TIMEOUT_MS;
    int out = 0;
    for (int i = 0; i < *argc; i++) {
        int missing = 0;
        const char *v;
        const char *a = argv[i];
        if ((v = flag_value("--registry", *argc, argv, &i, &missing)) != NULL) {
            reg->url = v;
        } else if ((v = flag_value("--token", *argc, argv, &i, &missing)) != NULL) {
            reg->token = v;
        } else if ((v = flag_value("--timeout", *argc, argv, &i, &missing)) != NULL) {
            if (cli_http_parse_timeout(v, &reg->timeout_ms)) {
                fprintf(stderr,
                        "colony: --timeout: expected a duration like 500ms or 2s, "
                        "got \"%s\"\n",
                        v);
                return -1;
            }
        } else if (missing) {
            fprintf(stderr, "colony: %s needs a value\n", a);
            return -1;
        } else {
            argv[out++] = argv[i];
        }
    }
    *argc = out;
    argv[out] = NULL;
    return 0;
}

int cli_registry_call(const cli_registry *reg, const char *method, const char *path,
                      const void *body, size_t len, cli_http_response *res)
{
    char url[4096];
    size_t base = strlen(reg->url);
    while (base && reg->url[base - 1] == '/')
        base--;
    snprintf(url, sizeof(url), "%.*s%s", (int)base, reg->url, path);
    const char *headers[] = {"X-Consul-Token", reg->token, NULL};
    cli_http_request req = {.method = method,
                            .url = url,
                            .headers = reg->token ? headers : NULL,
                            .body = body,
                            .body_len = len,
                            .timeout_ms = reg->timeout_ms};
    return cli_http(&req, res);
}
