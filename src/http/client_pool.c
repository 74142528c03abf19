/* Origins and their connection pools. Origins are indexed by key in a
 * colony__map, at most max_origins of them; one that has had no connection
 * and no call for idle_timeout_ms is freed, and when the client is full the
 * least recently used origin not in use makes room. Per origin at most
 * max_per_origin connections (connecting + busy + idle), a FIFO queue of calls
 * waiting for one, and idle connections reused most-recently-used first (a
 * warm connection is likelier to be alive, and the cold ones age out by the
 * idle timeout). */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "http/client_internal.h"

colony__client_origin *colony__client_origin_find(colony_client *c, const char *key)
{
    return colony__map_get(&c->origin_map, key);
}

static int origin_is_empty(const colony__client_origin *o)
{
    return o->n_conns == 0 && o->n_queued == 0 && !o->dispatching;
}

/* Unlinks o from the client (map, lists, count) and frees it. o must have no
 * conn and no call. */
static void origin_free(colony__client_origin *o)
{
    colony_client *c = o->client;
    colony__map_remove(&c->origin_map, o->key);
    colony__list_remove(&o->lru_link);
    colony__list_remove(&o->empty_link);
    c->n_origins--;
    colony__client_tls_origin_free(o);
    colony__free(o);
}

static void on_origin_timer(uv_timer_t *t);

/* Arms the timer for the oldest empty origin's deadline. The timer does not
 * keep the loop alive: a program whose work is done exits. */
static void origin_timer_arm(colony_client *c)
{
    colony__list *first = colony__list_first(&c->empty_origins);
    if (!first || c->closing) {
        uv_timer_stop(&c->origin_timer);
        return;
    }
    colony__client_origin *o = COLONY__CONTAINER_OF(first, colony__client_origin, empty_link);
    uint64_t waited = uv_now(c->loop) - o->empty_since, timeout = c->opts.idle_timeout_ms;
    uv_timer_start(&c->origin_timer, on_origin_timer, waited < timeout ? timeout - waited : 0, 0);
    uv_unref((uv_handle_t *)&c->origin_timer);
}

/* Frees the origins that have been empty for idle_timeout_ms. */
static void on_origin_timer(uv_timer_t *t)
{
    colony_client *c = t->data;
    uint64_t now = uv_now(c->loop);
    colony__list *first;
    while ((first = colony__list_first(&c->empty_origins))) {
        colony__client_origin *o = COLONY__CONTAINER_OF(first, colony__client_origin, empty_link);
        if (now - o->empty_since < c->opts.idle_timeout_ms) break;
        origin_free(o);
        c->origins_expired++;
    }
    origin_timer_arm(c);
}

void colony__client_origin_check_empty(colony__client_origin *o)
{
    colony_client *c = o->client;
    if (c->closing || !origin_is_empty(o) || colony__list_linked(&o->empty_link)) return;
    o->empty_since = uv_now(c->loop);
    colony__list_push_back(&c->empty_origins, &o->empty_link);
    if (!uv_is_active((uv_handle_t *)&c->origin_timer)) origin_timer_arm(c);
}

/* Makes room for one more origin: frees the least recently used origin that
 * has no connection in use and no call queued (its idle connections are
 * closed). 0, or COLONY_EBUSY when every origin is in use. */
static int origin_evict(colony_client *c)
{
    for (colony__list *l = c->origins.prev; l != &c->origins; l = l->prev) {
        colony__client_origin *o = COLONY__CONTAINER_OF(l, colony__client_origin, lru_link);
        if (o->n_conns != o->n_idle || o->n_queued || o->dispatching) continue;
        while (o->n_idle) /* closing leaves the origin's lists at once */
            colony__client_conn_close(
                COLONY__CONTAINER_OF(o->idle.next, colony__client_conn, idle_link));
        origin_free(o);
        c->origins_evicted++;
        origin_timer_arm(c);
        return 0;
    }
    c->origins_refused++;
    return COLONY_EBUSY;
}

/* Finds or creates the origin for a parsed URL. IP literals are converted once
 * here so their connections skip name resolution. */
int colony__client_origin_get(colony_client *c, const colony__client_url *u, const char *key,
                              colony__client_origin **out)
{
    colony__client_origin *o = colony__client_origin_find(c, key);
    if (o) {
        colony__list_remove(&o->lru_link);
        colony__list_push_front(&c->origins, &o->lru_link);
        *out = o;
        return 0;
    }
    if (c->n_origins >= c->opts.max_origins) {
        int rc = origin_evict(c);
        if (rc) return rc;
    }
    o = colony__calloc(1, sizeof(*o));
    if (!o) return COLONY_ENOMEM;
    o->client = c;
    snprintf(o->key, sizeof(o->key), "%s", key);
    if (colony__map_put(&c->origin_map, o->key, o) != 0) {
        colony__free(o);
        return COLONY_ENOMEM;
    }
    o->url = *u;
    o->url.target = NULL;
    o->url.target_len = 0;
    if (colony__client_url_host_header(u, o->host_header, sizeof(o->host_header)) < 0)
        o->host_header[0] = '\0';
    if (!u->is_unix) {
        if (uv_ip4_addr(u->host, u->port, (struct sockaddr_in *)&o->numeric_addr) == 0 ||
            uv_ip6_addr(u->host, u->port, (struct sockaddr_in6 *)&o->numeric_addr) == 0)
            o->has_numeric_addr = 1;
    }
    colony__list_init(&o->conns);
    colony__list_init(&o->idle);
    colony__list_init(&o->queue);
    colony__list_init(&o->empty_link);
    colony__list_push_front(&c->origins, &o->lru_link);
    c->n_origins++;
    *out = o;
    return 0;
}

/* At the end of the client: nothing is open any more. */
void colony__client_origin_free_all(colony_client *c)
{
    colony__list *first;
    while ((first = colony__list_first(&c->origins)))
        origin_free(COLONY__CONTAINER_OF(first, colony__client_origin, lru_link));
    colony__map_free(&c->origin_map);
}

int colony__client_pool_has_room(const colony__client_origin *o)
{
    return o->n_idle > 0 || o->n_conns < o->client->opts.max_per_origin;
}

static colony_client_call *dequeue(colony__client_origin *o)
{
    colony_client_call *call = COLONY__CONTAINER_OF(o->queue.next, colony_client_call, link);
    colony__list_remove(&call->link);
    o->n_queued--;
    return call;
}

static colony__client_conn *pop_idle(colony__client_origin *o)
{
    colony__client_conn *conn = COLONY__CONTAINER_OF(o->idle.next, colony__client_conn, idle_link);
    colony__list_remove(&conn->idle_link);
    o->n_idle--;
    return conn;
}

/* Completions triggered while dispatching are deferred (api_depth), so user
 * callbacks never run in the middle of this loop. Re-entry from conn_close
 * (which dispatches to use the freed slot) is a no-op: the loop re-checks. */
void colony__client_pool_dispatch(colony__client_origin *o)
{
    colony_client *c = o->client;
    if (c->closing || o->dispatching) return;
    o->dispatching = 1;
    c->api_depth++;
    while (!colony__list_empty(&o->queue) && !c->closing) {
        colony_client_call *head = COLONY__CONTAINER_OF(o->queue.next, colony_client_call, link);
        if (!head->fresh_only && o->n_idle) {
            colony__client_conn *conn = pop_idle(o);
            colony__client_conn_start(conn, dequeue(o));
        } else if (o->n_conns < c->opts.max_per_origin) {
            colony_client_call *call = dequeue(o);
            int rc = colony__client_conn_open(o, call);
            if (rc) colony__client_call_complete(call, rc, NULL);
        } else if (head->fresh_only && o->n_idle) {
            /* make room for the retry's new connection: drop the oldest idle one */
            colony__client_conn *oldest =
                COLONY__CONTAINER_OF(o->idle.prev, colony__client_conn, idle_link);
            colony__client_conn_close(oldest);
        } else {
            break;
        }
    }
    c->api_depth--;
    o->dispatching = 0;
    colony__client_origin_check_empty(o);
}

void colony__client_pool_release(colony__client_conn *conn, int reusable)
{
    colony__client_origin *o = conn->origin;
    colony_client *c = o->client;
    if (!reusable || c->closing || c->opts.idle_timeout_ms == 0) {
        colony__client_conn_close(conn);
        return;
    }
    conn->state = COLONY__CONN_IDLE;
    colony__list_push_front(&o->idle, &conn->idle_link);
    o->n_idle++;
    colony__client_conn_idle_timer_start(conn);
    colony__client_pool_dispatch(o);
}

void colony__client_pool_requeue_for_retry(colony_client_call *call)
{
    colony__client_origin *o = call->origin;
    call->retried = 1;
    call->fresh_only = 1;
    call->state = COLONY__CALL_QUEUED;
    colony__list_push_front(&o->queue, &call->link);
    o->n_queued++;
}
