/* Request objects: a per-worker pool (so a keep-alive request costs no malloc),
 * the head copied once into the request arena, and the accessors, data slots
 * and hooks that handlers and middleware use. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "http/server_internal.h"

#define REQUEST_POOL_MAX   256
#define ARENA_BLOCK_SIZE   8192
#define BODY_KEEP_CAPACITY (64 * 1024)

/* "<worker>-<counter>": unique within the process, and cheap (no printf). */
static void format_request_id(char out[24], unsigned worker, uint64_t counter)
{
    char *p = colony__put_u64(out, worker);
    *p++ = '-';
    p = colony__put_u64(p, counter % 10000000000000000ull); /* fits the 24 bytes */
    *p = '\0';
}

colony_request *colony__request_acquire(colony__worker *w)
{
    colony__list *node = colony__list_pop_front(&w->pool);
    colony_request *req = node ? COLONY__CONTAINER_OF(node, colony_request, link) : NULL;
    if (req) {
        w->pool_len--;
    } else {
        req = colony__calloc(1, sizeof(*req));
        if (!req) return NULL;
        size_t head_cap = w->srv->opts.limits.max_header_bytes;
        size_t cap = head_cap * 4 > (4u << 20) ? head_cap * 4 : (4u << 20);
        req->arena = colony_arena_new(ARENA_BLOCK_SIZE, cap);
        if (!req->arena) {
            colony__free(req);
            return NULL;
        }
        colony_buf_init(&req->body, 0);
        req->worker = w;
    }
    colony_arena *arena = req->arena;
    colony_buf body = req->body;
    memset(req, 0, sizeof(*req));
    req->arena = arena;
    req->body = body;
    req->body.max = w->srv->opts.limits.max_body;
    req->worker = w;
    colony__list_init(&req->link);
    colony__list_init(&req->resp_headers);
    req->resp_content_length = -1;
    req->query = "";
    format_request_id(req->request_id, w->index, ++w->next_request_id);
    req->log_ctx.request_id = req->request_id;
    return req;
}

static void request_destroy(colony_request *req)
{
    colony_arena_free(req->arena);
    colony_buf_free(&req->body);
    colony__free(req);
}

void colony__request_release(colony_request *req)
{
    colony__worker *w = req->worker;
    if (w->pool_len >= REQUEST_POOL_MAX) {
        request_destroy(req);
        return;
    }
    colony_arena_reset(req->arena);
    if (req->body.cap > BODY_KEEP_CAPACITY)
        colony_buf_free(&req->body);
    else
        colony_buf_reset(&req->body);
    req->conn = NULL;
    colony__list_push_front(&w->pool, &req->link);
    w->pool_len++;
}

void colony__worker_free_pool(colony__worker *w)
{
    colony__list *node;
    while ((node = colony__list_pop_front(&w->pool)))
        request_destroy(COLONY__CONTAINER_OF(node, colony_request, link));
    w->pool_len = 0;
}

void colony__request_detach(colony_request *req)
{
    req->conn = NULL;
    if (((req->handler_called || req->held) && !req->ended) || req->pinned) {
        if (!req->handler_called && !req->held) req->ended = 1; /* nobody owes a response */
        req->orphaned = 1;
        req->worker->orphans++;
        return;
    }
    colony__request_release(req);
}

void colony__request_unpin(colony_request *req)
{
    if (--req->pinned == 0) colony__request_maybe_free_orphan(req);
}

static void run_hooks(colony_request *req, colony__req_hook *hook, int status)
{
    const colony_log_context *prev = colony_log_set_context(&req->log_ctx);
    req->pinned++;
    for (; hook; hook = hook->next)
        hook->cb(req, status, hook->ud);
    colony_log_set_context(prev);
    colony__request_unpin(req);
}

void colony__request_finish(colony_request *req, int status)
{
    if (req->finished) return;
    req->finished = 1;
    if (req->on_finish) run_hooks(req, req->on_finish, status);
}

void colony__request_run_response_hooks(colony_request *req)
{
    colony__req_hook *hooks = req->on_response;
    req->on_response = NULL; /* once */
    if (hooks) run_hooks(req, hooks, req->status);
}

/* Translates a pointer into the original input to the same byte of the copy,
 * NUL-terminating the field there (the byte after a field is a delimiter:
 * ' ', ':', OWS or CR/LF, all inside the head). Falls back to a fresh copy. */
static const char *field_in_copy(colony_request *req, const char *orig, const char *src,
                                 size_t src_len, char *copy, size_t copy_len, size_t len)
{
    if (len == 0) return "";
    if (src >= orig && (size_t)(src - orig) + len <= copy_len) {
        char *p = copy + (src - orig);
        p[len] = '\0';
        return p;
    }
    (void)src_len;
    return colony_arena_strndup(req->arena, src, len);
}

/* Splits an absolute-form target (RFC 9112 §3.2.2) "http://authority/path?q"
 * into its authority and its origin-form "/path?q" ("/" when the path is
 * empty). 0, COLONY_ENOMEM, or COLONY_EPROTO with *why. */
static int split_absolute_form(colony_request *req, const char *target, size_t len,
                               const char **authority, const char **origin, const char **why)
{
    const char *sep = memchr(target, ':', len);
    size_t scheme_len = sep ? (size_t)(sep - target) : 0;
    if (!((scheme_len == 4 && strncasecmp(target, "http", 4) == 0) ||
          (scheme_len == 5 && strncasecmp(target, "https", 5) == 0))) {
        *why = "absolute-form target must be http or https";
        return COLONY_EPROTO;
    }
    const char *p = sep + 1, *end = target + len;
    if (end - p < 2 || p[0] != '/' || p[1] != '/') {
        *why = "absolute-form target has no authority";
        return COLONY_EPROTO;
    }
    p += 2;
    const char *auth = p;
    while (p < end && *p != '/' && *p != '?')
        p++;
    if (p == auth || memchr(auth, '@', (size_t)(p - auth))) {
        *why = "absolute-form target has an empty authority or userinfo";
        return COLONY_EPROTO;
    }
    *authority = colony_arena_strndup(req->arena, auth, (size_t)(p - auth));
    *origin = *p == '/' ? p : colony_arena_sprintf(req->arena, "/%.*s", (int)(end - p), p);
    return *authority && *origin ? 0 : COLONY_ENOMEM;
}

/* Routing view of the target: origin-form as is; absolute-form by its path
 * and query, its authority replacing Host (RFC 9112 §3.2.2: the server MUST
 * use it and ignore the Host field). A fragment is never sent by a conforming
 * client (RFC 9112 §3.2) and is refused, not routed. */
static int load_target(colony_request *req, size_t target_len, const char **why)
{
    if (memchr(req->target, '#', target_len)) {
        *why = "request target contains a fragment ('#')";
        return COLONY_EPROTO;
    }
    if (req->target[0] != '/' && req->target[0] != '*' && strcmp(req->method, "CONNECT") != 0) {
        const char *authority, *origin;
        int rc = split_absolute_form(req, req->target, target_len, &authority, &origin, why);
        if (rc) return rc;
        req->target = origin;
        target_len = strlen(origin);
        size_t i = 0;
        while (i < req->num_headers &&
               !(req->headers[i].name_len == 4 && strcasecmp(req->headers[i].name, "Host") == 0))
            i++;
        if (i == req->num_headers) { /* HTTP/1.0 without Host: room was left for one */
            req->headers[i].name = "Host";
            req->headers[i].name_len = 4;
            req->num_headers++;
        }
        req->headers[i].value = authority;
        req->headers[i].value_len = strlen(authority);
    }
    const char *q = memchr(req->target, '?', target_len);
    if (q) {
        req->path = colony_arena_strndup(req->arena, req->target, (size_t)(q - req->target));
        if (!req->path) return COLONY_ENOMEM;
        req->query = q + 1;
    } else {
        req->path = req->target;
        req->query = "";
    }
    return 0;
}

int colony__request_load_head(colony_request *req, const char *head, size_t head_len,
                              const colony_http_request *parsed, int *status, const char **why)
{
    char *copy = colony_arena_alloc(req->arena, head_len + 1);
    size_t n = parsed->msg.num_headers;
    colony_http_header *headers = colony_arena_alloc(req->arena, (n + 1) * sizeof(*headers));
    if (!copy || !headers) return COLONY_ENOMEM;
    memcpy(copy, head, head_len);
    copy[head_len] = '\0';
    int bad_expect = 0;
    /* Headers first: terminating the method or target never touches them. */
    for (size_t i = 0; i < n; i++) {
        const colony_http_header *src = &parsed->msg.headers[i];
        headers[i].name =
            field_in_copy(req, head, src->name, src->name_len, copy, head_len, src->name_len);
        headers[i].name_len = src->name_len;
        headers[i].value =
            field_in_copy(req, head, src->value, src->value_len, copy, head_len, src->value_len);
        headers[i].value_len = src->value_len;
        if (!headers[i].name || !headers[i].value) return COLONY_ENOMEM;
        if (src->name_len == 6 && strcasecmp(headers[i].name, "Expect") == 0 &&
            !(src->value_len == 12 && strcasecmp(headers[i].value, "100-continue") == 0))
            bad_expect = 1;
    }
    req->headers = headers;
    req->num_headers = n;
    req->method = field_in_copy(req, head, parsed->method, parsed->method_len, copy, head_len,
                                parsed->method_len);
    req->target = field_in_copy(req, head, parsed->target, parsed->target_len, copy, head_len,
                                parsed->target_len);
    if (!req->method || !req->target) return COLONY_ENOMEM;
    req->version_minor = parsed->msg.version_minor;
    req->keep_alive = parsed->msg.keep_alive;
    req->is_head = parsed->method_len == 4 && memcmp(parsed->method, "HEAD", 4) == 0;
    *status = 400;
    int rc = load_target(req, parsed->target_len, why);
    if (rc) return rc;
    if (bad_expect) { /* RFC 9110 §10.1.1: an expectation we cannot meet */
        *status = 417;
        *why = "only Expect: 100-continue is supported";
        return COLONY_EPROTO;
    }
    return 0;
}

/* ---- accessors ---- */

const char *colony_request_method(const colony_request *req)
{
    return req->method;
}

const char *colony_request_target(const colony_request *req)
{
    return req->target;
}

const char *colony_request_path(const colony_request *req)
{
    return req->path;
}

const char *colony_request_query(const colony_request *req)
{
    return req->query;
}

int colony_request_version_minor(const colony_request *req)
{
    return req->version_minor;
}

const char *colony_request_header(const colony_request *req, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < req->num_headers; i++) {
        const colony_http_header *h = &req->headers[i];
        if (h->name_len == len && strcasecmp(h->name, name) == 0) return h->value;
    }
    return NULL;
}

size_t colony_request_header_count(const colony_request *req)
{
    return req->num_headers;
}

int colony_request_header_at(const colony_request *req, size_t i, const char **name,
                             const char **value)
{
    if (i >= req->num_headers) return COLONY_ENOENT;
    if (name) *name = req->headers[i].name;
    if (value) *value = req->headers[i].value;
    return 0;
}

const char *colony_request_body(const colony_request *req, size_t *len)
{
    if (len) *len = req->body.len;
    return req->body.data ? req->body.data : "";
}

const char *colony_request_peer(const colony_request *req)
{
    colony_request *r = (colony_request *)req;
    if (r->peer) return r->peer;
    if (!r->conn) return "";
    if (r->conn->is_unix) return r->peer = "unix";
    colony__conn *c = r->conn;
    if (colony__conn_load_peer(c) != 0) return "";
    r->peer =
        colony_arena_sprintf(r->arena, c->peer_v6 ? "[%s]:%d" : "%s:%d", c->addr, c->peer_port);
    return r->peer ? r->peer : "";
}

const char *colony_request_peer_ip(const colony_request *req)
{
    colony_request *r = (colony_request *)req;
    if (r->peer_ip) return r->peer_ip;
    if (!r->conn) return "";
    if (r->conn->is_unix) return r->peer_ip = "unix";
    if (colony__conn_load_peer(r->conn) != 0) return "";
    r->peer_ip = colony_arena_strdup(r->arena, r->conn->addr);
    return r->peer_ip ? r->peer_ip : "";
}

colony_arena *colony_request_arena(colony_request *req)
{
    return req->arena;
}

uv_loop_t *colony_request_loop(const colony_request *req)
{
    return req->worker->loop;
}

colony_server *colony_request_server(const colony_request *req)
{
    return req->worker->srv;
}

/* Middleware passes the same static key string every time, so a slot is
 * found by pointer first; a different pointer with the same text still finds
 * it by strcmp. */
static colony__req_data *find_data(const colony_request *req, const char *key)
{
    for (colony__req_data *d = req->data; d; d = d->next)
        if (d->key_addr == key) return d;
    for (colony__req_data *d = req->data; d; d = d->next)
        if (strcmp(d->key, key) == 0) return d;
    return NULL;
}

/* Replaces the value of an existing key; a new key is added in the arena (on
 * allocation failure the value is not stored and get_data returns NULL). */
void colony_request_set_data(colony_request *req, const char *key, void *value)
{
    colony__req_data *d = find_data(req, key);
    if (d) {
        d->value = value;
        return;
    }
    size_t key_len = strlen(key);
    d = colony_arena_alloc(req->arena, sizeof(*d) + key_len + 1); /* node and key copy */
    if (!d) return;
    memcpy(d + 1, key, key_len + 1);
    d->key = (const char *)(d + 1);
    d->key_addr = key;
    d->value = value;
    d->next = req->data;
    req->data = d;
}

void *colony_request_get_data(const colony_request *req, const char *key)
{
    colony__req_data *d = find_data(req, key);
    return d ? d->value : NULL;
}

static int add_hook(colony_request *req, colony__req_hook **list, colony_request_hook_cb cb,
                    void *ud)
{
    if (!cb) return COLONY_EINVAL;
    colony__req_hook *h = colony_arena_alloc(req->arena, sizeof(*h));
    if (!h) return COLONY_ENOMEM;
    h->cb = cb;
    h->ud = ud;
    h->next = *list; /* newest first: hooks run in reverse order of registration */
    *list = h;
    return 0;
}

int colony_request_on_response(colony_request *req, colony_request_hook_cb cb, void *ud)
{
    if (req->started) return COLONY_EINVAL;
    return add_hook(req, &req->on_response, cb, ud);
}

int colony_request_on_finish(colony_request *req, colony_request_hook_cb cb, void *ud)
{
    if (req->finished) return COLONY_EINVAL;
    return add_hook(req, &req->on_finish, cb, ud);
}

int colony_request_stream_body(colony_request *req, colony_body_data_cb data_cb, void *ud)
{
    if (!data_cb || !req->in_head_hook) return COLONY_EINVAL;
    req->body_cb = data_cb;
    req->body_ud = ud;
    return 0;
}
