/* Blocking HTTP calls for the CLI over the public async client. */
#include "cli/http.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>
#include "colony/error.h"
#include "colony/http_client.h"

typedef struct call_state {
    cli_http_response *res;
    int err, done;
} call_state;

static char *copy_text(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    if (!out) return NULL;
    if (len) memcpy(out, s, len);
    out[len] = '\0';
    return out;
}

/* Copies what the caller keeps: status, body, headers (valid only here). */
static void on_done(colony_client_call *call, int err, const colony_client_response *r, void *ud)
{
    (void)call;
    call_state *st = ud;
    st->done = 1;
    st->err = err;
    if (err) return;
    cli_http_response *res = st->res;
    res->status = r->status;
    res->body = copy_text(r->body ? r->body : "", r->body ? r->body_len : 0);
    res->len = r->body ? r->body_len : 0;
    res->headers = r->num_headers ? calloc(r->num_headers * 2, sizeof(char *)) : NULL;
    if (!res->body || (r->num_headers && !res->headers)) {
        st->err = COLONY_ENOMEM;
        return;
    }
    for (size_t i = 0; i < r->num_headers; i++) {
        const colony_http_header *h = &r->headers[i];
        res->headers[2 * i] = copy_text(h->name, h->name_len);
        res->headers[2 * i + 1] = copy_text(h->value, h->value_len);
        res->num_headers = i + 1;
        if (!res->headers[2 * i] || !res->headers[2 * i + 1]) {
            st->err = COLONY_ENOMEM;
            return;
        }
    }
}

/* What a user needs to hear for a transport error. */
static const char *describe(int err, uint64_t timeout_ms, char *buf, size_t size)
{
    switch (err) {
    case COLONY_ECONNREFUSED:
        return "connection refused (is it running, and on this address?)";
    case COLONY_ETIMEDOUT:
        snprintf(buf, size, "no answer within %llu ms", (unsigned long long)timeout_ms);
        return buf;
    case COLONY_EINVAL:
        return "not a valid http:// URL, method or header";
    default:
        return colony_strerror(err);
    }
}

int cli_http(const cli_http_request *req, cli_http_response *res)
{
    memset(res, 0, sizeof(*res));
    const char *method = req->method ? req->method : "GET";
    uint64_t timeout_ms = req->timeout_ms ? req->timeout_ms : CLI_HTTP_TIMEOUT_MS;
    uv_loop_t loop;
    int rc = uv_loop_init(&loop);
    int loop_open = rc == 0;
    colony_client *client = NULL;
    if (rc == 0) {
        colony_client_options opts;
        colony_client_options_init(&opts);
        opts.max_per_origin = 1;
        if (opts.connect_timeout_ms > timeout_ms) opts.connect_timeout_ms = timeout_ms;
        if (opts.read_timeout_ms > timeout_ms) opts.read_timeout_ms = timeout_ms;
        client = colony_client_new(&loop, &opts);
        if (!client) rc = COLONY_ENOMEM;
    }
    if (rc == 0) {
        colony_client_request r = {.method = method,
                                   .url = req->url,
                                   .headers = req->headers,
                                   .body = req->body,
                                   .body_len = req->body_len,
                                   .timeout_ms = timeout_ms};
        call_state st = {.res = res};
        rc = colony_client_request_send(client, &r, on_done, &st, NULL);
        if (rc == 0) {
            while (!st.done && uv_run(&loop, UV_RUN_ONCE)) {
            }
            rc = st.done ? st.err : COLONY_EIO;
        }
    }
    if (client) colony_client_close(client, NULL, NULL);
    if (loop_open) {
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
    if (rc) {
        char buf[64];
        fprintf(stderr, "colony: %s %s: %s\n", method, req->url ? req->url : "(no URL)",
                describe(rc, timeout_ms, buf, sizeof(buf)));
        cli_http_response_free(res);
    }
    return rc;
}

void cli_http_response_free(cli_http_response *res)
{
    free(res->body);
    for (size_t i = 0; i < res->num_headers * 2; i++)
        free(res->headers[i]);
    free(res->headers);
    memset(res, 0, sizeof(*res));
}

const char *cli_http_header(const cli_http_response *res, const char *name)
{
    for (size_t i = 0; i < res->num_headers; i++)
        if (strcasecmp(res->headers[2 * i], name) == 0) return res->headers[2 * i + 1];
    return NULL;
}

void cli_http_print_status(const char *prefix, const cli_http_response *res)
{
    const char *body = res->body ? res->body : "";
    size_t n = strcspn(body, "\r\n");
    if (n > 200) n = 200;
    fprintf(stderr, "colony %s: answered %d%s%.*s\n", prefix, res->status, n ? ": " : "", (int)n,
            body);
}

int cli_http_parse_timeout(const char *text, uint64_t *ms)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || v <= 0) return -1;
    double scale = 1;
    if (strcmp(end, "s") == 0)
        scale = 1000;
    else if (*end && strcmp(end, "ms") != 0)
        return -1;
    v *= scale;
    if (v < 1 || v > 3600.0 * 1000) return -1;
    *ms = (uint64_t)v;
    return 0;
}
