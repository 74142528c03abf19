/* The broker client: its HTTP client on the caller's loop, the calls every
 * part makes (one helper that counts them, so a close knows when the last
 * one is over), and the graceful close. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "colony/error.h"
#include "colony/service.h"
#include "core/alloc.h"
#include "kit/broker/broker_internal.h"

#define DEFAULT_URL "http://127.0.0.1:8600"

void colony_broker_client_options_init(colony_broker_client_options *o)
{
    memset(o, 0, sizeof(*o));
    o->timeout_ms = 10000;
    o->retry_min_ms = 100;
    o->retry_max_ms = 5000;
    o->close_timeout_ms = 10000;
}

colony_broker_client *colony_broker_client_new(uv_loop_t *loop,
                                               const colony_broker_client_options *opts)
{
    colony_broker_client_options o;
    colony_broker_client_options_init(&o);
    if (opts) {
        o.url = opts->url;
        if (opts->timeout_ms) o.timeout_ms = opts->timeout_ms;
        if (opts->retry_min_ms) o.retry_min_ms = opts->retry_min_ms;
        if (opts->retry_max_ms) o.retry_max_ms = opts->retry_max_ms;
        if (opts->close_timeout_ms) o.close_timeout_ms = opts->close_timeout_ms;
    }
    if (o.retry_max_ms < o.retry_min_ms) o.retry_max_ms = o.retry_min_ms;
    const char *url = o.url ? o.url : getenv("COLONY_BROKER_URL");
    if (!url || !*url) url = DEFAULT_URL;
    if (!loop || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))) return NULL;
    colony_broker_client *c = colony__calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->loop = loop;
    c->o = o;
    c->url = colony__strdup(url);
    if (!c->url) {
        colony__free(c);
        return NULL;
    }
    size_t n = strlen(c->url);
    while (n > 0 && c->url[n - 1] == '/')
        c->url[--n] = 0;
    colony_client_options co;
    colony_client_options_init(&co);
    co.read_timeout_ms = 0; /* each call has its own total timeout (long-polls wait) */
    c->http = colony_client_new(loop, &co);
    if (!c->http) {
        colony__free(c->url);
        colony__free(c);
        return NULL;
    }
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = 0;
    snprintf(c->consumer, sizeof(c->consumer), "%s-%ld", host, (long)getpid());
    colony__list_init(&c->subs);
    c->o.url = c->url;
    return c;
}

/* ---- calls ---- */

typedef struct call {
    colony_broker_client *c;
    colony__bc_done_cb cb;
    void *ud;
} call;

static void call_done(colony_client_call *hc, int err, const colony_client_response *res, void *ud)
{
    (void)hc;
    call *k = ud;
    colony_broker_client *c = k->c;
    json_t *body = NULL;
    int status = 0;
    if (!err) {
        status = res->status;
        if (res->body && res->body_len)
            body = json_loadb(res->body, res->body_len, JSON_DECODE_ANY, NULL);
    }
    k->cb(c, err, status, body, k->ud);
    json_decref(body);
    colony__free(k);
    c->calls--;
    colony__bc_progress(c);
}

int colony__bc_call(colony_broker_client *c, const char *method, const char *path, const char *body,
                    const char *const *extra, uint64_t timeout_ms, colony__bc_done_cb cb, void *ud,
                    colony_client_call **out)
{
    const char *headers[16];
    size_t nh = 0;
    if (body) {
        headers[nh++] = "Content-Type";
        headers[nh++] = "application/json";
    }
    for (size_t i = 0; extra && extra[i] && extra[i + 1] && nh + 2 < 16; i += 2) {
        headers[nh++] = extra[i];
        headers[nh++] = extra[i + 1];
    }
    headers[nh] = NULL;
    size_t ul = strlen(c->url), pl = strlen(path);
    char *url = colony__malloc(ul + pl + 1);
    call *k = colony__calloc(1, sizeof(*k));
    if (!url || !k) {
        colony__free(url);
        colony__free(k);
        return COLONY_ENOMEM;
    }
    memcpy(url, c->url, ul);
    memcpy(url + ul, path, pl + 1);
    *k = (call){c, cb, ud};
    colony_client_request r = {.method = method,
                               .url = url,
                               .headers = headers,
                               .body = body,
                               .body_len = body ? strlen(body) : 0,
                               .timeout_ms = timeout_ms ? timeout_ms : c->o.timeout_ms};
    int rc = colony_client_request_send(c->http, &r, call_done, k, out);
    colony__free(url);
    if (rc) {
        colony__free(k);
        return rc;
    }
    c->calls++;
    return 0;
}

int colony__bc_status_error(int status, const char *error)
{
    if (status >= 200 && status < 300) return 0;
    if (status == 400) return COLONY_EINVAL;
    if (status == 404) return COLONY_ENOENT;
    if (status == 409) return COLONY_EEXIST;
    if (status == 413) return COLONY_E2BIG;
    if (status == 501) return COLONY_ENOTSUP;
    if (status == 507) return error && strcmp(error, "stream_full") == 0 ? COLONY_EBUSY : -ENOSPC;
    return COLONY_EIO;
}

char *colony__bc_path(const char *prefix, const char *s, const char *suffix)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t pl = strlen(prefix), sl = strlen(s), xl = suffix ? strlen(suffix) : 0;
    char *out = colony__malloc(pl + 3 * sl + xl + 1);
    if (!out) return NULL;
    memcpy(out, prefix, pl);
    char *p = out + pl;
    for (size_t i = 0; i < sl; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            *p++ = (char)ch;
        } else {
            *p++ = '%';
            *p++ = hex[ch >> 4];
            *p++ = hex[ch & 15];
        }
    }
    if (xl) memcpy(p, suffix, xl);
    p[xl] = 0;
    return out;
}

/* ---- close ---- */

static void client_freed(void *ud)
{
    colony_broker_client *c = ud;
    colony_broker_closed_cb cb = c->close_cb;
    void *cud = c->close_ud;
    colony__free(c->url);
    colony__free(c);
    if (cb) cb(cud);
}

static void http_closed(void *ud)
{
    colony_broker_client *c = ud;
    colony__closer_release(&c->closer);
}

static void close_timeout(uv_timer_t *t)
{
    colony_broker_client *c = t->data;
    c->forced = 1;
    colony__list *n, *tmp;
    COLONY__LIST_FOREACH_SAFE(n, tmp, &c->subs)
    {
        colony__bsub_detach(COLONY__CONTAINER_OF(n, colony_broker_sub, link));
    }
    colony__bc_progress(c);
}

void colony__bc_progress(colony_broker_client *c)
{
    if (!c->closing || c->finished || c->calls || !colony__list_empty(&c->subs)) return;
    c->finished = 1;
    colony__closer_init(&c->closer, client_freed, c);
    colony__closer_close(&c->closer, (uv_handle_t *)&c->close_timer);
    colony__closer_hold(&c->closer);
    colony_client_close(c->http, http_closed, c);
    colony__closer_finish(&c->closer, c->loop);
}

void colony_broker_client_close(colony_broker_client *c, colony_broker_closed_cb cb, void *ud)
{
    if (!c || c->closing) return;
    c->closing = 1;
    c->close_cb = cb;
    c->close_ud = ud;
    uv_timer_init(c->loop, &c->close_timer);
    c->close_timer.data = c;
    uv_timer_start(&c->close_timer, close_timeout, c->o.close_timeout_ms, 0);
    colony__list *n, *tmp;
    COLONY__LIST_FOREACH_SAFE(n, tmp, &c->subs)
    {
        colony__bsub_stop(COLONY__CONTAINER_OF(n, colony_broker_sub, link));
    }
    /* from the loop: a close inside a callback finishes after it returns */
    colony__bc_progress(c);
}

/* ---- a service's client ---- */

typedef struct service_hook {
    colony_broker_client *c;
    colony_service *svc;
    void (*done)(colony_service *);
} service_hook;

static void service_closed(void *ud)
{
    service_hook *h = ud;
    void (*done)(colony_service *) = h->done;
    colony_service *svc = h->svc;
    colony__free(h);
    done(svc);
}

static void service_shutdown(colony_service *svc, void (*done)(colony_service *), void *ud)
{
    service_hook *h = ud;
    h->svc = svc;
    h->done = done;
    colony_broker_client_close(h->c, service_closed, h);
}

colony_broker_client *colony_service_broker(colony_service *svc,
                                            const colony_broker_client_options *opts)
{
    if (!svc) return NULL;
    service_hook *h = colony__calloc(1, sizeof(*h));
    if (!h) return NULL;
    h->c = colony_broker_client_new(colony_service_loop(svc), opts);
    if (!h->c || colony_service_on_shutdown(svc, service_shutdown, h)) {
        if (h->c) colony_broker_client_close(h->c, NULL, NULL);
        colony__free(h);
        return NULL;
    }
    return h->c;
}
