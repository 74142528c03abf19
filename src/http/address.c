/* TCP listen addresses (address.h). */
#include "http/address.h"
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "colony/error.h"

static int parse_port(const char *s, int *port)
{
    if (!*s) return COLONY_EINVAL;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 0 || v > 65535) return COLONY_EINVAL;
    *port = (int)v;
    return 0;
}

int colony__address_parse_tcp(const char *address, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[64];
    int port;
    memset(ss, 0, sizeof(*ss));
    if (address[0] == '[') {
        const char *close = strchr(address, ']');
        if (!close || close[1] != ':' || (size_t)(close - address - 1) >= sizeof(host))
            return COLONY_EINVAL;
        memcpy(host, address + 1, (size_t)(close - address - 1));
        host[close - address - 1] = '\0';
        if (parse_port(close + 2, &port)) return COLONY_EINVAL;
        if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss)) return COLONY_EINVAL;
        *len = sizeof(struct sockaddr_in6);
        return 0;
    }
    const char *colon = strrchr(address, ':');
    if (!colon || (size_t)(colon - address) >= sizeof(host)) return COLONY_EINVAL;
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    if (parse_port(colon + 1, &port)) return COLONY_EINVAL;
    if (!host[0] || strcmp(host, "*") == 0) strcpy(host, "0.0.0.0");
    if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss)) return COLONY_EINVAL;
    *len = sizeof(struct sockaddr_in);
    return 0;
}
