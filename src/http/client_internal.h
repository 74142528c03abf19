/* Internals of the HTTP client, shared by client.c (API, calls), client_pool.c
 * (origins, queueing, idle reuse), client_conn.c (connecting, writing the
 * request, timers), client_response.c (reading and framing the response) and
 * client_url.c (URL parsing).
 *
 * Lifetime rules: memory that a libuv handle lives in is freed only from that
 * handle's close callback, so a pointer to a conn, a call or the client stays
 * valid for the rest of any callback in which it was closed. */
#ifndef COLONY_HTTP_CLIENT_INTERNAL_H
#define COLONY_HTTP_CLIENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>
#include "colony/http_client.h"
#include "core/closer.h"
#include "core/list.h"
#include "core/map.h"

/* ---- URLs ---- */
#define COLONY__URL_MAX      8192 /* whole URL */
#define COLONY__URL_HOST_MAX 255  /* host name or literal; unix socket path up to 107 */
#define COLONY__ORIGIN_MAX   (COLONY__URL_HOST_MAX + 32)

typedef struct colony__client_url {
    int is_unix;
    int is_https;
    char host[COLONY__URL_HOST_MAX + 1]; /* lowercased name, IPv6 literal without
                                            brackets, or the decoded socket path */
    uint16_t port;                       /* 0 for unix */
    int is_ipv6_literal;
    const char *target; /* points into the parsed string: "/path?query" */
    size_t target_len;
    int target_needs_slash; /* "http://h?q": the target is "/" + target */
} colony__client_url;

/* Parses an http://, https:// or http+unix:// URL. Returns 0 or COLONY_EINVAL. */
int colony__client_url_parse(const char *url, colony__client_url *out);
/* The pool key: "http://host:port" ("https://[::1]:443") or the unix socket path.
 * Returns its length, or COLONY_E2BIG if cap is too small. */
int colony__client_url_origin(const colony__client_url *u, char *out, size_t cap);
/* The Host header value: "host", "host:port", "[v6]:port", "localhost" for unix. */
int colony__client_url_host_header(const colony__client_url *u, char *out, size_t cap);

/* ---- a growable byte buffer without a NUL-on-reset (pointers into it handed
 * to callbacks must survive a reset until new bytes arrive) ---- */
typedef struct colony__client_bytes {
    char *data;
    size_t len, cap;
} colony__client_bytes;

/* Makes room for n more bytes, never past max total; 0, E2BIG or ENOMEM. */
int colony__client_bytes_reserve(colony__client_bytes *b, size_t n, size_t max);
void colony__client_bytes_free(colony__client_bytes *b);

/* ---- objects ---- */
typedef struct colony__client_origin colony__client_origin;
typedef struct colony__client_conn colony__client_conn;

enum colony__client_call_state {
    COLONY__CALL_QUEUED,   /* in origin->queue waiting for a connection */
    COLONY__CALL_BOUND,    /* owns conn (connecting or exchanging) */
    COLONY__CALL_DEFERRED, /* finished; done_cb runs from the client's defer timer */
    COLONY__CALL_DONE,     /* done_cb ran or is running */
};

struct colony_client_call {
    colony__list link; /* origin->queue while queued; client->deferred while deferred */
    colony_client *client;
    colony__client_origin *origin;
    colony__client_conn *conn;
    int state;
    int deferred_err;
    colony_client_done_cb done_cb;
    colony_client_head_cb head_cb;
    colony_client_data_cb data_cb;
    colony_client_body_cb body_cb;
    void *ud;
    colony__list deadline_link; /* client->deadlines while has_deadline */
    uint64_t deadline_at;       /* loop ms of the total timeout */
    unsigned has_deadline : 1;
    unsigned is_head : 1;         /* HEAD: the response has no body */
    unsigned idempotent : 1;      /* may be retried on a fresh connection */
    unsigned body_ended : 1;      /* the request is fully handed to the connection */
    unsigned close_requested : 1; /* caller sent "Connection: close" */
    unsigned retried : 1;
    unsigned fresh_only : 1;             /* the retry must not use an idle connection */
    unsigned sent : 1;                   /* handed to a connection (colony_client_call_was_sent) */
    unsigned upgrade_requested : 1;      /* the request has Upgrade: a 101 is welcome */
    struct colony_client_tunnel *tunnel; /* during done_cb of a 101 (client_upgrade.c) */
    uint64_t connect_timeout_ms;         /* for a connection this call opens */
    uint64_t read_timeout_ms;            /* longest silence (the request's, or the client's) */
    unsigned timeout_to_head : 1;        /* the total timeout ends at the response head */
    size_t req_len;                      /* bytes of req: head and fixed body */
    /* upload: a streamed body with Content-Length (colony_client_request.body_length) */
    unsigned body_sized : 1;
    uint64_t body_left; /* bytes of it still to write */
    char *tls_error;    /* why TLS failed on its connection (client_tls.c), or NULL */
    char req[];
};

/* An origin lives while it has connections or queued calls; once it has
 * neither it is "empty" and is freed after idle_timeout_ms (or sooner, by
 * eviction, when the client holds max_origins). */
struct colony__client_origin {
    colony__list lru_link;   /* client->origins, most recently used first */
    colony__list empty_link; /* client->empty_origins while empty, oldest first */
    uint64_t empty_since;    /* loop time it became empty */
    colony_client *client;
    char key[COLONY__ORIGIN_MAX];
    char host_header[COLONY__ORIGIN_MAX];
    colony__client_url url;               /* target fields unused */
    struct sockaddr_storage numeric_addr; /* when the host is an IP literal */
    int has_numeric_addr;
    colony__list conns; /* every open conn (connecting, busy, idle) */
    colony__list idle;  /* idle conns, most recently used first */
    colony__list queue; /* calls waiting, FIFO */
    unsigned n_conns, n_idle, n_queued;
    int dispatching; /* colony__client_pool_dispatch is running for this origin */
    uint64_t connects, reused;
    struct ssl_session_st *tls_session; /* https: the last session, for resumption */
    char *tls_ca_file;                  /* the calls' tls_ca_file (copied), or NULL */
    char *tls_server_name;              /* the calls' tls_server_name (copied), or NULL */
    char *tls_cert_file, *tls_key_file; /* the calls' client certificate (copied), or NULL */
    struct ssl_ctx_st *tls_ctx; /* made for tls_ca_file or the certificate; NULL: the client's */
    uint64_t tls_resumed;
};

enum colony__client_conn_state {
    COLONY__CONN_CONNECTING,
    COLONY__CONN_BUSY,
    COLONY__CONN_IDLE,
    COLONY__CONN_CLOSING,
    COLONY__CONN_TUNNEL, /* answered 101: out of the pool, raw bytes (client_upgrade.c) */
};

struct colony__client_conn {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } io;
    uv_timer_t timer; /* connect, read or idle timeout, by state */
    uv_connect_t connect_req;
    uv_getaddrinfo_t resolve_req;
    uv_write_t write_req;          /* the request head (and fixed body) */
    colony__list all_link;         /* origin->conns */
    colony__list idle_link;        /* origin->idle while idle */
    colony__client_origin *origin; /* not to be used once closing: the origin may be gone */
    colony_client *client;
    colony_client_call *call;
    int state;
    unsigned refs; /* open handles and pending resolution; freed at 0 */
    unsigned io_open : 1;
    unsigned resolving : 1;
    unsigned reset_pending : 1;      /* parse state is reset at the next read */
    unsigned got_bytes : 1;          /* a response byte arrived for the current call */
    unsigned paused : 1;             /* colony_client_call_pause: not reading */
    unsigned tls_cert_requested : 1; /* https: the server asked for a client certificate */
    int connect_err;
    int read_buf_err; /* why on_alloc gave no buffer (UV_ENOBUFS) */
    struct addrinfo *addrs, *next_addr;
    uint64_t requests_done;
    uint64_t last_activity;
    unsigned writes_pending;
    /* response */
    colony__client_bytes in;   /* the head at its start, then bytes not yet framed */
    colony__client_bytes body; /* buffered body */
    colony_http_header *headers;
    size_t max_headers;
    colony_http_limits limits;
    colony_http_response res;
    size_t head_len; /* 0 until the final head is parsed */
    uint64_t body_remaining;
    colony_http_chunked chunked;

    struct ssl_st *ssl; /* https (client_tls.c); the conn stays CONNECTING during the handshake */

    /* Upgrade (client_upgrade.c): set with state COLONY__CONN_TUNNEL, freed with the conn. */
    struct colony_client_tunnel *tunnel;
};

struct colony_client {
    uv_loop_t *loop;
    colony_client_options opts;
    colony__map origin_map;     /* key -> colony__client_origin */
    colony__list origins;       /* every origin, most recently used first */
    colony__list empty_origins; /* origins with no conn and no call, oldest first */
    unsigned n_origins;
    uint64_t origins_expired, origins_evicted, origins_refused;
    uv_timer_t origin_timer; /* frees empty origins after idle_timeout_ms */
    colony__list deferred;   /* finished calls whose done_cb is still to run */
    uv_timer_t defer_timer;
    /* Total timeouts: one timer for every call (client_deadline.c) instead of
     * a timer handle per call, which cost an init, a start, a stop and a
     * close per request. */
    colony__list deadlines; /* calls with a total timeout, oldest first */
    uv_timer_t deadline_timer;
    colony__closer closer; /* the client's timers, at close */
    colony__list tunnels;  /* open colony_client_tunnel (client_upgrade.c) */
    int api_depth;         /* >0 inside a public function: completions are deferred */
    int closing;
    unsigned live_conns, live_calls;
    colony_client_closed_cb closed_cb;
    void *closed_ud;
    struct ssl_ctx_st *tls_ctx; /* made at the first https connection (client_tls.c) */
    char *tls_ca_file;          /* a copy of opts.ca_file */
};

/* client.c */
/* Finishes a call: runs done_cb now, or from the defer timer when inside a
 * public function (never re-entrantly). Detaching from queue/conn is the
 * caller's job. Frees the call after done_cb. */
void colony__client_call_complete(colony_client_call *call, int err,
                                  const colony_client_response *res);
/* Detaches the call from its queue or connection (closing the connection) and
 * completes it with err. */
void colony__client_call_fail(colony_client_call *call, int err);
/* Frees the client once nothing is left open. */
void colony__client_maybe_finish(colony_client *c);

/* client_deadline.c */
/* Gives call a total timeout of ms from now; it fails with COLONY_ETIMEDOUT
 * then unless colony__client_deadline_clear ran first. */
void colony__client_deadline_set(colony_client_call *call, uint64_t ms);
void colony__client_deadline_clear(colony_client_call *call);

/* client_pool.c */
colony__client_origin *colony__client_origin_find(colony_client *c, const char *key);
/* Finds or creates the origin of key and marks it most recently used. When the
 * client holds max_origins, the least recently used origin with no connection
 * in use and no call queued is freed to make room. Returns 0, COLONY_ENOMEM,
 * or COLONY_EBUSY when every origin is in use. */
int colony__client_origin_get(colony_client *c, const colony__client_url *u, const char *key,
                              colony__client_origin **out);
/* https: the origin key of a call with its own tls_ca_file or tls_server_name
 * is the URL's plus "#" and a hash of both (other pools than the default).
 * Returns the key's length or COLONY_E2BIG. */
int colony__client_tls_key(char *key, size_t cap, const colony_client_request *r);
/* 1 if r (https) has TLS settings of its own: another pool than the default. */
int colony__client_tls_own(const colony_client_request *r);
/* A new origin takes copies of the call's TLS settings. 0 or ENOMEM. */
int colony__client_tls_origin_init(colony__client_origin *o, const colony_client_request *r);
/* 1 once o took the TLS settings of a call (colony__client_tls_origin_init). */
int colony__client_tls_origin_ready(const colony__client_origin *o);
/* Call when o may have lost its last conn or call: an empty origin starts its
 * idle countdown (it is freed from a timer, never from inside this call). */
void colony__client_origin_check_empty(colony__client_origin *o);
void colony__client_origin_free_all(colony_client *c);
/* True when a new call could get a connection at once (no queueing). */
int colony__client_pool_has_room(const colony__client_origin *o);
/* Hands queued calls to idle conns or new conns while limits allow. */
void colony__client_pool_dispatch(colony__client_origin *o);
/* A conn finished its call cleanly: keep it idle or close it. */
void colony__client_pool_release(colony__client_conn *conn, int reusable);
/* Puts a call back at the front of its origin's queue for one retry on a new conn. */
void colony__client_pool_requeue_for_retry(colony_client_call *call);

/* https: the connection failed with err (a read or write error, EOF) while its
 * call waited for a response (client_tls.c): when the server had asked for a
 * client certificate and hung up on the connection's first request before
 * any byte, keeps that for the call: how a TLS 1.3 server refuses a client
 * certificate when its alert is lost to a reset. */
void colony__client_tls_exchange_failed(colony__client_conn *conn, int err);

/* client_conn.c */
/* Creates a connection for o and starts connecting it for call. Returns 0 or
 * a negative code (nothing was created). */
int colony__client_conn_open(colony__client_origin *o, colony_client_call *call);
/* Sends call's request on an idle (connected) conn. */
void colony__client_conn_start(colony__client_conn *conn, colony_client_call *call);
/* Closes the conn (idempotent); it leaves the origin's counts at once. */
void colony__client_conn_close(colony__client_conn *conn);
/* Starts the idle timeout on a conn just put in the idle list. */
void colony__client_conn_idle_timer_start(colony__client_conn *conn);
/* A write of the request (head or body piece) finished: it counts as
 * activity, and a streamed body is asked for more once all writes are out. */
void colony__client_conn_write_done(colony__client_conn *conn, int status);
/* Unbinds and returns the conn's call (NULL if none). */
colony_client_call *colony__client_conn_detach_call(colony__client_conn *conn);
/* Connecting failed for good (all addresses, timeout, handshake): closes the
 * conn and fails its call with err. */
void colony__client_conn_connect_failed(colony__client_conn *conn, int err);
/* The exchange on a connected conn failed: closes it, and retries the call
 * once on a fresh connection when a reused conn was dead before answering,
 * else fails the call. */
void colony__client_conn_exchange_failed(colony__client_conn *conn, int err);
/* Writes the bound call's request on the connected conn. */
void colony__client_conn_send_request(colony__client_conn *conn);

/* client_response.c */
/* The conn's libuv alloc and read callbacks: the response is read into
 * conn->in, parsed, framed and handed to the call. */
void colony__client_conn_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
void colony__client_conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* client.c */
/* Streams a body chunk (copied) or the final chunk on the call's conn. */
int colony__client_conn_write_chunk(colony__client_conn *conn, const void *data, size_t len,
                                    int last);

/* client_upgrade.c */
/* The call's request had Upgrade and conn read a 101 head (conn->head_len
 * bytes): the conn leaves its origin, the call completes with the 101 and
 * its done_cb may take the tunnel. */
void colony__client_tunnel_switch(colony__client_conn *conn, colony_client_call *call);
/* colony_client_close: ends every open tunnel with COLONY_ECANCELED. */
void colony__client_tunnels_close(colony_client *c);

/* client_tls.c */
/* Writes len bytes (not copied: they live until cb) on conn, encrypted on an
 * https conn. 0 or a negative code (cb then never runs). */
int colony__client_conn_write(colony__client_conn *conn, uv_write_t *req, const char *data,
                              size_t len, uv_write_cb cb);
/* The TCP connection of an https conn is up: starts the handshake. 0 or a
 * negative code (the connect failed). */
int colony__client_tls_start(colony__client_conn *conn);
/* The read callback's nread during the handshake (bytes at in.data + in.len,
 * or a read error): 1 when the handshake is done, 0 while it goes on,
 * COLONY_EPROTO (reason logged) or ENOMEM. */
int colony__client_tls_handshake(colony__client_conn *conn, ssize_t n);
/* n ciphertext bytes were read at in.data + in.len: decrypts them in place
 * (in may grow and move). The plaintext bytes now there, *eof after the
 * server's close_notify, or COLONY_EPROTO / ENOMEM. */
ssize_t colony__client_tls_read(colony__client_conn *conn, size_t n, int *eof);
/* colony__client_conn_write for an https conn: encrypts, then one uv_write. */
int colony__client_tls_write(colony__client_conn *conn, uv_write_t *req, const char *data,
                             size_t len, uv_write_cb cb);
/* Before an https conn closes: its close_notify, best effort (one try). */
void colony__client_tls_close_notify(colony__client_conn *conn);
void colony__client_tls_free(colony__client_conn *conn);
/* The client closes: frees the SSL_CTX; an origin that goes frees its session. */
void colony__client_tls_ctx_free(colony_client *c);
void colony__client_tls_origin_free(colony__client_origin *o);

/* Stops (pause = 1) or resumes reading the response of the connection's
 * call. 0, or COLONY_EINVAL when the connection is not busy with a call. */
int colony__client_conn_pause(colony__client_conn *conn, int pause);

#endif
