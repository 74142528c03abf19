/* WebSocket through the gateway (docs/gateway.md, "WebSocket"): on a route
 * with "websocket": true, a request with Connection: upgrade and Upgrade:
 * websocket is forwarded with both headers kept; when the upstream answers
 * 101 the gateway answers 101 with the upstream's headers and pipes the two
 * connections into each other, pausing the side that sends faster than the
 * other drains. Everything before the 101 (routing, security checks, rate
 * limits) is the ordinary request path of proxy.c. */
#ifndef COLONY_GATEWAY_WEBSOCKET_H
#define COLONY_GATEWAY_WEBSOCKET_H

#include <stdint.h>
#include "colony/http_client.h"
#include "colony/metrics.h"
#include "colony/request.h"
#include "gateway/config.h"
#include "gateway/forward.h"

typedef struct gw_ws {
    _Atomic uint64_t open;         /* tunnels open now (read by the admin API) */
    _Atomic uint64_t total;        /* tunnels ever opened */
    uint64_t bytes_up, bytes_down; /* client to upstream, upstream to client */
    int access_log;
    colony_metric *m_open;     /* gateway_websocket_tunnels (gauge) */
    colony_metric *m_bytes;    /* gateway_websocket_bytes_total{route,direction} */
    colony_metric *m_total;    /* gateway_websocket_tunnels_total{route} */
    void (*on_idle)(void *ud); /* the last open tunnel ended (a stopping worker closes) */
    void *idle_ud;
} gw_ws;

/* Registers the metrics in m (may be NULL). 0 or COLONY_ENOMEM. */
int colony__gw_ws_init(gw_ws *ws, colony_metrics *m, int access_log);
/* 1 if req asks for a WebSocket upgrade: a "websocket" token in Upgrade and an
 * "upgrade" token in Connection, on HTTP/1.1. */
int colony__gw_ws_requested(colony_request *req);
/* Keeps Connection: Upgrade and the client's Upgrade in the upstream request. */
int colony__gw_ws_forward(gw_forward *f, colony_request *req);
/* The upstream answered call with 101 (inside its done_cb): answers req with
 * 101 and the upstream's end-to-end headers (after the route's response
 * header transforms), and pipes the two tunnels until either side closes.
 * *bytes_out counts bytes sent to the client until the client's side
 * closes. 0, or an error after which nothing was sent to the client and the
 * upstream connection is closed (answer 502). */
int colony__gw_ws_start(gw_ws *ws, colony_request *req, const gw_route_conf *route,
                        colony_client_call *call, const colony_client_response *res,
                        uint64_t *bytes_out);

#endif
