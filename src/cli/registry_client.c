/* Blocking registry calls for the CLI over the public async client. */
#include "cli/registry_client.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "colony/colony.h"

int cli_registry_args(cli_registry *reg, int *argc, char **argv)
{
    reg->url = getenv("COLONY_REGISTRY_URL");
    if (!reg->url || !*reg->url) reg->url = "http://127.0.0.1:8500";
    reg->token = getenv("COLONY_REGISTRY_TOKEN");
    int out = 0;
    for (int i = 0; i < *argc; i++) {
        const char *a = argv[i];
        const char **slot = strcmp(a, "--registry") == 0 ? &reg->url
                            : strcmp(a, "--token") == 0  ? &reg->token
                                                         : NULL;
        if (slot) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "colony: %s needs a value\n", a);
                return -1;
            }
            *slot = argv[++i];
            continue;
        }
        if (strncmp(a, "--registry=", 11) == 0) {
            reg->url = a + 11;
            continue;
        }
        if (strncmp(a, "--token=", 8) == 0) {
            reg->token = a + 8;
            continue;
        }
        argv[out++] = argv[i];
    }
    *argc = out;
    argv[out] = NULL;
    return 0;
}

typedef struct call_state {
    cli_response *out;
    int err, done;
} call_state;

static void on_done(colony_client_call *call, int err, const colony_client_response *res, void *ud)
{
    (void)call;
    call_state *st = ud;
    st->done = 1;
    st->err = err;
    if (err) return;
    st->out->status = res->status;
    st->out->body = malloc(res->body_len + 1);
    if (!st->out->body) {
        st->err = COLONY_ENOMEM;
        return;
    }
    if (res->body_len) memcpy(st->out->body, res->body, res->body_len);
    st->out->body[res->body_len] = '\0';
    st->out->len = res->body_len;
}

int cli_registry_call(const cli_registry *reg, const char *method, const char *path,
                      const void *body, size_t len, cli_response *out)
{
    memset(out, 0, sizeof(*out));
    uv_loop_t loop;
    if (uv_loop_init(&loop)) return COLONY_ENOMEM;
    colony_client *client = colony_client_new(&loop, NULL);
    if (!client) {
        uv_loop_close(&loop);
        return COLONY_ENOMEM;
    }
    char url[2048];
    size_t base = strlen(reg->url);
    while (base && reg->url[base - 1] == '/')
        base--;
    snprintf(url, sizeof(url), "%.*s%s", (int)base, reg->url, path);
    const char *headers[] = {"X-Consul-Token", reg->token, NULL};
    colony_client_request r = {.method = method,
                               .url = url,
                               .headers = reg->token ? headers : NULL,
                               .body = body,
                               .body_len = len,
                               .timeout_ms = 10000};
    call_state st = {.out = out};
    int rc = colony_client_request_send(client, &r, on_done, &st, NULL);
    if (!rc) {
        while (!st.done && uv_run(&loop, UV_RUN_ONCE)) {
        }
        rc = st.done ? st.err : COLONY_EIO;
    }
    colony_client_close(client, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (rc) {
        fprintf(stderr, "colony: registry at %s: %s\n", reg->url, colony_strerror(rc));
        free(out->body);
        out->body = NULL;
    }
    return rc;
}
