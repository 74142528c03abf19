/* WebSocket tunnels through the gateway (websocket.h). The client's
 * connection (a server tunnel) and the upstream's (a client tunnel) are piped
 * into each other byte for byte: the gateway does not parse frames. Flow
 * control: when the side being written to holds more than GW_WS_HIGH unsent
 * bytes, the side feeding it stops reading until that write reached the
 * kernel, so a tunnel holds at most about GW_WS_HIGH plus one read per
 * direction, whatever the messages' sizes. */
#include "gateway/websocket.h"
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "gateway/transform.h"

#define GW_WS_HIGH (256u << 10)

typedef struct gw_tunnel {
    gw_ws *ws;
    uv_loop_t *loop;
    char *route;
    colony_tunnel *down;      /* the client's side; NULL once closed */
    colony_client_tunnel *up; /* the upstream's side; NULL once closed */
    uint64_t *bytes_out;      /* the request's bytes_out, until the client's side closes */
    uint64_t bytes_up, bytes_down;
    uint64_t start_ms;
    int down_err, up_err;
    int down_paused, up_paused; /* not reading that side: the other is backed up */
} gw_tunnel;

int colony__gw_ws_init(gw_ws *ws, colony_metrics *m, int access_log)
{
    memset(ws, 0, sizeof(*ws));
    ws->access_log = access_log;
    if (!m) return 0;
    static const char *const by_route_dir[] = {"route", "direction", NULL};
    static const char *const by_route[] = {"route", NULL};
    ws->m_open =
        colony_metrics_gauge(m, "gateway_websocket_tunnels", "WebSocket tunnels open now.", NULL);
    ws->m_bytes = colony_metrics_counter(m, "gateway_websocket_bytes_total",
                                         "Bytes relayed by closed WebSocket tunnels, by route "
                                         "and direction (up: client to upstream).",
                                         by_route_dir);
    ws->m_total = colony_metrics_counter(m, "gateway_websocket_tunnels_total",
                                         "WebSocket tunnels opened, by route.", by_route);
    return ws->m_open && ws->m_bytes && ws->m_total ? 0 : COLONY_ENOMEM;
}

/* 1 if the comma-separated list holds token (case-insensitive). */
static int list_has(const char *list, const char *token)
{
    return colony__gw_list_has(list, token, strlen(token));
}

int colony__gw_ws_requested(colony_request *req)
{
    if (colony_request_version_minor(req) < 1) return 0;
    const char *method = colony_request_method(req);
    if (strcmp(method, "GET") != 0) return 0; /* RFC 6455 4.1 */
    return list_has(colony_request_header(req, "Upgrade"), "websocket") &&
           list_has(colony_request_header(req, "Connection"), "upgrade");
}

int colony__gw_ws_forward(gw_forward *f, colony_request *req)
{
    const char *added[] = {"Connection", "Upgrade", "Upgrade",
                           colony_request_header(req, "Upgrade")};
    return colony__gw_forward_add_headers(f, added, 2);
}

static void maybe_free(gw_tunnel *gt)
{
    if (gt->down || gt->up) return;
    gw_ws *ws = gt->ws;
    uint64_t ms = uv_now(gt->loop) - gt->start_ms;
    ws->open--;
    ws->bytes_up += gt->bytes_up;
    ws->bytes_down += gt->bytes_down;
    if (ws->m_open) colony_metric_inc(colony_metric_with(ws->m_open), -1);
    if (ws->m_bytes) {
        colony_metric_inc(colony_metric_with(ws->m_bytes, gt->route, "up"), (double)gt->bytes_up);
        colony_metric_inc(colony_metric_with(ws->m_bytes, gt->route, "down"),
                          (double)gt->bytes_down);
    }
    if (ws->access_log)
        COLONY_LOG_INFO(
            "websocket closed", COLONY_LF_STR("route", gt->route),
            COLONY_LF_INT("bytes_up", (long long)gt->bytes_up),
            COLONY_LF_INT("bytes_down", (long long)gt->bytes_down),
            COLONY_LF_INT("duration_ms", (long long)ms),
            COLONY_LF_STR("client_end", gt->down_err ? colony_strerror(gt->down_err) : "closed"),
            COLONY_LF_STR("upstream_end", gt->up_err ? colony_strerror(gt->up_err) : "closed"));
    colony__free(gt->route);
    colony__free(gt);
    if (ws->open == 0 && ws->on_idle) ws->on_idle(ws->idle_ud);
}

/* A write to the upstream that crossed GW_WS_HIGH reached the kernel. */
static void up_drained(colony_client_tunnel *t, int status, void *ud)
{
    (void)t;
    gw_tunnel *gt = ud;
    if (status == 0 && gt->down && gt->down_paused && colony_tunnel_resume(gt->down) == 0)
        gt->down_paused = 0;
}

/* A write to the client that crossed GW_WS_HIGH reached the kernel. */
static void down_drained(colony_tunnel *t, int status, void *ud)
{
    (void)t;
    gw_tunnel *gt = ud;
    if (status == 0 && gt->up && gt->up_paused && colony_client_tunnel_resume(gt->up) == 0)
        gt->up_paused = 0;
}

/* Client to upstream. */
static void down_data(colony_tunnel *t, const char *data, size_t len, void *ud)
{
    gw_tunnel *gt = ud;
    if (!gt->up) return;
    int full = colony_client_tunnel_pending(gt->up) + len > GW_WS_HIGH;
    int rc = colony_client_tunnel_write(gt->up, data, len, full ? up_drained : NULL, gt);
    if (rc) { /* the upstream side is going: so is this one */
        colony_tunnel_close(t);
        return;
    }
    gt->bytes_up += len;
    if (full && colony_tunnel_pause(t) == 0) gt->down_paused = 1;
}

/* Upstream to client. */
static void up_data(colony_client_tunnel *t, const char *data, size_t len, void *ud)
{
    gw_tunnel *gt = ud;
    if (!gt->down) return;
    int full = colony_tunnel_pending(gt->down) + len > GW_WS_HIGH;
    int rc = colony_tunnel_write(gt->down, data, len, full ? down_drained : NULL, gt);
    if (rc) {
        colony_client_tunnel_close(t);
        return;
    }
    gt->bytes_down += len;
    if (gt->bytes_out) *gt->bytes_out += len;
    if (full && colony_client_tunnel_pause(t) == 0) gt->up_paused = 1;
}

/* One side ended: the other writes what it holds and closes. */
static void down_closed(colony_tunnel *t, int err, void *ud)
{
    (void)t;
    gw_tunnel *gt = ud;
    gt->down = NULL;
    gt->down_err = err;
    gt->bytes_out = NULL; /* the request finishes right after this */
    if (gt->up) colony_client_tunnel_close(gt->up);
    maybe_free(gt);
}

static void up_closed(colony_client_tunnel *t, int err, void *ud)
{
    (void)t;
    gw_tunnel *gt = ud;
    gt->up = NULL;
    gt->up_err = err;
    if (gt->down) colony_tunnel_close(gt->down);
    maybe_free(gt);
}

/* The upstream's Upgrade value ("websocket"), or NULL. */
static const char *upgrade_value(colony_request *req, const colony_client_response *res)
{
    for (size_t i = 0; i < res->num_headers; i++)
        if (res->headers[i].name_len == 7 && strncasecmp(res->headers[i].name, "Upgrade", 7) == 0)
            return colony_arena_strndup(colony_request_arena(req), res->headers[i].value,
                                        res->headers[i].value_len);
    return NULL;
}

int colony__gw_ws_start(gw_ws *ws, colony_request *req, const gw_route_conf *route,
                        colony_client_call *call, const colony_client_response *res,
                        uint64_t *bytes_out)
{
    const char *protocol = upgrade_value(req, res);
    if (!protocol || !list_has(protocol, "websocket")) return COLONY_EPROTO;
    gw_tunnel *gt = colony__calloc(1, sizeof(*gt));
    if (!gt) return COLONY_ENOMEM;
    gt->route = colony__strdup(route->match.name);
    int rc = gt->route ? colony__gw_transform_response(req, res, route) : COLONY_ENOMEM;
    if (!rc) rc = colony_request_upgrade(req, protocol, down_data, down_closed, gt, &gt->down);
    if (rc) { /* nothing sent; the untaken upstream side closes after done_cb */
        colony__free(gt->route);
        colony__free(gt);
        return rc;
    }
    gt->ws = ws;
    gt->loop = colony_request_loop(req);
    gt->start_ms = uv_now(gt->loop);
    gt->bytes_out = bytes_out;
    ws->open++;
    ws->total++;
    if (ws->m_open) colony_metric_inc(colony_metric_with(ws->m_open), 1);
    if (ws->m_total) colony_metric_inc(colony_metric_with(ws->m_total, gt->route), 1);
    if (colony_client_call_tunnel(call, up_data, up_closed, gt, &gt->up) != 0)
        colony_tunnel_close(gt->down); /* cannot happen inside done_cb of a 101 */
    return 0;
}
