/* Asynchronous HTTP/1.1 client with a keep-alive connection pool per origin.
 * Names are resolved off the loop (libuv's thread pool). Every request has
 * connect, read (longest silence) and total timeouts, can stream its request
 * body and its response body, and can be cancelled. One client belongs to one
 * loop and is used only from that loop's thread. */
#ifndef COLONY_HTTP_CLIENT_H
#define COLONY_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "export.h"
#include "http_parser.h"

typedef struct colony_client colony_client;
typedef struct colony_client_call colony_client_call; /* one request in flight */

typedef struct colony_client_options {
    unsigned max_per_origin;     /* 32: connections per scheme://host:port (busy + idle) */
    uint64_t idle_timeout_ms;    /* 30000: idle pooled connection is closed after this */
    uint64_t connect_timeout_ms; /* 5000 */
    uint64_t read_timeout_ms;    /* 30000: longest silence while waiting for the response */
    uint64_t total_timeout_ms;   /* 60000: whole call including queueing; 0 = none */
    size_t max_response_body;    /* 8 MiB: buffered response bodies; over it the call fails E2BIG */
    unsigned max_queued;         /* 1024: calls waiting for a connection per origin; then EBUSY */
    unsigned max_origins;        /* 1024: origins (pools) held at once; see below */
    colony_http_limits limits;   /* response head limits */
    /* https:// upstreams: the peer's certificate and host name are verified
     * against the system CA store, or against the PEM certificates in ca_file
     * (copied by colony_client_new). insecure = 1 skips the verification
     * (tests, lab setups): encryption without authentication. */
    const char *ca_file;
    int insecure;
} colony_client_options;

/* Origins: a pool exists per origin while it has connections or queued calls;
 * once it has neither for idle_timeout_ms it is freed (0: at the next loop
 * turn). When max_origins are held, a call to a new origin frees the least
 * recently used origin that has no connection in use and no call queued
 * (closing its idle connections); if every origin is in use the call fails
 * with COLONY_EBUSY (counted in origins_refused). */
COLONY_API void colony_client_options_init(colony_client_options *opts);
COLONY_API colony_client *colony_client_new(uv_loop_t *loop, const colony_client_options *opts);
/* Closes pooled connections and fails pending calls with COLONY_ECANCELED;
 * cb (may be NULL) runs when all handles are closed and the client is freed,
 * from the loop, never before this function returns. */
typedef void (*colony_client_closed_cb)(void *ud);
COLONY_API void colony_client_close(colony_client *c, colony_client_closed_cb cb, void *ud);

/* A received response. Header strings and body are valid during the callback only. */
typedef struct colony_client_response {
    int status;
    int version_minor;
    const colony_http_header *headers;
    size_t num_headers;
    const char *body; /* buffered body (NUL-terminated), NULL when streamed */
    size_t body_len;
} colony_client_response;

/* Final callback: err is 0 with res set, or a negative code (ETIMEDOUT,
 * ECONNREFUSED, ECANCELED, EPROTO, E2BIG, ...) with res NULL. Called exactly
 * once for a call that colony_client_request_send() accepted; the call handle
 * is freed when it returns. */
typedef void (*colony_client_done_cb)(colony_client_call *call, int err,
                                      const colony_client_response *res, void *ud);
/* Streaming: the head arrives first (return nonzero to abort), then data pieces. */
typedef int (*colony_client_head_cb)(colony_client_call *call, const colony_client_response *res,
                                     void *ud);
typedef void (*colony_client_data_cb)(colony_client_call *call, const char *data, size_t len,
                                      void *ud);
/* Streaming request body: called when the call can take more; write with
 * colony_client_call_write() and finish with colony_client_call_end(). */
typedef void (*colony_client_body_cb)(colony_client_call *call, void *ud);

typedef struct colony_client_request {
    const char *method; /* "GET" if NULL */
    const char *url;    /* http[s]://host:port/path?query or http+unix://%2Fpath%2Fsock/path */
    const char *const *headers; /* NULL-terminated name, value, name, value, ... */
    const void *body;           /* copied; or NULL */
    size_t body_len;
    colony_client_body_cb body_cb; /* instead of body: stream it (chunked) */
    colony_client_head_cb head_cb; /* set both to stream the response */
    colony_client_data_cb data_cb;
    uint64_t timeout_ms; /* overrides total_timeout_ms when nonzero */
    /* Overrides connect_timeout_ms when nonzero, for a connection this call
     * opens (a call served by an idle pooled connection does not connect). */
    uint64_t connect_timeout_ms;
    /* With body_cb: the streamed body's exact length, sent as Content-Length
     * instead of chunked framing; the writes must add up to it before
     * colony_client_call_end (a write past it fails with COLONY_E2BIG, an end
     * short of it with COLONY_EINVAL). 0: chunked. */
    uint64_t body_length;
    /* https only, both optional: verify against the PEM CA certificates in
     * tls_ca_file instead of the client's ca_file / system store, and send
     * and verify tls_server_name instead of the URL's host (for an upstream
     * reached by IP address). Calls with other values use other pools. */
    const char *tls_ca_file;
    const char *tls_server_name;
    /* https only, optional, both or neither: a client certificate (PEM chain)
     * and its private key, sent when the server asks for one (mTLS; nginx's
     * proxy_ssl_certificate / proxy_ssl_certificate_key). */
    const char *tls_cert_file;
    const char *tls_key_file;
    /* Overrides the client's read_timeout_ms (longest silence, during the
     * head and the body) for this call when nonzero. */
    uint64_t read_timeout_ms;
    /* Nonzero: timeout_ms bounds the call only until the response head;
     * a streamed body is then bound by the read timeout alone (nginx's
     * proxy_read_timeout), so a long download that keeps flowing is not cut. */
    int timeout_to_head;
} colony_client_request;

/* Starts a call. Returns 0 and (if out) the call handle, or COLONY_EINVAL for a
 * bad URL/method/header, COLONY_EBUSY when the origin's queue is full or the
 * client holds max_origins origins all in use; the callback then never runs. */
COLONY_API int colony_client_request_send(colony_client *c, const colony_client_request *r,
                                          colony_client_done_cb cb, void *ud,
                                          colony_client_call **out);
/* Cancels a call: done_cb runs with COLONY_ECANCELED (from the loop, not from
 * inside this function). No effect from inside the call's done_cb or once its
 * completion is already scheduled; never call it after done_cb returned. */
COLONY_API void colony_client_call_cancel(colony_client_call *call);
/* Flow control for a streamed response: pause stops reading the call's
 * response (the data callback may still deliver what was already read, at
 * most one read's worth), resume reads again. Meant for a proxy whose
 * downstream is slower than its upstream. A paused call does not time out
 * on its read timeout. 0, or COLONY_EINVAL when the call is not on a
 * connection (queued, done). Safe from inside the call's callbacks. */
COLONY_API int colony_client_call_pause(colony_client_call *call);
COLONY_API int colony_client_call_resume(colony_client_call *call);
/* 1 once the call's request was handed to a connection (some of it may have
 * reached the server), 0 while it was queued or connecting. A call that
 * failed unsent (connection refused, connect timeout) is safe to retry
 * whatever its method. For use in the call's callbacks. */
COLONY_API int colony_client_call_was_sent(const colony_client_call *call);
/* Why TLS failed on the call's connection (the handshake, or a record the
 * server sent instead of a response, such as a refused client certificate):
 * OpenSSL's reason and, for a certificate, the verification result, e.g.
 * "certificate verify failed (unable to get local issuer certificate)".
 * NULL when TLS did not fail. Valid in the call's done_cb only. */
COLONY_API const char *colony_client_call_tls_error(const colony_client_call *call);
/* Streamed request body: write copies a piece (a chunk, or raw bytes with
 * body_length), end finishes the body. 0, COLONY_EAGAIN before the
 * connection is up (wait for body_cb), COLONY_EINVAL when the call streams
 * no body or its body has ended, COLONY_ESHUTDOWN once the call is done. */
COLONY_API int colony_client_call_write(colony_client_call *call, const void *data, size_t len);
COLONY_API int colony_client_call_end(colony_client_call *call);

/* ---- Upgrade (WebSocket, ...) ----
 * A request that carries an Upgrade header may be answered with 101
 * Switching Protocols. The call then completes with done_cb(call, 0, res),
 * res->status 101 (head_cb is not called for it), and the connection leaves
 * the pool for good: inside that done_cb, colony_client_call_tunnel() takes
 * it as a raw byte tunnel; not taken, it is closed when done_cb returns. A 101
 * to a request without Upgrade still fails the call with COLONY_EPROTO. A
 * tunnel has no timeout of its own (its owner decides); colony_client_close
 * ends open tunnels with COLONY_ECANCELED (their on_close runs inside it). */
typedef struct colony_client_tunnel colony_client_tunnel;
/* Bytes read (valid during the call). */
typedef void (*colony_client_tunnel_data_cb)(colony_client_tunnel *t, const char *data, size_t len,
                                             void *ud);
/* Runs exactly once when the tunnel is over: err 0 after the peer closed or
 * after colony_client_tunnel_close (once every queued byte was written), else
 * why. t is freed after it returns. */
typedef void (*colony_client_tunnel_close_cb)(colony_client_tunnel *t, int err, void *ud);
/* A write was handed to the kernel (0), or failed / the tunnel ended first
 * (< 0, before on_close). */
typedef void (*colony_client_tunnel_write_cb)(colony_client_tunnel *t, int status, void *ud);
/* Takes the connection of a call answered 101; only inside its done_cb. Bytes
 * the server sent right after the 101 head are the first on_data, from the
 * loop. 0 with *out set, or COLONY_EINVAL (not a 101 done_cb, already taken). */
COLONY_API int colony_client_call_tunnel(colony_client_call *call,
                                         colony_client_tunnel_data_cb on_data,
                                         colony_client_tunnel_close_cb on_close, void *ud,
                                         colony_client_tunnel **out);
/* Queues len bytes (copied); cb may be NULL. 0; COLONY_EBUSY while more than
 * 1 MiB waits (wait for a write callback); COLONY_ESHUTDOWN once the tunnel
 * is closing or over; COLONY_ENOMEM. A write that fails never calls cb. */
COLONY_API int colony_client_tunnel_write(colony_client_tunnel *t, const void *data, size_t len,
                                          colony_client_tunnel_write_cb cb, void *ud);
/* Bytes queued and not yet handed to the kernel. */
COLONY_API size_t colony_client_tunnel_pending(const colony_client_tunnel *t);
/* Stops / restarts reading. 0 or COLONY_ESHUTDOWN. */
COLONY_API int colony_client_tunnel_pause(colony_client_tunnel *t);
COLONY_API int colony_client_tunnel_resume(colony_client_tunnel *t);
/* Stops reading, writes what is queued, sends FIN and closes; on_close(t, 0)
 * follows from the loop. Idempotent. */
COLONY_API void colony_client_tunnel_close(colony_client_tunnel *t);

/* Pool statistics for one origin ("http://127.0.0.1:8080"). */
typedef struct colony_client_pool_stats {
    unsigned idle, busy, queued;
    uint64_t connects;    /* connections opened so far */
    uint64_t reused;      /* requests sent on an already-used connection */
    uint64_t tls_resumed; /* https: connections that resumed a TLS session */
} colony_client_pool_stats;
COLONY_API int colony_client_get_pool_stats(colony_client *c, const char *origin,
                                            colony_client_pool_stats *out);

/* Whole-client statistics. */
typedef struct colony_client_stats {
    unsigned origins;         /* origins (pools) held now, at most max_origins */
    unsigned connections;     /* connections open or closing */
    unsigned calls;           /* calls not yet freed */
    uint64_t origins_expired; /* freed after idle_timeout_ms without use */
    uint64_t origins_evicted; /* freed to make room for a new origin */
    uint64_t origins_refused; /* calls failed with EBUSY: every origin in use */
} colony_client_stats;
COLONY_API void colony_client_get_stats(colony_client *c, colony_client_stats *out);

#endif
