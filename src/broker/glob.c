/* Redis's glob matcher for PSUBSCRIBE and PUBSUB CHANNELS: a port of
 * stringmatchlen_impl (util.c, Redis 7) without the nocase mode, so patterns
 * match exactly what redis-server matches: *, ?, [abc], [^abc], [a-z] (bounds
 * in either order), \ escapes inside and outside brackets, an unclosed [ taken
 * as the rest of the pattern. Redis reads one byte past a pattern's end (its
 * terminating NUL); AT() gives that NUL without reading out of bounds. The
 * nesting cap and the early stop after a failed * keep abusive patterns
 * (many stars) from taking exponential time. */
#include "broker/pubsub.h"

static int match(const char *pattern, long plen, const char *string, long slen, int *skip_longer,
                 int nesting)
{
#define AT(i) ((i) < plen ? pattern[i] : '\0')
    if (nesting > 1000) return 0;
    while (plen && slen) {
        switch (pattern[0]) {
        case '*':
            while (plen && AT(1) == '*') {
                pattern++;
                plen--;
            }
            if (plen == 1) return 1;
            while (slen) {
                if (match(pattern + 1, plen - 1, string, slen, skip_longer, nesting + 1)) return 1;
                if (*skip_longer) return 0;
                string++;
                slen--;
            }
            *skip_longer = 1;
            return 0;
        case '?':
            string++;
            slen--;
            break;
        case '[': {
            int not, matched = 0;
            pattern++;
            plen--;
            not = AT(0) == '^';
            if (not ) {
                pattern++;
                plen--;
            }
            for (;;) {
                if (AT(0) == '\\' && plen >= 2) {
                    pattern++;
                    plen--;
                    if (pattern[0] == string[0]) matched = 1;
                } else if (AT(0) == ']') {
                    break;
                } else if (plen == 0) {
                    pattern--;
                    plen++;
                    break;
                } else if (plen >= 3 && pattern[1] == '-') {
                    int start = pattern[0], end = pattern[2], ch = string[0];
                    if (start > end) {
                        int t = start;
                        start = end;
                        end = t;
                    }
                    pattern += 2;
                    plen -= 2;
                    if (ch >= start && ch <= end) matched = 1;
                } else if (pattern[0] == string[0]) {
                    matched = 1;
                }
                pattern++;
                plen--;
            }
            if (not ) matched = !matched;
            if (!matched) return 0;
            string++;
            slen--;
            break;
        }
        case '\\':
            if (plen >= 2) {
                pattern++;
                plen--;
            }
            /* fall through */
        default:
            if (pattern[0] != string[0]) return 0;
            string++;
            slen--;
            break;
        }
        pattern++;
        plen--;
        if (slen == 0) {
            while (plen > 0 && pattern[0] == '*') {
                pattern++;
                plen--;
            }
            break;
        }
    }
    return plen == 0 && slen == 0;
#undef AT
}

int colony__broker_glob_match(const char *pattern, size_t plen, const char *string, size_t slen)
{
    int skip_longer = 0;
    return match(pattern, (long)plen, string, (long)slen, &skip_longer, 0);
}
