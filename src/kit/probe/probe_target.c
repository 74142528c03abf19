/* Probe targets: a TCP address is "host:port" or "[v6]:port" with a port of
 * digits only in 1..65535; an HTTP target is a URL the HTTP client accepts
 * (http:// or http+unix://). Both are checked when a probe is defined, so a
 * bad one is refused there and never becomes a probe that fails forever. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "colony/error.h"
#include "http/client_internal.h"
#include "kit/probe/probe_internal.h"

#define SAY(...)                                                                                   \
    do {                                                                                           \
        if (msg && msg_size) snprintf(msg, msg_size, __VA_ARGS__);                                 \
    } while (0)

static int parse_port(const char *p, size_t n, int *port)
{
    if (n == 0 || n > 5) return COLONY_EINVAL;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return COLONY_EINVAL;
        v = v * 10 + (p[i] - '0');
    }
    if (v < 1 || v > 65535) return COLONY_EINVAL;
    *port = v;
    return 0;
}

int colony__probe_parse_hostport(const char *s, size_t n, char *host, size_t host_size, int *port,
                                 char *msg, size_t msg_size)
{
    const char *colon = NULL;
    for (size_t i = n; i > 0; i--)
        if (s[i - 1] == ':') {
            colon = s + i - 1;
            break;
        }
    if (!colon) {
        SAY("TCP address must be host:port (got \"%.*s\")", (int)(n > 200 ? 200 : n), s);
        return COLONY_EINVAL;
    }
    const char *h = s;
    size_t hlen = (size_t)(colon - s);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
        unsigned char addr[16];
        char tmp[64];
        if (hlen >= sizeof(tmp)) hlen = sizeof(tmp) - 1;
        memcpy(tmp, h, hlen);
        tmp[hlen] = '\0';
        if (uv_inet_pton(AF_INET6, tmp, addr) != 0) {
            SAY("TCP address has a bad IPv6 literal [%s]", tmp);
            return COLONY_EINVAL;
        }
    } else if (memchr(h, ':', hlen) || memchr(h, '[', hlen) || memchr(h, ']', hlen)) {
        SAY("TCP address must be host:port, with an IPv6 host in brackets (got \"%.*s\")",
            (int)(n > 200 ? 200 : n), s);
        return COLONY_EINVAL;
    }
    if (hlen == 0 || hlen >= host_size) {
        SAY(hlen ? "TCP address host is too long" : "TCP address has no host (got \"%.*s\")",
            (int)(n > 200 ? 200 : n), s);
        return COLONY_EINVAL;
    }
    for (size_t i = 0; i < hlen; i++) {
        unsigned char ch = (unsigned char)h[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '/' || ch == '@') {
            SAY("TCP address host has a character that cannot be in a host name");
            return COLONY_EINVAL;
        }
    }
    size_t plen = n - (size_t)(colon + 1 - s);
    if (parse_port(colon + 1, plen, port)) {
        SAY("TCP address port must be a number from 1 to 65535 (got \"%.*s\")",
            (int)(plen > 20 ? 20 : plen), colon + 1);
        return COLONY_EINVAL;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    return 0;
}

int colony__probe_target_key(colony_probe_kind kind, const char *target, char *host,
                             size_t host_size, int *port, char *msg, size_t msg_size)
{
    if (!target || !*target) {
        SAY("a probe needs a target");
        return COLONY_EINVAL;
    }
    if (kind == COLONY_PROBE_TCP)
        return colony__probe_parse_hostport(target, strlen(target), host, host_size, port, msg,
                                            msg_size);
    if (kind != COLONY_PROBE_HTTP) {
        SAY("unknown probe kind %d", (int)kind);
        return COLONY_EINVAL;
    }
    colony__client_url u;
    if (colony__client_url_parse(target, &u)) {
        SAY("HTTP probe URL must be http://host[:port]/path or https://..., port 1..65535 (got "
            "\"%.200s\")",
            target);
        return COLONY_EINVAL;
    }
    /* The scheduling key is the origin: all probes of one server share it. */
    if (colony__client_url_origin(&u, host, host_size) < 0) {
        SAY("HTTP probe URL host is too long");
        return COLONY_EINVAL;
    }
    *port = u.port;
    return 0;
}

int colony_probe_options_check(const colony_probe_options *o, char *msg, size_t msg_size)
{
    if (msg && msg_size) msg[0] = '\0';
    if (!o) return COLONY_EINVAL;
    char host[PROBE_HOST_MAX + 40];
    int port;
    int rc = colony__probe_target_key(o->kind, o->target, host, sizeof(host), &port, msg, msg_size);
    if (rc) return rc;
    if (o->interval_ms == 0 || o->timeout_ms == 0) {
        SAY("a probe needs an interval and a timeout above 0");
        return COLONY_EINVAL;
    }
    if (o->method && !*o->method) {
        SAY("HTTP probe method is empty");
        return COLONY_EINVAL;
    }
    return 0;
}
