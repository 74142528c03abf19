/* HTTP client: the public API, request validation and building, and the life
 * of a call (queued → bound to a connection → done). A call is one allocation
 * holding the request bytes (head and fixed body) so sending it is one
 * uv_write; a streamed body is written piece by piece. Completions that happen inside a public
 * function are deferred to a zero-delay timer so done_cb never runs re-entrantly. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "http/client_internal.h"
#include "http/sigpipe.h"
#include "http/parser_internal.h"

void colony_client_options_init(colony_client_options *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->max_per_origin = 32;
    opts->idle_timeout_ms = 30000;
    opts->connect_timeout_ms = 5000;
    opts->read_timeout_ms = 30000;
    opts->total_timeout_ms = 60000;
    opts->max_response_body = 8u << 20;
    opts->max_queued = 1024;
    opts->max_origins = 1024;
    colony_http_limits_init(&opts->limits);
}

static void free_client(void *client)
{
    colony_client *c = client;
    colony__free(c->tls_ca_file);
    colony__free(c);
}

static void free_client_on_close(uv_handle_t *h)
{
    free_client(h->data);
}

colony_client *colony_client_new(uv_loop_t *loop, const colony_client_options *opts)
{
    if (!loop) return NULL;
    colony__ignore_sigpipe();
    colony_client *c = colony__calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->loop = loop;
    if (opts)
        c->opts = *opts;
    else
        colony_client_options_init(&c->opts);
    if (c->opts.max_per_origin == 0) c->opts.max_per_origin = 32;
    if (c->opts.max_response_body == 0) c->opts.max_response_body = 8u << 20;
    if (c->opts.max_origins == 0) c->opts.max_origins = 1024;
    colony_http_limits_init(&c->opts.limits);
    if (c->opts.ca_file) {
        size_t n = strlen(c->opts.ca_file) + 1;
        c->tls_ca_file = colony__malloc(n);
        if (!c->tls_ca_file) {
            colony__free(c);
            return NULL;
        }
        memcpy(c->tls_ca_file, c->opts.ca_file, n);
    }
    c->opts.ca_file = c->tls_ca_file;
    colony__list_init(&c->origins);
    colony__list_init(&c->empty_origins);
    colony__list_init(&c->deferred);
    colony__list_init(&c->tunnels);
    colony__list_init(&c->deadlines);
    if (uv_timer_init(loop, &c->defer_timer) != 0) {
        colony__free(c->tls_ca_file);
        colony__free(c);
        return NULL;
    }
    c->defer_timer.data = c;
    if (uv_timer_init(loop, &c->origin_timer) != 0) {
        uv_close((uv_handle_t *)&c->defer_timer, free_client_on_close);
        return NULL;
    }
    if (uv_timer_init(loop, &c->deadline_timer) != 0) {
        colony__closer_init(&c->closer, free_client, c);
        colony__closer_close(&c->closer, (uv_handle_t *)&c->defer_timer);
        colony__closer_close(&c->closer, (uv_handle_t *)&c->origin_timer);
        colony__closer_finish(&c->closer, loop);
        return NULL;
    }
    c->origin_timer.data = c->deadline_timer.data = c;
    return c;
}

static void on_client_closed(void *client)
{
    colony_client *c = client;
    colony_client_closed_cb cb = c->closed_cb;
    void *ud = c->closed_ud;
    colony__client_origin_free_all(c);
    colony__client_tls_ctx_free(c);
    colony__free(c);
    if (cb) cb(ud);
}

void colony__client_maybe_finish(colony_client *c)
{
    if (!c->closing || c->live_conns || c->live_calls || !colony__list_empty(&c->deferred)) return;
    if (uv_is_closing((uv_handle_t *)&c->defer_timer)) return;
    colony__closer_init(&c->closer, on_client_closed, c);
    colony__closer_close(&c->closer, (uv_handle_t *)&c->defer_timer);
    colony__closer_close(&c->closer, (uv_handle_t *)&c->origin_timer);
    colony__closer_close(&c->closer, (uv_handle_t *)&c->deadline_timer);
    colony__closer_finish(&c->closer, c->loop);
}

void colony_client_close(colony_client *c, colony_client_closed_cb cb, void *ud)
{
    if (!c || c->closing) return;
    c->closing = 1;
    c->closed_cb = cb;
    c->closed_ud = ud;
    uv_timer_stop(&c->origin_timer);
    c->api_depth++;
    for (colony__list *l = c->origins.next; l != &c->origins; l = l->next) {
        colony__client_origin *o = COLONY__CONTAINER_OF(l, colony__client_origin, lru_link);
        while (!colony__list_empty(&o->queue))
            colony__client_call_fail(COLONY__CONTAINER_OF(o->queue.next, colony_client_call, link),
                                     COLONY_ECANCELED);
        while (!colony__list_empty(&o->conns)) {
            colony__client_conn *conn =
                COLONY__CONTAINER_OF(o->conns.next, colony__client_conn, all_link);
            if (conn->call)
                colony__client_call_fail(conn->call, COLONY_ECANCELED);
            else
                colony__client_conn_close(conn);
        }
    }
    colony__client_tunnels_close(c);
    c->api_depth--;
    colony__client_maybe_finish(c);
}

/* Connection buffers: grown by doubling up to a cap; a reset keeps the bytes. */
int colony__client_bytes_reserve(colony__client_bytes *b, size_t n, size_t max)
{
    if (n > max || b->len > max - n) return COLONY_E2BIG;
    size_t need = b->len + n;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < need)
        cap = cap > SIZE_MAX / 4 ? need : cap * 2;
    if (cap > max) cap = max;
    char *p = colony__realloc(b->data, cap + 1); /* +1: room for a NUL */
    if (!p) return COLONY_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

void colony__client_bytes_free(colony__client_bytes *b)
{
    colony__free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- call completion ---- */

static void call_free(colony_client_call *call)
{
    colony_client *c = call->client;
    colony__free(call->tls_error);
    call->tls_error = NULL;
    colony__client_deadline_clear(call);
    colony__free(call);
    c->live_calls--;
    colony__client_maybe_finish(c);
}

static void on_defer_timer(uv_timer_t *t)
{
    colony_client *c = t->data;
    while (!colony__list_empty(&c->deferred)) {
        colony_client_call *call = COLONY__CONTAINER_OF(c->deferred.next, colony_client_call, link);
        colony__list_remove(&call->link);
        call->state = COLONY__CALL_DONE;
        call->done_cb(call, call->deferred_err, NULL, call->ud);
        call_free(call);
    }
    colony__client_maybe_finish(c);
}

void colony__client_call_complete(colony_client_call *call, int err,
                                  const colony_client_response *res)
{
    if (call->state == COLONY__CALL_DEFERRED || call->state == COLONY__CALL_DONE) return;
    colony_client *c = call->client;
    colony__client_deadline_clear(call);
    call->conn = NULL;
    if (c->api_depth > 0 && !res) {
        call->state = COLONY__CALL_DEFERRED;
        call->deferred_err = err;
        colony__list_push_back(&c->deferred, &call->link);
        uv_timer_start(&c->defer_timer, on_defer_timer, 0, 0);
        return;
    }
    call->state = COLONY__CALL_DONE;
    call->done_cb(call, err, err ? NULL : res, call->ud);
    call_free(call);
}

void colony__client_call_fail(colony_client_call *call, int err)
{
    if (call->state == COLONY__CALL_QUEUED) {
        colony__list_remove(&call->link);
        call->origin->n_queued--;
        colony__client_origin_check_empty(call->origin);
    } else if (call->state == COLONY__CALL_BOUND) {
        colony__client_conn *conn = call->conn;
        call->conn = NULL;
        if (conn) {
            conn->call = NULL;
            colony__client_conn_close(conn);
        }
    } else {
        return;
    }
    colony__client_call_complete(call, err, NULL);
}

/* ---- request validation and building ---- */

static int is_token(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= max || !COLONY__HTTP_IS(s[n], COLONY__CC_TCHAR)) return 0;
    return n > 0;
}

static int is_field_value(const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) return 0;
    }
    return 1;
}

/* Does a comma-separated header value list contain `token` (case-insensitive)? */
static int value_has_token(const char *v, const char *token)
{
    size_t tl = strlen(token);
    while (*v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        const char *start = v;
        while (*v && *v != ',')
            v++;
        const char *end = v;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if ((size_t)(end - start) == tl && strncasecmp(start, token, tl) == 0) return 1;
    }
    return 0;
}

typedef struct request_plan {
    const char *method;
    size_t size; /* bytes of head + fixed body */
    int has_host, close_requested, upgrade;
    int framing; /* 0 none, 1 Content-Length, 2 chunked, 3 streamed with Content-Length */
} request_plan;

static int method_in(const char *m, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(m, *list) == 0) return 1;
    return 0;
}

/* Validates the request and computes its exact size. */
static int plan_request(const colony_client_request *r, const colony__client_url *u,
                        const char *host_header, request_plan *p)
{
    static const char *const with_body[] = {"POST", "PUT", "PATCH", NULL};
    memset(p, 0, sizeof(*p));
    p->method = r->method ? r->method : "GET";
    if (!is_token(p->method, 32)) return COLONY_EINVAL;
    if (r->body_cb && r->body) return COLONY_EINVAL;
    if (!r->body && r->body_len) return COLONY_EINVAL;
    if (!r->head_cb != !r->data_cb) return COLONY_EINVAL;
    size_t n = strlen(p->method) + 1 + (u->target_needs_slash ? 1 : 0) + u->target_len +
               sizeof(" HTTP/1.1\r\n") - 1;
    for (const char *const *h = r->headers; h && h[0]; h += 2) {
        if (!h[1] || !is_token(h[0], 256) || !is_field_value(h[1])) return COLONY_EINVAL;
        if (strcasecmp(h[0], "Content-Length") == 0 || strcasecmp(h[0], "Transfer-Encoding") == 0)
            return COLONY_EINVAL; /* framing is the client's job */
        if (strcasecmp(h[0], "Host") == 0) p->has_host = 1;
        if (strcasecmp(h[0], "Upgrade") == 0) p->upgrade = 1;
        if (strcasecmp(h[0], "Connection") == 0 && value_has_token(h[1], "close"))
            p->close_requested = 1;
        size_t add = strlen(h[0]) + 2 + strlen(h[1]) + 2;
        if (n > SIZE_MAX / 2 - add) return COLONY_EINVAL;
        n += add;
    }
    if (!p->has_host) n += sizeof("Host: \r\n") - 1 + strlen(host_header);
    if (r->body_cb && r->body_length)
        p->framing = 3, n += sizeof("Content-Length: \r\n") - 1 + 20;
    else if (r->body_cb)
        p->framing = 2, n += sizeof("Transfer-Encoding: chunked\r\n") - 1;
    else if (r->body || method_in(p->method, with_body))
        p->framing = 1, n += sizeof("Content-Length: \r\n") - 1 + 20;
    n += 2;
    if (r->body_len > UINT32_MAX - n) return COLONY_E2BIG; /* one uv_buf_t */
    p->size = n + r->body_len;
    return 0;
}

static char *put(char *w, const char *s, size_t n)
{
    memcpy(w, s, n);
    return w + n;
}

#define PUT_LIT(w, lit) put((w), (lit), sizeof(lit) - 1)

/* Writes the request into call->req; returns the bytes written. */
static size_t build_request(char *out, const colony_client_request *r, const colony__client_url *u,
                            const char *host_header, const request_plan *p)
{
    char *w = out;
    w = put(w, p->method, strlen(p->method));
    *w++ = ' ';
    if (u->target_needs_slash) *w++ = '/';
    w = put(w, u->target, u->target_len);
    w = PUT_LIT(w, " HTTP/1.1\r\n");
    if (!p->has_host) {
        w = PUT_LIT(w, "Host: ");
        w = put(w, host_header, strlen(host_header));
        w = PUT_LIT(w, "\r\n");
    }
    for (const char *const *h = r->headers; h && h[0]; h += 2) {
        w = put(w, h[0], strlen(h[0]));
        w = PUT_LIT(w, ": ");
        w = put(w, h[1], strlen(h[1]));
        w = PUT_LIT(w, "\r\n");
    }
    if (p->framing == 2) w = PUT_LIT(w, "Transfer-Encoding: chunked\r\n");
    if (p->framing == 1) w += sprintf(w, "Content-Length: %zu\r\n", r->body_len);
    if (p->framing == 3)
        w += sprintf(w, "Content-Length: %llu\r\n", (unsigned long long)r->body_length);
    w = PUT_LIT(w, "\r\n");
    if (r->body_len) w = put(w, r->body, r->body_len);
    return (size_t)(w - out);
}

int colony_client_request_send(colony_client *c, const colony_client_request *r,
                               colony_client_done_cb cb, void *ud, colony_client_call **out)
{
    static const char *const idempotent[] = {"GET",     "HEAD",  "PUT", "DELETE",
                                             "OPTIONS", "TRACE", NULL};
    if (out) *out = NULL;
    if (!c || !r || !cb) return COLONY_EINVAL;
    if (c->closing) return COLONY_ESHUTDOWN;
    colony__client_url u;
    char key[COLONY__ORIGIN_MAX], host_header[COLONY__ORIGIN_MAX];
    request_plan plan;
    int rc = colony__client_url_parse(r->url, &u);
    if (rc) return rc;
    if (colony__client_url_origin(&u, key, sizeof(key)) < 0) return COLONY_EINVAL;
    int own_tls = u.is_https && colony__client_tls_own(r);
    if (own_tls && colony__client_tls_key(key, sizeof(key), r) < 0) return COLONY_EINVAL;
    if (colony__client_url_host_header(&u, host_header, sizeof(host_header)) < 0)
        return COLONY_EINVAL;
    rc = plan_request(r, &u, host_header, &plan);
    if (rc) return rc;

    colony__client_origin *o = colony__client_origin_find(c, key);
    if (o && (!colony__client_pool_has_room(o) || !colony__list_empty(&o->queue)) &&
        o->n_queued >= c->opts.max_queued)
        return COLONY_EBUSY;
    rc = colony__client_origin_get(c, &u, key, &o);
    if (rc) return rc;
    if (own_tls && !colony__client_tls_origin_ready(o) && colony__client_tls_origin_init(o, r)) {
        colony__client_origin_check_empty(o);
        return COLONY_ENOMEM;
    }
    colony_client_call *call = colony__malloc(sizeof(*call) + plan.size);
    if (!call) {
        colony__client_origin_check_empty(o); /* a new origin no call went to */
        return COLONY_ENOMEM;
    }
    memset(call, 0, sizeof(*call));
    call->req_len = build_request(call->req, r, &u, host_header, &plan);
    call->client = c;
    call->origin = o;
    call->done_cb = cb;
    call->head_cb = r->head_cb;
    call->data_cb = r->data_cb;
    call->body_cb = r->body_cb;
    call->connect_timeout_ms =
        r->connect_timeout_ms ? r->connect_timeout_ms : c->opts.connect_timeout_ms;
    call->read_timeout_ms = r->read_timeout_ms ? r->read_timeout_ms : c->opts.read_timeout_ms;
    call->timeout_to_head = r->timeout_to_head != 0;
    call->body_sized = plan.framing == 3;
    call->body_left = r->body_length;
    call->ud = ud;
    call->is_head = strcmp(plan.method, "HEAD") == 0;
    call->idempotent = method_in(plan.method, idempotent);
    call->close_requested = (unsigned)plan.close_requested;
    call->upgrade_requested = (unsigned)plan.upgrade;
    uint64_t timeout = r->timeout_ms ? r->timeout_ms : c->opts.total_timeout_ms;
    if (timeout) colony__client_deadline_set(call, timeout);
    c->live_calls++;
    call->state = COLONY__CALL_QUEUED;
    colony__list_push_back(&o->queue, &call->link);
    o->n_queued++;
    colony__list_remove(&o->empty_link); /* in use again */
    if (out) *out = call;
    c->api_depth++;
    colony__client_pool_dispatch(o);
    c->api_depth--;
    return 0;
}

void colony_client_call_cancel(colony_client_call *call)
{
    if (!call) return;
    if (call->state != COLONY__CALL_QUEUED && call->state != COLONY__CALL_BOUND) return;
    colony_client *c = call->client;
    c->api_depth++;
    colony__client_call_fail(call, COLONY_ECANCELED);
    c->api_depth--;
}

int colony_client_call_pause(colony_client_call *call)
{
    if (!call || call->state != COLONY__CALL_BOUND || !call->conn) return COLONY_EINVAL;
    return colony__client_conn_pause(call->conn, 1);
}

int colony_client_call_was_sent(const colony_client_call *call)
{
    return call && call->sent;
}

int colony_client_call_resume(colony_client_call *call)
{
    if (!call || call->state != COLONY__CALL_BOUND || !call->conn) return COLONY_EINVAL;
    return colony__client_conn_pause(call->conn, 0);
}

/* Streaming bodies may be written once the connection is up (from body_cb or
 * later); before that COLONY_EAGAIN. */
static int call_stream_check(colony_client_call *call)
{
    if (!call || !call->body_cb) return COLONY_EINVAL;
    if (call->state != COLONY__CALL_BOUND && call->state != COLONY__CALL_QUEUED)
        return COLONY_ESHUTDOWN;
    if (call->body_ended) return COLONY_EINVAL;
    if (!call->conn || call->conn->state != COLONY__CONN_BUSY) return COLONY_EAGAIN;
    return 0;
}

/* ---- a streamed request body: chunks, or raw bytes with body_length ---- */

struct chunk_write {
    uv_write_t req;
    colony__client_conn *conn;
    char data[];
};

static void on_chunk_written(uv_write_t *req, int status)
{
    struct chunk_write *w = COLONY__CONTAINER_OF(req, struct chunk_write, req);
    colony__client_conn *conn = w->conn;
    colony__free(w);
    colony__client_conn_write_done(conn, status);
}

int colony__client_conn_write_chunk(colony__client_conn *conn, const void *data, size_t len,
                                    int last)
{
    if (len > UINT32_MAX - 64) return COLONY_E2BIG; /* one uv_buf_t */
    colony_client_call *call = conn->call;
    if (call->body_sized) { /* Content-Length: raw bytes, and they must add up */
        if (last) {
            if (call->body_left) return COLONY_EINVAL;
            call->body_ended = 1;
            return 0;
        }
        if (len > call->body_left) return COLONY_E2BIG;
    }
    size_t need = last ? 5 : 16 + 2 + len + 2;
    struct chunk_write *w = colony__malloc(sizeof(*w) + need);
    if (!w) return COLONY_ENOMEM;
    w->conn = conn;
    size_t n;
    if (last) {
        memcpy(w->data, "0\r\n\r\n", 5);
        n = 5;
    } else if (call->body_sized) {
        memcpy(w->data, data, len);
        n = len;
    } else {
        n = (size_t)sprintf(w->data, "%zx\r\n", len);
        memcpy(w->data + n, data, len);
        memcpy(w->data + n + len, "\r\n", 2);
        n += len + 2;
    }
    conn->writes_pending++;
    int rc = colony__client_conn_write(conn, &w->req, w->data, n, on_chunk_written);
    if (rc) {
        conn->writes_pending--;
        colony__free(w);
        return rc;
    }
    if (last) call->body_ended = 1;
    if (call->body_sized) call->body_left -= len;
    return 0;
}

int colony_client_call_write(colony_client_call *call, const void *data, size_t len)
{
    int rc = call_stream_check(call);
    if (rc) return rc;
    if (len == 0) return 0;
    if (!data) return COLONY_EINVAL;
    call->client->api_depth++;
    rc = colony__client_conn_write_chunk(call->conn, data, len, 0);
    call->client->api_depth--;
    return rc;
}

int colony_client_call_end(colony_client_call *call)
{
    int rc = call_stream_check(call);
    if (rc) return rc;
    call->client->api_depth++;
    rc = colony__client_conn_write_chunk(call->conn, NULL, 0, 1);
    call->client->api_depth--;
    return rc;
}

int colony_client_get_pool_stats(colony_client *c, const char *origin,
                                 colony_client_pool_stats *out)
{
    if (!c || !origin || !out) return COLONY_EINVAL;
    colony__client_url u;
    char key[COLONY__ORIGIN_MAX];
    const char *lookup = origin;
    if (colony__client_url_parse(origin, &u) == 0 &&
        colony__client_url_origin(&u, key, sizeof(key)) > 0)
        lookup = key;
    colony__client_origin *o = colony__client_origin_find(c, lookup);
    if (!o) return COLONY_ENOENT;
    out->idle = o->n_idle;
    out->busy = o->n_conns - o->n_idle;
    out->queued = o->n_queued;
    out->connects = o->connects;
    out->reused = o->reused;
    out->tls_resumed = o->tls_resumed;
    return 0;
}

void colony_client_get_stats(colony_client *c, colony_client_stats *out)
{
    out->origins = c->n_origins;
    out->connections = c->live_conns;
    out->calls = c->live_calls;
    out->origins_expired = c->origins_expired;
    out->origins_evicted = c->origins_evicted;
    out->origins_refused = c->origins_refused;
}
