/* A request and its response: what a handler reads and how it answers. Every
 * request, respond and response function of the HTTP core and the router is
 * declared here; the service kit's request functions
 * (span, deadline, colony_request_call) are in service.h, as they need the kit.
 * Strings returned here live in the request arena: valid until the request
 * finishes (colony_request_on_finish). */
#ifndef COLONY_REQUEST_H
#define COLONY_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "arena.h"
#include "buf.h"
#include "export.h"

typedef struct colony_server colony_server; /* http_server.h */
typedef struct json_t json_t;               /* jansson.h */
/* One request and its response. Owned by the server; valid from the head
 * callback until the response has been written (or the connection died), which
 * colony_request_on_finish() reports. */
typedef struct colony_request colony_request;

/* ---- request accessors (strings are NUL-terminated, in the request arena) ---- */
COLONY_API const char *colony_request_method(const colony_request *req);
/* path?query as sent; for an absolute-form target (http://host/path?q) its
 * origin-form part, with the authority as the Host header. */
COLONY_API const char *colony_request_target(const colony_request *req);
COLONY_API const char *colony_request_path(const colony_request *req);  /* before '?' */
COLONY_API const char *colony_request_query(const colony_request *req); /* after '?', or "" */
COLONY_API int colony_request_version_minor(const colony_request *req);
/* First value of a header (case-insensitive name), or NULL. */
COLONY_API const char *colony_request_header(const colony_request *req, const char *name);
COLONY_API size_t colony_request_header_count(const colony_request *req);
/* i-th header; returns 0 or COLONY_ENOENT. */
COLONY_API int colony_request_header_at(const colony_request *req, size_t i, const char **name,
                                        const char **value);
/* The buffered body (NUL-terminated for convenience) and its length; empty if
 * none or streamed. */
COLONY_API const char *colony_request_body(const colony_request *req, size_t *len);
/* Peer address as "ip:port" or "unix". */
COLONY_API const char *colony_request_peer(const colony_request *req);
/* The peer's address without the port and brackets ("10.0.0.7", "::1"), or
 * "unix"; "" when unknown. For allow lists, rate-limit keys, X-Forwarded-For. */
COLONY_API const char *colony_request_peer_ip(const colony_request *req);
COLONY_API colony_arena *colony_request_arena(colony_request *req);
COLONY_API uv_loop_t *colony_request_loop(const colony_request *req);
COLONY_API colony_server *colony_request_server(const colony_request *req);
/* Per-request slot for middleware and handlers. */
COLONY_API void colony_request_set_data(colony_request *req, const char *key, void *value);
COLONY_API void *colony_request_get_data(const colony_request *req, const char *key);

/* Streams the body instead of buffering it; only from the head hook. data_cb
 * gets each piece (pointing into the read buffer, valid during the call);
 * the handler is then called once the body is complete. Returns 0 or COLONY_EINVAL. */
typedef void (*colony_body_data_cb)(colony_request *req, const char *data, size_t len, void *ud);
COLONY_API int colony_request_stream_body(colony_request *req, colony_body_data_cb data_cb,
                                          void *ud);
/* A response that starts before the body is complete lets the body flow on
 * (data_cb, then the handler at its end); once the response has ended, the
 * rest of the body is not read: a small body already received is skipped,
 * else the connection closes after the response. */

/* Flow control of the request body (streamed or buffered), from the head
 * hook, data_cb or any later callback on the request's loop. pause stops
 * reading from the socket: no data_cb runs and no byte is read until resume.
 * A paused request waits on its handler, not on the client: the body timeout
 * does not run meanwhile (the write timeout still does). From its first
 * pause on, the request is the caller's to answer: it stays valid until a
 * response has ended, even if the client leaves (on_finish reports that).
 * A request paused from the head hook with Expect: 100-continue gets its
 * 100 Continue at the first resume, so a request refused before that (401,
 * 413, 429...) never makes the client send its body. resume processes bytes
 * already received from the loop's next turn, never from inside the call.
 * 0, or COLONY_EINVAL when the body is complete, the response has ended or
 * the connection is gone; COLONY_ENOMEM (connection closed) if the 100
 * Continue could not be queued. */
COLONY_API int colony_request_pause_body(colony_request *req);
COLONY_API int colony_request_resume_body(colony_request *req);
/* 1 while the body is paused by colony_request_pause_body, else 0. */
COLONY_API int colony_request_body_paused(const colony_request *req);

/* ---- responses ---- */
/* Adds a response header (copied). Before the response starts; COLONY_EINVAL
 * for a name or value that would break framing (CR/LF, non-token name). */
COLONY_API int colony_response_header(colony_request *req, const char *name, const char *value);
/* Sends a complete response with Content-Length (body copied; content_type may
 * be NULL). Returns 0, or COLONY_EINVAL if a response was already started. */
COLONY_API int colony_respond(colony_request *req, int status, const char *content_type,
                              const void *body, size_t len);
/* Like colony_respond, but takes the body's memory instead of copying it: a
 * large body the kernel does not take at once is sent from that memory and
 * freed once written. *body is left empty (reusable) whatever the result. */
COLONY_API int colony_respond_buf(colony_request *req, int status, const char *content_type,
                                  colony_buf *body);
/* Sends {"error": error, "message": message} with the given status. */
COLONY_API int colony_respond_error(colony_request *req, int status, const char *error,
                                    const char *message);

/* Streaming response: start (chunked unless a Content-Length header was set),
 * write pieces (copied), end. write's cb (may be NULL) runs when that piece has
 * been handed to the kernel, for flow control. */
COLONY_API int colony_response_start(colony_request *req, int status);
typedef void (*colony_write_cb)(colony_request *req, int status, void *ud);
COLONY_API int colony_response_write(colony_request *req, const void *data, size_t len,
                                     colony_write_cb cb, void *ud);
COLONY_API int colony_response_end(colony_request *req);
/* Ends a response that cannot be completed (its source failed half way) by
 * closing the connection: the client sees a cut body, never one that looks
 * complete (a chunked body gets no last chunk). The request then finishes
 * with an error. No effect once the response has ended. */
COLONY_API void colony_response_abort(colony_request *req);
/* Status of the response (0 before it starts). */
COLONY_API int colony_response_status(const colony_request *req);

/* ---- connection takeover after 101 Switching Protocols (WebSocket, ...) ----
 * A tunnel is the raw byte stream of a connection whose request was answered
 * with 101: the server stops parsing HTTP on it. Bytes read go to on_data,
 * bytes written go through the server's write path (output backlog limit,
 * and TLS where the connection has it). The request stays alive (its arena,
 * accessors and hooks) until the tunnel ends; its on_finish hooks then run
 * with on_close's err. The tunnel leaves the keep-alive LRU and is never
 * closed as idle; a server shutdown closes it at the drain deadline
 * (COLONY_ESHUTDOWN). It closes after tunnel_idle_timeout_ms (server
 * options) with neither a byte read nor write progress (COLONY_ETIMEDOUT). */
typedef struct colony_tunnel colony_tunnel;
/* Bytes read (pointing into the read buffer, valid during the call). */
typedef void (*colony_tunnel_data_cb)(colony_tunnel *t, const char *data, size_t len, void *ud);
/* Runs exactly once, from the loop, when the tunnel is over: err 0 after the
 * peer closed (once what was queued for it was written) or after
 * colony_tunnel_close (same), else why (COLONY_ETIMEDOUT, COLONY_ESHUTDOWN,
 * COLONY_ECONNRESET, a write error...). t is freed when it returns. */
typedef void (*colony_tunnel_close_cb)(colony_tunnel *t, int err, void *ud);
/* A write was handed to the kernel (status 0), or the tunnel ended first
 * (status < 0, before on_close). */
typedef void (*colony_tunnel_write_cb)(colony_tunnel *t, int status, void *ud);

/* Answers 101 Switching Protocols (with "Connection: Upgrade", "Upgrade:
 * protocol" unless protocol is NULL, and the headers added with
 * colony_response_header) and turns the connection into a tunnel, returned in
 * *out. Bytes the client sent after the request head are not lost: they are
 * the first on_data, from the loop (never inside this call). The caller stops
 * answering the request: colony_respond* and colony_response_* return
 * COLONY_EINVAL afterwards (colony_response_abort does nothing). Returns 0;
 * COLONY_EINVAL when a response was started, the request is HTTP/1.0, has a
 * body not fully read, or protocol is not a token; COLONY_ECONNRESET when the
 * client is gone; COLONY_ESHUTDOWN while the server shuts down; COLONY_ENOMEM.
 * On error nothing was sent and the request may still be answered. */
COLONY_API int colony_request_upgrade(colony_request *req, const char *protocol,
                                      colony_tunnel_data_cb on_data,
                                      colony_tunnel_close_cb on_close, void *ud,
                                      colony_tunnel **out);
/* Queues len bytes (copied). cb (may be NULL) runs once they are handed to
 * the kernel, for flow control. 0; COLONY_EBUSY when more than
 * max_output_backlog bytes wait already (wait for a write callback);
 * COLONY_ESHUTDOWN once the tunnel is closing or over; COLONY_ENOMEM. A write
 * that fails never calls cb. */
COLONY_API int colony_tunnel_write(colony_tunnel *t, const void *data, size_t len,
                                   colony_tunnel_write_cb cb, void *ud);
/* Bytes queued and not yet handed to the kernel. */
COLONY_API size_t colony_tunnel_pending(const colony_tunnel *t);
/* Stops reading (on_data is not called until resume) / reads again. A paused
 * tunnel still times out on tunnel_idle_timeout_ms. 0 or COLONY_ESHUTDOWN. */
COLONY_API int colony_tunnel_pause(colony_tunnel *t);
COLONY_API int colony_tunnel_resume(colony_tunnel *t);
/* Stops reading, writes what is queued, then closes; on_close(t, 0) follows
 * from the loop. Idempotent; no effect once the tunnel is over. */
COLONY_API void colony_tunnel_close(colony_tunnel *t);
/* The request that was upgraded (valid until on_close returns). */
COLONY_API colony_request *colony_tunnel_request(const colony_tunnel *t);

/* Hooks for middleware: on_response runs just before the head is written
 * (headers may still be added); on_finish runs once when the request is over,
 * with 0 after the response was fully written or a negative error if the
 * connection died first. Several may be added; they run in reverse order. */
typedef void (*colony_request_hook_cb)(colony_request *req, int status, void *ud);
COLONY_API int colony_request_on_response(colony_request *req, colony_request_hook_cb cb, void *ud);
COLONY_API int colony_request_on_finish(colony_request *req, colony_request_hook_cb cb, void *ud);

/* ---- router: parameters and query ---- */
/* Value of a route parameter ("id" for /users/:id, "*" for a wildcard),
 * percent-decoded; NULL if absent. Strings returned by the colony_request_*
 * accessors live in the request arena: valid until the request finishes. */
COLONY_API const char *colony_request_param(const colony_request *req, const char *name);
/* The matched pattern ("/users/:id"), or NULL before routing / on 404. Metrics
 * use this as the route label, never the raw path. */
COLONY_API const char *colony_request_route(const colony_request *req);
/* Value of a query-string parameter, percent-decoded ("+" is a space); NULL if absent. */
COLONY_API const char *colony_request_query_param(colony_request *req, const char *name);

/* 1 if the request came over a TLS listener (colony_server_listen_tls), else 0
 * (also once its connection is gone). */
COLONY_API int colony_request_is_tls(const colony_request *req);

/* ---- JSON helpers ---- */
/* Parses the buffered body as JSON. On success returns 0 with a new reference
 * in *out (caller json_decref()s it). On failure it has already answered: 413
 * if the body exceeded max_bytes (0 = server limit), 400 with the line, column
 * and position of the error for invalid JSON, 415 if Content-Type is set and
 * is not JSON; returns COLONY_EINVAL or COLONY_E2BIG. */
COLONY_API int colony_request_json(colony_request *req, size_t max_bytes, json_t **out);
/* Answers with the JSON encoding of value (value is not stolen). */
COLONY_API int colony_respond_json(colony_request *req, int status, const json_t *value);

#endif
