/* Responses: the head is serialized straight into the connection's output
 * buffer (no printf on the hot path) and the body follows it; server_write.c
 * sends it. Also the JSON error bodies and the checks on handler headers. */
#include <string.h>
#include <strings.h>
#include <time.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "http/parser_internal.h"
#include "http/server_internal.h"

enum framing { FRAME_NONE, FRAME_LENGTH, FRAME_CHUNKED };

static const char *const wday_names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

/* Writes v in decimal at p (at most 20 bytes, no NUL); returns the end. */
char *colony__put_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

static char *put_2d(char *p, int v)
{
    *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

/* "Date: ...\r\n", formatted at most once per second per worker. */
static const char *date_line(colony__worker *w, size_t *len)
{
    time_t now = time(NULL);
    if (now != w->date_sec || !w->date_len) {
        struct tm tm;
        gmtime_r(&now, &tm);
        char *p = PUT_LIT(w->date_line, "Date: ");
        p = put(p, wday_names[tm.tm_wday % 7], 3);
        p = PUT_LIT(p, ", ");
        p = put_2d(p, tm.tm_mday);
        *p++ = ' ';
        p = put(p, month_names[tm.tm_mon % 12], 3);
        *p++ = ' ';
        p = colony__put_u64(p, (uint64_t)(tm.tm_year + 1900));
        *p++ = ' ';
        p = put_2d(p, tm.tm_hour);
        *p++ = ':';
        p = put_2d(p, tm.tm_min);
        *p++ = ':';
        p = put_2d(p, tm.tm_sec);
        p = PUT_LIT(p, " GMT\r\n");
        w->date_len = (size_t)(p - w->date_line);
        w->date_sec = now;
    }
    *len = w->date_len;
    return w->date_line;
}

static void on_flush_idle(uv_idle_t *idle)
{
    colony__worker *w = idle->data;
    /* Only those pending now: a flush that queues another waits for the next turn. */
    colony__list now;
    colony__list_init(&now);
    colony__list *node;
    while ((node = colony__list_pop_front(&w->flush_pending)))
        colony__list_push_back(&now, node);
    while ((node = colony__list_pop_front(&now)))
        colony__conn_flush(COLONY__CONTAINER_OF(node, colony__conn, flush_link));
    if (colony__list_empty(&w->flush_pending)) uv_idle_stop(idle);
}

/* Inside conn_process the flush comes when processing ends; otherwise it is
 * deferred to the loop's next turn (an idle handle, which also keeps the poll
 * from blocking meanwhile), so the writes made by one round of callbacks
 * leave in one syscall. */
static void maybe_flush(colony__conn *c)
{
    if (!c->in_process) colony__conn_defer_flush(c);
}

void colony__conn_defer_flush(colony__conn *c)
{
    if (c->closing || colony__list_linked(&c->flush_link)) return;
    colony__worker *w = c->worker;
    if (!w->flush_idle_open) {
        uv_idle_init(w->loop, &w->flush_idle); /* cannot fail: it only links the handle */
        w->flush_idle.data = w;
        w->flush_idle_open = 1;
    }
    colony__list_push_back(&w->flush_pending, &c->flush_link);
    uv_idle_start(&w->flush_idle, on_flush_idle);
}

void colony__conn_schedule_flush(colony__conn *c)
{
    maybe_flush(c);
}

const char *colony__error_code_for_status(int status)
{
    switch (status) {
    case 400:
        return "bad_request";
    case 401:
        return "unauthorized";
    case 403:
        return "forbidden";
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 408:
        return "request_timeout";
    case 413:
        return "payload_too_large";
    case 414:
        return "uri_too_long";
    case 417:
        return "expectation_failed";
    case 431:
        return "header_fields_too_large";
    case 501:
        return "not_implemented";
    case 503:
        return "service_unavailable";
    case 505:
        return "http_version_not_supported";
    default:
        return status >= 500 ? "internal_error" : "bad_request";
    }
}

static int json_string(colony_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    int rc = colony_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); !rc && *p; p++) {
        char esc[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
        if (*p == '"' || *p == '\\') {
            char two[2] = {'\\', (char)*p};
            rc = colony_buf_append(b, two, 2);
        } else if (*p == '\n') {
            rc = colony_buf_append(b, "\\n", 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            rc = colony_buf_append(b, esc, 6);
        } else {
            rc = colony_buf_append(b, p, 1);
        }
    }
    return rc ? rc : colony_buf_append(b, "\"", 1);
}

int colony__json_error_body(colony_buf *b, const char *error, const char *message)
{
    int rc = colony_buf_append_str(b, "{\"error\":");
    if (!rc) rc = json_string(b, error);
    if (!rc) rc = colony_buf_append_str(b, ",\"message\":");
    if (!rc) rc = json_string(b, message);
    if (!rc) rc = colony_buf_append(b, "}", 1);
    return rc;
}

/* Serializes a status line and headers into c->out. req may be NULL (an
 * error answered before a request object exists). */
static int append_head(colony__conn *c, colony_request *req, int status, const char *ctype,
                       int framing, uint64_t length, int close, int version_minor)
{
    colony__worker *w = c->worker;
    const char *reason = colony_http_status_reason(status);
    size_t reason_len = strlen(reason);
    size_t date_len;
    const char *date = date_line(w, &date_len);
    const char *server = w->srv->server_header;
    size_t server_len = server ? strlen(server) : 0;
    size_t ctype_len = ctype ? strlen(ctype) : 0;
    size_t need = 64 + reason_len + date_len + server_len + ctype_len + 120;
    colony__list *node, *tmp;
    if (req) {
        COLONY__LIST_FOREACH_SAFE(node, tmp, &req->resp_headers)
        {
            colony__resp_header *h = COLONY__CONTAINER_OF(node, colony__resp_header, link);
            need += h->name_len + h->value_len + 4;
        }
    }
    int rc = colony_buf_reserve(&c->out, need);
    if (rc) return rc;

    char *start = c->out.data + c->out.len, *p = start;
    p = PUT_LIT(p, "HTTP/1.1 ");
    p = colony__put_u64(p, (uint64_t)status);
    *p++ = ' ';
    p = put(p, reason, reason_len);
    p = PUT_LIT(p, "\r\n");
    p = put(p, date, date_len);
    if (server) {
        p = PUT_LIT(p, "Server: ");
        p = put(p, server, server_len);
        p = PUT_LIT(p, "\r\n");
    }
    if (ctype) {
        p = PUT_LIT(p, "Content-Type: ");
        p = put(p, ctype, ctype_len);
        p = PUT_LIT(p, "\r\n");
    }
    if (framing == FRAME_LENGTH) {
        p = PUT_LIT(p, "Content-Length: ");
        p = colony__put_u64(p, length);
        p = PUT_LIT(p, "\r\n");
    } else if (framing == FRAME_CHUNKED) {
        p = PUT_LIT(p, "Transfer-Encoding: chunked\r\n");
    }
    if (close)
        p = PUT_LIT(p, "Connection: close\r\n");
    else if (version_minor == 0)
        p = PUT_LIT(p, "Connection: keep-alive\r\n");
    if (req) {
        COLONY__LIST_FOREACH_SAFE(node, tmp, &req->resp_headers)
        {
            colony__resp_header *h = COLONY__CONTAINER_OF(node, colony__resp_header, link);
            if (h->is_content_type && ctype) continue;
            p = put(p, h->name, h->name_len);
            p = PUT_LIT(p, ": ");
            p = put(p, h->value, h->value_len);
            p = PUT_LIT(p, "\r\n");
        }
    }
    p = PUT_LIT(p, "\r\n");
    size_t n = (size_t)(p - start);
    c->out.len += n;
    c->out.data[c->out.len] = '\0';
    c->out_queued += n;
    return 0;
}

void colony__conn_send_error(colony__conn *c, int status, const char *error, const char *message)
{
    if (c->closing || c->final_sent) return;
    colony__stat_inc(&c->worker->stats.protocol_errors);
    colony_buf body;
    colony_buf_init(&body, 4096);
    int rc = colony__json_error_body(&body, error, message);
    if (!rc) rc = append_head(c, NULL, status, "application/json", FRAME_LENGTH, body.len, 1, 1);
    if (!rc) rc = colony__conn_append(c, body.data, body.len);
    colony_buf_free(&body);
    if (rc) {
        colony__conn_close(c, rc);
        return;
    }
    c->final_sent = 1;
    maybe_flush(c);
}

void colony__request_maybe_free_orphan(colony_request *req)
{
    if (!req->orphaned || !req->ended || req->pinned) return;
    colony__worker *w = req->worker;
    req->orphaned = 0;
    w->orphans--;
    colony__request_release(req);
    colony__worker_maybe_done(w);
}

/* The connection is gone (or going): the response is dropped. */
static int drop_response(colony_request *req)
{
    req->started = 1;
    req->ended = 1;
    colony__request_maybe_free_orphan(req);
    return COLONY_ECONNRESET;
}

static const colony_server_options *conn_server_opts(const colony__conn *c)
{
    return &c->worker->srv->opts;
}

static int conn_gone(const colony_request *req)
{
    return !req->conn || req->conn->closing;
}

static int should_close(colony__conn *c, colony_request *req)
{
    if (c->close_after || req->resp_close || c->peer_eof) return 1;
    if (c->req == req && c->body_pending && !c->body_discardable) return 1;
    return 0;
}

/* Runs on_response hooks and decides framing-independent state. Returns 0 to
 * go on, or the error to return to the caller. */
static int begin_response(colony_request *req, int status)
{
    if (req->started || req->ended) return COLONY_EINVAL;
    if (status < 200 || status > 999) return COLONY_EINVAL;
    if (conn_gone(req)) return drop_response(req);
    req->status = status;
    colony__request_run_response_hooks(req);
    if (req->started || req->ended) return COLONY_EINVAL; /* a hook responded */
    if (conn_gone(req)) return drop_response(req);
    req->no_body = req->is_head || status == 204 || status == 304;
    return 0;
}

/* Serialization failed (out of memory): the connection cannot continue. */
static int fail_response(colony_request *req, int rc)
{
    colony__conn_close(req->conn, rc);
    req->started = req->ended = 1;
    colony__request_maybe_free_orphan(req);
    return rc;
}

/* colony_respond and colony_respond_buf: owned, if not NULL, is the body's
 * buffer, which the write path may keep instead of copying the body. */
static int respond(colony_request *req, int status, const char *content_type, const void *body,
                   size_t len, colony_buf *owned)
{
    int rc = begin_response(req, status);
    if (rc) return rc;
    colony__conn *c = req->conn;
    int close = should_close(c, req);
    int bodyless_status = status == 204 || status == 304;
    rc = append_head(c, req, status, content_type, bodyless_status ? FRAME_NONE : FRAME_LENGTH, len,
                     close, req->version_minor);
    if (!rc && !req->no_body && len) rc = colony__conn_append_body(c, body, len, owned);
    if (rc) return fail_response(req, rc);
    req->resp_close = close;
    req->started = req->ended = 1;
    colony__conn_response_ended(c, req);
    return 0;
}

int colony_respond(colony_request *req, int status, const char *content_type, const void *body,
                   size_t len)
{
    return respond(req, status, content_type, body, len, NULL);
}

int colony_respond_buf(colony_request *req, int status, const char *content_type, colony_buf *body)
{
    if (!body) return COLONY_EINVAL;
    colony_buf owned = *body;
    colony_buf_init(body, body->max);
    int rc = respond(req, status, content_type, owned.data, owned.len, &owned);
    colony_buf_free(&owned); /* unless the connection kept it */
    return rc;
}

int colony_respond_error(colony_request *req, int status, const char *error, const char *message)
{
    colony_buf body;
    colony_buf_init(&body, 1 << 20);
    int rc = colony__json_error_body(&body, error ? error : colony__error_code_for_status(status),
                                     message ? message : "");
    if (rc) {
        colony_buf_free(&body);
        if (req->started || req->ended) return COLONY_EINVAL;
        if (conn_gone(req)) return drop_response(req);
        return fail_response(req, rc);
    }
    rc = colony_respond(req, status, "application/json", body.data, body.len);
    colony_buf_free(&body);
    return rc;
}

static int bad_value_byte(unsigned char ch)
{
    return (ch < 0x20 && ch != '\t') || ch == 0x7f;
}

/* 1 when the 8 bytes at p hold no byte below 0x20 and none equal to 0x7f. */
static int clean_word(const char *p)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t w;
    memcpy(&w, p, 8);
    uint64_t del = w ^ (ones * 0x7f);
    return !((((w - ones * 0x20) & ~w) | ((del - ones) & ~del)) & highs);
}

/* A field value may not hold control characters other than HTAB, nor DEL.
 * Eight bytes at a time (the last word overlapping the one before); only a
 * flagged word is looked at byte by byte. */
static int valid_field_value(const char *value, size_t len)
{
    if (len < 8) {
        for (size_t i = 0; i < len; i++)
            if (bad_value_byte((unsigned char)value[i])) return 0;
        return 1;
    }
    for (size_t i = 0;; i += 8) {
        if (i + 8 > len) i = len - 8;
        if (!clean_word(value + i))
            for (size_t j = i; j < i + 8; j++)
                if (bad_value_byte((unsigned char)value[j])) return 0;
        if (i + 8 == len) return 1;
    }
}

int colony_response_header(colony_request *req, const char *name, const char *value)
{
    if (!name || !value || req->started || req->ended) return COLONY_EINVAL;
    size_t name_len = strlen(name), value_len = strlen(value);
    if (name_len == 0) return COLONY_EINVAL;
    for (size_t i = 0; i < name_len; i++)
        if (!COLONY__HTTP_IS(name[i], COLONY__CC_TCHAR)) return COLONY_EINVAL;
    if (!valid_field_value(value, value_len)) return COLONY_EINVAL;
    if (name_len == 14 && strcasecmp(name, "Content-Length") == 0) {
        if (value_len == 0 || value_len > 19) return COLONY_EINVAL;
        int64_t v = 0;
        for (size_t i = 0; i < value_len; i++) {
            if (value[i] < '0' || value[i] > '9') return COLONY_EINVAL;
            int d = value[i] - '0';
            if (v > (INT64_MAX - d) / 10) return COLONY_EINVAL; /* would overflow */
            v = v * 10 + d;
        }
        req->resp_content_length = v;
        return 0;
    }
    if (name_len == 17 && strcasecmp(name, "Transfer-Encoding") == 0)
        return COLONY_EINVAL; /* framing is ours */
    if (name_len == 10 && strcasecmp(name, "Connection") == 0) {
        if (strcasestr(value, "close")) req->resp_close = 1;
        return 0;
    }
    /* One allocation for the node and both strings. */
    colony__resp_header *h = colony_arena_alloc(req->arena, sizeof(*h) + name_len + value_len + 2);
    if (!h) return COLONY_ENOMEM;
    char *copy = (char *)(h + 1);
    memcpy(copy, name, name_len + 1);
    memcpy(copy + name_len + 1, value, value_len + 1);
    h->name = copy;
    h->name_len = name_len;
    h->value = copy + name_len + 1;
    h->value_len = value_len;
    h->is_content_type = name_len == 12 && strcasecmp(name, "Content-Type") == 0;
    colony__list_push_back(&req->resp_headers, &h->link);
    return 0;
}

int colony_response_start(colony_request *req, int status)
{
    int rc = begin_response(req, status);
    if (rc) return rc;
    colony__conn *c = req->conn;
    int close = should_close(c, req);
    int framing;
    if (status == 204 || status == 304) {
        framing = FRAME_NONE;
    } else if (req->resp_content_length >= 0) {
        framing = FRAME_LENGTH;
    } else if (req->version_minor >= 1) {
        framing = req->no_body ? FRAME_NONE : FRAME_CHUNKED;
        req->chunked = !req->no_body;
    } else {
        framing = FRAME_NONE; /* HTTP/1.0: the body ends when the connection closes */
        req->until_close = 1;
        close = 1;
    }
    if (req->is_head && req->version_minor >= 1 && req->resp_content_length < 0)
        framing = FRAME_CHUNKED; /* what a GET would have had */
    rc = append_head(c, req, status, NULL, framing, (uint64_t)req->resp_content_length, close,
                     req->version_minor);
    if (rc) return fail_response(req, rc);
    req->resp_close = close;
    req->started = 1;
    maybe_flush(c);
    return 0;
}

static int add_write_cb(colony__conn *c, colony_request *req, colony_write_cb cb, void *ud)
{
    if (c->wcbs_len == c->wcbs_cap) {
        size_t cap = c->wcbs_cap ? c->wcbs_cap * 2 : 8;
        colony__write_cb_entry *n = colony__realloc(c->wcbs, cap * sizeof(*n));
        if (!n) return COLONY_ENOMEM;
        c->wcbs = n;
        c->wcbs_cap = cap;
    }
    c->wcbs[c->wcbs_len++] = (colony__write_cb_entry){c->out_queued, req, cb, ud};
    return 0;
}

int colony_response_write(colony_request *req, const void *data, size_t len, colony_write_cb cb,
                          void *ud)
{
    if (!req->started || req->ended || colony__request_upgraded(req)) return COLONY_EINVAL;
    if (conn_gone(req)) return COLONY_ECONNRESET;
    colony__conn *c = req->conn;
    if (req->resp_content_length >= 0 &&
        req->resp_body_sent + len > (uint64_t)req->resp_content_length)
        return COLONY_EINVAL;
    if (c->out_queued - c->out_written > conn_server_opts(c)->max_output_backlog)
        return COLONY_EBUSY; /* the handler waits for a write callback */
    int rc = 0;
    if (!req->no_body && len) {
        if (req->chunked) {
            char line[24], *p = line;
            static const char hex[] = "0123456789abcdef";
            int shift = 60;
            while (shift > 0 && ((len >> shift) & 15) == 0)
                shift -= 4;
            for (; shift >= 0; shift -= 4)
                *p++ = hex[(len >> shift) & 15];
            p = PUT_LIT(p, "\r\n");
            rc = colony_buf_reserve(&c->out, (size_t)(p - line) + len + 2);
            if (!rc) rc = colony__conn_append(c, line, (size_t)(p - line));
            if (!rc) rc = colony__conn_append(c, data, len);
            if (!rc) rc = colony__conn_append(c, "\r\n", 2);
        } else {
            rc = colony__conn_append(c, data, len);
        }
    }
    if (!rc && cb) rc = add_write_cb(c, req, cb, ud);
    if (rc) {
        colony__conn_close(c, rc);
        return rc;
    }
    req->resp_body_sent += len;
    maybe_flush(c);
    return 0;
}

int colony_response_end(colony_request *req)
{
    if (!req->started || req->ended || colony__request_upgraded(req)) return COLONY_EINVAL;
    if (conn_gone(req)) return drop_response(req);
    colony__conn *c = req->conn;
    if (req->chunked) {
        int rc = colony__conn_append(c, "0\r\n\r\n", 5);
        if (rc) return fail_response(req, rc);
    }
    if (req->resp_content_length >= 0 && !req->no_body &&
        req->resp_body_sent != (uint64_t)req->resp_content_length)
        req->resp_close = 1; /* the framing is broken: only a close ends it */
    if (req->until_close) req->resp_close = 1;
    req->ended = 1;
    colony__conn_response_ended(c, req);
    return 0;
}

void colony_response_abort(colony_request *req)
{
    if (req->ended || colony__request_upgraded(req)) return;
    if (conn_gone(req)) {
        drop_response(req);
        return;
    }
    fail_response(req, COLONY_ECONNRESET);
}

int colony_response_status(const colony_request *req)
{
    return req->started ? req->status : 0;
}
