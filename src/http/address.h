/* Listen addresses as the daemons take them on the command line: "host:port"
 * (IPv4), "[v6]:port", "localhost:port", ":port" and "*:port" (every IPv4
 * interface). Shared by the HTTP server and the broker's RESP listener. */
#ifndef COLONY_HTTP_ADDRESS_H
#define COLONY_HTTP_ADDRESS_H

#include <sys/socket.h>

/* Fills ss and *len (the sockaddr's size). 0 or COLONY_EINVAL. */
int colony__address_parse_tcp(const char *address, struct sockaddr_storage *ss, socklen_t *len);

#endif
