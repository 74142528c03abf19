/* The RESP listener and its connections: accept, read, parse, run commands
 * in order, write (uv_try_write first, then uv_write), close. Used by the
 * daemon (broker.c) and by the command files, which reply through a
 * client's output buffer. */
#ifndef COLONY_BROKER_CONN_H
#define COLONY_BROKER_CONN_H

#include <stdint.h>
#include <uv.h>
#include "colony/buf.h"
#include "core/list.h"
#include "core/map.h"
#include "broker/resp/resp.h"
#include "broker/pubsub.h"

/* The Redis whose replies the broker gives (HELLO, INFO redis_version):
 * clients choose features by it. */
#define COLONY__BROKER_REDIS_VERSION "7.0.0"

typedef struct colony__broker_settings {
    colony__resp_limits limits;
    size_t max_query_buffer; /* unparsed input held per client; over it: closed */
    size_t output_limit;     /* unsent replies per client; over it: closed */
    size_t pubsub_limit;     /* unsent output of a subscribed client; over it: closed */
    size_t max_clients;
    const char *requirepass; /* "" = none */
} colony__broker_settings;

typedef struct colony__broker_stats {
    uint64_t connections_received, connections_rejected, commands_processed;
    uint64_t protocol_errors, output_limit_disconnects, query_limit_disconnects;
    uint64_t pubsub_messages; /* PUBLISH commands */
    uint64_t bytes_in, bytes_out;
} colony__broker_stats;

typedef struct colony__broker_resp colony__broker_resp;
typedef struct colony__broker_client colony__broker_client;
struct colony__bstore;
struct colony__bcommit;

/* A reply parked until its write is durable (XADD, XDEL, XTRIM): the
 * command writes its reply as usual; from then on that reply and every reply
 * after it wait in the client's `parked` buffer, in order, and go out once
 * the tickets before them are done. A ticket outlives its client (the commit
 * callback still holds it): client is NULL then. */
typedef struct colony__broker_park {
    colony__list link; /* in the client's parks, oldest first */
    colony__broker_client *client;
    colony__broker_resp *srv;
    uint64_t start; /* where its reply starts in the client's parked bytes (absolute) */
    int done, err;
} colony__broker_park;

struct colony__broker_client {
    colony__list link;       /* in the server's clients */
    colony__list dirty_link; /* in the server's dirty: output queued by another client */
    colony__broker_resp *srv;
    uv_tcp_t tcp;
    uint64_t id;
    colony__resp_parser parser;
    colony_buf in;       /* unparsed input */
    colony_buf out;      /* replies not yet handed to the kernel */
    colony_buf inflight; /* what uv_write is sending: from inflight_off on */
    size_t inflight_off;
    uv_write_t write_req;
    int writing, closing, close_after_reply, paused, authenticated;
    int processing;                  /* inside process(): flush must not resume reading */
    int out_of_memory;               /* the last read found no memory for its buffer */
    char *name, *lib_name, *lib_ver; /* CLIENT SETNAME / SETINFO */
    char addr[64], laddr[64];
    uint64_t created_ms, last_ms;
    const char *last_cmd;     /* the table's name of the last command, or NULL */
    colony__broker_subs subs; /* pub/sub state (pubsub.h) */
    /* replies waiting for a commit (colony__broker_park), in order */
    colony_buf parked;
    uint64_t parked_base; /* absolute offset of parked.data[0] */
    colony__list parks;
    void *xwait;        /* cmd_stream.c: a commit wait later XADDs of this read join */
    void *blocked;      /* XREAD BLOCK's state (cmd_stream.c); NULL when not blocked */
    int resume_pending; /* unblocked: run the rest of its input from flush_dirty */
};

struct colony__broker_resp {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int listening, stopped;
    int port;
    colony__broker_settings settings;
    colony__list clients;
    colony__list dirty; /* clients given output by others' commands, flushed after them */
    size_t nclients;
    uint64_t next_id, started_ms;
    colony__broker_stats stats;
    colony__broker_pubsub pubsub;
    const char *data_dir;
    struct colony__bstore *store;   /* the streams (NULL: stream commands fail) */
    struct colony__bcommit *commit; /* its group commit */
    uint64_t commits_inflight;      /* tickets whose commit has not called back */
    colony__list blocked;           /* XREAD BLOCK states, oldest first */
    int in_process;                 /* a client's commands are running */
    /* shutdown: done runs once the listener and every client have closed */
    void (*closed)(void *ud);
    void *closed_ud;
    /* PUBLISH also appends to the streams bound to the channel (topic/) when
     * both are set (broker.c); NULL: PUBLISH is Redis's alone */
    struct colony__btopics *topics;
    struct colony__bdelivery *delivery;
    /* entries of a stream became durable (colony__xread_wake): the HTTP
     * API's long-polls look again; NULL: none */
    void (*on_durable)(void *ud, const char *stream);
    void *on_durable_ud;
};

/* Sets up srv (nothing listens yet); settings are copied, strings borrowed. */
void colony__broker_resp_init(colony__broker_resp *srv, uv_loop_t *loop,
                              const colony__broker_settings *settings);
/* Listens on "host:port" or "[v6]:port" (port 0: any); srv->port is the port. */
int colony__broker_resp_listen(colony__broker_resp *srv, const char *address);
/* Stops accepting and closes every client; closed(ud) runs once all handles
 * have closed (from a close callback). srv may then be freed. */
void colony__broker_resp_close(colony__broker_resp *srv, void (*closed)(void *), void *ud);

/* Makes c (calloc'd, c->tcp initialized and connected) a client of srv and
 * starts reading; on failure close it with colony__broker_client_close. */
int colony__broker_client_start(colony__broker_resp *srv, colony__broker_client *c);

/* Sends what c->out holds (from a command or a publish to another client).
 * Checks the client's output limit: over it, the client is closed. */
void colony__broker_client_flush(colony__broker_client *c);
/* Output for c made by another client's command (a published message):
 * checks c's output limit now (over it, c is closed) and sends it once the
 * command that made it has run, so a pipeline of PUBLISH costs one write per
 * subscriber, not one per message. */
void colony__broker_client_queue(colony__broker_client *c);

/* Closes c once its replies are written (QUIT, protocol errors). */
void colony__broker_client_close_after_reply(colony__broker_client *c);
/* Closes c now (its pending output is dropped). */
void colony__broker_client_close(colony__broker_client *c);
/* Unsent bytes: what is queued plus what uv_write still holds. */
size_t colony__broker_client_pending(const colony__broker_client *c);

uint64_t colony__broker_now_ms(void);

/* Parks c's reply to the command running now until colony__broker_park_done
 * (called by the commit callback). NULL when out of memory. */
colony__broker_park *colony__broker_park_new(colony__broker_client *c);
/* The write is durable (err 0) or not (err < 0: the client is closed, so it
 * never sees a success that was not kept). Frees p when its client is gone. */
void colony__broker_park_done(colony__broker_park *p, int err);

/* A blocked command (c->blocked) has written its reply since out.len was
 * `before`: c is unblocked and runs the rest of its input once
 * colony__broker_resp_flush_dirty runs (at once unless commands are running). */
void colony__broker_client_unblock(colony__broker_client *c, size_t before);
/* Sends what commands gave other clients, and runs unblocked clients. */
void colony__broker_resp_flush_dirty(colony__broker_resp *srv);

#endif
