/* Consumer groups: the API the daemon calls (create, SETID, consumers,
 * deliveries, claims, acks, pending lists); each change goes through the
 * journal (journal.c) before memory (group_state.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "broker/store/group.h"
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"

int colony__bgroup_create(colony__bstream *st, const char *name, colony__bid cursor,
                          colony__bgroup **out)
{
    if (colony__map_get(&st->groups, name)) return COLONY_EEXIST;
    if (strlen(name) >= 256) return COLONY_E2BIG;
    colony__bgroup *g = colony__bgroup_new(st, name, cursor);
    if (!g) return COLONY_ENOMEM;
    colony__bstr s = STR(name);
    int rc = colony__bjournal_put(st, BREC_GROUP, cursor, 0, &s, 1);
    if (rc) {
        colony__map_remove(&st->groups, name);
        colony__bgroup_free_one(g);
        return rc;
    }
    colony__bjournal_maybe_compact(st);
    if (out) *out = g;
    return 0;
}

colony__bgroup *colony__bgroup_get(colony__bstream *st, const char *name)
{
    return colony__map_get(&st->groups, name);
}

colony__bgroup *colony__bgroup_next(colony__bstream *st, size_t *pos)
{
    colony__map_slot *sl = colony__map_next(&st->groups, pos);
    return sl ? sl->value : NULL;
}

int colony__bgroup_destroy(colony__bstream *st, const char *name)
{
    colony__bgroup *g = colony__map_get(&st->groups, name);
    if (!g) return COLONY_ENOENT;
    colony__bstr s = STR(name);
    colony__bid zero = {0, 0};
    int rc = colony__bjournal_put(st, BREC_UNGROUP, zero, 0, &s, 1);
    if (rc) return rc;
    colony__map_remove(&st->groups, name);
    colony__bgroup_free_one(g);
    colony__bjournal_maybe_compact(st);
    return 0;
}

int colony__bgroup_setid(colony__bgroup *g, colony__bid cursor)
{
    colony__bstr s = STR(g->name);
    int rc = colony__bjournal_put(g->st, BREC_GROUP, cursor, 0, &s, 1);
    if (rc) return rc;
    g->cursor = cursor;
    colony__bjournal_maybe_compact(g->st);
    return 0;
}

void colony__bgroup_info_get(const colony__bgroup *g, colony__bgroup_info *out)
{
    *out = (colony__bgroup_info){g->name, g->cursor, g->npend, g->consumers.count};
}

int colony__bgroup_consumer_add(colony__bgroup *g, const char *consumer)
{
    if (colony__map_get(&g->consumers, consumer)) return 0;
    if (strlen(consumer) >= 256) return COLONY_E2BIG;
    bconsumer *c = colony__bconsumer_get(g, consumer, 1);
    if (!c) return COLONY_ENOMEM;
    colony__bstr s[2] = {STR(g->name), STR(consumer)};
    colony__bid zero = {0, 0};
    int rc = colony__bjournal_put(g->st, BREC_CONSUMER, zero, 0, s, 2);
    if (rc) {
        colony__bconsumer_drop(g, c);
        return rc;
    }
    colony__bjournal_maybe_compact(g->st);
    return 1;
}

const char *colony__bgroup_consumer_next(const colony__bgroup *g, size_t *pos, size_t *pending)
{
    colony__map_slot *sl = colony__map_next(&g->consumers, pos);
    if (!sl) return NULL;
    bconsumer *c = sl->value;
    if (pending) *pending = c->pending;
    return c->name;
}

long colony__bgroup_consumer_delete(colony__bgroup *g, const char *consumer)
{
    bconsumer *c = colony__map_get(&g->consumers, consumer);
    if (!c) return COLONY_ENOENT;
    colony__bstr s[2] = {STR(g->name), STR(consumer)};
    colony__bid zero = {0, 0};
    int rc = colony__bjournal_put(g->st, BREC_UNCONSUMER, zero, 0, s, 2);
    if (rc) return rc;
    long n = (long)colony__bconsumer_drop(g, c);
    colony__bjournal_maybe_compact(g->st);
    return n;
}

static int pending_set(colony__bgroup *g, const char *consumer, colony__bid id, uint64_t count,
                       uint64_t last_ms, uint64_t due_ms, int deliver)
{
    if (strlen(consumer) >= 256) return COLONY_E2BIG;
    bconsumer *c =
        colony__bconsumer_get(g, consumer, 1); /* a consumer is created by use, as in Redis */
    if (!c || colony__bpend_reserve(g)) return COLONY_ENOMEM;
    colony__bpending p = {id, c->name, count, last_ms, due_ms};
    uint8_t nums[16];
    colony__bstr strs[5];
    colony__bjournal_pending_strs(g, &p, deliver, nums, strs);
    int rc = colony__bjournal_put(g->st, BREC_PENDING, id, last_ms, strs, 5);
    if (rc) return rc;
    colony__bpend_apply(g, c, id, count, last_ms, due_ms, deliver);
    colony__bjournal_maybe_compact(g->st);
    return 0;
}

int colony__bgroup_deliver(colony__bgroup *g, const char *consumer, colony__bid id, uint64_t due_ms)
{
    const colony__bpending *p = colony__bgroup_pending(g, id);
    return pending_set(g, consumer, id, p ? p->count + 1 : 1, colony__bstore_now(g->st->store),
                       due_ms, 1);
}

int colony__bgroup_update(colony__bgroup *g, const char *consumer, colony__bid id, uint64_t count,
                          uint64_t last_ms, uint64_t due_ms)
{
    if (!colony__bgroup_pending(g, id)) return COLONY_ENOENT;
    return pending_set(g, consumer, id, count, last_ms, due_ms, 0);
}

int colony__bgroup_ack(colony__bgroup *g, colony__bid id)
{
    if (!colony__bgroup_pending(g, id)) return 0;
    colony__bstr s = STR(g->name);
    int rc = colony__bjournal_put(g->st, BREC_ACK, id, 0, &s, 1);
    if (rc) return rc;
    colony__bpend_remove(g, id);
    colony__bjournal_maybe_compact(g->st);
    return 1;
}

const colony__bpending *colony__bgroup_pending(const colony__bgroup *g, colony__bid id)
{
    int found;
    size_t i = colony__bpend_find(g, id, &found);
    return found ? &g->pend[i] : NULL;
}

long colony__bgroup_pending_range(const colony__bgroup *g, colony__bid start, colony__bid end,
                                  const char *consumer, size_t count, colony__bpending_cb cb,
                                  void *ud)
{
    int found;
    long given = 0;
    for (size_t i = colony__bpend_find(g, start, &found); i < g->npend; i++) {
        const colony__bpending *p = &g->pend[i];
        if (colony__bid_cmp(p->id, end) > 0 || (count && (size_t)given >= count)) break;
        if (consumer && strcmp(consumer, p->consumer) != 0) continue;
        given++;
        int rc = cb(ud, p);
        if (rc < 0) return rc;
        if (rc > 0) break;
    }
    return given;
}

typedef struct read_new_ctx {
    colony__bgroup *g;
    const char *consumer;
    uint64_t due_ms;
    colony__bentry_cb cb;
    void *ud;
} read_new_ctx;

static int deliver_one(void *ud, const colony__bentry *e)
{
    read_new_ctx *c = ud;
    int rc = colony__bgroup_deliver(c->g, c->consumer, e->id, c->due_ms);
    return rc ? rc : c->cb(c->ud, e);
}

long colony__bgroup_read_new(colony__bgroup *g, const char *consumer, size_t count, uint64_t due_ms,
                             colony__bentry_cb cb, void *ud)
{
    colony__bid from = g->cursor, max = {UINT64_MAX, UINT64_MAX};
    if (from.ms == UINT64_MAX && from.seq == UINT64_MAX) return 0;
    if (from.seq == UINT64_MAX)
        from = (colony__bid){from.ms + 1, 0};
    else
        from.seq++;
    read_new_ctx c = {g, consumer, due_ms, cb, ud};
    return colony__bstream_range(g->st, from, max, 0, count, deliver_one, &c);
}
