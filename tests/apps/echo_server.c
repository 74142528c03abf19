/* A test upstream for the gateway: answers every request with what it got.
 *   ANY /...            -> 200 {"instance", "method", "path", "query", "headers": {...}, "body"}
 *   ?status=N           -> answers with status N instead
 *   ?delay=MS           -> answers after MS milliseconds
 *   ?bytes=N            -> answers with N bytes of 'x' (text/plain), streamed in 64 KiB pieces
 *   ?cc=V, ?vary=V, ?cookie=V -> adds Cache-Control: V, Vary: V, Set-Cookie: V (cache tests)
 *   GET /admin/counts   -> {"served": requests answered by the echo so far, ...}
 *   GET /probe          -> a health path for the gateway's active checks: 200 {"probe": "ok"},
 *                          or the status last set by POST /admin/probe?status=N (200 again:
 * healthy)
 * --name NAME sets "instance" (default "echo"); other flags are the service's.
 *
 * --sink --listen ADDR: a plain colony_server instead (for uploads): every
 * request body is streamed, counted and discarded; the answer is
 * {"bytes": N, "crc32": "%08x", "framing": "length"|"chunked"|"none",
 *  "expect": "100-continue"|""}. ?slow=MS reads it slowly: the body is paused
 * (colony_request_pause_body) for MS ms after every piece. ?early=1 answers
 * {"early": N} at the first piece, without reading the rest. */
#include <colony/colony.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *instance = "echo";
static int probe_status = 200; /* what GET /probe answers */
static long served, probes_plain;

typedef struct delayed {
    uv_timer_t timer;
    colony_request *req;
    json_t *body;
    int status;
} delayed;

static void delayed_closed(uv_handle_t *h)
{
    free(h->data);
}

static void answer_later(uv_timer_t *t)
{
    delayed *d = t->data;
    colony_respond_json(d->req, d->status, d->body);
    json_decref(d->body);
    t->data = d;
    uv_close((uv_handle_t *)t, delayed_closed);
}

/* ?bytes=N: N bytes of 'x' in 64 KiB pieces, each written once the previous
 * one reached the kernel (the server refuses to buffer without bound);
 * &chunked=1 leaves out Content-Length. */
typedef struct stream_state {
    size_t left;
} stream_state;

static char piece[65536];

static void write_next(colony_request *req, int status, void *ud)
{
    stream_state *st = ud;
    if (status != 0 || st->left == 0) {
        if (status == 0) colony_response_end(req);
        free(st);
        return;
    }
    size_t k = st->left < sizeof(piece) ? st->left : sizeof(piece);
    st->left -= k;
    if (colony_response_write(req, piece, k, write_next, st) != 0) free(st);
}

static void stream_bytes(colony_request *req, size_t n, int chunked)
{
    memset(piece, 'x', sizeof(piece));
    char len[32];
    snprintf(len, sizeof(len), "%zu", n);
    colony_response_header(req, "Content-Type", "text/plain");
    if (!chunked) colony_response_header(req, "Content-Length", len);
    colony_response_start(req, 200);
    stream_state *st = calloc(1, sizeof(*st));
    st->left = n;
    write_next(req, 0, st);
}

static void echo(colony_request *req, void *ud)
{
    (void)ud;
    const char *status_q = colony_request_query_param(req, "status");
    const char *delay_q = colony_request_query_param(req, "delay");
    const char *bytes_q = colony_request_query_param(req, "bytes");
    const char *path = colony_request_path(req);
    if (strcmp(path, "/admin/probe") == 0 && strcmp(colony_request_method(req), "POST") == 0) {
        probe_status = status_q ? atoi(status_q) : 200;
        json_t *body = json_pack("{s:i}", "probe_status", probe_status);
        colony_respond_json(req, 200, body);
        json_decref(body);
        return;
    }
    if (strcmp(path, "/admin/counts") == 0) {
        json_t *body = json_pack("{s:I,s:I}", "served", (json_int_t)served, "probes_plain",
                                 (json_int_t)probes_plain);
        colony_respond_json(req, 200, body);
        json_decref(body);
        return;
    }
    if (strcmp(path, "/probe") == 0) {
        if (!*colony_request_query(req)) probes_plain++;
        json_t *body = json_pack("{s:s,s:s}", "probe", probe_status == 200 ? "ok" : "failing",
                                 "instance", instance);
        colony_respond_json(req, probe_status, body);
        json_decref(body);
        return;
    }
    served++;
    static const char *const cache_headers[][2] = {
        {"cc", "Cache-Control"}, {"vary", "Vary"}, {"cookie", "Set-Cookie"}};
    for (size_t i = 0; i < sizeof(cache_headers) / sizeof(cache_headers[0]); i++) {
        const char *v = colony_request_query_param(req, cache_headers[i][0]);
        if (v) colony_response_header(req, cache_headers[i][1], v);
    }
    if (bytes_q) {
        stream_bytes(req, (size_t)strtoull(bytes_q, NULL, 10),
                     colony_request_query_param(req, "chunked") != NULL);
        return;
    }
    json_t *headers = json_object();
    for (size_t i = 0; i < colony_request_header_count(req); i++) {
        const char *name, *value;
        colony_request_header_at(req, i, &name, &value);
        json_object_set_new(headers, name, json_string(value));
    }
    size_t body_len;
    const char *body = colony_request_body(req, &body_len);
    json_t *out =
        json_pack("{s:s,s:s,s:s,s:s,s:o,s:s#}", "instance", instance, "method",
                  colony_request_method(req), "path", colony_request_path(req), "query",
                  colony_request_query(req), "headers", headers, "body", body, (int)body_len);
    int status = status_q ? atoi(status_q) : 200;
    if (delay_q) {
        delayed *d = calloc(1, sizeof(*d));
        d->req = req;
        d->body = out;
        d->status = status;
        uv_timer_init(colony_request_loop(req), &d->timer);
        d->timer.data = d;
        uv_timer_start(&d->timer, answer_later, (uint64_t)atoi(delay_q), 0);
        return;
    }
    colony_respond_json(req, status, out);
    json_decref(out);
}

/* ---- --sink ---- */

typedef struct sink {
    uv_timer_t timer; /* ?slow: resumes the paused body */
    colony_request *req;
    uint64_t bytes;
    uint32_t crc;
    uint64_t slow_ms;
    int early;
} sink;

static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static void sink_closed(uv_handle_t *h)
{
    free(h->data);
}

static void sink_finished(colony_request *req, int status, void *ud)
{
    (void)req;
    (void)status;
    sink *k = ud;
    k->timer.data = k;
    uv_close((uv_handle_t *)&k->timer, sink_closed);
}

static void sink_resume(uv_timer_t *t)
{
    sink *k = t->data;
    colony_request_resume_body(k->req);
}

static void sink_piece(colony_request *req, const char *data, size_t len, void *ud)
{
    sink *k = ud;
    uint32_t c = ~k->crc;
    for (size_t i = 0; i < len; i++)
        c = crc_table[(c ^ (unsigned char)data[i]) & 0xff] ^ (c >> 8);
    k->crc = ~c;
    k->bytes += len;
    if (k->early && colony_response_status(req) == 0) {
        char out[64];
        snprintf(out, sizeof(out), "{\"early\":%llu}", (unsigned long long)k->bytes);
        colony_respond(req, 200, "application/json", out, strlen(out));
        return;
    }
    if (k->slow_ms && colony_request_pause_body(req) == 0)
        uv_timer_start(&k->timer, sink_resume, k->slow_ms, 0);
}

static void sink_head(colony_request *req, void *ud)
{
    (void)ud;
    sink *k = calloc(1, sizeof(*k));
    if (!k) return;
    k->req = req;
    uv_timer_init(colony_request_loop(req), &k->timer);
    k->timer.data = k;
    const char *slow = colony_request_query_param(req, "slow");
    k->slow_ms = slow ? strtoull(slow, NULL, 10) : 0;
    k->early = colony_request_query_param(req, "early") != NULL;
    colony_request_set_data(req, "sink", k);
    if (colony_request_on_finish(req, sink_finished, k) != 0) {
        uv_close((uv_handle_t *)&k->timer, sink_closed);
        return;
    }
    colony_request_stream_body(req, sink_piece, k);
}

static void sink_answer(colony_request *req, void *ud)
{
    (void)ud;
    sink *k = colony_request_get_data(req, "sink");
    const char *te = colony_request_header(req, "Transfer-Encoding");
    const char *cl = colony_request_header(req, "Content-Length");
    const char *expect = colony_request_header(req, "Expect");
    char crc[16];
    snprintf(crc, sizeof(crc), "%08x", k ? k->crc : 0);
    json_t *out = json_pack("{s:I,s:s,s:s,s:s}", "bytes", (json_int_t)(k ? k->bytes : 0), "crc32",
                            crc, "framing",
                            te   ? "chunked"
                            : cl ? "length"
                                 : "none",
                            "expect", expect ? expect : "");
    colony_respond_json(req, 200, out);
    json_decref(out);
}

static int sink_main(const char *listen)
{
    crc_init();
    uv_loop_t *loop = uv_default_loop();
    colony_server_options so;
    colony_server_options_init(&so);
    so.workers = 1;
    colony_server *srv = colony_server_new(loop, &so, sink_answer, NULL);
    if (!srv) return 1;
    colony_server_set_head_hook(srv, sink_head, NULL);
    if (colony_server_listen(srv, listen) != 0) return 1;
    fprintf(stderr, "{\"msg\":\"listening\",\"port\":%d}\n", colony_server_port(srv));
    fflush(stderr);
    return uv_run(loop, UV_RUN_DEFAULT);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--sink") == 0)
            return sink_main(i + 2 < argc && strcmp(argv[i + 1], "--listen") == 0 ? argv[i + 2]
                                                                                  : "127.0.0.1:0");
    /* --name is ours; everything else goes to the service */
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            instance = argv[++i];
        else
            rest[n++] = argv[i];
    }
    int exit_code;
    colony_service_options opts;
    colony_service_options_init(&opts);
    opts.name = "echo";
    opts.argc = n;
    opts.argv = rest;
    opts.listen = "127.0.0.1:0";
    colony_service *svc = colony_service_new(&opts, stderr, &exit_code);
    if (!svc) return exit_code;
    colony_router *r = colony_service_router(svc);
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (colony_router_add(r, methods[i], "/*", echo, NULL) ||
            colony_router_add(r, methods[i], "/", echo, NULL))
            return 1;
    int rc = colony_service_run(svc);
    free(rest);
    return rc;
}
