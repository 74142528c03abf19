/* What the gateway sends upstream for one request: the rewritten path with
 * its query, the request headers less hop-by-hop and identity headers, plus
 * Host and the forwarding headers (X-Forwarded-For/-Proto/-Host, Forwarded,
 * X-Request-ID); and what it sends back: the upstream's response headers less
 * hop-by-hop ones (RFC 9110 §7.6.1). Memory comes from the request arena. */
#ifndef COLONY_GATEWAY_FORWARD_H
#define COLONY_GATEWAY_FORWARD_H

#include <stddef.h>
#include "colony/http_client.h"
#include "colony/http_server.h"
#include "gateway/config.h"

typedef struct gw_forward {
    const char *method;
    const char **headers; /* name, value, ..., NULL; headers[host_slot + 1] is set per attempt */
    size_t host_slot;
    char *path_query; /* the upstream path and "?query" */
    char *url;        /* http[s]://address + path_query, rebuilt per attempt */
    size_t url_size;
    colony_arena *arena;
    const void *body;
    size_t body_len;
    int idempotent;
} gw_forward;

/* Prepares f for req matched by m (path: the normalized request path).
 * traceparent (may be NULL): the gateway's span, sent instead of the
 * client's. 0, COLONY_E2BIG (rewritten path too long) or COLONY_ENOMEM. */
int colony__gw_forward_prepare(gw_forward *f, colony_request *req, const gw_match *m,
                               const char *path, const gw_upstream *up, const char *traceparent);
/* Appends n name/value pairs (added: name, value, ...) to the upstream
 * headers; the strings must outlive the request (arena or config). */
int colony__gw_forward_add_headers(gw_forward *f, const char *const *added, size_t n);
/* 1 if the gateway speaks TLS to ep of up: every instance of an https
 * upstream, or a registry instance marked as speaking TLS (GW_ENDPOINT_TLS). */
int colony__gw_endpoint_https(const gw_upstream *up, const colony_endpoint *ep);
/* Fills out with the request for one attempt at address ("host:port"): when
 * https (colony__gw_endpoint_https), over TLS with the upstream's settings
 * (verification, client certificate); up may be NULL: http. */
int colony__gw_forward_target(gw_forward *f, const char *address, int https, const gw_upstream *up,
                              colony_client_request *out);
/* 1 if attempt number `attempts` may be followed by another. unsent: the
 * attempt failed before its request reached a connection, so the upstream saw
 * nothing and any method may go again (nginx's rule); otherwise only an
 * idempotent one, unless the route allows the others. */
int colony__gw_forward_may_retry(const gw_forward *f, const gw_route_conf *r, unsigned attempts,
                                 int unsent);
/* The balancer key of req for a hashing upstream (header, cookie or client
 * address), or NULL. */
const char *colony__gw_forward_hash_key(gw_forward *f, colony_request *req, const gw_upstream *up,
                                        size_t *len);
/* Copies the upstream response's end-to-end headers onto req's response. */
int colony__gw_forward_response_head(colony_request *req, const colony_client_response *res);

/* 1 if the comma-separated header value list (may be NULL) holds token
 * (len bytes), case-insensitively: Connection, Upgrade. */
int colony__gw_list_has(const char *list, const char *token, size_t len);

/* 1 if name is hop-by-hop for a message whose Connection header is
 * `connection` (may be NULL): never forwarded either way. */
int colony__gw_hop_by_hop(const char *name, size_t name_len, const char *connection);

#endif
