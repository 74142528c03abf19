/* URL parsing for the HTTP client: http://host[:port][/path][?query] with
 * [IPv6] literals and default port 80, and http+unix://<percent-encoded
 * socket path>[/path][?query], and https:// (default port 443; the TLS is
 * client_tls.c's). Userinfo is refused and fragments dropped. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <uv.h>
#include "colony/error.h"
#include "http/client_internal.h"
#include "http/parser_internal.h"

static int is_host_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* The request target may hold any visible ASCII; it ends at '#'. */
static int parse_target(const char *p, colony__client_url *out)
{
    const char *start = p;
    while (*p && *p != '#') {
        unsigned char ch = (unsigned char)*p;
        if (ch <= 0x20 || ch >= 0x7f) return COLONY_EINVAL;
        p++;
    }
    out->target = start;
    out->target_len = (size_t)(p - start);
    out->target_needs_slash = out->target_len == 0 || start[0] != '/';
    return 0;
}

/* Decimal port 1..65535. */
static int parse_port(const char *p, size_t len, uint16_t *port)
{
    if (len == 0 || len > 5) return COLONY_EINVAL;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') return COLONY_EINVAL;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v == 0 || v > 65535) return COLONY_EINVAL;
    *port = (uint16_t)v;
    return 0;
}

static int parse_tcp_authority(const char *p, colony__client_url *out, const char **rest,
                               uint16_t default_port)
{
    const char *host;
    size_t host_len;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (!close) return COLONY_EINVAL;
        host = p + 1;
        host_len = (size_t)(close - host);
        if (host_len == 0 || host_len > 45) return COLONY_EINVAL;
        memcpy(out->host, host, host_len);
        out->host[host_len] = '\0';
        unsigned char probe[16];
        if (uv_inet_pton(AF_INET6, out->host, probe) != 0) return COLONY_EINVAL;
        out->is_ipv6_literal = 1;
        p = close + 1;
    } else {
        host = p;
        while (is_host_char((unsigned char)*p))
            p++;
        host_len = (size_t)(p - host);
        if (host_len == 0 || host_len > COLONY__URL_HOST_MAX) return COLONY_EINVAL;
        for (size_t i = 0; i < host_len; i++) {
            char ch = host[i];
            out->host[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
        out->host[host_len] = '\0';
    }
    out->port = default_port;
    if (*p == ':') {
        const char *port = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (parse_port(port, (size_t)(p - port), &out->port)) return COLONY_EINVAL;
    }
    if (*p && *p != '/' && *p != '?' && *p != '#') return COLONY_EINVAL; /* '@', junk */
    *rest = p;
    return 0;
}

/* The authority of http+unix:// is the socket path, percent-encoded so that
 * its slashes do not start the request path. */
static int parse_unix_authority(const char *p, colony__client_url *out, const char **rest)
{
    size_t n = 0;
    const size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
    while (*p && *p != '/' && *p != '?' && *p != '#') {
        unsigned char ch = (unsigned char)*p;
        if (ch == '%') {
            int hi = colony__http_hex_value((unsigned char)p[1]);
            int lo = hi < 0 ? -1 : colony__http_hex_value((unsigned char)p[2]);
            if (lo < 0) return COLONY_EINVAL;
            ch = (unsigned char)(hi * 16 + lo);
            if (ch == 0) return COLONY_EINVAL;
            p += 3;
        } else {
            if (ch <= 0x20 || ch >= 0x7f) return COLONY_EINVAL;
            p++;
        }
        if (n >= max) return COLONY_EINVAL;
        out->host[n++] = (char)ch;
    }
    if (n == 0) return COLONY_EINVAL;
    out->host[n] = '\0';
    out->is_unix = 1;
    out->port = 0;
    *rest = p;
    return 0;
}

int colony__client_url_parse(const char *url, colony__client_url *out)
{
    if (!url || !out) return COLONY_EINVAL;
    memset(out, 0, sizeof(*out));
    if (strnlen(url, COLONY__URL_MAX + 1) > COLONY__URL_MAX) return COLONY_EINVAL;
    const char *rest;
    int rc;
    if (strncasecmp(url, "http://", 7) == 0)
        rc = parse_tcp_authority(url + 7, out, &rest, 80);
    else if (strncasecmp(url, "https://", 8) == 0) {
        out->is_https = 1;
        rc = parse_tcp_authority(url + 8, out, &rest, 443);
    } else if (strncasecmp(url, "http+unix://", 12) == 0)
        rc = parse_unix_authority(url + 12, out, &rest);
    else
        return COLONY_EINVAL;
    if (rc) return rc;
    return parse_target(rest, out);
}

int colony__client_url_origin(const colony__client_url *u, char *out, size_t cap)
{
    int n;
    const char *scheme = u->is_https ? "https" : "http";
    if (u->is_unix)
        n = snprintf(out, cap, "%s", u->host);
    else if (u->is_ipv6_literal)
        n = snprintf(out, cap, "%s://[%s]:%u", scheme, u->host, (unsigned)u->port);
    else
        n = snprintf(out, cap, "%s://%s:%u", scheme, u->host, (unsigned)u->port);
    return n < 0 || (size_t)n >= cap ? COLONY_E2BIG : n;
}

int colony__client_url_host_header(const colony__client_url *u, char *out, size_t cap)
{
    int n;
    const char *open = u->is_ipv6_literal ? "[" : "";
    const char *close = u->is_ipv6_literal ? "]" : "";
    if (u->is_unix)
        n = snprintf(out, cap, "localhost");
    else if (u->port == (u->is_https ? 443 : 80))
        n = snprintf(out, cap, "%s%s%s", open, u->host, close);
    else
        n = snprintf(out, cap, "%s%s%s:%u", open, u->host, close, (unsigned)u->port);
    return n < 0 || (size_t)n >= cap ? COLONY_E2BIG : n;
}
