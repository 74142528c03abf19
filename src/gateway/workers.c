/* The proxy's workers (proxy.h, docs/gateway.md "Threads"). The proxy
 * server runs N loops on N threads; the main loop's gw_proxy is worker 0 and
 * owns what they share. Another worker's gw_proxy is made on its own thread
 * at its first request (its client's handles must be made on its loop), and
 * closed by that thread once shutdown began and its last call is over, so
 * the server's worker loops end and their threads join.
 *
 * A runtime is published by the main loop under the main's lock with a new
 * generation; a worker compares generations per request (one atomic load)
 * and takes a reference to the new one when it changed, or when the main
 * loop wakes it (a reload), so an idle worker lets go of the old runtime
 * too. Whichever thread drops a runtime's last reference, it is freed on the
 * main loop (its registry watches and probes live there): the reaper. */
#include <stdatomic.h>
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "gateway/proxy.h"

/* ---- the reaper: runtimes freed on the main loop ---- */

static void reap_pending(gw_proxy *m)
{
    uv_mutex_lock(&m->reap_lock);
    gw_runtime *list = m->reap_list;
    m->reap_list = NULL;
    uv_mutex_unlock(&m->reap_lock);
    while (list) {
        gw_runtime *rt = list;
        list = rt->reap_next;
        colony__gw_runtime_free(rt);
    }
}

static void reaper_cb(uv_async_t *a)
{
    reap_pending(a->data);
}

static void reap(gw_runtime *rt, void *ud)
{
    gw_proxy *m = ud;
    if (colony__gw_worker == 0) { /* the main loop's thread */
        colony__gw_runtime_free(rt);
        return;
    }
    uv_mutex_lock(&m->reap_lock);
    rt->reap_next = m->reap_list;
    m->reap_list = rt;
    uv_mutex_unlock(&m->reap_lock);
    uv_async_send(&m->reaper);
}

static void wake_cb(uv_async_t *a);

int colony__gw_workers_init(gw_proxy *m)
{
    if (uv_mutex_init(&m->lock) != 0) return COLONY_ENOMEM;
    if (uv_mutex_init(&m->reap_lock) != 0)
        return COLONY_ENOMEM; /* not expected: glibc's mutexes need no memory */
    if (uv_mutex_init(&m->mail_lock) != 0) return COLONY_ENOMEM;
    m->mail_ready = 1;
    colony__list_init(&m->woken);
    if (uv_async_init(m->loop, &m->reaper, reaper_cb) != 0) return COLONY_ENOMEM;
    m->reaper.data = m;
    m->reaper_open = 1;
    uv_unref((uv_handle_t *)&m->reaper);
    if (uv_async_init(m->loop, &m->wake, wake_cb) != 0) {
        m->reaper_open = 0;
        uv_close((uv_handle_t *)&m->reaper, NULL);
        return COLONY_ENOMEM;
    }
    m->wake.data = m;
    m->wake_open = 1;
    uv_unref((uv_handle_t *)&m->wake);
    atomic_store(&m->workers[0], m);
    m->nworkers = 1;
    return 0;
}

void colony__gw_workers_adopt(gw_proxy *m, gw_runtime *rt)
{
    rt->reap = reap;
    rt->reap_ud = m;
}

void colony__gw_workers_publish(gw_proxy *m, gw_runtime *rt)
{
    uv_mutex_lock(&m->lock);
    m->current = rt;
    atomic_fetch_add_explicit(&m->generation, 1, memory_order_release);
    for (unsigned i = 1; i < m->nworkers; i++) {
        gw_proxy *w = atomic_load_explicit(&m->workers[i], memory_order_acquire);
        if (w && w->wake_open) uv_async_send(&w->wake);
    }
    uv_mutex_unlock(&m->lock);
}

/* ---- a worker ---- */

/* Takes the main's runtime when it changed (the worker's thread). */
static void refresh(gw_proxy *w)
{
    gw_proxy *m = w->main;
    uv_mutex_lock(&m->lock);
    gw_runtime *rt = m->current ? colony__gw_runtime_ref(m->current) : NULL;
    uint64_t generation = atomic_load_explicit(&m->generation, memory_order_relaxed);
    uv_mutex_unlock(&m->lock);
    gw_runtime *old = w->current;
    w->current = rt;
    atomic_store_explicit(&w->generation, generation, memory_order_relaxed);
    if (rt) colony__gw_ratelimit_use_redis(&w->rl, rt->cfg->ratelimit_redis);
    colony__gw_runtime_unref(old);
}

static void worker_closed(uv_handle_t *h)
{
    (void)h; /* the proxy is freed by the main loop once the threads joined */
}

static void worker_client_closed(void *ud)
{
    gw_proxy *w = ud, *m = w->main;
    uv_mutex_lock(&m->lock); /* publish and stop send to open wakes only */
    w->wake_open = 0;
    uv_mutex_unlock(&m->lock);
    uv_close((uv_handle_t *)&w->wake, worker_closed);
}

static void worker_limits_closed(void *ud)
{
    gw_proxy *w = ud;
    colony__gw_cache_free(&w->cache); /* its coalescing map: nothing waits now */
    colony_client *c = w->client;
    w->client = NULL;
    colony_client_close(c, worker_client_closed, w);
}

void colony__gw_worker_maybe_close(gw_proxy *w)
{
    if (w->closing || !atomic_load(&w->main->stopping) || w->stats.in_flight || w->ws.open)
        return; /* called again when the last call or tunnel ends */
    w->closing = 1;
    gw_runtime *rt = w->current;
    w->current = NULL;
    colony__gw_runtime_unref(rt);
    colony__gw_ratelimit_close(&w->rl, worker_limits_closed, w);
}

static void tunnels_idle(void *ud)
{
    colony__gw_worker_maybe_close(ud);
}

static void wake_cb(uv_async_t *a)
{
    gw_proxy *w = a->data;
    colony__gw_worker = w->index;
    colony__gw_proxy_wake_waiters(w);
    if (w == w->main) return; /* the main loop's wake carries only woken waiters */
    if (atomic_load(&w->main->stopping))
        colony__gw_worker_maybe_close(w);
    else if (!w->closing)
        refresh(w);
}

/* Sets up w for loop (this thread's) from m. 0 or an error (w is then
 * torn down here, nothing left on the loop). */
static int worker_init(gw_proxy *w, gw_proxy *m, uv_loop_t *loop, unsigned index)
{
    memset(w, 0, sizeof(*w));
    (void)colony__gw_cache_init(&w->cache, 0); /* unused: the main's is shared */
    w->loop = loop;
    w->main = m;
    w->index = index;
    w->tracer = m->tracer;
    w->access_log = m->access_log;
    w->random_state = uv_hrtime() ^ ((uint64_t)index << 32);
    w->m_requests = m->m_requests;
    w->m_duration = m->m_duration;
    w->m_retries = m->m_retries;
    w->m_cut = m->m_cut;
    w->max_body = m->max_body;
    w->ws.access_log = m->ws.access_log;
    w->ws.m_open = m->ws.m_open;
    w->ws.m_bytes = m->ws.m_bytes;
    w->ws.m_total = m->ws.m_total;
    w->ws.on_idle = tunnels_idle;
    w->ws.idle_ud = w;
    colony__list_init(&w->woken);
    if (uv_mutex_init(&w->mail_lock) != 0) return COLONY_ENOMEM;
    w->mail_ready = 1;
    colony_client_options co;
    colony_client_options_init(&co);
    if (!(w->client = colony_client_new(loop, &co))) return COLONY_ENOMEM;
    int rc = colony__gw_ratelimit_init_worker(&w->rl, loop, &m->rl);
    if (!rc) rc = uv_async_init(loop, &w->wake, wake_cb);
    if (rc) {
        colony__gw_ratelimit_close(&w->rl, NULL, NULL);
        colony_client_close(w->client, NULL, NULL);
        return COLONY_ENOMEM;
    }
    w->wake.data = w;
    w->wake_open = 1; /* referenced: the worker's loop (and thread) ends only after it closed */
    return 0;
}

/* The first request on loop: its worker's proxy, or NULL (shutting down, or
 * no memory: the request is refused, the worker stays without one). */
static gw_proxy *worker_new(gw_proxy *m, uv_loop_t *loop)
{
    gw_proxy *w = colony__calloc(1, sizeof(*w));
    if (!w) return NULL;
    uv_mutex_lock(&m->lock);
    unsigned index = m->nworkers;
    int ok = !atomic_load(&m->stopping) && index < GW_MAX_WORKERS;
    if (ok) m->nworkers++; /* the slot is this thread's */
    uv_mutex_unlock(&m->lock);
    if (!ok) {
        colony__free(w);
        return NULL;
    }
    colony__gw_worker = index;
    int rc = worker_init(w, m, loop, index);
    if (rc) w->closing = 1; /* refuses requests; nothing of it is open */
    /* Published even when stopping began meanwhile: the main loop frees it at close. */
    atomic_store_explicit(&m->workers[index], w, memory_order_release);
    if (rc) return NULL;
    refresh(w);
    colony__gw_worker_maybe_close(w); /* stopping already: closes at once */
    return w->closing ? NULL : w;
}

gw_proxy *colony__gw_worker_of(gw_proxy *m, colony_request *req)
{
    uv_loop_t *loop = colony_request_loop(req);
    if (loop == m->loop) {
        colony__gw_worker = 0;
        return m;
    }
    for (unsigned i = 1; i < GW_MAX_WORKERS; i++) {
        gw_proxy *w = atomic_load_explicit(&m->workers[i], memory_order_acquire);
        if (!w || w->loop != loop) continue; /* a slot being filled: another loop's */
        colony__gw_worker = i;
        if (w->closing) return NULL;
        if (atomic_load_explicit(&m->generation, memory_order_acquire) !=
            atomic_load_explicit(&w->generation, memory_order_relaxed))
            refresh(w);
        return w;
    }
    return worker_new(m, loop);
}

void colony__gw_proxy_stop_workers(gw_proxy *m)
{
    uv_mutex_lock(&m->lock);
    atomic_store(&m->stopping, 1);
    for (unsigned i = 1; i < m->nworkers; i++) {
        gw_proxy *w = atomic_load_explicit(&m->workers[i], memory_order_acquire);
        if (w && w->wake_open) uv_async_send(&w->wake);
    }
    uv_mutex_unlock(&m->lock);
}

void colony__gw_proxy_totals(gw_proxy *m, gw_proxy_totals *t)
{
    memset(t, 0, sizeof(*t));
    uv_mutex_lock(&m->lock);
    unsigned n = m->nworkers;
    uv_mutex_unlock(&m->lock);
    t->workers = n;
    for (unsigned i = 0; i < n; i++) {
        gw_proxy *w = atomic_load_explicit(&m->workers[i], memory_order_acquire);
        if (!w) continue;
        const gw_proxy_stats *s = &w->stats;
        t->requests += s->requests;
        t->in_flight += s->in_flight;
        t->not_found += s->not_found;
        t->bad_request += s->bad_request;
        t->no_instance += s->no_instance;
        t->upstream_failed += s->upstream_failed;
        t->timed_out += s->timed_out;
        t->retries += s->retries;
        t->circuit_open += s->circuit_open;
        t->retries_over_budget += s->retries_over_budget;
        t->ws_open += w->ws.open;
        t->ws_total += w->ws.total;
        t->per_worker[i] = s->requests;
        t->generation[i] = i == 0 ? (m->current ? m->current->generation : 0)
                                  : atomic_load_explicit(&w->generation, memory_order_relaxed);
    }
}

/* ---- close (main loop, after the server's threads joined) ---- */

void colony__gw_workers_free(gw_proxy *m, void (*cb)(void *ud), void *ud)
{
    for (unsigned i = 1; i < m->nworkers; i++) {
        gw_proxy *w = atomic_load(&m->workers[i]);
        atomic_store(&m->workers[i], NULL);
        if (!w) continue;
        if (w->mail_ready) uv_mutex_destroy(&w->mail_lock);
        colony__free(w);
    }
    m->nworkers = 1;
    m->close_cb = cb;
    m->close_ud = ud;
}

static void main_wake_closed(uv_handle_t *h)
{
    gw_proxy *m = h->data;
    uv_mutex_destroy(&m->lock);
    uv_mutex_destroy(&m->mail_lock);
    uv_mutex_destroy(&m->reap_lock);
    if (m->close_cb) m->close_cb(m->close_ud);
}

static void reaper_closed(uv_handle_t *h)
{
    gw_proxy *m = h->data;
    colony__gw_proxy_wake_waiters(m); /* waiters the cache's free woke */
    m->wake_open = 0;
    uv_close((uv_handle_t *)&m->wake, main_wake_closed);
}

void colony__gw_workers_closed(void *ud)
{
    gw_proxy *m = ud;
    reap_pending(m);
    m->reaper_open = 0;
    uv_close((uv_handle_t *)&m->reaper, reaper_closed);
}
