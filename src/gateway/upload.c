/* Request bodies through the gateway (upload.h): routing from the head hook
 * with the body paused, then the pump client → upstream with flow control. */
#include "gateway/upload.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "gateway/proxy.h"

#define GW_UPLOAD_KEY "gw.upload"

struct gw_upload {
    colony_request *req;
    colony_client_call *call; /* the attempt's call while it can take the body */
    uint64_t length;          /* Content-Length; 0 when chunked */
    uint64_t limit;           /* proxy and route max_body, the lower one; 0: none */
    uint64_t received;        /* body bytes read from the client */
    uint64_t sent;            /* body bytes handed to an upstream call */
    uint64_t waiting_bytes;   /* written to the call and not yet out to the kernel */
    void (*ready)(void *ud);  /* a small body is complete: the attempt goes on */
    void *ready_ud;
    unsigned chunked : 1;
    unsigned streamed : 1; /* pumped as it arrives (else read whole first) */
    unsigned routed : 1;   /* the head hook has routed it: the handler only ends the body */
    unsigned complete : 1; /* the client's body is read whole */
    unsigned ended : 1;    /* colony_client_call_end done */
    unsigned waiting : 1;  /* ready is owed */
    unsigned too_large : 1;
};

gw_upload *colony__gw_upload_of(colony_request *req)
{
    return colony_request_get_data(req, GW_UPLOAD_KEY);
}

/* Stops the pump: the call is cancelled (its done callback answers). */
static void pump_failed(gw_upload *u)
{
    colony_request_pause_body(u->req);
    if (u->call) colony_client_call_cancel(u->call);
    u->call = NULL;
}

/* A piece of the client's body: straight to the upstream call (copied there),
 * pausing the client once GW_UPLOAD_HIGH bytes wait for the upstream. */
static void body_piece(colony_request *req, const char *data, size_t len, void *ud)
{
    gw_upload *u = ud;
    u->received += len;
    if (u->limit && u->received > u->limit) {
        u->too_large = 1;
        pump_failed(u);
        return;
    }
    if (!u->call || colony_client_call_write(u->call, data, len) != 0) {
        pump_failed(u); /* a hole in the body: the attempt cannot go on */
        return;
    }
    u->sent += len;
    u->waiting_bytes += len;
    if (u->waiting_bytes >= GW_UPLOAD_HIGH) colony_request_pause_body(req);
}

void colony__gw_upload_head(colony_request *req, void *proxy)
{
    gw_proxy *p = proxy;
    const char *te = colony_request_header(req, "Transfer-Encoding");
    const char *cl = colony_request_header(req, "Content-Length");
    uint64_t length = cl ? strtoull(cl, NULL, 10) : 0; /* the parser checked it */
    if (!te && length == 0) return;
    if (!te && p->max_body && length > p->max_body) {
        char msg[96];
        snprintf(msg, sizeof(msg), "the body is larger than the gateway's %llu bytes",
                 (unsigned long long)p->max_body);
        colony_respond_error(req, 413, "payload_too_large", msg);
        return;
    }
    gw_upload *u = colony_arena_alloc(colony_request_arena(req), sizeof(*u));
    if (!u) {
        colony_respond_error(req, 503, "overloaded", "out of memory");
        return;
    }
    memset(u, 0, sizeof(*u));
    u->req = req;
    u->chunked = te != NULL;
    u->length = te ? 0 : length;
    u->limit = p->max_body;
    u->streamed = u->chunked || length > GW_REPLAY_MAX;
    colony_request_set_data(req, GW_UPLOAD_KEY, u);
    if (colony__gw_upload_of(req) != u ||
        (u->streamed && colony_request_stream_body(req, body_piece, u) != 0) ||
        colony_request_pause_body(req) != 0) {
        colony_respond_error(req, 503, "overloaded", "out of memory");
        return;
    }
    colony__gw_proxy_handle(req, p); /* checks and limits before any body byte */
    u->routed = 1;
}

int colony__gw_upload_body_done(colony_request *req)
{
    gw_upload *u = colony__gw_upload_of(req);
    if (!u || !u->routed) return 0;
    u->complete = 1;
    if (!u->streamed) {
        if (u->waiting) {
            u->waiting = 0;
            u->ready(u->ready_ud);
        }
        return 1;
    }
    if (u->call && !u->ended) {
        if (colony_client_call_end(u->call) == 0)
            u->ended = 1;
        else
            pump_failed(u);
    }
    return 1;
}

int colony__gw_upload_prepare(gw_upload *u, uint64_t route_max, void (*ready)(void *ud), void *ud)
{
    if (route_max && (!u->limit || route_max < u->limit)) u->limit = route_max;
    if (u->limit && u->length > u->limit) return 413;
    if (u->streamed || u->complete) return 0;
    u->ready = ready;
    u->ready_ud = ud;
    u->waiting = 1;
    colony_request_resume_body(u->req); /* 100 Continue, then the server reads it whole */
    return GW_UPLOAD_WAIT;
}

void colony__gw_upload_request(gw_upload *u, colony_client_request *r,
                               colony_client_body_cb body_cb)
{
    if (!u->streamed) {
        r->body = colony_request_body(u->req, &r->body_len);
        if (r->body_len == 0) r->body = NULL;
        return;
    }
    r->body = NULL;
    r->body_len = 0;
    r->body_cb = body_cb;
    r->body_length = u->length; /* 0: chunked */
}

void colony__gw_upload_attach(gw_upload *u, colony_client_call *call)
{
    u->call = u->streamed ? call : NULL;
    u->waiting_bytes = 0;
}

void colony__gw_upload_detach(gw_upload *u)
{
    if (!u->call) return;
    u->call = NULL;
    if (!u->complete) colony_request_pause_body(u->req); /* no upstream to take it now */
}

void colony__gw_upload_wanted(gw_upload *u, colony_client_call *call)
{
    if (call != u->call) return;
    u->waiting_bytes = 0;
    if (u->complete) {
        if (!u->ended && colony_client_call_end(call) == 0) u->ended = 1;
        return;
    }
    colony_request_resume_body(u->req);
}

int colony__gw_upload_replayable(const gw_upload *u)
{
    return !u->streamed || u->sent == 0;
}

int colony__gw_upload_too_large(const gw_upload *u)
{
    return u->too_large;
}

void colony__gw_upload_abandon(gw_upload *u)
{
    if (!u->waiting) return;
    u->waiting = 0;
    colony_respond_error(u->req, 499, "client_closed", "the client left");
}
