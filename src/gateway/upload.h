/* Request bodies through the gateway (docs/gateway.md, "Streamed bodies"): a
 * request with a body is routed from the proxy server's head hook, before
 * any body byte is read, with its body paused; security checks and rate
 * limits run then. A small body with Content-Length (up to GW_REPLAY_MAX) is
 * then read whole and sent like before (retries can replay it); a larger or
 * chunked one is pumped to the upstream as it arrives, client → upstream,
 * with at most GW_UPLOAD_HIGH bytes waiting per request, keeping its framing
 * (Content-Length or chunked). 100 Continue goes to the client when the body
 * is wanted: once the upstream connection takes it (streamed) or the checks
 * passed (small). State lives in the request arena. */
#ifndef COLONY_GATEWAY_UPLOAD_H
#define COLONY_GATEWAY_UPLOAD_H

#include <stdint.h>
#include "colony/http_client.h"
#include "colony/request.h"

#define GW_REPLAY_MAX  (64u << 10)  /* Content-Length bodies up to this are read whole */
#define GW_UPLOAD_HIGH (256u << 10) /* body bytes waiting for the upstream before a pause */
#define GW_UPLOAD_WAIT 1            /* colony__gw_upload_prepare: the body is being read */

typedef struct gw_upload gw_upload;

/* The proxy server's colony_head_cb (ud = the gw_proxy): routes a request
 * that has a body now, with the body paused; a request without one is left
 * to the handler. A Content-Length over the proxy's max_body is answered 413
 * at once. */
void colony__gw_upload_head(colony_request *req, void *proxy);
/* The upload of req (routed from the head hook), or NULL. */
gw_upload *colony__gw_upload_of(colony_request *req);
/* The handler ran: 1 if req was routed from the head hook (its body is now
 * complete, and this took note), 0 if the handler is to route it. */
int colony__gw_upload_body_done(colony_request *req);

/* Before an attempt. 0: go (colony__gw_upload_request fills the body in);
 * GW_UPLOAD_WAIT: a small body is being read, ready(ud) runs once it is
 * complete; 413: the Content-Length is over route_max (0: none) or the
 * proxy's max_body. */
int colony__gw_upload_prepare(gw_upload *u, uint64_t route_max, void (*ready)(void *ud), void *ud);
/* Puts the body into an attempt's request: the small body read whole, or
 * body_cb streaming it (with body_length for a Content-Length body). */
void colony__gw_upload_request(gw_upload *u, colony_client_request *r,
                               colony_client_body_cb body_cb);
/* The attempt's call was sent, or has finished (the body pauses then). */
void colony__gw_upload_attach(gw_upload *u, colony_client_call *call);
void colony__gw_upload_detach(gw_upload *u);
/* The call can take more body (its body_cb): lets the client's body flow,
 * the first time with 100 Continue. */
void colony__gw_upload_wanted(gw_upload *u, colony_client_call *call);
/* 1 if another attempt can send the body again: a small body, or a streamed
 * one of which no byte went upstream yet. */
int colony__gw_upload_replayable(const gw_upload *u);
/* 1 if a chunked body went over the limit (its call was cancelled: 413). */
int colony__gw_upload_too_large(const gw_upload *u);
/* The request finished while its small body was being read: answers it
 * (nobody sees it) so the server can free it. */
void colony__gw_upload_abandon(gw_upload *u);

#endif
