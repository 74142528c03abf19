/* Stream id parsing as redis-server 7 does it (see stream_id.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "broker/resp/resp.h"
#include "broker/stream_id.h"

/* Redis's string2ull: a strict integer (string2ll) that is not negative, or
 * else whatever strtoull takes whole without an error (so "+5" and "007"
 * pass, as in Redis). s is NUL-terminated. */
static int parse_ull(const char *s, uint64_t *out)
{
    long long ll;
    if (colony__resp_parse_ll(s, strlen(s), &ll)) {
        if (ll < 0) return 0;
        *out = (uint64_t)ll;
        return 1;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == EINVAL || errno == ERANGE || !(*s != '\0' && *end == '\0')) return 0;
    *out = v;
    return 1;
}

int colony__xid_parse(const char *s, size_t len, uint64_t missing_seq, int strict, int *seq_auto,
                      colony__bid *id)
{
    char buf[128];
    if (len > sizeof(buf) - 1) return COLONY_EINVAL;
    memcpy(buf, s, len);
    buf[len] = '\0'; /* Redis reads it as a C string: it ends at a NUL */
    if (strict && (buf[0] == '-' || buf[0] == '+') && buf[1] == '\0') return COLONY_EINVAL;
    if (seq_auto) *seq_auto = 0;
    if (buf[0] == '-' && buf[1] == '\0') {
        id->ms = id->seq = 0;
        return 0;
    }
    if (buf[0] == '+' && buf[1] == '\0') {
        id->ms = id->seq = UINT64_MAX;
        return 0;
    }
    uint64_t ms, seq;
    char *dash = strchr(buf, '-');
    if (dash) *dash = '\0';
    if (!parse_ull(buf, &ms)) return COLONY_EINVAL;
    if (dash) {
        if (seq_auto && strcmp(dash + 1, "*") == 0) {
            seq = 0;
            *seq_auto = 1;
        } else if (!parse_ull(dash + 1, &seq)) {
            return COLONY_EINVAL;
        }
    } else {
        seq = missing_seq;
    }
    id->ms = ms;
    id->seq = seq;
    return 0;
}

int colony__xid_incr(colony__bid *id)
{
    if (id->seq == UINT64_MAX) {
        if (id->ms == UINT64_MAX) return COLONY_ERANGE;
        id->ms++;
        id->seq = 0;
    } else {
        id->seq++;
    }
    return 0;
}

int colony__xid_decr(colony__bid *id)
{
    if (id->seq == 0) {
        if (id->ms == 0) return COLONY_ERANGE;
        id->ms--;
        id->seq = UINT64_MAX;
    } else {
        id->seq--;
    }
    return 0;
}

int colony__xid_parse_bound(const char *s, size_t len, uint64_t missing_seq, int end,
                            colony__bid *id)
{
    int exclusive = len > 1 && s[0] == '(';
    int rc = exclusive ? colony__xid_parse(s + 1, len - 1, missing_seq, 1, NULL, id)
                       : colony__xid_parse(s, len, missing_seq, 0, NULL, id);
    if (rc) return rc;
    if (exclusive) return end ? colony__xid_decr(id) : colony__xid_incr(id);
    return 0;
}

size_t colony__xid_format(colony__bid id, char *out)
{
    int n = snprintf(out, COLONY__XID_MAX_TEXT, "%llu-%llu", (unsigned long long)id.ms,
                     (unsigned long long)id.seq);
    return (size_t)n;
}
