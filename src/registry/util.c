/* Small helpers for the registry: Go duration strings, check status names and lenient JSON field
 * lookup. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "registry/registry_internal.h"

const char *colony__reg_status_name(int status)
{
    switch (status) {
    case REG_PASSING:
        return "passing";
    case REG_WARNING:
        return "warning";
    default:
        return "critical";
    }
}

int colony__reg_status_parse(const char *s)
{
    if (!s) return -1;
    if (strcmp(s, "passing") == 0) return REG_PASSING;
    if (strcmp(s, "warning") == 0) return REG_WARNING;
    if (strcmp(s, "critical") == 0) return REG_CRITICAL;
    return -1;
}

static double unit_ms(const char *u, size_t n)
{
    static const struct {
        const char *name;
        double ms;
    } units[] = {{"ns", 1e-6}, {"us", 1e-3}, {"\xc2\xb5s", 1e-3}, {"\xce\xbcs", 1e-3},
                 {"ms", 1},    {"s", 1000},  {"m", 60000},        {"h", 3600000}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strlen(units[i].name) == n && memcmp(units[i].name, u, n) == 0) return units[i].ms;
    return -1;
}

/* Follows Go's time.ParseDuration: an optional sign, then one or more
 * <decimal><unit> pairs; "0" alone is allowed. Negative durations are refused. */
int colony__reg_parse_duration(const char *s, uint64_t *out_ms)
{
    if (!s || !*s) return COLONY_EINVAL;
    if (*s == '+') s++;
    if (*s == '-') return COLONY_EINVAL;
    if (strcmp(s, "0") == 0) {
        *out_ms = 0;
        return 0;
    }
    double total = 0;
    while (*s) {
        const char *start = s;
        while (isdigit((unsigned char)*s) || *s == '.')
            s++;
        if (s == start) return COLONY_EINVAL;
        char num[64];
        size_t nlen = (size_t)(s - start);
        if (nlen >= sizeof(num)) return COLONY_EINVAL;
        memcpy(num, start, nlen);
        num[nlen] = '\0';
        if (strchr(num, '.') != strrchr(num, '.') || strcmp(num, ".") == 0) return COLONY_EINVAL;
        const char *ustart = s;
        while (*s && !isdigit((unsigned char)*s) && *s != '.')
            s++;
        double mul = unit_ms(ustart, (size_t)(s - ustart));
        if (mul < 0) return COLONY_EINVAL;
        total += strtod(num, NULL) * mul;
        if (total > 9.2e15) return COLONY_ERANGE;
    }
    *out_ms = (uint64_t)ceil(total);
    return 0;
}

static int same_field(const char *a, const char *b)
{
    for (;;) {
        while (*a == '_')
            a++;
        while (*b == '_')
            b++;
        if (!*a || !*b) return *a == *b;
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
        a++;
        b++;
    }
}

json_t *colony__reg_field(const json_t *obj, const char *name)
{
    if (!json_is_object(obj)) return NULL;
    json_t *v = json_object_get(obj, name);
    if (v) return v;
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)obj, k, val)
    {
        if (same_field(k, name)) return val;
    }
    return NULL;
}
