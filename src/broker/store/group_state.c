/* Groups in memory: consumers in a map, pending entries in a sorted array
 * per group (deliveries append at its end; an ack moves the tail down). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "broker/store/group.h"
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"

void colony__bgroup_free_one(colony__bgroup *g)
{
    size_t pos = 0;
    colony__map_slot *sl;
    while ((sl = colony__map_next(&g->consumers, &pos))) {
        bconsumer *c = sl->value;
        colony__free(c->name);
        colony__free(c);
    }
    colony__map_free(&g->consumers);
    colony__free(g->pend);
    colony__free(g->name);
    colony__free(g);
}

void colony__bgroups_free(colony__bstream *st)
{
    size_t pos = 0;
    colony__map_slot *sl;
    while ((sl = colony__map_next(&st->groups, &pos)))
        colony__bgroup_free_one(sl->value);
    colony__map_free(&st->groups);
    colony__bfile_unref(st->journal);
    st->journal = NULL;
}

/* ---- in memory ---- */

size_t colony__bpend_find(const colony__bgroup *g, colony__bid id, int *found)
{
    size_t lo = 0, hi = g->npend;
    if (hi && colony__bid_cmp(g->pend[hi - 1].id, id) < 0) lo = hi; /* the usual append */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (colony__bid_cmp(g->pend[mid].id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < g->npend && colony__bid_cmp(g->pend[lo].id, id) == 0;
    return lo;
}

int colony__bpend_reserve(colony__bgroup *g)
{
    if (g->npend < g->cappend) return 0;
    size_t cap = g->cappend ? g->cappend * 2 : 16;
    colony__bpending *p = colony__realloc(g->pend, cap * sizeof(*p));
    if (!p) return COLONY_ENOMEM;
    g->pend = p;
    g->cappend = cap;
    return 0;
}

bconsumer *colony__bconsumer_get(colony__bgroup *g, const char *name, int create)
{
    bconsumer *c = colony__map_get(&g->consumers, name);
    if (c || !create) return c;
    c = colony__calloc(1, sizeof(*c));
    if (c) c->seen_ms = colony__bstore_now(g->st->store);
    if (c && !(c->name = colony__strdup(name))) {
        colony__free(c);
        return NULL;
    }
    if (c && colony__map_put(&g->consumers, name, c)) {
        colony__free(c->name);
        colony__free(c);
        return NULL;
    }
    return c;
}

colony__bgroup *colony__bgroup_new(colony__bstream *st, const char *name, colony__bid cursor)
{
    colony__bgroup *g = colony__calloc(1, sizeof(*g));
    if (!g) return NULL;
    g->st = st;
    g->cursor = cursor;
    g->entries_read = -1;
    if (!(g->name = colony__strdup(name)) || colony__map_put(&st->groups, name, g)) {
        colony__free(g->name);
        colony__free(g);
        return NULL;
    }
    return g;
}

/* Sets (or adds, with room reserved) the pending entry; cannot fail. */
void colony__bpend_apply(colony__bgroup *g, bconsumer *c, colony__bid id, uint64_t count,
                         uint64_t last_ms, uint64_t due_ms, int deliver)
{
    int found;
    size_t i = colony__bpend_find(g, id, &found);
    if (!found) {
        memmove(g->pend + i + 1, g->pend + i, (g->npend - i) * sizeof(*g->pend));
        g->npend++;
    } else {
        bconsumer *old = colony__map_get(&g->consumers, g->pend[i].consumer);
        if (old) old->pending--;
    }
    c->pending++;
    g->pend[i] = (colony__bpending){id, c->name, count, last_ms, due_ms};
    if (deliver && colony__bid_cmp(id, g->cursor) > 0) g->cursor = id;
}

int colony__bpend_remove(colony__bgroup *g, colony__bid id)
{
    int found;
    size_t i = colony__bpend_find(g, id, &found);
    if (!found) return 0;
    bconsumer *c = colony__map_get(&g->consumers, g->pend[i].consumer);
    if (c) c->pending--;
    memmove(g->pend + i, g->pend + i + 1, (g->npend - i - 1) * sizeof(*g->pend));
    g->npend--;
    return 1;
}

size_t colony__bconsumer_drop(colony__bgroup *g, bconsumer *c)
{
    size_t w = 0, n = 0;
    for (size_t i = 0; i < g->npend; i++) {
        if (g->pend[i].consumer == c->name)
            n++;
        else
            g->pend[w++] = g->pend[i];
    }
    g->npend = w;
    colony__map_remove(&g->consumers, c->name);
    colony__free(c->name);
    colony__free(c);
    return n;
}
