/* Deadlines: an absolute time on a clock, passed between services as the
 * time remaining (X-Colony-Deadline-Ms or gRPC's grpc-timeout). */
#include "colony/error.h"
#include "colony/resilience.h"
#include <stdio.h>

static uint64_t add_saturating(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX - 1 : a + b;
}

colony_deadline colony_deadline_in(const colony_clock *clock, uint64_t timeout_ms)
{
    colony_deadline d = {.at_ms = 0, .clock = clock ? *clock : colony_clock_system()};
    if (!d.clock.now_ms) d.clock = colony_clock_system();
    /* UINT64_MAX is reserved for "none": a huge timeout stays a real deadline. */
    d.at_ms = add_saturating(colony_clock_now(&d.clock), timeout_ms);
    return d;
}

colony_deadline colony_deadline_none(const colony_clock *clock)
{
    colony_deadline d = {.at_ms = UINT64_MAX, .clock = clock ? *clock : colony_clock_system()};
    if (!d.clock.now_ms) d.clock = colony_clock_system();
    return d;
}

uint64_t colony_deadline_remaining(const colony_deadline *d)
{
    if (d->at_ms == UINT64_MAX) return UINT64_MAX;
    uint64_t now = colony_clock_now(&d->clock);
    return now >= d->at_ms ? 0 : d->at_ms - now;
}

int colony_deadline_expired(const colony_deadline *d)
{
    return colony_deadline_remaining(d) == 0;
}

uint64_t colony_deadline_timeout_ms(const colony_deadline *d, uint64_t local_timeout_ms)
{
    uint64_t left = colony_deadline_remaining(d);
    if (local_timeout_ms && local_timeout_ms < left) return local_timeout_ms;
    return left;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Strips spaces and tabs around value[0..*len); returns the new start. */
static const char *trim(const char *value, size_t *len)
{
    size_t n = *len;
    while (n && is_space(*value)) {
        value++;
        n--;
    }
    while (n && is_space(value[n - 1]))
        n--;
    *len = n;
    return value;
}

/* Parses exactly 1..max_digits ASCII digits; no sign, no spaces inside. */
static int parse_digits(const char *s, size_t len, size_t max_digits, uint64_t *out)
{
    if (len == 0 || len > max_digits) return COLONY_EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return COLONY_EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static void set_from_remaining(const colony_clock *clock, uint64_t ms, uint64_t max_ms,
                               colony_deadline *out)
{
    if (max_ms && ms > max_ms) ms = max_ms;
    *out = colony_deadline_in(clock, ms);
}

int colony_deadline_from_header(const colony_clock *clock, const char *value, size_t len,
                                uint64_t max_ms, colony_deadline *out)
{
    if (!value || !out) return COLONY_EINVAL;
    value = trim(value, &len);
    uint64_t ms;
    /* 12 digits is ~31 years of milliseconds: more is garbage, not a deadline. */
    int rc = parse_digits(value, len, 12, &ms);
    if (rc) return rc;
    set_from_remaining(clock, ms, max_ms, out);
    return 0;
}

/* grpc-timeout: TimeoutValue (1-8 digits) then TimeoutUnit; rounded up to
 * whole milliseconds so a tiny positive timeout does not become "expired". */
int colony_deadline_from_grpc_timeout(const colony_clock *clock, const char *value, size_t len,
                                      uint64_t max_ms, colony_deadline *out)
{
    if (!value || !out) return COLONY_EINVAL;
    value = trim(value, &len);
    if (len < 2) return COLONY_EINVAL;
    uint64_t n;
    int rc = parse_digits(value, len - 1, 8, &n);
    if (rc) return rc;
    uint64_t ms;
    switch (value[len - 1]) {
    case 'H':
        ms = n * 3600000u;
        break;
    case 'M':
        ms = n * 60000u;
        break;
    case 'S':
        ms = n * 1000u;
        break;
    case 'm':
        ms = n;
        break;
    case 'u':
        ms = (n + 999u) / 1000u;
        break;
    case 'n':
        ms = (n + 999999u) / 1000000u;
        break;
    default:
        return COLONY_EINVAL;
    }
    set_from_remaining(clock, ms, max_ms, out);
    return 0;
}

int colony_deadline_to_header(const colony_deadline *d, char *out, size_t size)
{
    if (d->at_ms == UINT64_MAX) return COLONY_ENOENT;
    uint64_t left = colony_deadline_remaining(d);
    if (left == 0) return COLONY_ETIMEDOUT;
    if (left > 999999999999u) left = 999999999999u; /* what from_header accepts */
    int n = snprintf(out, size, "%llu", (unsigned long long)left);
    if (n < 0 || (size_t)n >= size) {
        if (size) out[0] = '\0';
        return COLONY_E2BIG;
    }
    return n;
}
