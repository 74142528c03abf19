/* Per-origin connection pools: at most max_per_origin connections (connecting
 * + busy + idle) per origin, a FIFO queue of calls waiting for one, and idle
 * connections reused most-recently-used first (a warm connection is likelier
 * to be alive, and the cold ones age out by the idle timeout). */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "http/client_internal.h"

colony__client_origin *colony__client_origin_find(colony_client *c, const char *key)
{
    for (colony__client_link *l = c->origins.next; l != &c->origins; l = l->next) {
        colony__client_origin *o = COLONY__CONTAINER(l, colony__client_origin, link);
        if (strcmp(o->key, key) == 0) return o;
    }
    return NULL;
}

/* Finds or creates the origin for a parsed URL. IP literals are converted once
 * here so their connections skip name resolution. */
colony__client_origin *colony__client_origin_get(colony_client *c, const colony__client_url *u,
                                                 const char *key)
{
    colony__client_origin *o = colony__client_origin_find(c, key);
    if (o) return o;
    o = colony__calloc(1, sizeof(*o));
    if (!o) return NULL;
    o->client = c;
    snprintf(o->key, sizeof(o->key), "%s", key);
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
    colony__client_list_init(&o->conns);
    colony__client_list_init(&o->idle);
    colony__client_list_init(&o->queue);
    colony__client_list_push_front(&c->origins, &o->link);
    return o;
}

void colony__client_origin_free_all(colony_client *c)
{
    while (!colony__client_list_empty(&c->origins)) {
        colony__client_origin *o = COLONY__CONTAINER(c->origins.next, colony__client_origin, link);
        colony__client_list_remove(&o->link);
        colony__free(o);
    }
}

int colony__client_pool_has_room(const colony__client_origin *o)
{
    return o->n_idle > 0 || o->n_conns < o->client->opts.max_per_origin;
}

static colony_client_call *dequeue(colony__client_origin *o)
{
    colony_client_call *call = COLONY__CONTAINER(o->queue.next, colony_client_call, link);
    colony__client_list_remove(&call->link);
    o->n_queued--;
    return call;
}

static colony__client_conn *pop_idle(colony__client_origin *o)
{
    colony__client_conn *conn = COLONY__CONTAINER(o->idle.next, colony__client_conn, idle_link);
    colony__client_list_remove(&conn->idle_link);
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
    while (!colony__client_list_empty(&o->queue) && !c->closing) {
        colony_client_call *head = COLONY__CONTAINER(o->queue.next, colony_client_call, link);
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
                COLONY__CONTAINER(o->idle.prev, colony__client_conn, idle_link);
            colony__client_conn_close(oldest);
        } else {
            break;
        }
    }
    c->api_depth--;
    o->dispatching = 0;
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
    colony__client_list_push_front(&o->idle, &conn->idle_link);
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
    colony__client_list_push_front(&o->queue, &call->link);
    o->n_queued++;
}
