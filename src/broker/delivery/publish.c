/* Publish under a stream's policy: max length (drop-oldest trims after the
 * append, reject refuses before it), delay and TTL in the entry's metadata
 * section (store/meta.c: not a field, so XRANGE shows the fields only), and
 * retention by segment after the write. */
#include <string.h>
#include "broker/delivery/internal.h"
#include "colony/error.h"

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

void colony__bd_meta_parse(colony__bstr m, bd_meta *out)
{
    memset(out, 0, sizeof(*out));
    const uint8_t *p = (const uint8_t *)m.data;
    if (m.len < 1 || p[0] != 'M') return;
    for (size_t i = 1; i + 9 <= m.len; i += 9) { /* unknown tags are skipped */
        uint64_t v = get64(p + i + 1);
        if (p[i] == BD_META_DELIVER_AT) out->deliver_at = v;
        if (p[i] == BD_META_EXPIRE_AT) out->expire_at = v;
        if (p[i] == COLONY__BMETA_IDEM_KEY) break; /* last, its bytes follow (store/meta.c) */
    }
}

/* The lowest id a group still needs: its first pending entry, else the one
 * after its cursor. 0-0 (no limit) when the stream has no group. */
static int first_pending(void *ud, const colony__bpending *p)
{
    *(colony__bid *)ud = p->id;
    return 1;
}

void colony__bd_retain(colony__bdelivery *d, colony__bstream *st)
{
    int rc = 0;
    bd_pol *p = colony__bd_pol(d, st, &rc);
    if (!p) return;
    colony__bretention r = {p->p.max_age_ms, p->p.max_bytes, p->p.max_entries, {0, 0}};
    if (p->p.work_queue) {
        size_t pos = 0;
        colony__bgroup *g;
        int any = 0;
        colony__bid need = {UINT64_MAX, UINT64_MAX};
        while ((g = colony__bgroup_next(st, &pos))) {
            colony__bgroup_info gi;
            colony__bgroup_info_get(g, &gi);
            colony__bid n = gi.cursor;
            if (n.seq == UINT64_MAX)
                n = (colony__bid){n.ms + 1, 0};
            else
                n.seq++;
            if (gi.pending) {
                colony__bid lo = {0, 0}, hi = {UINT64_MAX, UINT64_MAX};
                colony__bgroup_pending_range(g, lo, hi, NULL, 1, first_pending, &n);
            }
            if (colony__bid_cmp(n, need) < 0) need = n;
            any = 1;
        }
        if (any) r.needed = need;
    }
    if (r.max_age_ms || r.max_bytes || r.max_entries || r.needed.ms || r.needed.seq)
        (void)colony__bstream_retain(st, &r);
}

int colony__bdelivery_publish(colony__bdelivery *d, const char *stream, const colony__bpublish *m,
                              colony__bid *out)
{
    d->ntouched = 0;
    return colony__bd_publish(d, stream, m, out);
}

int colony__bd_publish(colony__bdelivery *d, const char *stream, const colony__bpublish *m,
                       colony__bid *out)
{
    if (!m || m->n % 2 || (!m->strs && m->n)) return COLONY_EINVAL;
    colony__bstream *st = colony__bstore_get(d->store, stream);
    int rc = st ? 0 : colony__bstore_create(d->store, stream, &st);
    if (rc) return rc;
    bd_pol *p = colony__bd_pol(d, st, &rc);
    if (!p) return rc;
    if (p->p.max_len && p->p.overflow == COLONY__BOVERFLOW_REJECT &&
        colony__bstream_length(st) >= p->p.max_len)
        return COLONY__BDELIVERY_EFULL;
    uint64_t now = colony__bdelivery_now(d);
    uint64_t ttl = m->ttl_ms ? m->ttl_ms : p->p.ttl_ms;
    uint8_t meta[19];
    size_t mlen = 0;
    if (m->deliver_at_ms > now || ttl) {
        meta[mlen++] = 'M';
        if (m->deliver_at_ms > now) {
            meta[mlen++] = BD_META_DELIVER_AT;
            put64(meta + mlen, m->deliver_at_ms);
            mlen += 8;
        }
        if (ttl) {
            meta[mlen++] = BD_META_EXPIRE_AT;
            put64(meta + mlen, ttl > UINT64_MAX - now ? UINT64_MAX : now + ttl);
            mlen += 8;
        }
    }
    colony__bid zero = {0, 0};
    if (m->idem_key.len) colony__bstream_idem_next(st, m->idem_key, m->idem_count);
    rc = colony__bstream_append_meta(st, COLONY__BID_AUTO, zero, m->strs, m->n,
                                     (colony__bstr){(const char *)meta, mlen}, out);
    if (rc) return rc;
    if (p->p.max_len && p->p.overflow == COLONY__BOVERFLOW_DROP_OLDEST &&
        colony__bstream_length(st) > p->p.max_len)
        (void)colony__bstream_trim_maxlen(st, p->p.max_len);
    colony__bd_retain(d, st);
    return 0;
}
