/* The response cache (cache.h): lookups, stores and LRU eviction under a
 * byte bound. Times are passed in (now_ms), so tests drive them. */
#include "gateway/cache.h"
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "gateway/config.h"
#include "gateway/forward.h"
#include "gateway/transform.h"

#define KEY_VARY_MARK '\x01' /* between the key and the Vary values */

/* The header names of a response's Vary, shared by the entries stored under
 * one key: lowercased, joined by ','. Freed with its last entry. */
struct gw_cache_vary {
    char *primary; /* its key in gw_cache.varies */
    char *names;
    unsigned refs; /* entries */
    int in_map;
};

struct gw_cache_fill {
    char *key;     /* full key */
    char *primary; /* key without the Vary values */
    char *vary;    /* names, or NULL */
    size_t route_len;
    int status;
    colony_http_header *headers;
    size_t nheaders;
    colony_buf body;
    uint64_t lifetime_ms, age0_s;
};

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

/* ---- the store -------------------------------------------------------- */

void colony__gw_cache_init(gw_cache *c, uint64_t max_bytes)
{
    memset(c, 0, sizeof(*c));
    colony__list_init(&c->lru);
    c->max_bytes = max_bytes;
}

static double bytes_held(void *ud)
{
    return (double)((gw_cache *)ud)->bytes;
}

static double entries_held(void *ud)
{
    return (double)((gw_cache *)ud)->count;
}

int colony__gw_cache_metrics(gw_cache *c, colony_metrics *m)
{
    static const char *const labels[] = {"route", "status", NULL};
    c->m_requests = colony_metrics_counter(m, "gateway_cache_requests_total",
                                           "Requests of cached routes by route and cache status "
                                           "(hit, miss, bypass, expired).",
                                           labels);
    if (!c->m_requests) return COLONY_ENOMEM;
    int rc = colony_metrics_gauge_fn(m, "gateway_cache_bytes",
                                     "Bytes held by the response cache (headers and bodies).",
                                     bytes_held, c);
    if (!rc)
        rc = colony_metrics_gauge_fn(m, "gateway_cache_entries",
                                     "Responses held by the response cache.", entries_held, c);
    return rc;
}

static void vary_unref(gw_cache *c, gw_cache_vary *v)
{
    if (!v || --v->refs > 0) return;
    if (v->in_map) colony__map_remove(&c->varies, v->primary);
    colony__free(v->primary);
    colony__free(v->names);
    colony__free(v);
}

static void entry_free(gw_cache *c, gw_cache_entry *e)
{
    colony__map_remove(&c->entries, e->key);
    colony__list_remove(&e->lru);
    c->bytes -= e->bytes;
    c->count--;
    vary_unref(c, e->vary);
    colony__free(e->key);
    colony__free(e->headers);
    colony__free(e->body);
    colony__free(e);
}

static void evict_to(gw_cache *c, uint64_t room)
{
    while (c->bytes + room > c->max_bytes && !colony__list_empty(&c->lru)) {
        gw_cache_entry *e = COLONY__CONTAINER_OF(c->lru.prev, gw_cache_entry, lru);
        entry_free(c, e);
        c->stats.evicted++;
    }
}

void colony__gw_cache_set_max(gw_cache *c, uint64_t max_bytes)
{
    c->max_bytes = max_bytes;
    evict_to(c, 0);
}

void colony__gw_cache_retain(gw_cache *c, int (*keep)(void *ud, const char *route, size_t len),
                             void *ud)
{
    colony__list *node, *tmp;
    COLONY__LIST_FOREACH_SAFE(node, tmp, &c->lru)
    {
        gw_cache_entry *e = COLONY__CONTAINER_OF(node, gw_cache_entry, lru);
        if (!keep(ud, e->key, e->route_len)) entry_free(c, e);
    }
}

/* The misses of one key waiting for the first (its leader). */
typedef struct gw_cache_pending {
    colony__list waiters; /* gw_cache_waiter.link */
    colony__list link;    /* while the cache is freed */
} gw_cache_pending;

static void wake_all(gw_cache_pending *p)
{
    colony__list *node;
    while ((node = colony__list_pop_front(&p->waiters)) != NULL) {
        gw_cache_waiter *w = COLONY__CONTAINER_OF(node, gw_cache_waiter, link);
        w->wake(w);
    }
    colony__free(p);
}

int colony__gw_cache_join(gw_cache *c, const char *key, gw_cache_waiter *w)
{
    gw_cache_pending *p = colony__map_get(&c->pending, key);
    if (p) {
        colony__list_push_back(&p->waiters, &w->link);
        c->stats.coalesced++;
        return 1;
    }
    if (!(p = colony__malloc(sizeof(*p)))) return COLONY_ENOMEM;
    colony__list_init(&p->waiters);
    colony__list_init(&p->link);
    if (colony__map_put(&c->pending, key, p) != 0) {
        colony__free(p);
        return COLONY_ENOMEM;
    }
    return 0;
}

void colony__gw_cache_release(gw_cache *c, const char *key)
{
    gw_cache_pending *p = colony__map_remove(&c->pending, key);
    if (!p) return;
    wake_all(p); /* a woken waiter may lead the key again: p is out of the map */
}

void colony__gw_cache_free(gw_cache *c)
{
    /* Waiters left (a shutdown that did not wait for their leader) are woken
     * once the map is gone, so none is left waiting and none joins it again. */
    colony__list left;
    colony__list_init(&left);
    size_t pos = 0;
    colony__map_slot *slot;
    while ((slot = colony__map_next(&c->pending, &pos)) != NULL)
        colony__list_push_back(&left, &((gw_cache_pending *)slot->value)->link);
    colony__map_free(&c->pending);
    colony__list *node;
    while ((node = colony__list_pop_front(&left)) != NULL)
        wake_all(COLONY__CONTAINER_OF(node, gw_cache_pending, link));
    while (!colony__list_empty(&c->lru))
        entry_free(c, COLONY__CONTAINER_OF(c->lru.next, gw_cache_entry, lru));
    colony__map_free(&c->entries);
    colony__map_free(&c->varies);
}

uint64_t colony__gw_cache_age(const gw_cache_entry *e, uint64_t now_ms)
{
    return e->age0_s + (now_ms > e->stored_ms ? (now_ms - e->stored_ms) / 1000 : 0);
}

/* ---- keys ------------------------------------------------------------- */

/* Appends the request's value of each name in the ','-joined list (one line
 * each; absent is distinct from empty). */
static int append_vary_values(colony_buf *b, const char *names, const gw_cache_request *r)
{
    int rc = 0;
    for (const char *p = names; !rc && *p;) {
        size_t n = strcspn(p, ",");
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)(n < sizeof(name) ? n : sizeof(name) - 1), p);
        const char *v = r->header(r->ud, name);
        rc = v ? colony_buf_appendf(b, "=%s\n", v) : colony_buf_append(b, "-\n", 2);
        p += n + (p[n] == ',');
    }
    return rc;
}

/* route \n host \n target, then the route's "vary" headers. */
static char *primary_key(const gw_cache_conf *conf, const gw_cache_request *r)
{
    colony_buf b;
    colony_buf_init(&b, 64 << 10);
    int rc = colony_buf_appendf(&b, "%s\n", r->route);
    for (const char *h = r->host ? r->host : ""; !rc && *h; h++) {
        char ch = (char)tolower((unsigned char)*h);
        rc = colony_buf_append(&b, &ch, 1);
    }
    if (!rc) rc = colony_buf_appendf(&b, "\n%s\n", r->target);
    for (size_t i = 0; !rc && i < conf->nvary; i++) {
        const char *v = r->header(r->ud, conf->vary[i]);
        rc = v ? colony_buf_appendf(&b, "=%s\n", v) : colony_buf_append(&b, "-\n", 2);
    }
    if (rc) {
        colony_buf_free(&b);
        return NULL;
    }
    size_t len;
    char *key = colony_buf_detach(&b, &len);
    if (!key) key = colony__strdup(""); /* cannot happen: the route's name is there */
    return key;
}

static char *full_key(const char *primary, const char *vary, const gw_cache_request *r)
{
    colony_buf b;
    colony_buf_init(&b, 128 << 10);
    int rc = colony_buf_append_str(&b, primary);
    if (!rc) rc = colony_buf_append(&b, (char[]){KEY_VARY_MARK}, 1);
    if (!rc && vary) rc = append_vary_values(&b, vary, r);
    if (rc) {
        colony_buf_free(&b);
        return NULL;
    }
    size_t len;
    return colony_buf_detach(&b, &len);
}

/* ---- lookups ---------------------------------------------------------- */

void colony__gw_cache_count(gw_cache *c, const char *route, gw_cache_status s)
{
    static const char *const labels[] = {"", "hit", "miss", "bypass", "expired"};
    uint64_t *n[] = {NULL, &c->stats.hits, &c->stats.misses, &c->stats.bypasses, &c->stats.expired};
    if (n[s]) (*n[s])++;
    if (c->m_requests) colony_metric_inc(colony_metric_with(c->m_requests, route, labels[s]), 1);
}

gw_cache_status colony__gw_cache_lookup(gw_cache *c, const gw_cache_conf *conf,
                                        const gw_cache_request *r, uint64_t now_ms, char **key,
                                        const gw_cache_entry **hit, int *store)
{
    *key = NULL;
    *hit = NULL;
    *store = 0;
    int get = strcmp(r->method, "GET") == 0, head = strcmp(r->method, "HEAD") == 0;
    gw_cache_control cc;
    colony__gw_cache_control_init(&cc);
    const char *v = r->header(r->ud, "Cache-Control");
    if (v) colony__gw_cache_control_parse(&cc, v, strlen(v));
    const char *pragma = r->header(r->ud, "Pragma");
    if (pragma && !v && strcasestr(pragma, "no-cache")) cc.no_cache = 1;
    int refused = (!get && !head) || cc.no_store ||
                  ((r->credentials || r->header(r->ud, "Authorization")) && !conf->authorized);
    char *primary = refused ? NULL : primary_key(conf, r);
    if (!primary) {
        return GW_CACHE_BYPASS;
    }
    gw_cache_status status = GW_CACHE_MISS;
    if (cc.no_cache) {
        status = GW_CACHE_BYPASS;
    } else {
        gw_cache_vary *vary = colony__map_get(&c->varies, primary);
        char *full = full_key(primary, vary ? vary->names : NULL, r);
        gw_cache_entry *e = full ? colony__map_get(&c->entries, full) : NULL;
        colony__free(full);
        if (e && now_ms < e->expires_ms) {
            colony__list_remove(&e->lru);
            colony__list_push_front(&c->lru, &e->lru);
            *hit = e;
            colony__free(primary);
            return GW_CACHE_HIT;
        }
        if (e) {
            entry_free(c, e);
            status = GW_CACHE_EXPIRED;
        }
    }
    if (get) {
        *key = primary;
        *store = 1;
    } else {
        colony__free(primary);
    }
    return status;
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
    f->key = full_key(key, f->vary, r);
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

/* The Vary record of primary for these names: the current one when it
 * matches, else a new one that replaces it. NULL when names is NULL (and
 * the key's record, if any, is dropped: the resource no longer varies). */
static int vary_for(gw_cache *c, const char *primary, char **names, gw_cache_vary **out)
{
    *out = NULL;
    gw_cache_vary *old = colony__map_get(&c->varies, primary);
    if (old && *names && strcmp(old->names, *names) == 0) {
        old->refs++;
        *out = old;
        return 0;
    }
    if (old) { /* its entries keep it until they go (it has one at least) */
        colony__map_remove(&c->varies, primary);
        old->in_map = 0;
    }
    if (!*names) return 0;
    gw_cache_vary *v = colony__calloc(1, sizeof(*v));
    if (!v || !(v->primary = colony__strdup(primary)) ||
        colony__map_put(&c->varies, primary, v) != 0) {
        if (v) colony__free(v->primary);
        colony__free(v);
        return COLONY_ENOMEM;
    }
    v->names = *names;
    *names = NULL;
    v->refs = 1;
    v->in_map = 1;
    *out = v;
    return 0;
}

void colony__gw_cache_fill_commit(gw_cache *c, gw_cache_fill *f, uint64_t now_ms)
{
    size_t key_len = strlen(f->key);
    size_t header_bytes = f->nheaders * sizeof(*f->headers);
    for (size_t i = 0; i < f->nheaders; i++)
        header_bytes += f->headers[i].name_len + f->headers[i].value_len + 2;
    uint64_t bytes = sizeof(gw_cache_entry) + key_len + 1 + header_bytes + f->body.len;
    gw_cache_entry *old = colony__map_get(&c->entries, f->key);
    if (old) entry_free(c, old);
    gw_cache_entry *e = bytes <= c->max_bytes ? colony__calloc(1, sizeof(*e)) : NULL;
    if (!e) {
        c->stats.not_stored++;
        colony__gw_cache_fill_abort(f);
        return;
    }
    evict_to(c, bytes);
    if (colony__map_put(&c->entries, f->key, e) != 0 ||
        vary_for(c, f->primary, &f->vary, &e->vary) != 0) {
        colony__map_remove(&c->entries, f->key);
        colony__free(e);
        c->stats.not_stored++;
        colony__gw_cache_fill_abort(f);
        return;
    }
    e->key = f->key;
    f->key = NULL;
    e->route_len = f->route_len;
    e->status = f->status;
    e->headers = f->headers;
    e->nheaders = f->nheaders;
    f->headers = NULL;
    size_t len = 0;
    e->body = f->body.len ? colony_buf_detach(&f->body, &len) : NULL;
    e->body_len = len;
    e->stored_ms = now_ms;
    e->age0_s = f->age0_s;
    e->expires_ms = now_ms + f->lifetime_ms - f->age0_s * 1000;
    e->bytes = (size_t)bytes;
    colony__list_push_front(&c->lru, &e->lru);
    c->bytes += bytes;
    c->count++;
    c->stats.stored++;
    colony__gw_cache_fill_abort(f);
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
