/* PUBLISH over RESP into the bound streams; the reply is parked (conn.c's
 * tickets) until every stream written is durable, so "(integer) n" means the
 * message is on disk in each of them. The published entry's fields are
 * `channel` <channel> `message` <message>. */
#include <stdio.h>
#include <string.h>
#include "broker/commands.h"
#include "broker/topic/resp_publish.h"
#include "broker/topic/topic.h"
#include "colony/error.h"
#include "core/alloc.h"

typedef struct publish_wait {
    colony__broker_park *park;
    colony__broker_resp *srv;
    size_t remaining, nnames;
    int err;
    char *names[]; /* streams whose blocked readers to wake (NULL: out of memory) */
} publish_wait;

static void on_commit(void *ud, int err)
{
    publish_wait *w = ud;
    if (err && !w->err) w->err = err;
    if (--w->remaining) return;
    for (size_t i = 0; i < w->nnames; i++) {
        if (!w->err && w->names[i]) colony__xread_wake(w->srv, w->names[i]);
        colony__free(w->names[i]);
    }
    colony__broker_park_done(w->park, w->err);
    colony__free(w);
}

int colony__btopic_resp_publish(colony__broker_client *c, const char *channel, size_t channel_len,
                                const char *message, size_t message_len, long long receivers)
{
    colony__broker_resp *srv = c->srv;
    size_t max = colony__btopics_count(srv->topics);
    if (!max) return colony__resp_int(&c->out, receivers);
    colony__btopic_target *out = colony__malloc(max * sizeof(*out));
    if (!out) return COLONY_ENOMEM;
    colony__bstr f[4] = {
        {"channel", 7}, {channel, channel_len}, {"message", 7}, {message, message_len}};
    colony__bpublish m = {.strs = f, .n = 4, .deliver_at_ms = 0, .ttl_ms = 0};
    long n =
        colony__btopics_publish(srv->topics, srv->delivery, channel, channel_len, &m, out, max);
    if (n < 0) {
        colony__free(out);
        return n;
    }
    int rc = 0;
    const colony__btopic_target *bad = NULL;
    size_t written = 0;
    for (long i = 0; i < n; i++) {
        if (out[i].err && !bad) bad = &out[i];
        if (!out[i].err) written++;
    }
    if (bad)
        rc = colony__resp_errorf(
            &c->out, "ERR message not stored in stream '%s' bound to this channel: %s", bad->stream,
            bad->err == COLONY__BDELIVERY_EFULL ? "stream full" : colony_strerror(bad->err));
    else
        rc = colony__resp_int(&c->out, receivers);
    publish_wait *w = NULL;
    if (!rc && written) {
        w = colony__calloc(1, sizeof(*w) + written * sizeof(char *));
        if (!w) rc = COLONY_ENOMEM;
    }
    if (!rc && w) {
        w->srv = srv;
        w->nnames = written;
        for (long i = 0, k = 0; i < n; i++)
            if (!out[i].err) w->names[k++] = colony__strdup(out[i].stream);
        w->park = colony__broker_park_new(c);
        if (!w->park) {
            for (size_t i = 0; i < written; i++)
                colony__free(w->names[i]);
            colony__free(w);
            colony__free(out);
            return COLONY_ENOMEM;
        }
        w->remaining = written + 1; /* + 1 held until every wait is asked for */
        for (long i = 0; i < n; i++) {
            if (out[i].err) continue;
            int wrc = colony__bcommit_wait(srv->commit, out[i].st, on_commit, w);
            if (wrc) on_commit(w, wrc); /* it will not call back: count it as failed */
        }
        on_commit(w, 0);
    }
    colony__free(out);
    return rc;
}
