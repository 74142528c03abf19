/* HTTP/1.1 server on libuv: TCP (IPv4, IPv6) and Unix sockets, keep-alive,
 * pipelining (answered in order, one request at a time per connection), fixed
 * and chunked request bodies buffered up to a limit or streamed, simple and
 * streaming responses, Expect: 100-continue, timeouts, connection limits (per
 * server, evicting the oldest idle connection, and per client address), an
 * output backlog per connection, N worker threads each with its own loop on
 * SO_REUSEPORT, graceful shutdown. Protocol errors are answered with
 * 400/408/413/414/417/431/501/505 and a JSON body {"error": "...",
 * "message": "..."}, and the connection closes after a framing error. */
#ifndef COLONY_HTTP_SERVER_H
#define COLONY_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "arena.h"
#include "buf.h"
#include "export.h"
#include "http_parser.h"
#include "request.h"

typedef struct colony_server colony_server;

/* Called with a request whose body (if any) has been read completely, unless
 * the head hook chose to stream it. The handler answers now or later, on the
 * request's loop thread. */
typedef void (*colony_handler_cb)(colony_request *req, void *ud);

/* Optional hook called as soon as a head is parsed, before any body byte is
 * read (and before 100 Continue is sent). It may respond right away (the body is
 * then discarded), call colony_request_stream_body(), pause the body
 * (colony_request_pause_body) to decide later, or do nothing to have the
 * body buffered. */
typedef void (*colony_head_cb)(colony_request *req, void *ud);

typedef struct colony_server_options {
    colony_http_limits limits;  /* zero fields = parser defaults; max_body caps buffered bodies */
    uint64_t header_timeout_ms; /* 10000: first byte of a request to end of its head (408) */
    uint64_t body_timeout_ms;   /* 30000: longest pause between body reads (408) */
    uint64_t idle_timeout_ms;   /* 60000: keep-alive connection with no request */
    uint64_t write_timeout_ms;  /* 30000: a write that makes no progress */
    uint64_t max_requests_per_conn; /* 0 = unlimited; then Connection: close */
    /* 10000 per server (all workers). When full, the worker that accepts closes
     * its oldest idle keep-alive connection to make room; with none idle, the
     * new connection gets a 503 JSON and is closed. */
    unsigned max_connections;
    unsigned workers;          /* 1: threads with their own loop; worker 0 is the caller's loop */
    size_t read_buffer_size;   /* 16384 */
    const char *server_header; /* value of Server:, NULL = none */
    /* 1 MiB: unsent output a connection may hold. Over it the connection stops
     * reading and parsing requests until its output drained; a streaming
     * colony_response_write is refused with COLONY_EBUSY (wait for a write
     * callback). */
    size_t max_output_backlog;
    /* 256: open connections from one client IP (TCP); over it a new one gets
     * a 503 JSON and is closed. COLONY_SERVER_UNLIMITED: no limit. */
    unsigned max_connections_per_address;
    /* 300000 (5 min): a tunnel (colony_request_upgrade) with neither a byte
     * read nor write progress for this long is closed (COLONY_ETIMEDOUT).
     * Longer than nginx's 60 s proxy_read_timeout so a WebSocket that pings
     * every 30-60 s stays open; UINT64_MAX: never. */
    uint64_t tunnel_idle_timeout_ms;
} colony_server_options;

#define COLONY_SERVER_UNLIMITED 0xffffffffu

/* Fills zero fields with the defaults above. */
COLONY_API void colony_server_options_init(colony_server_options *opts);

/* Creates a server; handler is required, opts may be NULL for defaults.
 * NULL on allocation failure. Nothing listens until colony_server_listen().
 * The first server or client created in a process sets SIGPIPE to SIG_IGN if
 * it is still SIG_DFL, so a peer that resets a connection mid-write cannot
 * kill the process (writes then fail with EPIPE); a handler the program
 * installed itself is left alone. */
COLONY_API colony_server *colony_server_new(uv_loop_t *loop, const colony_server_options *opts,
                                            colony_handler_cb handler, void *ud);
COLONY_API void colony_server_set_head_hook(colony_server *srv, colony_head_cb hook, void *ud);

/* Binds and listens: "127.0.0.1:8080", "[::1]:0", "0.0.0.0:80", "unix:/path".
 * Port 0 picks a free port (see colony_server_port). May be called more than
 * once for several addresses. Starts the worker threads on the first call. */
COLONY_API int colony_server_listen(colony_server *srv, const char *address);
/* ---- TLS listeners ---- */
/* A set of certificates for TLS listeners (OpenSSL 3): TLS 1.2 minimum,
 * OpenSSL's default ciphers at security level 2, ALPN "http/1.1", session
 * tickets. The client's SNI name picks the first certificate whose names (SAN,
 * else CN; wildcards allowed) match; the first certificate added is the
 * default for no name or an unknown one. Reference counted: listeners and
 * their connections keep what they use alive after colony_tls_ctx_free(). */
typedef struct colony_tls_ctx colony_tls_ctx;
/* An empty set; NULL on allocation failure. */
COLONY_API colony_tls_ctx *colony_tls_ctx_new(void);
/* Adds a PEM certificate chain and its PEM private key. 0; COLONY_ENOENT (a
 * file is missing), COLONY_EINVAL (not PEM, or the key does not match the
 * certificate), COLONY_EBUSY (ctx already given to a listener: build a new one
 * and use colony_tls_ctx_update) or COLONY_ENOMEM, with err (if not NULL)
 * set to a message that names the file: "key file 'b.key': does not match the
 * certificate". */
COLONY_API int colony_tls_ctx_add_certificate(colony_tls_ctx *ctx, const char *cert_file,
                                              const char *key_file, char *err, size_t err_len);
/* The number of certificates added. */
COLONY_API size_t colony_tls_ctx_count(const colony_tls_ctx *ctx);
/* Certificate reload: connections accepted from now on through live (any
 * thread) use fresh's certificates; open connections keep theirs. fresh is not
 * consumed (free it as usual). 0, or COLONY_EINVAL if fresh has none. */
COLONY_API int colony_tls_ctx_update(colony_tls_ctx *live, colony_tls_ctx *fresh);
/* Drops the caller's reference. */
COLONY_API void colony_tls_ctx_free(colony_tls_ctx *ctx);
/* Like colony_server_listen, but every connection on this address speaks TLS
 * with tls's certificates (the listener takes a reference; the caller still
 * frees its own). The handshake is bounded by header_timeout_ms; a client that
 * sends a plain HTTP request gets a plain 400 and is closed. COLONY_EINVAL if
 * tls has no certificate. */
COLONY_API int colony_server_listen_tls(colony_server *srv, const char *address,
                                        colony_tls_ctx *tls);
/* The port the first TCP listener is bound to, or 0. */
COLONY_API int colony_server_port(const colony_server *srv);

/* Graceful shutdown: stop accepting, close idle connections, let in-flight
 * requests finish (each connection closes after its current response) until
 * deadline_ms, then close what is left. cb runs on the server's loop once every
 * connection and listener is closed and worker threads have joined; then
 * colony_server_free() may be called. Safe to call from a signal watcher. */
typedef void (*colony_server_closed_cb)(colony_server *srv, void *ud);
COLONY_API void colony_server_shutdown(colony_server *srv, uint64_t deadline_ms,
                                       colony_server_closed_cb cb, void *ud);
/* Nonzero once shutdown has begun (readiness probes turn false). */
COLONY_API int colony_server_is_shutting_down(const colony_server *srv);
/* Frees a server that was never started or has reported closed. */
COLONY_API void colony_server_free(colony_server *srv);

/* Live counters (summed over workers; approximate while running). */
typedef struct colony_server_stats {
    uint64_t connections_accepted;
    uint64_t connections_rejected;             /* over max_connections with no idle one to close */
    uint64_t connections_evicted;              /* idle keep-alive connections closed to make room */
    uint64_t connections_rejected_per_address; /* over max_connections_per_address */
    uint64_t active_connections;
    uint64_t requests;
    uint64_t protocol_errors;
    uint64_t output_bytes_buffered; /* unsent response bytes held now, all connections */
    uint64_t connections_paused;    /* connections not read now: output backlog full */
} colony_server_stats;
COLONY_API void colony_server_get_stats(const colony_server *srv, colony_server_stats *out);

#endif
