/* Redis pub/sub: SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE, PUBLISH
 * and PUBSUB CHANNELS/NUMSUB/NUMPAT with redis-server's replies. A topic (a
 * channel or a pattern) lists its subscriptions in subscription order; a
 * client lists its own, so UNSUBSCRIBE without arguments answers in the order
 * the client subscribed. A client that closes keeps its subscriptions until
 * its handle has closed (deliveries skip it), so a publish can walk a topic
 * while it closes slow subscribers. */
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "broker/commands.h"
#include "broker/conn.h"
#include "broker/pubsub.h"
#include "broker/topic/resp_publish.h"

typedef struct topic {
    colony__list subs; /* subscription.in_topic */
    size_t count;
    size_t len;
    char name[]; /* len bytes, binary */
} topic;

typedef struct subscription {
    colony__list in_topic, in_client;
    colony__broker_client *client;
    topic *t;
    int pattern;
} subscription;

void colony__broker_subs_init(colony__broker_subs *s)
{
    memset(s, 0, sizeof(*s));
    colony__list_init(&s->channel_order);
    colony__list_init(&s->pattern_order);
}

size_t colony__broker_subs_count(const colony__broker_subs *s)
{
    return s->nchannels + s->npatterns;
}

/* colony__map keys are C strings: NUL and \x01 are escaped with \x01 so any
 * binary name has one key. Into buf when it fits, else allocated (*heap). */
static char *key_of(const char *s, size_t n, char *buf, size_t buflen, char **heap)
{
    size_t need = n + 1;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0' || s[i] == '\1') need++;
    char *k = buf;
    *heap = NULL;
    if (need > buflen) {
        k = *heap = colony__malloc(need);
        if (!k) return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\0' || s[i] == '\1') {
            k[o++] = '\1';
            k[o++] = s[i] == '\0' ? '0' : '1';
        } else {
            k[o++] = s[i];
        }
    }
    k[o] = '\0';
    return k;
}

static colony__map *server_map(colony__broker_client *c, int pattern)
{
    return pattern ? &c->srv->pubsub.patterns : &c->srv->pubsub.channels;
}

/* Subscribes c to one channel or pattern; 1 if new, 0 if it already was,
 * or COLONY_ENOMEM (nothing changed). */
static int subscribe_one(colony__broker_client *c, const char *name, size_t len, int pattern)
{
    char buf[256], *heap;
    char *key = key_of(name, len, buf, sizeof(buf), &heap);
    if (!key) return COLONY_ENOMEM;
    colony__map *mine = pattern ? &c->subs.patterns : &c->subs.channels;
    int rc = 0;
    if (colony__map_get(mine, key)) goto out;
    colony__map *all = server_map(c, pattern);
    topic *t = colony__map_get(all, key);
    int new_topic = !t;
    subscription *s = colony__calloc(1, sizeof(*s));
    if (!t) {
        t = colony__malloc(sizeof(*t) + len + 1);
        if (!t || colony__map_put(all, key, t)) {
            colony__free(t);
            colony__free(s);
            rc = COLONY_ENOMEM;
            goto out;
        }
        colony__list_init(&t->subs);
        t->count = 0;
        t->len = len;
        memcpy(t->name, name, len);
        t->name[len] = '\0';
    }
    if (!s || colony__map_put(mine, key, s)) {
        if (new_topic) {
            colony__map_remove(all, key);
            colony__free(t);
        }
        colony__free(s);
        rc = COLONY_ENOMEM;
        goto out;
    }
    s->client = c;
    s->t = t;
    s->pattern = pattern;
    colony__list_push_back(&t->subs, &s->in_topic);
    t->count++;
    colony__list_push_back(pattern ? &c->subs.pattern_order : &c->subs.channel_order,
                           &s->in_client);
    if (pattern) {
        c->subs.npatterns++;
        c->srv->pubsub.npattern_subs++;
    } else {
        c->subs.nchannels++;
    }
    rc = 1;
out:
    colony__free(heap);
    return rc;
}

/* Removes subscription s (and its topic when it was the last). Allocates
 * nothing, so it cannot fail. */
static void unsubscribe_sub(subscription *s)
{
    colony__broker_client *c = s->client;
    topic *t = s->t;
    char buf[256], *heap;
    colony__map *mine = s->pattern ? &c->subs.patterns : &c->subs.channels;
    colony__map *all = server_map(c, s->pattern);
    /* the keys exist already; only a name too long for buf needs memory, and
     * then the maps are searched by walking them instead */
    char *key = key_of(t->name, t->len, buf, sizeof(buf), &heap);
    if (key) {
        colony__map_remove(mine, key);
    } else {
        size_t pos = 0;
        for (colony__map_slot *slot; (slot = colony__map_next(mine, &pos));)
            if (slot->value == s) {
                colony__map_remove(mine, slot->key);
                break;
            }
    }
    colony__list_remove(&s->in_topic);
    colony__list_remove(&s->in_client);
    if (s->pattern) {
        c->subs.npatterns--;
        c->srv->pubsub.npattern_subs--;
    } else {
        c->subs.nchannels--;
    }
    if (--t->count == 0) {
        if (key) {
            colony__map_remove(all, key);
        } else {
            size_t pos = 0;
            for (colony__map_slot *slot; (slot = colony__map_next(all, &pos));)
                if (slot->value == t) {
                    colony__map_remove(all, slot->key);
                    break;
                }
        }
        colony__free(t);
    }
    colony__free(heap);
    colony__free(s);
}

void colony__broker_subs_drop(colony__broker_client *c)
{
    colony__list *n;
    while ((n = colony__list_first(&c->subs.channel_order)))
        unsubscribe_sub(COLONY__CONTAINER_OF(n, subscription, in_client));
    while ((n = colony__list_first(&c->subs.pattern_order)))
        unsubscribe_sub(COLONY__CONTAINER_OF(n, subscription, in_client));
    colony__map_free(&c->subs.channels);
    colony__map_free(&c->subs.patterns);
}

void colony__broker_pubsub_free(colony__broker_pubsub *ps)
{
    /* every client has dropped its subscriptions by now: the maps are empty */
    colony__map_free(&ps->channels);
    colony__map_free(&ps->patterns);
}

/* *3 kind name count: the confirmation of each (un)subscription. */
static int reply_sub(colony__broker_client *c, const char *kind, const char *name, size_t len,
                     int null_name)
{
    int rc = colony__resp_array(&c->out, 3);
    if (!rc) rc = colony__resp_bulk_str(&c->out, kind);
    if (!rc)
        rc = null_name ? colony__resp_null_bulk(&c->out) : colony__resp_bulk(&c->out, name, len);
    if (!rc) rc = colony__resp_int(&c->out, (long long)colony__broker_subs_count(&c->subs));
    return rc;
}

static int subscribe_cmd(colony__broker_client *c, const colony__resp_arg *argv, size_t argc,
                         int pattern)
{
    for (size_t i = 1; i < argc; i++) {
        int rc = subscribe_one(c, argv[i].ptr, argv[i].len, pattern);
        if (rc < 0) return rc;
        rc = reply_sub(c, pattern ? "psubscribe" : "subscribe", argv[i].ptr, argv[i].len, 0);
        if (rc) return rc;
    }
    return 0;
}

int colony__cmd_subscribe(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    return subscribe_cmd(c, argv, argc, 0);
}

int colony__cmd_psubscribe(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    return subscribe_cmd(c, argv, argc, 1);
}

static subscription *find_sub(colony__broker_client *c, const char *name, size_t len, int pattern,
                              int *nomem)
{
    char buf[256], *heap;
    char *key = key_of(name, len, buf, sizeof(buf), &heap);
    *nomem = !key;
    if (!key) return NULL;
    subscription *s = colony__map_get(pattern ? &c->subs.patterns : &c->subs.channels, key);
    colony__free(heap);
    return s;
}

static int unsubscribe_cmd(colony__broker_client *c, const colony__resp_arg *argv, size_t argc,
                           int pattern)
{
    const char *kind = pattern ? "punsubscribe" : "unsubscribe";
    colony__list *order = pattern ? &c->subs.pattern_order : &c->subs.channel_order;
    int rc = 0;
    if (argc == 1) {
        if (colony__list_empty(order)) return reply_sub(c, kind, NULL, 0, 1);
        colony__list *n;
        while (!rc && (n = colony__list_first(order))) {
            subscription *s = COLONY__CONTAINER_OF(n, subscription, in_client);
            /* the name outlives the topic only in this copy */
            topic *t = s->t;
            size_t len = t->len;
            char *name = colony__malloc(len + 1);
            if (!name) return COLONY_ENOMEM;
            memcpy(name, t->name, len);
            unsubscribe_sub(s);
            rc = reply_sub(c, kind, name, len, 0);
            colony__free(name);
        }
        return rc;
    }
    for (size_t i = 1; i < argc && !rc; i++) {
        int nomem;
        subscription *s = find_sub(c, argv[i].ptr, argv[i].len, pattern, &nomem);
        if (nomem) return COLONY_ENOMEM;
        if (s) unsubscribe_sub(s);
        rc = reply_sub(c, kind, argv[i].ptr, argv[i].len, 0);
    }
    return rc;
}

int colony__cmd_unsubscribe(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    return unsubscribe_cmd(c, argv, argc, 0);
}

int colony__cmd_punsubscribe(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    return unsubscribe_cmd(c, argv, argc, 1);
}

/* Appends one message to a subscriber, sent after the PUBLISH; a subscriber
 * that does not keep up is closed by its output limit. */
static void deliver(colony__broker_client *to, const char *pat, size_t plen, const char *ch,
                    size_t chlen, const char *msg, size_t len)
{
    colony_buf *o = &to->out;
    size_t before = o->len;
    int rc = colony__resp_array(o, pat ? 4 : 3);
    if (!rc) rc = pat ? colony__resp_bulk(o, "pmessage", 8) : colony__resp_bulk(o, "message", 7);
    if (!rc && pat) rc = colony__resp_bulk(o, pat, plen);
    if (!rc) rc = colony__resp_bulk(o, ch, chlen);
    if (!rc) rc = colony__resp_bulk(o, msg, len);
    if (rc) {
        /* no room or no memory: the subscriber cannot be served in order */
        o->len = before;
        colony__broker_client_close(to);
        return;
    }
    colony__broker_client_queue(to);
}

/* Delivers message to every subscriber of channel and of the patterns that
 * match it; returns how many received it (PUBLISH's reply). */
static long long publish(colony__broker_resp *srv, const char *ch, size_t chlen, const char *msg,
                         size_t len, int *nomem)
{
    long long receivers = 0;
    char buf[256], *heap;
    char *key = key_of(ch, chlen, buf, sizeof(buf), &heap);
    *nomem = !key;
    if (!key) return 0;
    topic *t = colony__map_get(&srv->pubsub.channels, key);
    colony__free(heap);
    colony__list *n, *tmp;
    if (t) COLONY__LIST_FOREACH_SAFE(n, tmp, &t->subs)
        {
            subscription *s = COLONY__CONTAINER_OF(n, subscription, in_topic);
            if (s->client->closing) continue;
            receivers++;
            deliver(s->client, NULL, 0, ch, chlen, msg, len);
        }
    size_t pos = 0;
    for (colony__map_slot *slot; (slot = colony__map_next(&srv->pubsub.patterns, &pos));) {
        topic *p = slot->value;
        if (!colony__broker_glob_match(p->name, p->len, ch, chlen)) continue;
        COLONY__LIST_FOREACH_SAFE(n, tmp, &p->subs)
        {
            subscription *s = COLONY__CONTAINER_OF(n, subscription, in_topic);
            if (s->client->closing) continue;
            receivers++;
            deliver(s->client, p->name, p->len, ch, chlen, msg, len);
        }
    }
    return receivers;
}

int colony__cmd_publish(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    (void)argc;
    colony__broker_resp *srv = c->srv;
    int nomem;
    long long n = publish(srv, argv[1].ptr, argv[1].len, argv[2].ptr, argv[2].len, &nomem);
    if (nomem) return COLONY_ENOMEM;
    srv->stats.pubsub_messages++;
    if (srv->topics && srv->delivery) /* bound streams: topic/resp_publish.c */
        return colony__btopic_resp_publish(c, argv[1].ptr, argv[1].len, argv[2].ptr, argv[2].len,
                                           n);
    /* HOOK: durable streams bound to this channel (by name or pattern) get
     * the message here, once the store and the bindings exist. */
    if (srv->pubsub.hook) {
        int rc = srv->pubsub.hook(srv->pubsub.hook_ud, argv[1].ptr, argv[1].len, argv[2].ptr,
                                  argv[2].len);
        if (rc)
            return colony__resp_errorf(&c->out,
                                       "ERR message not stored in the streams bound "
                                       "to this channel: %s",
                                       colony_strerror(rc));
    }
    return colony__resp_int(&c->out, n);
}

int colony__cmd_pubsub_channels(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    colony__broker_pubsub *ps = &c->srv->pubsub;
    size_t count = 0, pos = 0;
    colony__map_slot *slot;
    while ((slot = colony__map_next(&ps->channels, &pos))) {
        topic *t = slot->value;
        if (argc < 3 || colony__broker_glob_match(argv[2].ptr, argv[2].len, t->name, t->len))
            count++;
    }
    int rc = colony__resp_array(&c->out, count);
    pos = 0;
    while (!rc && (slot = colony__map_next(&ps->channels, &pos))) {
        topic *t = slot->value;
        if (argc < 3 || colony__broker_glob_match(argv[2].ptr, argv[2].len, t->name, t->len))
            rc = colony__resp_bulk(&c->out, t->name, t->len);
    }
    return rc;
}

int colony__cmd_pubsub_numsub(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    int rc = colony__resp_array(&c->out, (argc - 2) * 2);
    for (size_t i = 2; i < argc && !rc; i++) {
        char buf[256], *heap;
        char *key = key_of(argv[i].ptr, argv[i].len, buf, sizeof(buf), &heap);
        if (!key) return COLONY_ENOMEM;
        topic *t = colony__map_get(&c->srv->pubsub.channels, key);
        colony__free(heap);
        rc = colony__resp_bulk(&c->out, argv[i].ptr, argv[i].len);
        if (!rc) rc = colony__resp_int(&c->out, t ? (long long)t->count : 0);
    }
    return rc;
}

int colony__cmd_pubsub_numpat(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    (void)argv;
    (void)argc;
    /* Redis 7 counts distinct patterns, not pattern subscriptions */
    return colony__resp_int(&c->out, (long long)c->srv->pubsub.patterns.count);
}
