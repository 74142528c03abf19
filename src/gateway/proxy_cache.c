/* The response cache's glue for proxied requests (proxy_call.h): look up,
 * answer a hit, coalesce misses of one key across workers, and store an
 * upstream's answer while it streams downstream (cache.c holds the entries). */
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "gateway/proxy_call.h"

/* This miss is done leading its key: the misses waiting for it look again. */
void colony__gw_call_cache_release(gw_proxy_call *pc)
{
    if (!pc->cache_lead) return;
    pc->cache_lead = 0;
    /* the shard it joined: a reload may have changed the key's shard since */
    colony__gw_cache_release(pc->cache_shard, pc->cache_key); /* wakes by cache_wake_post */
}

static gw_cache_request cache_request(gw_proxy_call *pc)
{
    colony_request *req = pc->req;
    const char *query = colony_request_query(req);
    const char *target =
        *query ? colony_arena_sprintf(colony_request_arena(req), "%s?%s", pc->path, query)
               : pc->path;
    return (gw_cache_request){.method = colony_request_method(req),
                              .route = pc->route->match.name,
                              .host = colony_request_header(req, "Host"),
                              .target = target ? target : pc->path,
                              .header = colony__gw_request_header,
                              .ud = req,
                              .credentials = pc->route->access && (pc->route->access->napi_keys ||
                                                                   pc->route->access->jwt)};
}

/* A cached route's answer from the upstream: say so, and start storing it
 * when it may be (gw_cache_fill_begin decides). */
int colony__gw_call_cache_head(gw_proxy_call *pc, const colony_client_response *res)
{
    gw_proxy *m = pc->proxy->main;
    if (pc->cache_key && !pc->fill && !m->cache_closed) {
        gw_cache_request cr = cache_request(pc); /* no lock: a fill is the request's own */
        pc->fill = colony__gw_cache_fill_begin(&m->cache, pc->route->cache, pc->cache_key, &cr, res,
                                               uv_now(pc->proxy->loop));
    }
    if (!pc->fill)
        colony__gw_call_cache_release(pc); /* nothing to wait for: the waiters go upstream */
    return colony_response_header(pc->req, "X-Cache-Status",
                                  colony__gw_cache_status_name(pc->cache_status));
}

static void cache_wake_post(gw_cache_waiter *w);

/* Answers from the route's cache when it holds a fresh answer, else goes
 * upstream (and notes where to store what comes back). A miss while another
 * request of the same key is upstream waits for it (coalescing), once. */
void colony__gw_call_forward_or_answer(gw_proxy_call *pc)
{
    gw_proxy *p = pc->proxy, *m = p->main;
    if (!pc->route->cache || m->cache_closed) {
        colony__gw_call_start_attempt(pc);
        return;
    }
    if (pc->ws || pc->upload) { /* an upgrade or a request with a body: never a hit */
        pc->cache_status = GW_CACHE_BYPASS;
        colony__gw_cache_count(&m->cache, pc->route->match.name, pc->cache_status);
        colony__gw_call_start_attempt(pc);
        return;
    }
    gw_cache_request cr = cache_request(pc);
    const gw_cache_entry *hit;
    gw_cache_shard *shard; /* the key's, locked when a key or a hit came back */
    int store;
    uint64_t now = uv_now(p->loop);
    colony__free(pc->cache_key); /* a waiter looks again */
    /* The entries are shared by the workers: a hit is answered under its
     * shard's lock (its bytes are copied into the response), so no worker
     * evicts it meanwhile; a miss joins its key's leader under the same lock. */
    pc->cache_status = colony__gw_cache_lookup(&m->cache, pc->route->cache, &cr, now,
                                               &pc->cache_key, &hit, &store, &shard);
    if (!hit && pc->cache_key && pc->cache_status != GW_CACHE_BYPASS && !pc->cache_woken) {
        /* Misses coalesce across workers: the leader may run on another
         * loop, so the waiter is woken through its own worker's mailbox. */
        pc->waiter.wake = cache_wake_post;
        int joined = colony__gw_cache_join(shard, pc->cache_key, &pc->waiter);
        pc->cache_shard = shard;
        if (joined == 1) {
            colony__gw_cache_unlock(shard);
            pc->cache_waiting = 1;
            pc->refs++;
            return;
        }
        pc->cache_lead = joined == 0;
    }
    colony__gw_cache_count(&m->cache, pc->route->match.name, pc->cache_status);
    if (!hit) {
        colony__gw_cache_unlock(shard);
        colony__gw_call_start_attempt(pc);
        return;
    }
    pc->status = hit->status;
    pc->started = 1;
    pc->bytes_out = strcmp(cr.method, "HEAD") == 0 ? 0 : hit->body_len;
    if (pc->limits.outcome) colony__gw_ratelimit_headers(pc->req, &pc->limits);
    int rc = colony__gw_cache_respond(pc->req, hit, pc->route, now);
    colony__gw_cache_unlock(shard);
    if (rc != 0) colony_response_abort(pc->req);
}

/* Called by the leader's thread (under its shard's lock): the waiter goes to
 * its worker's mailbox, and that loop wakes it (colony__gw_proxy_wake_waiters). */
static void cache_wake_post(gw_cache_waiter *w)
{
    gw_proxy *p = COLONY__CONTAINER_OF(w, gw_proxy_call, waiter)->proxy;
    uv_mutex_lock(&p->mail_lock);
    colony__list_push_back(&p->woken, &w->link);
    uv_mutex_unlock(&p->mail_lock);
    uv_async_send(&p->wake);
}

static void cache_woken(gw_cache_waiter *w)
{
    gw_proxy_call *pc = COLONY__CONTAINER_OF(w, gw_proxy_call, waiter);
    pc->cache_waiting = 0;
    pc->cache_woken = 1;
    if (pc->client_gone)
        colony_respond_error(pc->req, 499, "client_closed", "the client left");
    else
        colony__gw_call_forward_or_answer(pc);
    colony__gw_call_unref(pc);
}

void colony__gw_proxy_wake_waiters(gw_proxy *p)
{
    colony__list list;
    colony__list_init(&list);
    uv_mutex_lock(&p->mail_lock);
    for (colony__list *n; (n = colony__list_pop_front(&p->woken));)
        colony__list_push_back(&list, n);
    uv_mutex_unlock(&p->mail_lock);
    for (colony__list *n; (n = colony__list_pop_front(&list));)
        cache_woken(COLONY__CONTAINER_OF(n, gw_cache_waiter, link));
}
