/* Total timeouts of client calls: one timer per client for all of them. A
 * call with a deadline sits in client->deadlines; the timer is armed for the
 * earliest deadline it knows of and, when it fires, fails the calls that are
 * due and re-arms for the earliest left. Calls are usually made with the same
 * timeout, so a new call's deadline is rarely earlier than the armed one and
 * costs no timer operation: per request, a list push and a list remove. */
#include "colony/error.h"
#include "http/client_internal.h"

static void on_deadline_timer(uv_timer_t *t);

static void arm(colony_client *c, uint64_t due)
{
    uint64_t now = uv_now(c->loop);
    uv_timer_start(&c->deadline_timer, on_deadline_timer, due > now ? due - now : 0, 0);
}

void colony__client_deadline_set(colony_client_call *call, uint64_t ms)
{
    colony_client *c = call->client;
    uint64_t now = uv_now(c->loop);
    call->deadline_at = now + ms;
    call->has_deadline = 1;
    colony__list_push_back(&c->deadlines, &call->deadline_link);
    if (!uv_is_active((uv_handle_t *)&c->deadline_timer) ||
        uv_timer_get_due_in(&c->deadline_timer) > ms)
        uv_timer_start(&c->deadline_timer, on_deadline_timer, ms, 0);
}

void colony__client_deadline_clear(colony_client_call *call)
{
    if (!call->has_deadline) return;
    call->has_deadline = 0;
    colony__list_remove(&call->deadline_link);
    /* Nothing left to time: an armed timer would keep the loop alive. */
    if (colony__list_empty(&call->client->deadlines)) uv_timer_stop(&call->client->deadline_timer);
}

static void on_deadline_timer(uv_timer_t *t)
{
    colony_client *c = t->data;
    uint64_t now = uv_now(c->loop);
    colony__list due;
    colony__list_init(&due);
    for (colony__list *l = c->deadlines.next; l != &c->deadlines;) {
        colony_client_call *call = COLONY__CONTAINER_OF(l, colony_client_call, deadline_link);
        l = l->next;
        if (call->deadline_at > now) continue;
        colony__list_remove(&call->deadline_link);
        colony__list_push_back(&due, &call->deadline_link);
    }
    /* Failing a call runs its done_cb, which may end or start other calls:
     * take them one at a time from the list of those due. */
    while (!colony__list_empty(&due)) {
        colony_client_call *call =
            COLONY__CONTAINER_OF(due.next, colony_client_call, deadline_link);
        colony__list_remove(&call->deadline_link);
        call->has_deadline = 0;
        colony__client_call_fail(call, COLONY_ETIMEDOUT);
    }
    if (c->closing || colony__list_empty(&c->deadlines)) return;
    uint64_t earliest = UINT64_MAX;
    for (colony__list *l = c->deadlines.next; l != &c->deadlines; l = l->next) {
        colony_client_call *call = COLONY__CONTAINER_OF(l, colony_client_call, deadline_link);
        if (call->deadline_at < earliest) earliest = call->deadline_at;
    }
    /* A done_cb above may have armed the timer for a call of its own. */
    if (!uv_is_active((uv_handle_t *)t) || now + uv_timer_get_due_in(t) > earliest)
        arm(c, earliest);
}
