/* Glob patterns of PSUBSCRIBE and PUBSUB CHANNELS, case-sensitive, with the
 * syntax Redis documents: `*` any run of bytes, `?` one byte, `[abc]`,
 * `[^abc]` and `[a-z]` (bounds in either order) for one byte of a set, and
 * `\x` for x itself, inside or outside a set. A `[` never closed takes the
 * rest of the pattern as its set. Redis's edges are kept, since clients see
 * them: an empty name matches no pattern but the empty one, and `x-y` in a
 * set is a range even when y is `]`.
 *
 * Written for this project: an iterative matcher that remembers only the
 * last `*` and, on a mismatch, lets that star take one more byte. Time is
 * bounded by pattern length x subject length whatever the pattern (no
 * recursion, so a pattern of many stars cannot exhaust the stack or take
 * exponential time). */
#include "broker/pubsub.h"

/* Whether byte ch is in the set that starts after the `[` at p[0] and runs to
 * its `]` (or the pattern's end); *span gets the set's length with brackets.
 * As in Redis, `x-y` is a range whatever y is (a `]` too, which then does not
 * close the set), and an escaped byte is only ever itself. */
static int in_set(const char *p, size_t plen, unsigned char ch, size_t *span)
{
    size_t i = 1;
    int negate = i < plen && p[i] == '^';
    if (negate) i++;
    int hit = 0;
    while (i < plen && p[i] != ']') {
        unsigned char lo = (unsigned char)p[i];
        if (lo == '\\' && i + 1 < plen) {
            hit |= (unsigned char)p[++i] == ch;
        } else if (i + 2 < plen && p[i + 1] == '-') {
            unsigned char hi = (unsigned char)p[i + 2];
            if (lo > hi) {
                unsigned char t = lo;
                lo = hi;
                hi = t;
            }
            hit |= ch >= lo && ch <= hi;
            i += 2;
        } else {
            hit |= ch == lo;
        }
        i++;
    }
    *span = i < plen ? i + 1 : plen; /* past the `]`, or the whole rest */
    return hit != negate;
}

/* Whether the pattern element at p[0] (not a `*`) matches ch; *span gets its
 * length in the pattern. */
static int element_matches(const char *p, size_t plen, unsigned char ch, size_t *span)
{
    switch (p[0]) {
    case '?':
        *span = 1;
        return 1;
    case '[':
        return in_set(p, plen, ch, span);
    case '\\':
        if (plen >= 2) {
            *span = 2;
            return (unsigned char)p[1] == ch;
        }
        /* a trailing backslash stands for itself */
        /* fall through */
    default:
        *span = 1;
        return (unsigned char)p[0] == ch;
    }
}

int colony__broker_glob_match(const char *pattern, size_t plen, const char *string, size_t slen)
{
    size_t pi = 0, si = 0;
    size_t star_pi = 0, star_si = 0; /* after the last star, and where it began to match */
    int have_star = 0;
    if (slen == 0) return plen == 0; /* Redis: no pattern, not even `*`, matches "" */
    while (si < slen) {
        if (pi < plen && pattern[pi] == '*') {
            while (pi < plen && pattern[pi] == '*')
                pi++;
            if (pi == plen) return 1; /* a trailing star takes the rest */
            have_star = 1;
            star_pi = pi;
            star_si = si;
            continue;
        }
        size_t span;
        if (pi < plen &&
            element_matches(pattern + pi, plen - pi, (unsigned char)string[si], &span)) {
            pi += span;
            si++;
            continue;
        }
        if (!have_star) return 0;
        pi = star_pi; /* the star takes one byte more */
        si = ++star_si;
    }
    while (pi < plen && pattern[pi] == '*')
        pi++;
    return pi == plen;
}
