/* One attempt upstream of a proxied request (proxy_call.h): pick an
 * instance past the breaker, send, stream the answer back with flow control,
 * then retry on another instance or answer the error (502, 503, 504). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "gateway/breaker.h"
#include "gateway/proxy_call.h"
#include "gateway/transform.h"

int colony__gw_call_respond_error(gw_proxy_call *pc, int status, const char *error,
                                  const char *message)
{
    pc->status = status;
    pc->started = 1;
    if (pc->limits.outcome) colony__gw_ratelimit_headers(pc->req, &pc->limits);
    if (pc->cache_status)
        colony_response_header(pc->req, "X-Cache-Status",
                               colony__gw_cache_status_name(pc->cache_status));
    return colony_respond_error(pc->req, status, error, message);
}

static int head_arrived(colony_client_call *call, const colony_client_response *res, void *ud)
{
    (void)call;
    gw_proxy_call *pc = ud;
    if (pc->client_gone) return 1; /* stop reading: call_done ends the response */
    const gw_route_conf *r = pc->route;
    unsigned bit = res->status == 502   ? GW_RETRY_502
                   : res->status == 503 ? GW_RETRY_503
                   : res->status == 504 ? GW_RETRY_504
                                        : 0;
    if ((r->retry_on & bit) && !pc->ws &&
        colony__gw_forward_may_retry(&pc->fwd, r, pc->attempts, 0) &&
        (!pc->upload || colony__gw_upload_replayable(pc->upload))) {
        pc->retry_status = res->status;
        return 1; /* abort this attempt; done_cb retries */
    }
    int rc = colony__gw_transform_response(pc->req, res, pc->route);
    if (rc == 0 && pc->limits.outcome) colony__gw_ratelimit_headers(pc->req, &pc->limits);
    if (rc == 0 && pc->cache_status) rc = colony__gw_call_cache_head(pc, res);
    if (rc == 0) rc = colony_response_start(pc->req, res->status);
    if (rc) return 1;
    pc->started = 1;
    pc->status = res->status;
    return 0;
}

/* A piece reached the kernel (or the connection died): resume the upstream
 * once the backlog is low. */
static void piece_written(colony_request *req, int status, void *ud)
{
    (void)req;
    (void)status;
    gw_proxy_call *pc = ud;
    pc->queued -= pc->piece_len[pc->piece_first];
    pc->piece_first = (pc->piece_first + 1) % GW_MAX_PIECES;
    pc->pieces--;
    if (pc->upstream_paused && pc->queued < GW_QUEUE_LOW && pc->call &&
        colony_client_call_resume(pc->call) == 0)
        pc->upstream_paused = 0;
}

/* Streams a piece of the upstream's body downstream. A client slower than
 * the upstream pauses the upstream, so the gateway holds at most about
 * GW_QUEUE_HIGH plus one read per request, whatever the body's size. */
static void data_arrived(colony_client_call *call, const char *data, size_t len, void *ud)
{
    gw_proxy_call *pc = ud;
    if (pc->client_gone || len == 0) return;
    if (pc->fill && colony__gw_cache_fill_add(pc->fill, data, len) != 0) {
        colony__gw_cache_fill_abort(pc->fill); /* over max_entry: streamed, not kept */
        pc->fill = NULL;
    }
    int rc = pc->pieces < GW_MAX_PIECES
                 ? colony_response_write(pc->req, data, len, piece_written, pc)
                 : COLONY_EBUSY;
    if (rc) {
        /* Not taken: the body downstream would have a hole. Stop; the
         * connection closes as the framing is broken. */
        colony_client_call_cancel(call);
        return;
    }
    pc->piece_len[(pc->piece_first + pc->pieces) % GW_MAX_PIECES] = (uint32_t)len;
    pc->pieces++;
    pc->queued += len;
    pc->bytes_out += len;
    if (!pc->upstream_paused && (pc->queued > GW_QUEUE_HIGH || pc->pieces >= GW_MAX_PIECES - 8) &&
        colony_client_call_pause(call) == 0)
        pc->upstream_paused = 1;
}

/* unsent: the call failed before its request reached a connection (refused,
 * unreachable, connect timeout): a connect failure, which may be retried
 * whatever the method, as nginx does, since the upstream saw nothing. */
static int retryable_error(const gw_route_conf *r, int err, int unsent)
{
    if (unsent || err == COLONY_ECONNREFUSED || err == -EHOSTUNREACH || err == -ENETUNREACH)
        return (r->retry_on & GW_RETRY_CONNECT) != 0;
    if (err == COLONY_ECONNRESET || err == -EPIPE || err == COLONY_EPROTO)
        return (r->retry_on & GW_RETRY_RESET) != 0;
    return 0;
}

/* Counts the retry against the route's budget: 1 if it may go. */
static int retry_in_budget(gw_proxy_call *pc)
{
    if (colony__gw_runtime_budget_retry(pc->rt, pc->route)) return 1;
    pc->proxy->stats.retries_over_budget++;
    return 0;
}

static void call_done(colony_client_call *call, int err, const colony_client_response *res,
                      void *ud)
{
    gw_proxy_call *pc = ud;
    gw_proxy *p = pc->proxy;
    pc->call = NULL;
    int unsent = err != 0 && !colony_client_call_was_sent(call);
    if (pc->upload) colony__gw_upload_detach(pc->upload);
    uint64_t now = uv_now(p->loop);
    if (pc->fill) { /* kept only when the whole body came and went downstream */
        gw_proxy *m = p->main;
        if (!err && pc->started && !pc->client_gone && !m->cache_closed) {
            colony__gw_cache_fill_commit(&m->cache, pc->fill, now); /* locks its shard */
        } else {
            colony__gw_cache_fill_abort(pc->fill);
        }
        pc->fill = NULL;
    }
    colony__gw_call_cache_release(pc);
    int failed = err != 0 || pc->retry_status != 0 || (res && res->status >= 500) ||
                 (pc->started && pc->status >= 500);
    /* A call cancelled because the client left says nothing about the
     * instance: release it without feeding passive health (a NULL balancer). */
    int client_left = pc->client_gone;
    colony__gw_upstream_release(pc->up, pc->ep, !client_left, !failed, now - pc->try_start_ms, now);
    pc->ep = NULL;
    if (pc->breaker_call) /* a call the client cancelled proves nothing: not a failure */
        colony__gw_breaker_record(pc->up->breaker_share, client_left || !failed,
                                  now - pc->try_start_ms);
    pc->breaker_call = 0;
    if (pc->ws && !err && res && res->status == 101 && !pc->client_gone) {
        int rc = colony__gw_ws_start(&p->ws, pc->req, pc->route, call, res, &pc->bytes_out);
        if (rc == 0) {
            pc->started = 1;
            pc->status = 101;
        } else {
            p->stats.upstream_failed++;
            colony__gw_call_respond_error(pc, 502, "bad_gateway",
                                          "the upstream's 101 could not be relayed");
        }
    } else if (pc->client_gone) {
        /* Nobody to answer, but the request is freed only once ended. */
        if (pc->started)
            colony_response_abort(pc->req);
        else
            colony_respond_error(pc->req, 499, "client_closed", "the client left");
    } else if (pc->started) {
        if (err) { /* cut, never passed off as complete */
            pc->cut = err == COLONY_ETIMEDOUT ? "read_timeout" : "upstream_failed";
            if (p->m_cut)
                colony_metric_inc(colony_metric_with(p->m_cut, pc->route->match.name, pc->cut), 1);
            colony_response_abort(pc->req);
        } else {
            colony_response_end(pc->req);
        }
    } else if (pc->upload && colony__gw_upload_too_large(pc->upload)) {
        colony__gw_call_respond_error(pc, 413, "payload_too_large",
                                      "the body is larger than this route allows");
    } else if (!pc->ws && (pc->retry_status || retryable_error(pc->route, err, unsent)) &&
               colony__gw_forward_may_retry(&pc->fwd, pc->route, pc->attempts, unsent) &&
               (!pc->upload || colony__gw_upload_replayable(pc->upload)) &&
               now - pc->start_ms < pc->total_ms && retry_in_budget(pc)) {
        pc->retry_status = 0;
        p->stats.retries++;
        if (p->m_retries)
            colony_metric_inc(colony_metric_with(p->m_retries, pc->route->match.name), 1);
        colony__gw_call_start_attempt(pc);
    } else if (!pc->ws && pc->upload && !colony__gw_upload_replayable(pc->upload) &&
               retryable_error(pc->route, err, unsent) &&
               colony__gw_forward_may_retry(&pc->fwd, pc->route, pc->attempts, unsent)) {
        /* A retry would go, but the streamed body is gone (nginx with
         * proxy_request_buffering off does not retry then either). */
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "upstream failed: %s after the streamed request body had started; a body "
                 "over the %u KiB replay buffer is not retried",
                 colony_strerror(err), GW_REPLAY_MAX >> 10);
        p->stats.upstream_failed++;
        colony__gw_call_respond_error(pc, 502, "bad_gateway", msg);
    } else if (pc->retry_status) {
        char msg[64];
        snprintf(msg, sizeof(msg), "upstream answered %d on every attempt", pc->retry_status);
        p->stats.upstream_failed++;
        colony__gw_call_respond_error(pc, 502, "bad_gateway", msg);
    } else if (err == COLONY_ETIMEDOUT) {
        p->stats.timed_out++;
        colony__gw_call_respond_error(pc, 504, "gateway_timeout",
                                      unsent ? "the upstream did not accept a connection in time"
                                             : "the upstream did not answer in time");
    } else {
        char msg[256];
        const char *tls = colony_client_call_tls_error(call);
        if (tls)
            snprintf(msg, sizeof(msg), "upstream TLS failed: %s", tls);
        else
            snprintf(msg, sizeof(msg), "upstream failed: %s", colony_strerror(err));
        p->stats.upstream_failed++;
        colony__gw_call_respond_error(pc, 502, "bad_gateway", msg);
    }
    colony__gw_call_unref(pc);
}

/* The call can take more of the streamed request body (upload.c). */
static void body_wanted(colony_client_call *call, void *ud)
{
    gw_proxy_call *pc = ud;
    colony__gw_upload_wanted(pc->upload, call);
}

/* A small request body has been read whole: the first attempt goes. */
static void body_ready(void *ud)
{
    colony__gw_call_start_attempt(ud);
}

void colony__gw_call_start_attempt(gw_proxy_call *pc)
{
    gw_proxy *p = pc->proxy;
    if (pc->upload) {
        const gw_access *a = pc->route->access;
        int wait = colony__gw_upload_prepare(pc->upload, a ? a->max_body : 0, body_ready, pc);
        if (wait == 413)
            colony__gw_call_respond_error(pc, 413, "payload_too_large",
                                          "the body is larger than allowed here");
        if (wait) return;
    }
    uint64_t now = uv_now(p->loop);
    pc->try_start_ms = now;
    pc->attempts++;
    int https = 0; /* read with the pick, under the upstream's lock */
    if (colony__gw_upstream_pick(pc->up, pc->hash_key, pc->hash_key_len, now, &pc->ep, &https)) {
        p->stats.no_instance++;
        colony__gw_call_respond_error(pc, 503, "no_healthy_upstream",
                                      pc->attempts > 1 ? "no other healthy instance to retry on"
                                                       : "no healthy instance of the upstream");
        return;
    }
    gw_breaker_share *breaker = pc->up->breaker_share;
    if (breaker && colony__gw_breaker_allow(breaker)) {
        colony__gw_upstream_release(pc->up, pc->ep, 0, 1, 0, now); /* no call made */
        pc->ep = NULL;
        p->stats.circuit_open++;
        colony__gw_call_respond_error(pc, 503, "circuit_open",
                                      "the upstream is failing: its circuit breaker is open");
        return;
    }
    pc->breaker_call = breaker != NULL;
    uint64_t left = now - pc->start_ms < pc->total_ms ? pc->total_ms - (now - pc->start_ms) : 1;
    uint64_t timeout = pc->route->try_timeout_ms < left ? pc->route->try_timeout_ms : left;
    colony_client_request r = {0};
    int rc = colony__gw_transform_deadline(&pc->fwd, pc->deadline_slot, left);
    if (rc == 0)
        rc = colony__gw_forward_target(&pc->fwd, colony_endpoint_address(pc->ep), https,
                                       pc->up->conf, &r);
    if (rc == 0) {
        r.head_cb = head_arrived;
        r.data_cb = data_arrived;
        r.timeout_ms = timeout ? timeout : 1; /* until the head: "try" within "total" */
        r.timeout_to_head = 1;                /* the body: silences under "read" */
        r.read_timeout_ms = pc->route->read_timeout_ms;
        r.connect_timeout_ms = pc->route->connect_timeout_ms;
        if (pc->upload) colony__gw_upload_request(pc->upload, &r, body_wanted);
        rc = colony_client_request_send(p->client, &r, call_done, pc, &pc->call);
        if (rc == 0 && pc->upload) colony__gw_upload_attach(pc->upload, pc->call);
    }
    if (rc) {
        colony__gw_upstream_release(pc->up, pc->ep, 1, 1, 0, now);
        pc->ep = NULL;
        if (pc->breaker_call) colony__gw_breaker_record(breaker, 1, 0);
        pc->breaker_call = 0;
        p->stats.no_instance++;
        colony__gw_call_respond_error(pc, 503, "overloaded",
                                      "the gateway cannot reach the upstream now");
        return;
    }
    pc->refs++;
}
