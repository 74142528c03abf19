/* W3C Trace Context (https://www.w3.org/TR/trace-context/): traceparent and
 * tracestate parsing and validation, id generation and sampling decisions. */
#include <string.h>
#include <sys/random.h>
#include "colony/error.h"
#include "colony/trace.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1; /* uppercase is invalid per the spec */
}

/* Decodes 2n lowercase hex chars; returns 0 or -1. */
static int unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static int all_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i]) return 0;
    return 1;
}

int colony_traceparent_parse(const char *v, size_t len, colony_trace_context *ctx)
{
    memset(ctx, 0, sizeof(*ctx));
    if (!v || len < COLONY_TRACEPARENT_LEN) return COLONY_EINVAL;
    uint8_t version;
    if (unhex(v, &version, 1) || version == 0xff) return COLONY_EINVAL;
    if (v[2] != '-' || v[35] != '-' || v[52] != '-') return COLONY_EINVAL;
    /* Version 00 is exactly 55 chars; a later version may append "-..." fields. */
    if (version == 0 && len != COLONY_TRACEPARENT_LEN) return COLONY_EINVAL;
    if (len > COLONY_TRACEPARENT_LEN && v[COLONY_TRACEPARENT_LEN] != '-') return COLONY_EINVAL;
    colony_trace_context c = {0};
    if (unhex(v + 3, c.trace_id, 16) || unhex(v + 36, c.span_id, 8) || unhex(v + 53, &c.flags, 1))
        return COLONY_EINVAL;
    if (all_zero(c.trace_id, 16) || all_zero(c.span_id, 8)) return COLONY_EINVAL;
    if (version == 0) c.flags &= COLONY_TRACE_FLAG_SAMPLED; /* other bits are reserved in 00 */
    c.valid = 1;
    *ctx = c;
    return 0;
}

/* Two hex digits per byte from one table load: ids are hex-encoded for every
 * span (log context and traceparent). */
static const char hex_pairs[512 + 1] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

void colony_trace_hex(const uint8_t *bytes, size_t n, char *out)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) { /* ids are 8 or 16 bytes: four at a time */
        memcpy(out + 2 * i, hex_pairs + 2 * bytes[i], 2);
        memcpy(out + 2 * i + 2, hex_pairs + 2 * bytes[i + 1], 2);
        memcpy(out + 2 * i + 4, hex_pairs + 2 * bytes[i + 2], 2);
        memcpy(out + 2 * i + 6, hex_pairs + 2 * bytes[i + 3], 2);
    }
    for (; i < n; i++)
        memcpy(out + 2 * i, hex_pairs + 2 * bytes[i], 2);
    out[2 * n] = '\0';
}

void colony_traceparent_format(const uint8_t trace_id[16], const uint8_t span_id[8], uint8_t flags,
                               char out[56])
{
    memcpy(out, "00-", 3);
    colony_trace_hex(trace_id, 16, out + 3);
    out[35] = '-';
    colony_trace_hex(span_id, 8, out + 36);
    out[52] = '-';
    colony_trace_hex(&flags, 1, out + 53);
}

static int lcalpha(char c)
{
    return c >= 'a' && c <= 'z';
}

static int key_char(char c)
{
    return lcalpha(c) || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' || c == '/';
}

/* key = simple-key / multi-tenant-key
 * simple-key = lcalpha 0*255( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
 * multi-tenant-key = tenant-id "@" system-id
 * tenant-id = ( lcalpha / DIGIT ) 0*240( key chars ), system-id = lcalpha 0*13( key chars ) */
static int valid_key(const char *k, size_t n)
{
    const char *at = memchr(k, '@', n);
    if (!at) {
        if (n < 1 || n > 256 || !lcalpha(k[0])) return 0;
        for (size_t i = 1; i < n; i++)
            if (!key_char(k[i])) return 0;
        return 1;
    }
    size_t tn = (size_t)(at - k), sn = n - tn - 1;
    if (tn < 1 || tn > 241 || sn < 1 || sn > 14) return 0;
    if (!lcalpha(k[0]) && !(k[0] >= '0' && k[0] <= '9')) return 0;
    for (size_t i = 1; i < tn; i++)
        if (!key_char(k[i])) return 0;
    if (!lcalpha(at[1])) return 0;
    for (size_t i = 1; i < sn; i++)
        if (!key_char(at[1 + i])) return 0;
    return 1;
}

/* value = 0*255(chr) nblk-chr ; chr = %x20 / nblk-chr ; nblk-chr = %x21-2B / %x2D-3C / %x3E-7E */
static int valid_value(const char *v, size_t n)
{
    if (n < 1 || n > 256 || v[n - 1] == ' ') return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c > 0x7e || c == ',' || c == '=') return 0;
    }
    return 1;
}

int colony_tracestate_validate(const char *s, size_t len)
{
    struct {
        const char *k;
        size_t n;
    } keys[32];
    size_t members = 0;
    size_t i = 0;
    if (!s || len > COLONY_TRACESTATE_MAX) return COLONY_EINVAL;
    while (i <= len) {
        size_t end = i;
        while (end < len && s[end] != ',')
            end++;
        size_t a = i, b = end;
        while (a < b && (s[a] == ' ' || s[a] == '\t'))
            a++;
        while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
            b--;
        if (a < b) { /* empty list-members are allowed and ignored */
            const char *eq = memchr(s + a, '=', b - a);
            if (!eq || members == 32) return COLONY_EINVAL;
            size_t kn = (size_t)(eq - (s + a));
            if (!valid_key(s + a, kn) || !valid_value(eq + 1, (size_t)(s + b - eq - 1)))
                return COLONY_EINVAL;
            for (size_t j = 0; j < members; j++)
                if (keys[j].n == kn && memcmp(keys[j].k, s + a, kn) == 0) return COLONY_EINVAL;
            keys[members].k = s + a;
            keys[members].n = kn;
            members++;
        }
        i = end + 1;
    }
    return 0;
}

/* xoshiro256** per thread, seeded from getrandom: ids must be unique, not secret. */
static _Thread_local uint64_t rng_state[4];
static _Thread_local int rng_seeded;

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next_random(void)
{
    if (!rng_seeded) {
        if (getrandom(rng_state, sizeof(rng_state), 0) != (ssize_t)sizeof(rng_state) ||
            (rng_state[0] | rng_state[1] | rng_state[2] | rng_state[3]) == 0) {
            rng_state[0] = (uint64_t)(uintptr_t)&rng_state ^ 0x9e3779b97f4a7c15ull;
            rng_state[1] = 0xbf58476d1ce4e5b9ull;
        }
        rng_seeded = 1;
    }
    uint64_t *s = rng_state;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

void colony_trace_new_trace_id(uint8_t out[16])
{
    uint64_t hi, lo;
    do {
        hi = next_random();
        lo = next_random();
    } while ((hi | lo) == 0);
    memcpy(out, &hi, 8);
    memcpy(out + 8, &lo, 8);
}

void colony_trace_new_span_id(uint8_t out[8])
{
    uint64_t v;
    do
        v = next_random();
    while (v == 0);
    memcpy(out, &v, 8);
}

int colony_trace_should_sample(const colony_trace_context *parent, const uint8_t trace_id[16],
                               double ratio)
{
    if (parent && parent->valid) return (parent->flags & COLONY_TRACE_FLAG_SAMPLED) != 0;
    if (ratio >= 1) return 1;
    if (!(ratio > 0)) return 0;
    /* Low 8 bytes of the trace id as a big-endian number, compared to ratio * 2^64. */
    uint64_t v = 0;
    for (int i = 8; i < 16; i++)
        v = v << 8 | trace_id[i];
    return (double)v < ratio * 18446744073709551616.0;
}
