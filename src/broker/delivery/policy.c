/* Stream and group policies, durable in <stream dir>/policy: one small text
 * file per stream (its policy and its groups'), rewritten atomically (temp
 * file, fsync, rename, fsync dir) by colony__bstream_file_put on each change.
 * A file rather than the group journal: policies change rarely, are read
 * once, and a file a person can read (`cat`) is worth more than a record. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "broker/delivery/internal.h"
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"

void colony__bstream_policy_default(colony__bstream_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->overflow = COLONY__BOVERFLOW_DROP_OLDEST;
}

void colony__bgroup_policy_default(colony__bgroup_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->visibility_ms = COLONY__BVISIBILITY_DEFAULT_MS;
    p->max_deliveries = COLONY__BMAX_DELIVERIES_DEFAULT;
    p->backoff.kind = COLONY__BBACKOFF_FIXED;
}

static void group_pol_free(bd_group_pol *g)
{
    if (!g) return;
    colony__free(g->dead_letter);
    colony__free(g->resolved);
    colony__free(g);
}

static void pol_free(bd_pol *p)
{
    size_t pos = 0;
    colony__map_slot *sl;
    while ((sl = colony__map_next(&p->groups, &pos)))
        group_pol_free(sl->value);
    colony__map_free(&p->groups);
    colony__free(p);
}

void colony__bd_pols_free(colony__bdelivery *d)
{
    size_t pos = 0;
    colony__map_slot *sl;
    while ((sl = colony__map_next(&d->pols, &pos)))
        pol_free(sl->value);
    colony__map_free(&d->pols);
}

/* Names go into the file as hex, so any byte is safe. */
static int hex_put(char *out, size_t size, const char *s)
{
    size_t n = strlen(s);
    if (2 * n + 1 > size) return COLONY_E2BIG;
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", (unsigned char)s[i]);
    out[2 * n] = '\0';
    return 0;
}

/* Decodes hex h into *out (colony__malloc'd): COLONY_EINVAL if it is not hex
 * of a name, COLONY_ENOMEM. */
static int hex_get(const char *h, char **out)
{
    size_t n = strlen(h);
    if (n % 2) return COLONY_EINVAL;
    char *s = colony__malloc(n / 2 + 1);
    if (!s) return COLONY_ENOMEM;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1 || !v) {
            colony__free(s);
            return COLONY_EINVAL;
        }
        s[i] = (char)v;
    }
    s[n / 2] = '\0';
    *out = s;
    return 0;
}

static int group_line(bd_pol *p, const char *line)
{
    char gh[600], dh[600];
    uint64_t vis, max, delay, cap;
    unsigned kind, jitter;
    if (sscanf(line, "group %599s %" SCNu64 " %" SCNu64 " %u %" SCNu64 " %" SCNu64 " %u %599s", gh,
               &vis, &max, &kind, &delay, &cap, &jitter, dh) != 8 ||
        kind > 2 || jitter > 100)
        return COLONY_EINVAL;
    bd_group_pol *g = colony__calloc(1, sizeof(*g));
    char *name = NULL;
    int rc = g ? hex_get(gh, &name) : COLONY_ENOMEM;
    if (!rc && strcmp(dh, "-")) rc = hex_get(dh, &g->dead_letter);
    if (!rc) {
        g->p = (colony__bgroup_policy){vis, max, {(int)kind, delay, cap, jitter}, NULL};
        bd_group_pol *old = colony__map_get(&p->groups, name);
        rc = colony__map_put(&p->groups, name, g);
        if (!rc) group_pol_free(old);
    }
    colony__free(name);
    if (rc) group_pol_free(g);
    return rc;
}

/* Parses the file's text into p; COLONY_EINVAL names the line in *line. */
static int parse(bd_pol *p, char *text, int *lineno)
{
    char *save = NULL;
    *lineno = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        ++*lineno;
        uint64_t v;
        char word[32];
        int rc = 0;
        if (*lineno == 1)
            rc = strcmp(line, "colony-policy 1") ? COLONY_EINVAL : 0;
        else if (!strncmp(line, "group ", 6))
            rc = group_line(p, line);
        else if (sscanf(line, "overflow %31s", word) == 1)
            p->p.overflow =
                !strcmp(word, "reject") ? COLONY__BOVERFLOW_REJECT : COLONY__BOVERFLOW_DROP_OLDEST;
        else if (sscanf(line, "max-len %" SCNu64, &v) == 1)
            p->p.max_len = v;
        else if (sscanf(line, "ttl-ms %" SCNu64, &v) == 1)
            p->p.ttl_ms = v;
        else if (sscanf(line, "max-age-ms %" SCNu64, &v) == 1)
            p->p.max_age_ms = v;
        else if (sscanf(line, "max-bytes %" SCNu64, &v) == 1)
            p->p.max_bytes = v;
        else if (sscanf(line, "max-entries %" SCNu64, &v) == 1)
            p->p.max_entries = v;
        else if (sscanf(line, "work-queue %" SCNu64, &v) == 1)
            p->p.work_queue = v != 0;
        else
            rc = COLONY_EINVAL;
        if (rc) return rc;
    }
    return 0;
}

bd_pol *colony__bd_pol(colony__bdelivery *d, colony__bstream *st, int *err)
{
    const char *name = colony__bstream_name(st);
    bd_pol *p = colony__map_get(&d->pols, name);
    if (p && p->st == st) return p;
    if (p) { /* the stream was dropped and made again: its policies went with it */
        colony__map_remove(&d->pols, name);
        pol_free(p);
    }
    p = colony__calloc(1, sizeof(*p));
    if (!p) {
        *err = COLONY_ENOMEM;
        return NULL;
    }
    p->st = st;
    colony__bstream_policy_default(&p->p);
    char *text = NULL;
    size_t len;
    int rc = colony__bstream_file_get(st, "policy", &text, &len);
    int line = 0;
    if (!rc)
        rc = parse(p, text, &line);
    else if (rc == COLONY_ENOENT)
        rc = 0;
    colony__free(text);
    if (rc) {
        COLONY_LOG_ERROR("broker delivery: bad policy file", COLONY_LF_STR("stream", name),
                         COLONY_LF_INT("line", line), COLONY_LF_STR("error", colony_strerror(rc)));
    } else {
        rc = colony__map_put(&d->pols, name, p);
    }
    if (rc) {
        pol_free(p);
        *err = rc;
        return NULL;
    }
    return p;
}

/* Writes p as the stream's policy file. */
static int save(bd_pol *p)
{
    size_t cap = 512, len = 0;
    size_t pos = 0;
    colony__map_slot *sl;
    while ((sl = colony__map_next(&p->groups, &pos))) {
        bd_group_pol *g = sl->value;
        cap += 200 + 2 * strlen(sl->key) + (g->dead_letter ? 2 * strlen(g->dead_letter) : 0);
    }
    char *buf = colony__malloc(cap);
    if (!buf) return COLONY_ENOMEM;
    len += (size_t)snprintf(
        buf + len, cap - len,
        "colony-policy 1\nmax-len %" PRIu64 "\noverflow %s\nttl-ms %" PRIu64 "\nmax-age-ms %" PRIu64
        "\nmax-bytes %" PRIu64 "\nmax-entries %" PRIu64 "\nwork-queue %d\n",
        p->p.max_len, p->p.overflow == COLONY__BOVERFLOW_REJECT ? "reject" : "drop-oldest",
        p->p.ttl_ms, p->p.max_age_ms, p->p.max_bytes, p->p.max_entries, p->p.work_queue ? 1 : 0);
    int rc = 0;
    pos = 0;
    while (!rc && (sl = colony__map_next(&p->groups, &pos))) {
        bd_group_pol *g = sl->value;
        char gh[600], dh[600] = "-";
        rc = hex_put(gh, sizeof(gh), sl->key);
        if (!rc && g->dead_letter) rc = hex_put(dh, sizeof(dh), g->dead_letter);
        if (!rc)
            len += (size_t)snprintf(
                buf + len, cap - len,
                "group %s %" PRIu64 " %" PRIu64 " %d %" PRIu64 " %" PRIu64 " %u %s\n", gh,
                g->p.visibility_ms, g->p.max_deliveries, g->p.backoff.kind, g->p.backoff.delay_ms,
                g->p.backoff.cap_ms, g->p.backoff.jitter_pct, dh);
    }
    if (!rc) rc = colony__bstream_file_put(p->st, "policy", buf, len);
    colony__free(buf);
    return rc;
}

int colony__bdelivery_stream_policy_set(colony__bdelivery *d, const char *stream,
                                        const colony__bstream_policy *np)
{
    colony__bstream *st = colony__bstore_get(d->store, stream);
    if (!st) return COLONY_ENOENT;
    if (np->overflow != COLONY__BOVERFLOW_DROP_OLDEST && np->overflow != COLONY__BOVERFLOW_REJECT)
        return COLONY_EINVAL;
    int rc = 0;
    bd_pol *p = colony__bd_pol(d, st, &rc);
    if (!p) return rc;
    colony__bstream_policy old = p->p;
    p->p = *np;
    p->p.work_queue = np->work_queue != 0;
    rc = save(p);
    if (rc) p->p = old;
    return rc;
}

int colony__bdelivery_stream_policy_get(colony__bdelivery *d, const char *stream,
                                        colony__bstream_policy *out)
{
    colony__bstream *st = colony__bstore_get(d->store, stream);
    if (!st) return COLONY_ENOENT;
    int rc = 0;
    bd_pol *p = colony__bd_pol(d, st, &rc);
    if (!p) return rc;
    *out = p->p;
    return 0;
}

int colony__bdelivery_group_policy_set(colony__bdelivery *d, const char *stream, const char *group,
                                       const colony__bgroup_policy *np)
{
    colony__bstream *st = colony__bstore_get(d->store, stream);
    if (!st || !colony__bgroup_get(st, group)) return COLONY_ENOENT;
    if (np->backoff.kind < 0 || np->backoff.kind > COLONY__BBACKOFF_EXPONENTIAL ||
        np->backoff.jitter_pct > 100 || strlen(group) > 255 ||
        (np->dead_letter && (strlen(np->dead_letter) > 255 || !strcmp(np->dead_letter, stream))))
        return COLONY_EINVAL;
    int rc = 0;
    bd_pol *p = colony__bd_pol(d, st, &rc);
    if (!p) return rc;
    bd_group_pol *g = colony__calloc(1, sizeof(*g));
    if (!g) return COLONY_ENOMEM;
    g->p = *np;
    g->p.dead_letter = NULL;
    if (!g->p.visibility_ms) g->p.visibility_ms = COLONY__BVISIBILITY_DEFAULT_MS;
    if (np->dead_letter && *np->dead_letter &&
        !(g->dead_letter = colony__strdup(np->dead_letter))) {
        group_pol_free(g);
        return COLONY_ENOMEM;
    }
    bd_group_pol *old = colony__map_get(&p->groups, group);
    if ((rc = colony__map_put(&p->groups, group, g))) {
        group_pol_free(g);
        return rc;
    }
    if ((rc = save(p))) { /* put the old one back: memory matches the file */
        if (old)
            (void)colony__map_put(&p->groups, group, old);
        else
            colony__map_remove(&p->groups, group);
        group_pol_free(g);
        return rc;
    }
    group_pol_free(old);
    return 0;
}

int colony__bd_group_pol(colony__bdelivery *d, colony__bstream *st, const char *group,
                         colony__bgroup_policy *out)
{
    int rc = 0;
    bd_pol *p = colony__bd_pol(d, st, &rc);
    if (!p) return rc;
    bd_group_pol *g = colony__map_get(&p->groups, group);
    if (!g) { /* defaults, kept so the resolved name has an owner */
        if (!(g = colony__calloc(1, sizeof(*g)))) return COLONY_ENOMEM;
        colony__bgroup_policy_default(&g->p);
        if ((rc = colony__map_put(&p->groups, group, g))) {
            group_pol_free(g);
            return rc;
        }
    }
    if (!g->resolved) {
        const char *name = colony__bstream_name(st);
        size_t n = strlen(name) + strlen(group) + 8;
        if (!(g->resolved = colony__malloc(n))) return COLONY_ENOMEM;
        if (g->dead_letter)
            snprintf(g->resolved, n, "%s", g->dead_letter);
        else
            snprintf(g->resolved, n, "dlq:%s:%s", name, group);
    }
    *out = g->p;
    out->dead_letter = g->resolved;
    return 0;
}

int colony__bdelivery_group_policy_get(colony__bdelivery *d, const char *stream, const char *group,
                                       colony__bgroup_policy *out)
{
    colony__bstream *st = colony__bstore_get(d->store, stream);
    if (!st || !colony__bgroup_get(st, group)) return COLONY_ENOENT;
    return colony__bd_group_pol(d, st, group, out);
}
