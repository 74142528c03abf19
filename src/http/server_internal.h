/* HTTP server internals shared by server.c (server, workers, listeners,
 * shutdown), server_accept.c (accept, connection limits), server_conn.c
 * (a connection's life: read, state machine, timeouts), server_parse.c (parse
 * and dispatch), server_response.c (responses), server_write.c (the write
 * path) and server_request.c (request objects and accessors).
 *
 * Threading: every connection, request and listener belongs to one worker and
 * is only touched on that worker's loop thread. Cross-thread state is limited to
 * the connection counter, the shutdown flag, the stats counters (relaxed
 * atomics, one writer each) and the pending-listener list (mutex, cold path). */
#ifndef COLONY_HTTP_SERVER_INTERNAL_H
#define COLONY_HTTP_SERVER_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include "colony/buf.h"
#include "colony/http_server.h"
#include "colony/log.h"
#include "core/list.h"
#include "core/map.h"

typedef struct colony__worker colony__worker;
typedef struct colony__conn colony__conn;
typedef struct colony__listener colony__listener;
typedef struct colony__tls_conn colony__tls_conn;

/* A key -> pointer slot set with colony_request_set_data (arena memory). */
typedef struct colony__req_data {
    struct colony__req_data *next;
    const char *key;      /* copy of the key */
    const char *key_addr; /* the caller's pointer: static keys match without strcmp */
    void *value;
} colony__req_data;

typedef struct colony__req_hook {
    struct colony__req_hook *next;
    colony_request_hook_cb cb;
    void *ud;
} colony__req_hook;

typedef struct colony__resp_header {
    colony__list link; /* request's resp_headers, in the order added */
    const char *name;
    const char *value;
    size_t name_len, value_len;
    int is_content_type;
} colony__resp_header;

struct colony_request {
    colony__conn *conn; /* NULL once the connection let go of it */
    colony__worker *worker;
    colony__list link; /* conn's awaiting list or worker pool */
    colony_arena *arena;
    colony_buf body;

    /* Parsed head, copied into the arena and NUL-terminated in place. */
    const char *method, *target, *path, *query;
    colony_http_header *headers;
    size_t num_headers;
    int version_minor;
    int keep_alive;
    int is_head;
    const char *peer, *peer_ip; /* colony_request_peer(_ip), made on first use */

    char request_id[24];
    colony_log_context log_ctx;
    colony__req_data *data;
    colony__req_hook *on_response, *on_finish; /* newest first */

    /* Streamed request body (colony_request_stream_body). */
    colony_body_data_cb body_cb;
    void *body_ud;

    /* Response state. */
    int status;
    colony__list resp_headers;   /* colony__resp_header, in the order added */
    int64_t resp_content_length; /* from a Content-Length header, -1 if none */
    uint64_t resp_body_sent;
    uint64_t end_offset;      /* conn output offset after the last byte of the response */
    unsigned started : 1;     /* head serialized */
    unsigned ended : 1;       /* response complete (or dropped) */
    unsigned chunked : 1;     /* streaming with chunked framing */
    unsigned until_close : 1; /* streaming to an HTTP/1.0 client: body ends at close */
    unsigned handler_called : 1;
    unsigned finished : 1;   /* on_finish hooks ran */
    unsigned resp_close : 1; /* handler asked for Connection: close */
    unsigned in_head_hook : 1;
    unsigned orphaned : 1; /* the connection is gone; freed once the response ends */
    unsigned no_body : 1;  /* HEAD request or a 204/304 response: no body bytes */
    unsigned user_content_type : 1;
    int pinned; /* > 0 while the server is calling out with it */

    /* upload: body flow control (server_body.c) */
    unsigned held : 1; /* paused once: owed a response even before the handler runs */
};

/* A pending streaming write callback: fires once out_written reaches end. */
typedef struct colony__write_cb_entry {
    uint64_t end;
    colony_request *req;
    colony_write_cb cb;
    void *ud;
} colony__write_cb_entry;

enum colony__conn_phase {
    COLONY__PHASE_IDLE,    /* waiting for the first byte of a request */
    COLONY__PHASE_HEAD,    /* head incomplete */
    COLONY__PHASE_BODY,    /* reading the body */
    COLONY__PHASE_HANDLER, /* waiting for the response to end */
    COLONY__PHASE_LINGER,  /* final response sent, draining input before close */
    COLONY__PHASE_TUNNEL,  /* answered 101: raw bytes both ways (server_tunnel.c) */
};

enum colony__timer_mode {
    COLONY__TIMER_NONE,
    COLONY__TIMER_IDLE,
    COLONY__TIMER_HEAD,
    COLONY__TIMER_BODY,
    COLONY__TIMER_WRITE,
    COLONY__TIMER_LINGER,
    COLONY__TIMER_KICK,   /* 0 ms: a resumed body's buffered bytes (kick_pending) */
    COLONY__TIMER_TUNNEL, /* tunnel idle timeout, or the first delivery (server_tunnel.c) */
};

struct colony__conn {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    uv_timer_t timer;
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;
    colony__worker *worker;
    colony__list link;       /* worker's conns */
    colony__list idle_link;  /* worker's idle LRU while idle: evicted first when full */
    colony__list flush_link; /* worker's flush_pending while a deferred flush waits */

    /* Read side: bytes [rpos, rlen) of rbuf are unprocessed. */
    char *rbuf;
    size_t rlen, rcap, rpos;

    int phase;
    int timer_mode;
    uint64_t idle_since;    /* loop ms of the last response end: the idle timer is lazy */
    uint64_t head_deadline; /* loop time the current head must be complete by */
    colony_request *req;    /* the request being read or handled */
    uint64_t body_remaining;
    colony_http_chunked chunked;
    int body_is_chunked;
    unsigned requests;

    /* Write side: out accumulates, inflight is being written by uv_write. */
    colony_buf out, inflight;
    colony_buf held; /* a body taken by colony_respond_buf, sent before out */
    size_t held_off;
    uint64_t out_queued;   /* bytes ever appended to out */
    uint64_t out_written;  /* bytes the kernel accepted */
    colony__list awaiting; /* requests ended, not yet written (oldest first) */
    unsigned awaiting_count;
    uint64_t out_accounted; /* unsent bytes last added to the worker's gauge */
    colony__write_cb_entry *wcbs;
    size_t wcbs_len, wcbs_cap;

    int close_refs; /* handles still to close */
    int in_process; /* conn_process is on the stack */
    unsigned is_unix : 1;
    unsigned reading : 1;
    unsigned writing : 1;     /* a uv_write is in flight */
    unsigned close_after : 1; /* close after the current response */
    unsigned closing : 1;
    unsigned not_counted : 1;  /* not (or no longer) counted in srv->active */
    unsigned addr_counted : 1; /* counted in srv->per_address under addr */
    unsigned peer_eof : 1;
    unsigned shutting : 1;         /* uv_shutdown issued */
    unsigned final_sent : 1;       /* the last response is queued: no more requests */
    unsigned body_pending : 1;     /* the current request's body is not fully read */
    unsigned body_discardable : 1; /* ... but it is small and already buffered */
    unsigned paused : 1;           /* not reading: output backlog full */
    unsigned writing_held : 1;     /* the uv_write in flight is from held */
    size_t inflight_off;
    char addr[48]; /* peer IP, the per-address key (colony__conn_load_peer) */
    int peer_port;
    unsigned peer_loaded : 1; /* addr, peer_port and peer_v6 are set */
    unsigned peer_v6 : 1;

    /* upload: flow control of the request body (server_body.c) */
    unsigned body_paused : 1;      /* colony_request_pause_body: the body is not read */
    unsigned continue_pending : 1; /* 100 Continue owed once the body is let flow */
    unsigned kick_pending : 1;     /* resumed: process buffered bytes on the next loop turn */
    /* Tunnel after a 101 (server_tunnel.c): set with phase COLONY__PHASE_TUNNEL;
     * freed with the connection. */
    struct colony_tunnel *tunnel;
    /* TLS (tls.c): set on a TLS listener's connections. Bytes in rbuf and out
     * are plaintext; the record layer lives in tls. */
    colony__tls_conn *tls;
};

struct colony__listener {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    union {
        uv_handle_t handle;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } spare; /* accepts and closes a connection when allocation fails */
    colony__worker *worker;
    colony__listener *next;
    int fd; /* before it is opened on the worker's loop */
    unsigned is_unix : 1;
    unsigned spare_busy : 1;
    unsigned accept_pending : 1;

    colony_tls_ctx *tls; /* TLS listener (a reference), or NULL */
};

typedef struct colony__worker_stats {
    _Atomic uint64_t accepted, rejected, requests, protocol_errors;
    _Atomic uint64_t evicted, rejected_per_address;
    _Atomic uint64_t out_buffered, paused; /* gauges */
} colony__worker_stats;

struct colony__worker {
    colony_server *srv;
    unsigned index;
    uv_loop_t *loop;
    uv_loop_t own_loop; /* workers 1..N-1 */
    uv_thread_t thread;
    uv_async_t async;    /* threads: new listeners or shutdown */
    uv_timer_t deadline; /* shutdown deadline */
    uv_mutex_t lock;     /* guards pending */
    colony__listener *pending;
    colony__listener *listeners;
    colony__list conns; /* colony__conn.link */
    colony__list idle;  /* colony__conn.idle_link, longest idle first */
    /* Connections answered from outside their own read processing (a proxy's
     * upstream callback, a timer) are flushed once, on the loop's next turn:
     * a head and its body written in separate calls leave in one write. */
    colony__list flush_pending; /* colony__conn.flush_link */
    uv_idle_t flush_idle;       /* an idle handle: the next loop turn, poll not blocking */
    unsigned num_listeners, num_conns, orphans;
    colony__list pool; /* free colony_request.link */
    unsigned pool_len;
    colony_http_header *scratch_headers; /* limits.max_headers entries */
    uint64_t next_request_id;
    colony__worker_stats stats;
    time_t date_sec;
    char date_line[48]; /* "Date: ...\r\n" */
    size_t date_len;
    unsigned thread_started : 1;
    unsigned async_open : 1;
    unsigned shutdown_started : 1;
    unsigned deadline_open : 1;
    unsigned flush_idle_open : 1;
    unsigned done : 1;
};

struct colony_server {
    uv_loop_t *loop;
    colony_server_options opts;
    colony_http_limits parse_limits; /* max_body lifted: the server enforces it */
    char *server_header;
    colony_handler_cb handler;
    void *handler_ud;
    colony_head_cb head_hook;
    void *head_hook_ud;
    colony__worker *workers;
    unsigned num_workers;
    int port;
    char *unix_paths[8]; /* unlinked at shutdown */
    unsigned num_unix_paths;
    atomic_uint active;
    uv_mutex_t per_address_lock; /* accept and close only */
    colony__map per_address;     /* peer IP -> open connections (as uintptr_t) */
    atomic_int shutting_down;
    atomic_uint workers_finished;
    uint64_t deadline_ms;
    uv_async_t done_async; /* main loop: a worker thread finished */
    colony_server_closed_cb closed_cb;
    void *closed_ud;
    unsigned started : 1;
    unsigned done_async_open : 1;
    unsigned closed : 1;
};

/* Single-writer counter bump without a locked instruction. */
static inline void colony__stat_inc(_Atomic uint64_t *counter)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* Single-writer gauge change (delta may be negative, modulo 2^64). */
static inline void colony__stat_add(_Atomic uint64_t *gauge, uint64_t delta)
{
    atomic_store_explicit(gauge, atomic_load_explicit(gauge, memory_order_relaxed) + delta,
                          memory_order_relaxed);
}

/* server_accept.c */
void colony__listener_on_connection(uv_stream_t *server, int status);
/* A connection goes away: its per-address count drops (on close). */
void colony__conn_release_address(colony__conn *c);
/* Reads the peer's address once per connection (one getpeername, not one per
 * request). 0, or an error for a Unix socket or a peer that is gone. */
int colony__conn_load_peer(colony__conn *c);

/* server_conn.c */
/* Starts reading a freshly accepted connection. */
void colony__conn_start(colony__conn *c);
void colony__conn_close(colony__conn *c, int err);
/* Closes an idle connection now, or marks a busy one to close after its
 * current response (graceful shutdown). */
void colony__conn_shutdown(colony__conn *c);
/* Continues the state machine after the current response ended. */
void colony__conn_response_ended(colony__conn *c, colony_request *req);
/* Output progressed or completed: fires callbacks, finishes requests. */
void colony__conn_after_write(colony__conn *c);
/* 1 while the connection holds more unsent output (or more answered requests
 * awaiting their write) than it may: it takes no new request then. */
int colony__conn_backlog_full(const colony__conn *c);
/* Brings the worker's output_bytes_buffered gauge up to date for c. */
void colony__conn_account_output(colony__conn *c);
/* Also keeps the worker's idle LRU (w->idle) in step. */
void colony__conn_update_timer(colony__conn *c);
/* 1 if c waits for a request with nothing read, queued or being written. */
int colony__conn_is_idle(const colony__conn *c);

/* The request body was paused or resumed (server_body.c): reading follows,
 * and a resumed body's buffered bytes are processed from the loop's next
 * turn, never from inside the caller. */
void colony__conn_body_flow(colony__conn *c);
/* Starts or stops reading as the connection's state wants. */
void colony__conn_update_reading(colony__conn *c);

/* server_tunnel.c: a connection taken over after 101 */
/* Every read result of a tunnel connection (data, EOF, error). */
void colony__tunnel_on_read(colony__conn *c, ssize_t nread);
/* Output progressed: write callbacks, flushing, a pending close. */
void colony__tunnel_after_write(colony__conn *c);
/* The connection is closing (err 0: cleanly): write callbacks fail, on_close
 * runs and the request finishes. Called by colony__conn_close. */
void colony__tunnel_closing(colony__conn *c, int err);
/* The tunnel's timer fired: first delivery or idle timeout. */
void colony__tunnel_on_timer(colony__conn *c);
/* 1 while the tunnel reads. */
int colony__tunnel_wants_read(const colony__conn *c);
/* Delay of the tunnel timer from now; UINT64_MAX: none. */
uint64_t colony__tunnel_timer_ms(const colony__conn *c);
/* 1 if req was answered with colony_request_upgrade: no response calls. */
static inline int colony__request_upgraded(const colony_request *req)
{
    return req->conn && req->conn->tunnel;
}

/* server_parse.c: parse and dispatch */
/* Parses the next head in the read buffer and dispatches it (head hook, then
 * the handler if it has no body). Returns 1 when the phase changed. */
int colony__conn_parse_head(colony__conn *c);
/* Reads body bytes from the buffer; calls the handler once the body is
 * complete. Returns 1 when the phase changed. */
int colony__conn_read_body(colony__conn *c);
/* Ends the request being read (its handler never ran) and answers status with
 * a JSON error; the connection closes after it. */
void colony__conn_fail_request(colony__conn *c, int status, const char *message, int err);

/* server_write.c: the write path */
/* Sends what is queued (uv_try_write, then uv_write for the rest). */
void colony__conn_flush(colony__conn *c);
/* Flushes c on the loop's next turn (server_response.c), even while it is
 * being processed: for write callbacks that must not run inside the call
 * that queued them. */
void colony__conn_defer_flush(colony__conn *c);
/* Appends to the output and counts it in the stream offset. */
int colony__conn_append(colony__conn *c, const void *data, size_t len);
/* Appends a body after the head in c->out; a large one is first offered to
 * the kernel from the caller's memory and only the rest is copied. */
int colony__conn_append_body(colony__conn *c, const char *body, size_t len, colony_buf *owned);
int colony__conn_send_continue(colony__conn *c);
/* Flushes c on the loop's next turn (or when conn_process ends). */
void colony__conn_schedule_flush(colony__conn *c);

/* server_response.c */
/* Writes v in decimal at p (at most 20 bytes, no NUL); returns the end. */
char *colony__put_u64(char *p, uint64_t v);
/* Queues a complete response that belongs to no request object (protocol
 * errors, timeouts): JSON error body, Connection: close. */
void colony__conn_send_error(colony__conn *c, int status, const char *error, const char *message);
const char *colony__error_code_for_status(int status);
/* Appends {"error": error, "message": message} JSON to b. */
int colony__json_error_body(colony_buf *b, const char *error, const char *message);

/* The connection lets go of req: released now, or orphaned while a handler
 * still owes its response or the server is calling out with it (pinned). */
void colony__request_detach(colony_request *req);
/* Ends a call-out; frees the request if it was orphaned meanwhile. */
void colony__request_unpin(colony_request *req);
/* Releases an orphaned request once its response ended and nobody holds it. */
void colony__request_maybe_free_orphan(colony_request *req);

/* server_request.c */
colony_request *colony__request_acquire(colony__worker *w);
/* Returns a request to the worker pool (or frees it). */
void colony__request_release(colony_request *req);
/* Runs on_finish hooks once (with the log context set). */
void colony__request_finish(colony_request *req, int status);
void colony__request_run_response_hooks(colony_request *req);
void colony__worker_free_pool(colony__worker *w);
/* Copies the parsed head into the request arena and derives path, query and
 * (absolute-form) Host. 0, COLONY_ENOMEM, or COLONY_EPROTO with the status to
 * answer (400 for a fragment or a bad absolute-form, 417 for an Expect other
 * than 100-continue) and why. */
int colony__request_load_head(colony_request *req, const char *head, size_t head_len,
                              const colony_http_request *parsed, int *status, const char **why);

/* server.c */
/* Called on the worker's loop whenever a connection, listener or orphaned
 * request goes away; completes the worker's shutdown when nothing is left. */
void colony__worker_maybe_done(colony__worker *w);

#endif
