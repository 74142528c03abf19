/* The response cache's storing rules (cache.h): Cache-Control, what may be
 * stored and for how long (RFC 9111's shared-cache rules), the fill of an
 * answer while its body streams, and answers from an entry. Nothing here
 * touches a shard: the store is cache.c's. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "gateway/cache_internal.h"
#include "gateway/config.h"
#include "gateway/forward.h"
#include "gateway/transform.h"

/* ---- Cache-Control ---------------------------------------------------- */

void colony__gw_cache_control_init(gw_cache_control *cc)
{
    memset(cc, 0, sizeof(*cc));
    cc->max_age = cc->s_maxage = -1;
}

static int64_t delta_seconds(const char *v, size_t len)
{
    if (len >= 2 && v[0] == '"' && v[len - 1] == '"') { /* tolerated, as browsers do */
        v++;
        len -= 2;
    }
    if (len == 0) return -1;
    int64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        if (n < 1000000000000LL) n = n * 10 + (v[i] - '0'); /* saturates */
    }
    return n;
}

static int directive_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

void colony__gw_cache_control_parse(gw_cache_control *cc, const char *value, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        size_t name = i;
        while (i < len && value[i] != '=' && value[i] != ',' && value[i] != ' ' && value[i] != '\t')
            i++;
        size_t name_len = i - name;
        while (i < len && (value[i] == ' ' || value[i] == '\t'))
            i++;
        const char *arg = NULL;
        size_t arg_len = 0;
        if (i < len && value[i] == '=') {
            i++;
            while (i < len && (value[i] == ' ' || value[i] == '\t'))
                i++;
            arg = value + i;
            if (i < len && value[i] == '"') { /* quoted: may hold commas */
                i++;
                while (i < len && value[i] != '"')
                    i += value[i] == '\\' && i + 1 < len ? 2 : 1;
                if (i < len) i++;
            } else {
                while (i < len && value[i] != ',' && value[i] != ' ' && value[i] != '\t')
                    i++;
            }
            arg_len = (size_t)(value + i - arg);
        }
        const char *n = value + name;
        /* no-cache="field" and private="field" are taken whole: stricter. */
        if (directive_is(n, name_len, "no-store"))
            cc->no_store = 1;
        else if (directive_is(n, name_len, "no-cache"))
            cc->no_cache = 1;
        else if (directive_is(n, name_len, "private"))
            cc->is_private = 1;
        else if (directive_is(n, name_len, "public"))
            cc->is_public = 1;
        else if (directive_is(n, name_len, "max-age") && arg)
            cc->max_age = delta_seconds(arg, arg_len);
        else if (directive_is(n, name_len, "s-maxage") && arg)
            cc->s_maxage = delta_seconds(arg, arg_len);
        while (i < len && value[i] != ',')
            i++;
    }
}

const char *colony__gw_cache_status_name(gw_cache_status s)
{
    static const char *const names[] = {"", "HIT", "MISS", "BYPASS", "EXPIRED"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "";
}

/* ---- stores ----------------------------------------------------------- */

static int header_is(const colony_http_header *h, const char *name)
{
    return h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

/* Appends the names of one Vary value to b, lowercased, ','-joined.
 * Returns 1 for "*" (never stored), 0, or an error. */
static int add_vary(colony_buf *b, const char *v, size_t len)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < len;) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (i == start) break;
        if (i - start == 1 && v[start] == '*') return 1;
        if (i - start >= 128) return 1; /* no header name is that long: not stored */
        if (b->len) rc = colony_buf_append(b, ",", 1);
        for (size_t k = start; !rc && k < i; k++) {
            char ch = (char)tolower((unsigned char)v[k]);
            rc = colony_buf_append(b, &ch, 1);
        }
    }
    return rc;
}

/* Not stored, not sent from the cache: framing, per-response and ours. */
static int header_dropped(const colony_http_header *h, const char *connection)
{
    return colony__gw_hop_by_hop(h->name, h->name_len, connection) || header_is(h, "Date") ||
           header_is(h, "Age") || header_is(h, "Content-Length") ||
           header_is(h, "X-Cache-Status") || header_is(h, "Set-Cookie");
}

/* Copies the kept headers into one allocation. */
static int copy_headers(gw_cache_fill *f, const colony_client_response *res)
{
    char connection[256] = "";
    size_t bytes = 0, n = 0;
    for (size_t i = 0; i < res->num_headers; i++)
        if (header_is(&res->headers[i], "Connection"))
            snprintf(connection, sizeof(connection), "%.*s", (int)res->headers[i].value_len,
                     res->headers[i].value);
    for (size_t i = 0; i < res->num_headers; i++)
        if (!header_dropped(&res->headers[i], connection)) {
            bytes += res->headers[i].name_len + res->headers[i].value_len + 2;
            n++;
        }
    f->headers = colony__malloc(n * sizeof(*f->headers) + bytes + 1);
    if (!f->headers) return COLONY_ENOMEM;
    char *p = (char *)(f->headers + n);
    for (size_t i = 0; i < res->num_headers; i++) {
        const colony_http_header *h = &res->headers[i];
        if (header_dropped(h, connection)) continue;
        colony_http_header *to = &f->headers[f->nheaders++];
        memcpy(p, h->name, h->name_len);
        p[h->name_len] = '\0';
        to->name = p;
        to->name_len = h->name_len;
        p += h->name_len + 1;
        memcpy(p, h->value, h->value_len);
        p[h->value_len] = '\0';
        to->value = p;
        to->value_len = h->value_len;
        p += h->value_len + 1;
    }
    return 0;
}

void colony__gw_cache_fill_abort(gw_cache_fill *f)
{
    if (!f) return;
    colony__free(f->key);
    colony__free(f->primary);
    colony__free(f->vary);
    colony__free(f->headers);
    colony_buf_free(&f->body);
    colony__free(f);
}

static int status_bit(int status)
{
    return status == 200   ? GW_CACHE_STATUS_200
           : status == 301 ? GW_CACHE_STATUS_301
           : status == 404 ? GW_CACHE_STATUS_404
                           : 0;
}

/* An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") as seconds since the
 * epoch, or -1 (the obsolete formats are not read: an Expires that cannot be
 * read counts as already past, RFC 9111 §5.3). */
static int64_t http_date(const char *v, size_t len)
{
    char text[64];
    if (len >= sizeof(text)) return -1;
    memcpy(text, v, len);
    text[len] = '\0';
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end) return -1;
    return (int64_t)timegm(&tm);
}

/* How long res stays fresh (ms) by the shared-cache rules, or 0: not stored. */
static uint64_t lifetime_of(const gw_cache_conf *conf, const colony_client_response *res,
                            uint64_t *age0, int *vary_star, colony_buf *vary, int *refused)
{
    gw_cache_control cc;
    colony__gw_cache_control_init(&cc);
    *age0 = 0;
    const colony_http_header *expires = NULL, *date = NULL;
    for (size_t i = 0; i < res->num_headers && !*refused; i++) {
        const colony_http_header *h = &res->headers[i];
        if (header_is(h, "Cache-Control")) {
            colony__gw_cache_control_parse(&cc, h->value, h->value_len);
        } else if (header_is(h, "Vary")) {
            int rc = add_vary(vary, h->value, h->value_len);
            if (rc == 1) *vary_star = 1;
            if (rc < 0) *refused = 1;
        } else if (header_is(h, "Age")) {
            int64_t a = delta_seconds(h->value, h->value_len);
            if (a > 0) *age0 = (uint64_t)a;
        } else if (header_is(h, "Set-Cookie") && !conf->set_cookie) {
            *refused = 1;
        } else if (header_is(h, "Content-Length")) {
            int64_t n = delta_seconds(h->value, h->value_len);
            if (n < 0 || (uint64_t)n > conf->max_entry) *refused = 1;
        } else if (header_is(h, "Expires")) {
            expires = h;
        } else if (header_is(h, "Date")) {
            date = h;
        }
    }
    if (*refused || *vary_star || cc.no_store || cc.no_cache || cc.is_private) return 0;
    uint64_t ms = cc.s_maxage >= 0  ? (uint64_t)cc.s_maxage * 1000
                  : cc.max_age >= 0 ? (uint64_t)cc.max_age * 1000
                                    : conf->ttl_ms;
    if (cc.s_maxage < 0 && cc.max_age < 0 && expires) { /* Expires less Date (or now) */
        int64_t until = http_date(expires->value, expires->value_len);
        int64_t from = date ? http_date(date->value, date->value_len) : (int64_t)time(NULL);
        ms = until > from && from >= 0 ? (uint64_t)(until - from) * 1000 : 0;
    }
    if (ms > conf->max_ttl_ms) ms = conf->max_ttl_ms;
    return ms > *age0 * 1000 ? ms : 0;
}

gw_cache_fill *colony__gw_cache_fill_begin(gw_cache *c, const gw_cache_conf *conf, const char *key,
                                           const gw_cache_request *r,
                                           const colony_client_response *res, uint64_t now_ms)
{
    (void)now_ms;
    if (strcmp(r->method, "GET") != 0 || !(status_bit(res->status) & conf->statuses)) {
        c->stats.not_stored++;
        return NULL;
    }
    colony_buf vary;
    colony_buf_init(&vary, 4096);
    uint64_t age0;
    int vary_star = 0, refused = 0;
    uint64_t lifetime = lifetime_of(conf, res, &age0, &vary_star, &vary, &refused);
    gw_cache_fill *f = lifetime ? colony__calloc(1, sizeof(*f)) : NULL;
    if (!f) {
        colony_buf_free(&vary);
        c->stats.not_stored++;
        return NULL;
    }
    size_t len;
    f->vary = vary.len ? colony_buf_detach(&vary, &len) : NULL;
    colony_buf_free(&vary);
    f->status = res->status;
    f->lifetime_ms = lifetime;
    f->age0_s = age0;
    f->route_len = strlen(r->route);
    colony_buf_init(&f->body, conf->max_entry);
    f->primary = colony__strdup(key);
    f->key = colony__gw_cache_full_key(key, f->vary, r);
    if (!f->primary || !f->key || copy_headers(f, res) != 0) {
        colony__gw_cache_fill_abort(f);
        c->stats.not_stored++;
        return NULL;
    }
    return f;
}

int colony__gw_cache_fill_add(gw_cache_fill *f, const char *data, size_t len)
{
    return colony_buf_append(&f->body, data, len);
}

/* ---- answers ---------------------------------------------------------- */

int colony__gw_cache_respond(colony_request *req, const gw_cache_entry *e,
                             const struct gw_route_conf *route, uint64_t now_ms)
{
    colony_client_response res = {
        .status = e->status, .version_minor = 1, .headers = e->headers, .num_headers = e->nheaders};
    int rc = colony__gw_transform_response(req, &res, route);
    char age[24];
    snprintf(age, sizeof(age), "%llu", (unsigned long long)colony__gw_cache_age(e, now_ms));
    if (!rc) rc = colony_response_header(req, "Age", age);
    if (!rc) rc = colony_response_header(req, "X-Cache-Status", "HIT");
    if (rc) return rc;
    return colony_respond(req, e->status, NULL, e->body ? e->body : "", e->body_len);
}
