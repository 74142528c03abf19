/* Registry client handle: the HTTP plumbing shared by registration and
 * watches, service registration, check updates and TTL heartbeats. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "kit/discovery/discovery_internal.h"

/* Keeps one instance's TTL check passing. While the registry does not know the
 * instance (first registration failed, or the check answered 404 because the
 * registry lost it) each tick re-sends the registration instead. */
struct registry_heartbeat {
    registry_heartbeat *next;
    colony_registry_client *r;
    char *service_id;
    char *check_path; /* "/v1/agent/check/pass/service%3Aid" */
    char *register_body;
    uint64_t interval_ms;
    uv_timer_t timer;
    colony_client_call *call;
    int registered, paused, stopped;
    colony__closer closer;                   /* once stopped: the timer and the call in flight */
    colony_registry_client_done_cb first_cb; /* the answer to the first registration */
    void *first_ud;
};

typedef struct registry_op {
    colony_registry_client_done_cb cb;
    void *ud;
} registry_op;

static uint64_t next_random(colony_registry_client *r)
{
    uint64_t z = (r->random_state += 0x9e3779b97f4a7c15ULL); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t colony__registry_backoff(colony_registry_client *r, unsigned failures)
{
    uint64_t base = r->retry_min_ms;
    for (unsigned i = 1; i < failures && base < r->retry_max_ms; i++)
        base *= 2;
    if (base > r->retry_max_ms) base = r->retry_max_ms;
    return base / 2 + next_random(r) % (base / 2 + 1);
}

void colony__registry_duration(char *out, size_t size, uint64_t ms)
{
    if (ms % 1000 == 0)
        snprintf(out, size, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(out, size, "%llums", (unsigned long long)ms);
}

int colony__registry_escape(char *out, size_t size, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '~';
        if (o + (plain ? 1 : 3) >= size) return COLONY_E2BIG;
        if (plain) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (o >= size) return COLONY_E2BIG;
    out[o] = '\0';
    return 0;
}

int colony__registry_status_error(int status)
{
    if (status >= 200 && status < 300) return 0;
    if (status == 400) return COLONY_EINVAL;
    if (status == 401 || status == 403) return -EACCES;
    if (status == 404) return COLONY_ENOENT;
    if (status == 413) return COLONY_E2BIG;
    if (status >= 500) return COLONY_EIO;
    return COLONY_EPROTO;
}

int colony__registry_send(colony_registry_client *r, const char *method, const char *path,
                          const char *body, size_t body_len, uint64_t timeout_ms,
                          colony_client_done_cb cb, void *ud, colony_client_call **out)
{
    if (r->closing) return COLONY_ESHUTDOWN;
    size_t url_len = strlen(r->base_url) + strlen(path) + 1;
    char *url = colony__malloc(url_len);
    if (!url) return COLONY_ENOMEM;
    snprintf(url, url_len, "%s%s", r->base_url, path);
    const char *headers[7];
    size_t h = 0;
    if (r->token) {
        headers[h++] = "X-Consul-Token";
        headers[h++] = r->token;
    }
    if (body) {
        headers[h++] = "Content-Type";
        headers[h++] = "application/json";
    }
    headers[h] = NULL;
    colony_client_request req = {.method = method,
                                 .url = url,
                                 .headers = headers,
                                 .body = body,
                                 .body_len = body_len,
                                 .timeout_ms = timeout_ms ? timeout_ms : r->timeout_ms};
    int rc = colony_client_request_send(r->client, &req, cb, ud, out);
    colony__free(url);
    return rc;
}

/* The closer's done: close was called and every child has been freed. */
static void registry_closed(void *ud)
{
    colony_registry_client *r = ud;
    colony_registry_client_closed_cb cb = r->closed_cb;
    void *cb_ud = r->closed_ud;
    colony__free(r->token);
    colony__free(r->base_url);
    colony__free(r);
    if (cb) cb(cb_ud);
}

void colony_registry_client_options_init(colony_registry_client_options *o)
{
    *o = (colony_registry_client_options){
        .wait_ms = 60000, .retry_min_ms = 250, .retry_max_ms = 30000, .timeout_ms = 5000};
}

colony_registry_client *colony_registry_client_new(uv_loop_t *loop,
                                                   const colony_registry_client_options *opts)
{
    if (!loop || !opts || !opts->url || strncmp(opts->url, "http", 4) != 0) return NULL;
    colony_registry_client *r = colony__calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->loop = loop;
    r->wait_ms = opts->wait_ms ? opts->wait_ms : 60000;
    r->retry_min_ms = opts->retry_min_ms ? opts->retry_min_ms : 250;
    r->retry_max_ms = opts->retry_max_ms ? opts->retry_max_ms : 30000;
    if (r->retry_max_ms < r->retry_min_ms) r->retry_max_ms = r->retry_min_ms;
    r->timeout_ms = opts->timeout_ms ? opts->timeout_ms : 5000;
    r->random_state = uv_hrtime() ^ (uint64_t)(uintptr_t)r;
    r->base_url = colony__strdup(opts->url);
    r->token = opts->token && *opts->token ? colony__strdup(opts->token) : NULL;
    if (!r->base_url || (opts->token && *opts->token && !r->token)) goto fail;
    size_t n = strlen(r->base_url);
    while (n > 0 && r->base_url[n - 1] == '/')
        r->base_url[--n] = '\0';
    colony_client_options copts;
    colony_client_options_init(&copts);
    /* a blocking query is silent for up to wait + wait/16 of server jitter */
    copts.read_timeout_ms = r->wait_ms + r->wait_ms / 16 + 10000;
    copts.total_timeout_ms = 0;
    copts.max_per_origin = 256;
    r->client = colony_client_new(loop, &copts);
    if (!r->client) goto fail;
    colony__closer_init(&r->closer, registry_closed, r);
    colony__closer_hold(&r->closer); /* the client's, released when it has closed */
    return r;
fail:
    colony__free(r->token);
    colony__free(r->base_url);
    colony__free(r);
    return NULL;
}

static void on_client_closed(void *ud)
{
    colony_registry_client *r = ud;
    colony__closer_release(&r->closer);
}

/* ---- heartbeats ---- */

/* The heartbeat's closer is done: its timer is closed and its call ended. */
static void heartbeat_freed(void *ud)
{
    registry_heartbeat *hb = ud;
    colony_registry_client *r = hb->r;
    colony__free(hb->service_id);
    colony__free(hb->check_path);
    colony__free(hb->register_body);
    colony__free(hb);
    colony__closer_release(&r->closer);
}

/* Unlinks hb, cancels its call and closes its timer; freed once both ended. */
static void heartbeat_stop(registry_heartbeat *hb)
{
    registry_heartbeat **p = &hb->r->heartbeats;
    while (*p && *p != hb)
        p = &(*p)->next;
    if (*p) *p = hb->next;
    hb->stopped = 1;
    colony__closer_init(&hb->closer, heartbeat_freed, hb);
    if (hb->call) {
        colony__closer_hold(&hb->closer); /* released by on_heartbeat_done */
        colony_client_call_cancel(hb->call);
    }
    colony__closer_close(&hb->closer, (uv_handle_t *)&hb->timer);
    colony__closer_finish(&hb->closer, hb->r->loop);
}

static void on_heartbeat_tick(uv_timer_t *t);

/* Answers to both kinds of heartbeat call: the registration (while not
 * registered) and the check pass. */
static void on_heartbeat_done(colony_client_call *call, int err, const colony_client_response *res,
                              void *ud)
{
    (void)call;
    registry_heartbeat *hb = ud;
    hb->call = NULL;
    int rc = err ? err : colony__registry_status_error(res->status);
    colony_registry_client_done_cb first_cb = hb->first_cb;
    hb->first_cb = NULL;
    if (hb->stopped) {
        if (first_cb) first_cb(rc, hb->first_ud);
        colony__closer_release(&hb->closer);
        return;
    }
    if (rc == COLONY_ENOENT && hb->registered) {
        COLONY_LOG_WARN("registry forgot the instance; registering again",
                        COLONY_LF_STR("service_id", hb->service_id));
        hb->registered = 0;
        uv_timer_start(&hb->timer, on_heartbeat_tick, 0, hb->interval_ms);
    } else if (rc) {
        COLONY_LOG_DEBUG("heartbeat failed", COLONY_LF_STR("service_id", hb->service_id),
                         COLONY_LF_STR("error", colony_strerror(rc)));
    } else if (!hb->registered) {
        hb->registered = 1; /* registration went through: pass the check right away */
        uv_timer_start(&hb->timer, on_heartbeat_tick, 0, hb->interval_ms);
    }
    if (first_cb) first_cb(rc, hb->first_ud);
}

static void on_heartbeat_tick(uv_timer_t *t)
{
    registry_heartbeat *hb = t->data;
    if (hb->call || hb->paused || hb->stopped) return;
    int rc;
    if (hb->registered)
        rc = colony__registry_send(hb->r, "PUT", hb->check_path, NULL, 0, 0, on_heartbeat_done, hb,
                                   &hb->call);
    else
        rc = colony__registry_send(hb->r, "PUT", "/v1/agent/service/register", hb->register_body,
                                   strlen(hb->register_body), 0, on_heartbeat_done, hb, &hb->call);
    if (rc) hb->call = NULL;
}

static registry_heartbeat *heartbeat_find(colony_registry_client *r, const char *service_id)
{
    for (registry_heartbeat *hb = r->heartbeats; hb; hb = hb->next)
        if (strcmp(hb->service_id, service_id) == 0) return hb;
    return NULL;
}

static registry_heartbeat *heartbeat_new(colony_registry_client *r, const char *service_id,
                                         const char *body, uint64_t ttl_ms)
{
    char escaped[512], path[600];
    char check_id[300];
    snprintf(check_id, sizeof(check_id), "service:%s", service_id);
    if (colony__registry_escape(escaped, sizeof(escaped), check_id)) return NULL;
    snprintf(path, sizeof(path), "/v1/agent/check/pass/%s", escaped);
    registry_heartbeat *hb = colony__calloc(1, sizeof(*hb));
    if (!hb) return NULL;
    hb->r = r;
    hb->service_id = colony__strdup(service_id);
    hb->check_path = colony__strdup(path);
    hb->register_body = colony__strdup(body);
    hb->interval_ms = ttl_ms / 3 > 50 ? ttl_ms / 3 : 50;
    if (!hb->service_id || !hb->check_path || !hb->register_body) {
        colony__free(hb->service_id);
        colony__free(hb->check_path);
        colony__free(hb->register_body);
        colony__free(hb);
        return NULL;
    }
    uv_timer_init(r->loop, &hb->timer); /* cannot fail: it only links the handle */
    hb->timer.data = hb;
    hb->next = r->heartbeats;
    r->heartbeats = hb;
    colony__closer_hold(&r->closer);
    return hb;
}

/* ---- registration ---- */

static void on_op_done(colony_client_call *call, int err, const colony_client_response *res,
                       void *ud)
{
    (void)call;
    registry_op *op = ud;
    int rc = err ? err : colony__registry_status_error(res->status);
    if (op->cb) op->cb(rc, op->ud);
    colony__free(op);
}

static int send_op(colony_registry_client *r, const char *method, const char *path,
                   const char *body, colony_registry_client_done_cb cb, void *ud)
{
    registry_op *op = colony__calloc(1, sizeof(*op));
    if (!op) return COLONY_ENOMEM;
    op->cb = cb;
    op->ud = ud;
    int rc = colony__registry_send(r, method, path, body, body ? strlen(body) : 0, 0, on_op_done,
                                   op, NULL);
    if (rc) colony__free(op);
    return rc;
}

static int set_duration(json_t *obj, const char *key, uint64_t ms)
{
    char text[32];
    colony__registry_duration(text, sizeof(text), ms);
    return json_object_set_new(obj, key, json_string(text));
}

static json_t *check_json(const colony_registration *reg, const char *id)
{
    if (reg->check == COLONY_CHECK_NONE) return NULL;
    json_t *check = json_object();
    if (!check) return NULL;
    char check_id[300];
    snprintf(check_id, sizeof(check_id), "service:%s", id);
    int rc = json_object_set_new(check, "CheckID", json_string(check_id));
    if (reg->check == COLONY_CHECK_TTL) {
        rc |= set_duration(check, "TTL", reg->ttl_ms);
    } else {
        rc |= json_object_set_new(check, "HTTP", json_string(reg->http_url));
        rc |= set_duration(check, "Interval", reg->interval_ms ? reg->interval_ms : 10000);
        if (reg->check_timeout_ms) rc |= set_duration(check, "Timeout", reg->check_timeout_ms);
    }
    if (reg->deregister_critical_after_ms)
        rc |= set_duration(check, "DeregisterCriticalServiceAfter",
                           reg->deregister_critical_after_ms);
    if (rc) {
        json_decref(check);
        return NULL;
    }
    return check;
}

/* The Consul registration body; NULL on allocation failure. */
static char *registration_body(const colony_registration *reg, const char *id)
{
    json_t *doc = json_object(), *tags = json_array(), *meta = json_object();
    int rc = !doc || !tags || !meta;
    if (!rc) {
        rc |= json_object_set_new(doc, "Name", json_string(reg->name));
        rc |= json_object_set_new(doc, "ID", json_string(id));
        if (reg->address) rc |= json_object_set_new(doc, "Address", json_string(reg->address));
        rc |= json_object_set_new(doc, "Port", json_integer(reg->port));
        for (size_t i = 0; i < reg->ntags; i++)
            rc |= json_array_append_new(tags, json_string(reg->tags[i]));
        for (size_t i = 0; i < reg->nmeta; i++)
            rc |= json_object_set_new(meta, reg->meta[2 * i], json_string(reg->meta[2 * i + 1]));
        rc |= json_object_set(doc, "Tags", tags);
        rc |= json_object_set(doc, "Meta", meta);
        rc |= json_object_set_new(doc, "Weights",
                                  json_pack("{s:I,s:I}", "Passing",
                                            (json_int_t)(reg->weight ? reg->weight : 1), "Warning",
                                            (json_int_t)1));
        if (reg->check != COLONY_CHECK_NONE) {
            json_t *check = check_json(reg, id);
            rc |= !check || json_object_set_new(doc, "Check", check);
        }
    }
    char *text = rc ? NULL : json_dumps(doc, JSON_COMPACT);
    json_decref(tags);
    json_decref(meta);
    json_decref(doc);
    if (!text) return NULL;
    char *copy = colony__strdup(text); /* callers free with colony__free */
    free(text);
    return copy;
}

static int registration_valid(const colony_registration *reg)
{
    if (!reg || !reg->name || !*reg->name || reg->port < 0 || reg->port > 65535) return 0;
    if (reg->id && (!*reg->id || strlen(reg->id) > 256)) return 0;
    if (strlen(reg->name) > 256) return 0;
    for (size_t i = 0; i < reg->ntags; i++)
        if (!reg->tags[i]) return 0;
    for (size_t i = 0; i < 2 * reg->nmeta; i++)
        if (!reg->meta[i]) return 0;
    if (reg->check == COLONY_CHECK_TTL && reg->ttl_ms == 0) return 0;
    if (reg->check == COLONY_CHECK_HTTP && (!reg->http_url || !*reg->http_url)) return 0;
    if (reg->check > COLONY_CHECK_HTTP) return 0;
    return 1;
}

int colony_registry_client_register(colony_registry_client *r, const colony_registration *reg,
                                    colony_registry_client_done_cb cb, void *ud)
{
    if (!r || !registration_valid(reg)) return COLONY_EINVAL;
    if (r->closing) return COLONY_ESHUTDOWN;
    const char *id = reg->id ? reg->id : reg->name;
    char *body = registration_body(reg, id);
    if (!body) return COLONY_ENOMEM;
    registry_heartbeat *hb = NULL;
    if (reg->check == COLONY_CHECK_TTL && reg->heartbeat) {
        registry_heartbeat *old = heartbeat_find(r, id);
        if (old) heartbeat_stop(old);
        hb = heartbeat_new(r, id, body, reg->ttl_ms);
        if (!hb) {
            colony__free(body);
            return COLONY_ENOMEM;
        }
    }
    int rc;
    if (hb) {
        /* the heartbeat sends the registration itself and keeps retrying it */
        hb->first_cb = cb;
        hb->first_ud = ud;
        rc = colony__registry_send(r, "PUT", "/v1/agent/service/register", body, strlen(body), 0,
                                   on_heartbeat_done, hb, &hb->call);
        if (rc) {
            hb->call = NULL;
            hb->first_cb = NULL;
            heartbeat_stop(hb);
        } else {
            uv_timer_start(&hb->timer, on_heartbeat_tick, hb->interval_ms, hb->interval_ms);
        }
    } else {
        rc = send_op(r, "PUT", "/v1/agent/service/register", body, cb, ud);
    }
    colony__free(body);
    return rc;
}

int colony_registry_client_deregister(colony_registry_client *r, const char *service_id,
                                      colony_registry_client_done_cb cb, void *ud)
{
    if (!r || !service_id || !*service_id) return COLONY_EINVAL;
    if (r->closing) return COLONY_ESHUTDOWN;
    registry_heartbeat *hb = heartbeat_find(r, service_id);
    if (hb) heartbeat_stop(hb);
    char escaped[800], path[900];
    if (colony__registry_escape(escaped, sizeof(escaped), service_id)) return COLONY_EINVAL;
    snprintf(path, sizeof(path), "/v1/agent/service/deregister/%s", escaped);
    return send_op(r, "PUT", path, NULL, cb, ud);
}

int colony_registry_client_check_update(colony_registry_client *r, const char *check_id,
                                        colony_check_status status, const char *note,
                                        colony_registry_client_done_cb cb, void *ud)
{
    if (!r || !check_id || !*check_id || status > COLONY_CHECK_CRITICAL) return COLONY_EINVAL;
    if (r->closing) return COLONY_ESHUTDOWN;
    static const char *const verbs[] = {"pass", "warn", "fail"};
    char escaped[800], escaped_note[1600], path[2600];
    if (colony__registry_escape(escaped, sizeof(escaped), check_id)) return COLONY_EINVAL;
    if (note && colony__registry_escape(escaped_note, sizeof(escaped_note), note))
        return COLONY_E2BIG;
    snprintf(path, sizeof(path), "/v1/agent/check/%s/%s%s%s", verbs[status], escaped,
             note ? "?note=" : "", note ? escaped_note : "");
    return send_op(r, "PUT", path, NULL, cb, ud);
}

int colony_registry_client_set_heartbeat(colony_registry_client *r, const char *service_id, int on)
{
    registry_heartbeat *hb = r && service_id ? heartbeat_find(r, service_id) : NULL;
    if (!hb) return COLONY_ENOENT;
    hb->paused = !on;
    return 0;
}

void colony_registry_client_close(colony_registry_client *r, colony_registry_client_closed_cb cb,
                                  void *ud)
{
    if (!r || r->closing) return;
    r->closing = 1;
    r->closed_cb = cb;
    r->closed_ud = ud;
    while (r->heartbeats)
        heartbeat_stop(r->heartbeats);
    colony__discovery_stop_all(r);
    colony_client_close(r->client, on_client_closed, r);
    /* cb runs from a libuv close callback, never before this returns */
    colony__closer_finish(&r->closer, r->loop);
}
