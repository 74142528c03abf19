/* Idempotency-Key: a publish repeated with the same key to the same stream or
 * topic within the window is dropped and answered with the first publish's
 * ids. Bounded: at most max_keys are remembered; past that the oldest is
 * forgotten first (it could then be published again). Every key has the same
 * window, so insertion order is expiry order: expired keys are dropped from
 * the front of one list. Durable: each entry of a keyed stream publish keeps
 * the key in its metadata (store/meta.c), and colony__bidem_load rebuilds the
 * window from the streams' recent entries on start. */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "broker/http/http.h"

typedef struct idem_entry {
    colony__list link; /* in order */
    uint64_t expires_ms;
    json_t *ids;
    char key[]; /* the map's key, to remove it from the map */
} idem_entry;

void colony__bidem_init(colony__bidem *c, uint64_t window_ms, size_t max_keys)
{
    memset(c, 0, sizeof(*c));
    colony__list_init(&c->order);
    c->window_ms = window_ms;
    c->max_keys = max_keys;
}

static void drop(colony__bidem *c, idem_entry *e)
{
    colony__map_remove(&c->keys, e->key);
    colony__list_remove(&e->link);
    json_decref(e->ids);
    colony__free(e);
    c->count--;
}

static void expire(colony__bidem *c, uint64_t now)
{
    while (!colony__list_empty(&c->order)) {
        idem_entry *e = COLONY__CONTAINER_OF(c->order.next, idem_entry, link);
        if (e->expires_ms > now && c->count <= c->max_keys) break;
        drop(c, e);
    }
}

void colony__bidem_free(colony__bidem *c)
{
    while (!colony__list_empty(&c->order))
        drop(c, COLONY__CONTAINER_OF(c->order.next, idem_entry, link));
    colony__map_free(&c->keys);
}

/* "<length of target>:" target key: unambiguous whatever bytes they hold. */
static char *map_key(const char *target, const char *key)
{
    size_t tl = strlen(target), kl = strlen(key);
    char *k = colony__malloc(tl + kl + 24);
    if (!k) return NULL;
    int n = snprintf(k, 24, "%zu:", tl);
    memcpy(k + n, target, tl);
    memcpy(k + (size_t)n + tl, key, kl + 1);
    return k;
}

json_t *colony__bidem_get(colony__bidem *c, const char *target, const char *key, uint64_t now)
{
    expire(c, now);
    char *k = map_key(target, key);
    if (!k) return NULL;
    idem_entry *e = colony__map_get(&c->keys, k);
    colony__free(k);
    return e ? e->ids : NULL;
}

int colony__bidem_put(colony__bidem *c, const char *target, const char *key, json_t *ids,
                      uint64_t now)
{
    if (c->max_keys == 0 || c->window_ms == 0) return 0;
    char *k = map_key(target, key);
    if (!k) return COLONY_ENOMEM;
    size_t kl = strlen(k);
    idem_entry *old = colony__map_get(&c->keys, k);
    if (old) drop(c, old);
    idem_entry *e = colony__malloc(sizeof(*e) + kl + 1);
    if (!e) {
        colony__free(k);
        return COLONY_ENOMEM;
    }
    memcpy(e->key, k, kl + 1);
    colony__free(k);
    if (colony__map_put(&c->keys, e->key, e)) {
        colony__free(e);
        return COLONY_ENOMEM;
    }
    e->ids = json_incref(ids);
    e->expires_ms = now + c->window_ms;
    colony__list_push_back(&c->order, &e->link);
    c->count++;
    expire(c, now);
    return 0;
}

void colony__bidem_forget(colony__bidem *c, const char *target, const char *key)
{
    char *k = map_key(target, key);
    if (!k) return;
    idem_entry *e = colony__map_get(&c->keys, k);
    colony__free(k);
    if (e) drop(c, e);
}

/* ---- the window rebuilt from the entries on start ---- */

/* One keyed publish found (its entries are consecutive: one request appends
 * them in one go on the loop). */
typedef struct found {
    uint64_t time_ms;
    const char *stream; /* the key's target: a stream's name, or "topic:" + topic */
    char *key;
    json_t *ids; /* oldest first */
    uint64_t count;
    char *owned; /* a topic's target, allocated */
} found;

/* One entry of a topic publish (the streams are read one after the other:
 * its parts are gathered, then grouped by topic and key). */
typedef struct topic_part {
    char *target; /* "topic:" + topic */
    char *key;
    uint64_t index, targets, count, time_ms;
    const char *stream;
    colony__bid id;
} topic_part;

typedef struct loader {
    const char *stream;
    uint64_t from_ms; /* entries appended before it are out of the window */
    size_t budget;    /* entries still to read */
    found cur;        /* the publish being collected (reading backward) */
    found *all;
    size_t n, cap;
    topic_part *parts;
    size_t nparts, parts_cap;
    int oom;
} loader;

static void found_free(found *f)
{
    colony__free(f->key);
    colony__free(f->owned);
    json_decref(f->ids);
    memset(f, 0, sizeof(*f));
}

static void put_be64(char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (char)(uint8_t)v;
}

static uint64_t get_be64(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | (uint8_t)p[i];
    return v;
}

size_t colony__bidem_topic_key(char *out, const char *topic, const char *key, uint64_t index,
                               uint64_t targets)
{
    size_t tl = strlen(topic), kl = strlen(key), len = 2 + 16 + tl + 1 + kl;
    if (len > COLONY__BIDEM_TOPIC_KEY_MAX || !tl || !kl) return 0;
    out[0] = '\0';
    out[1] = 'T';
    put_be64(out + 2, index);
    put_be64(out + 10, targets);
    memcpy(out + 18, topic, tl);
    out[18 + tl] = '\0';
    memcpy(out + 19 + tl, key, kl);
    return len;
}

/* A topic key's parts into p (target and key allocated): 1, 0 when k is not
 * one, <0 out of memory. */
static int topic_key_parse(colony__bstr k, topic_part *p)
{
    if (k.len < 2 + 16 + 3 || k.data[0] != '\0' || k.data[1] != 'T') return 0;
    const char *topic = k.data + 18, *end = k.data + k.len;
    const char *nul = memchr(topic, '\0', (size_t)(end - topic));
    if (!nul || nul == topic || nul + 1 == end || memchr(nul + 1, '\0', (size_t)(end - nul - 1)))
        return 0;
    p->index = get_be64(k.data + 2);
    p->targets = get_be64(k.data + 10);
    size_t tl = (size_t)(nul - topic), kl = (size_t)(end - nul - 1);
    p->target = colony__malloc(6 + tl + 1);
    p->key = colony__malloc(kl + 1);
    if (!p->target || !p->key) {
        colony__free(p->target);
        colony__free(p->key);
        return COLONY_ENOMEM;
    }
    memcpy(p->target, "topic:", 6);
    memcpy(p->target + 6, topic, tl);
    p->target[6 + tl] = '\0';
    memcpy(p->key, nul + 1, kl);
    p->key[kl] = '\0';
    return 1;
}

/* An entry of a topic publish: kept aside, grouped once every stream is read. */
static void add_part(loader *l, colony__bstr key, uint64_t count, const colony__bentry *e)
{
    topic_part p = {.count = count, .time_ms = e->time_ms, .stream = l->stream, .id = e->id};
    int rc = topic_key_parse(key, &p);
    if (rc <= 0) {
        l->oom |= rc < 0;
        return;
    }
    if (l->nparts == l->parts_cap) {
        size_t cap = l->parts_cap ? l->parts_cap * 2 : 64;
        topic_part *n = colony__realloc(l->parts, cap * sizeof(*n));
        if (!n) {
            colony__free(p.target);
            colony__free(p.key);
            l->oom = 1;
            return;
        }
        l->parts = n;
        l->parts_cap = cap;
    }
    l->parts[l->nparts++] = p;
}

/* The publish being collected is whole: kept. */
static void keep(loader *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        found *p = colony__realloc(l->all, cap * sizeof(*p));
        if (!p) {
            l->oom = 1;
            found_free(&l->cur);
            return;
        }
        l->all = p;
        l->cap = cap;
    }
    l->all[l->n++] = l->cur;
    memset(&l->cur, 0, sizeof(l->cur));
}

static int on_entry(void *ud, const colony__bentry *e)
{
    loader *l = ud;
    if (e->time_ms < l->from_ms || l->budget == 0 || l->oom) return 1;
    l->budget--;
    colony__bstr key = {0};
    uint64_t count;
    if (!colony__bmeta_idem(e->meta, &key, &count) || memchr(key.data, 0, key.len)) {
        found_free(&l->cur); /* a part of a publish only: not remembered */
        if (key.len && key.data[0] == '\0') add_part(l, key, count, e);
        return l->oom;
    }
    if (l->cur.key && (strlen(l->cur.key) != key.len || memcmp(l->cur.key, key.data, key.len) ||
                       l->cur.count != count))
        found_free(&l->cur);
    if (!l->cur.key) {
        l->cur =
            (found){e->time_ms, l->stream, colony__malloc(key.len + 1), json_array(), count, NULL};
        if (!l->cur.key || !l->cur.ids) {
            found_free(&l->cur);
            l->oom = 1;
            return 1;
        }
        memcpy(l->cur.key, key.data, key.len);
        l->cur.key[key.len] = 0;
    }
    if (json_array_insert_new(l->cur.ids, 0, colony__bhttp_id_json(e->id))) {
        l->oom = 1;
        return 1;
    }
    if (json_array_size(l->cur.ids) == l->cur.count) keep(l);
    return 0;
}

static int part_order(const void *a, const void *b)
{
    const topic_part *x = a, *y = b;
    int c = strcmp(x->target, y->target);
    if (!c) c = strcmp(x->key, y->key);
    if (!c) c = x->index < y->index ? -1 : x->index > y->index;
    return c;
}

/* Parts [i, j) are one (topic, key): one publish when every message of it
 * is in as many streams as the topic had bound, as the live answer lists
 * them: per message, the streams with their ids. */
static void group_parts(loader *l, size_t i, size_t j)
{
    const topic_part *f = &l->parts[i];
    if (f->count == 0 || f->targets == 0 || f->count > SIZE_MAX / f->targets ||
        j - i != f->count * f->targets)
        return;
    json_t *msgs = json_array();
    uint64_t time_ms = UINT64_MAX;
    int ok = msgs != NULL;
    for (uint64_t m = 0; ok && m < f->count; m++) {
        json_t *streams = json_array();
        ok = streams && !json_array_append_new(msgs, json_pack("{s:o}", "streams", streams));
        for (uint64_t t = 0; ok && t < f->targets; t++) {
            const topic_part *p = &l->parts[i + m * f->targets + t];
            if (p->index != m || p->count != f->count || p->targets != f->targets) {
                json_decref(msgs);
                return; /* not one publish (a key used again after its window) */
            }
            if (p->time_ms < time_ms) time_ms = p->time_ms;
            ok = !json_array_append_new(streams, json_pack("{s:s, s:o}", "stream", p->stream, "id",
                                                           colony__bhttp_id_json(p->id)));
        }
    }
    if (ok) {
        l->cur = (found){time_ms, f->target, colony__strdup(f->key), msgs, f->count, NULL};
        l->cur.owned = colony__strdup(f->target);
        l->cur.stream = l->cur.owned;
        msgs = NULL;
        if (l->cur.key && l->cur.owned)
            keep(l);
        else
            ok = 0;
    }
    if (!ok) {
        found_free(&l->cur);
        json_decref(msgs);
        l->oom = 1;
    }
}

static void gather_topics(loader *l)
{
    if (l->nparts) qsort(l->parts, l->nparts, sizeof(*l->parts), part_order);
    for (size_t i = 0, j; i < l->nparts; i = j) {
        for (j = i + 1; j < l->nparts && !strcmp(l->parts[j].target, l->parts[i].target) &&
                        !strcmp(l->parts[j].key, l->parts[i].key);
             j++)
            ;
        if (!l->oom) group_parts(l, i, j);
    }
    for (size_t i = 0; i < l->nparts; i++) {
        colony__free(l->parts[i].target);
        colony__free(l->parts[i].key);
    }
    colony__free(l->parts);
    l->parts = NULL;
}

static int by_time(const void *a, const void *b)
{
    const found *x = a, *y = b;
    return x->time_ms < y->time_ms ? -1 : x->time_ms > y->time_ms;
}

long colony__bidem_load(colony__bidem *c, colony__bstore *store, uint64_t now, size_t max_scan)
{
    if (c->max_keys == 0 || c->window_ms == 0) return 0;
    loader l = {.from_ms = now > c->window_ms ? now - c->window_ms : 0, .budget = max_scan};
    size_t pos = 0;
    colony__bstream *st;
    while (!l.oom && l.budget && (st = colony__bstore_next(store, &pos))) {
        l.stream = colony__bstream_name(st);
        colony__bid lo = {l.from_ms, 0}, hi = {UINT64_MAX, UINT64_MAX};
        long rc = colony__bstream_range(st, lo, hi, 1, 0, on_entry, &l);
        found_free(&l.cur); /* the oldest, cut by the window or the budget */
        if (rc < 0)
            COLONY_LOG_WARN("broker: idempotency keys of a stream not rebuilt",
                            COLONY_LF_STR("stream", l.stream), COLONY_LF_INT("error", rc));
    }
    gather_topics(&l);
    if (l.n) qsort(l.all, l.n, sizeof(*l.all), by_time);
    long kept = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (!l.oom &&
            !colony__bidem_put(c, l.all[i].stream, l.all[i].key, l.all[i].ids, l.all[i].time_ms))
            kept++;
        found_free(&l.all[i]);
    }
    colony__free(l.all);
    if (!l.budget)
        COLONY_LOG_WARN("broker: idempotency window rebuilt from the newest entries only",
                        COLONY_LF_INT("entries_read", (int64_t)max_scan));
    return l.oom ? COLONY_ENOMEM : kept;
}
