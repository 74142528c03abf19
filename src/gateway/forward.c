/* Request and response headers across the gateway (forward.h). */
#include "gateway/forward.h"
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "colony/error.h"
#include "colony/http_parser.h"
#include "colony/trace.h"
#include "gateway/cors.h"

#define GW_MAX_PATH 8192 /* the rewritten path and query */

/* A header name and its length: the checks below run for every header of
 * every request, so a name is compared only with those of its length. */
typedef struct header_name {
    const char *name;
    size_t len;
} header_name;

#define HN(s)                                                                                      \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }

static const header_name hop_by_hop[] = {
    HN("Connection"),        HN("Proxy-Connection"), HN("Keep-Alive"), HN("TE"),
    HN("Transfer-Encoding"), HN("Upgrade"),          HN("Trailer")};

/* Headers the gateway sets itself, or that no client may set (Expect:
 * 100-continue is per hop, upload.c); X-User-* is checked apart. */
static const header_name replaced[] = {HN("Host"),
                                       HN("Content-Length"),
                                       HN("X-Forwarded-For"),
                                       HN("X-Forwarded-Proto"),
                                       HN("X-Forwarded-Host"),
                                       HN("Forwarded"),
                                       HN("X-Request-ID"),
                                       HN("X-Consumer-ID"),
                                       HN("Expect")};

static int name_in(const header_name *set, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (set[i].len == len && strncasecmp(name, set[i].name, len) == 0) return 1;
    return 0;
}

int colony__gw_list_has(const char *list, const char *token, size_t len)
{
    for (const char *p = list; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t n = strcspn(p, ", \t");
        if (n == len && strncasecmp(p, token, len) == 0) return 1;
        p += n;
    }
    return 0;
}

int colony__gw_hop_by_hop(const char *name, size_t name_len, const char *connection)
{
    if (name_in(hop_by_hop, sizeof(hop_by_hop) / sizeof(hop_by_hop[0]), name, name_len)) return 1;
    return colony__gw_list_has(connection, name, name_len);
}

/* Headers the gateway sets itself, or that no client may set: identity headers
 * (X-User-*) come only from the gateway's own authentication. */
static int replaced_by_gateway(const char *name, size_t len)
{
    if (name_in(replaced, sizeof(replaced) / sizeof(replaced[0]), name, len)) return 1;
    return len >= 7 && strncasecmp(name, "X-User-", 7) == 0;
}

static const char *request_id(colony_request *req, colony_arena *a)
{
    const char *given = colony_request_header(req, "X-Request-ID");
    if (given && *given && strlen(given) <= 200) return given;
    uint8_t id[16];
    char hex[33];
    colony_trace_new_trace_id(id);
    colony_trace_hex(id, sizeof(id), hex);
    return colony_arena_strndup(a, hex, 32);
}

/* The parts one after another, NUL-terminated, in the arena; NULL parts are
 * skipped. Built by hand: four header values per request went through
 * vsnprintf twice each (colony_arena_sprintf measures, then writes). */
static char *join(colony_arena *a, const char *const *parts, size_t n)
{
    size_t len[8], total = 0;
    if (n > sizeof(len) / sizeof(len[0])) return NULL;
    for (size_t i = 0; i < n; i++) {
        len[i] = parts[i] ? strlen(parts[i]) : 0;
        total += len[i];
    }
    char *out = colony_arena_alloc(a, total + 1), *p = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, parts[i] ? parts[i] : "", len[i]);
        p += len[i];
    }
    *p = '\0';
    return out;
}
#define JOIN(a, ...)                                                                               \
    join(a, (const char *const[]){__VA_ARGS__},                                                    \
         sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *))

static int add(gw_forward *f, size_t *n, const char *name, const char *value)
{
    if (!value) return COLONY_ENOMEM;
    f->headers[(*n)++] = name;
    f->headers[(*n)++] = value;
    return 0;
}

static int build_headers(gw_forward *f, colony_request *req, const char *traceparent)
{
    colony_arena *a = f->arena;
    size_t count = colony_request_header_count(req);
    f->headers = colony_arena_alloc(a, (2 * count + 2 * 9 + 1) * sizeof(char *));
    if (!f->headers) return COLONY_ENOMEM;
    const char *connection = colony_request_header(req, "Connection");
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        const char *name, *value;
        colony_request_header_at(req, i, &name, &value);
        size_t len = strlen(name);
        if (colony__gw_hop_by_hop(name, len, connection) || replaced_by_gateway(name, len))
            continue;
        if (traceparent && len == 11 && strcasecmp(name, "traceparent") == 0)
            continue; /* ours goes */
        f->headers[n++] = name;
        f->headers[n++] = value;
    }
    const char *ip = colony_request_peer_ip(req);
    const char *host = colony_request_header(req, "Host");
    const char *prior = colony_request_header(req, "X-Forwarded-For");
    const char *prior_fwd = colony_request_header(req, "Forwarded");
    const char *proto = colony_request_is_tls(req) ? "https" : "http";
    int v6 = ip && strchr(ip, ':');
    const char *this_hop =
        !ip    ? NULL
        : host ? JOIN(a, "for=", v6 ? "\"[" : "", ip, v6 ? "]\"" : "", ";host=\"", host,
                      "\";proto=", proto)
               : JOIN(a, "for=", v6 ? "\"[" : "", ip, v6 ? "]\"" : "", ";proto=", proto);
    int rc = add(f, &n, "X-Forwarded-For", prior && ip ? JOIN(a, prior, ", ", ip) : ip);
    if (!rc) rc = add(f, &n, "X-Forwarded-Proto", proto);
    if (!rc && host) rc = add(f, &n, "X-Forwarded-Host", host);
    if (!rc)
        rc = add(f, &n, "Forwarded",
                 prior_fwd && this_hop ? JOIN(a, prior_fwd, ", ", this_hop) : this_hop);
    if (!rc) rc = add(f, &n, "X-Request-ID", request_id(req, a));
    if (!rc && traceparent) rc = add(f, &n, "traceparent", colony_arena_strdup(a, traceparent));
    if (rc) return rc;
    f->host_slot = n;
    f->headers[n++] = "Host";
    f->headers[n++] = NULL; /* the instance's address, per attempt */
    f->headers[n] = NULL;
    return 0;
}

int colony__gw_forward_prepare(gw_forward *f, colony_request *req, const gw_match *m,
                               const char *path, const gw_upstream *up, const char *traceparent)
{
    (void)up;
    memset(f, 0, sizeof(*f));
    f->arena = colony_request_arena(req);
    f->method = colony_request_method(req);
    f->idempotent = colony_http_method_idempotent(f->method);
    f->body = colony_request_body(req, &f->body_len);
    if (f->body_len == 0) f->body = NULL;
    /* Rewritten on the stack, then copied at its size: an 8 KiB arena
     * allocation took a block of its own, a malloc and a free per request. */
    char rewritten[GW_MAX_PATH];
    int len = colony__gw_rewrite(m, path, rewritten, GW_MAX_PATH);
    if (len < 0) return COLONY_E2BIG;
    const char *query = colony_request_query(req);
    size_t qlen = *query ? strlen(query) : 0;
    if (qlen && (size_t)len + 1 + qlen >= GW_MAX_PATH) return COLONY_E2BIG;
    char *upath = colony_arena_alloc(f->arena, (size_t)len + (qlen ? 1 + qlen : 0) + 1);
    if (!upath) return COLONY_ENOMEM;
    memcpy(upath, rewritten, (size_t)len);
    if (qlen) {
        upath[len] = '?';
        memcpy(upath + len + 1, query, qlen);
    }
    upath[(size_t)len + (qlen ? 1 + qlen : 0)] = '\0';
    f->path_query = upath;
    return build_headers(f, req, traceparent);
}

int colony__gw_forward_add_headers(gw_forward *f, const char *const *added, size_t n)
{
    if (n == 0) return 0;
    size_t used = f->host_slot + 2; /* Host, whose value is set per attempt, then those added */
    while (f->headers[used])
        used += 2;
    const char **h = colony_arena_alloc(f->arena, (used + 2 * n + 1) * sizeof(char *));
    if (!h) return COLONY_ENOMEM;
    memcpy(h, f->headers, used * sizeof(char *));
    memcpy(h + used, added, 2 * n * sizeof(char *));
    h[used + 2 * n] = NULL;
    f->headers = h;
    return 0;
}

int colony__gw_endpoint_https(const gw_upstream *up, const colony_endpoint *ep)
{
    return up && (up->https || (ep && colony_endpoint_user(ep) == GW_ENDPOINT_TLS));
}

int colony__gw_forward_target(gw_forward *f, const char *address, int https, const gw_upstream *up,
                              colony_client_request *out)
{
    https = https && up;
    size_t need = sizeof("https://") + strlen(address) + strlen(f->path_query);
    if (need > f->url_size) {
        f->url = colony_arena_alloc(f->arena, need);
        if (!f->url) return COLONY_ENOMEM;
        f->url_size = need;
    }
    char *p = f->url;
    size_t scheme = https ? 8 : 7, alen = strlen(address);
    memcpy(p, https ? "https://" : "http://", scheme);
    memcpy(p + scheme, address, alen);
    memcpy(p + scheme + alen, f->path_query, strlen(f->path_query) + 1);
    f->headers[f->host_slot + 1] = address;
    *out = (colony_client_request){.method = f->method,
                                   .url = f->url,
                                   .headers = f->headers,
                                   .body = f->body,
                                   .body_len = f->body_len};
    if (https) {
        out->tls_ca_file = up->tls_ca_file;
        out->tls_server_name = up->tls_server_name;
        out->tls_cert_file = up->tls_cert_file;
        out->tls_key_file = up->tls_key_file;
    }
    return 0;
}

int colony__gw_forward_may_retry(const gw_forward *f, const gw_route_conf *r, unsigned attempts,
                                 int unsent)
{
    return attempts <= r->retries && (unsent || f->idempotent || r->retry_non_idempotent);
}

/* The value of cookie `name` in a Cookie header, or NULL. */
static const char *cookie_value(const char *cookies, const char *name, size_t *len)
{
    size_t name_len = strlen(name);
    for (const char *p = cookies; p && *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        size_t n = strcspn(p, ";");
        if (n > name_len && strncmp(p, name, name_len) == 0 && p[name_len] == '=') {
            *len = n - name_len - 1;
            return p + name_len + 1;
        }
        p += n;
    }
    return NULL;
}

const char *colony__gw_forward_hash_key(gw_forward *f, colony_request *req, const gw_upstream *up,
                                        size_t *len)
{
    *len = 0;
    if (up->strategy != COLONY_BALANCE_IP_HASH && up->strategy != COLONY_BALANCE_RING_HASH)
        return NULL;
    const char *key = NULL;
    if (up->hash_header)
        key = colony_request_header(req, up->hash_header);
    else if (up->hash_cookie)
        return cookie_value(colony_request_header(req, "Cookie"), up->hash_cookie, len);
    else
        key = colony_request_peer_ip(req);
    if (key) *len = strlen(key);
    return key;
}

int colony__gw_forward_response_head(colony_request *req, const colony_client_response *res)
{
    const char *connection = NULL;
    for (size_t i = 0; i < res->num_headers; i++)
        if (res->headers[i].name_len == 10 &&
            strncasecmp(res->headers[i].name, "Connection", 10) == 0)
            connection = colony_arena_strndup(colony_request_arena(req), res->headers[i].value,
                                              res->headers[i].value_len);
    colony_arena *a = colony_request_arena(req);
    int own_cors = colony_request_get_data(req, GW_CORS_DATA_KEY) != NULL;
    for (size_t i = 0; i < res->num_headers; i++) {
        const colony_http_header *h = &res->headers[i];
        if (colony__gw_hop_by_hop(h->name, h->name_len, connection)) continue;
        if (h->name_len == 4 && strncasecmp(h->name, "Date", 4) == 0) continue; /* ours is sent */
        if (own_cors && h->name_len > 15 && strncasecmp(h->name, "Access-Control-", 15) == 0)
            continue; /* the route's CORS is the gateway's (cors.c) */
        const char *name = colony_arena_strndup(a, h->name, h->name_len);
        const char *value = colony_arena_strndup(a, h->value, h->value_len);
        if (!name || !value) return COLONY_ENOMEM;
        int rc = colony_response_header(req, name, value);
        if (rc == COLONY_ENOMEM) return rc;
    }
    return 0;
}
