/* RESP2, the Redis protocol: an incremental request parser (multibulk arrays
 * and inline commands as redis-server reads them) and a reply writer into a
 * capped colony_buf. No I/O and no libuv: the connection code (conn.c) feeds
 * bytes in and sends the buffer out. */
#ifndef COLONY_BROKER_RESP_H
#define COLONY_BROKER_RESP_H

#include <stddef.h>
#include <stdint.h>
#include "colony/buf.h"

/* Redis reads a count line or an inline command of at most 64 KiB
 * (PROTO_INLINE_MAX_SIZE) before it gives up. */
#define COLONY__RESP_INLINE_MAX (64 * 1024)
/* Before AUTH (when a password is set) Redis accepts at most 10 arguments of
 * 16 KiB each; so do we. */
#define COLONY__RESP_UNAUTH_ARGS 10
#define COLONY__RESP_UNAUTH_BULK 16384

typedef struct colony__resp_limits {
    size_t max_bulk; /* longest bulk string ("invalid bulk length" beyond) */
    size_t max_args; /* most elements in one array ("invalid multibulk length") */
} colony__resp_limits;

/* One argument of a parsed command. ptr points into the caller's input
 * (multibulk) or into the parser's scratch buffer (inline); both stay valid
 * until the caller consumes the command's bytes or calls parse again. */
typedef struct colony__resp_arg {
    const char *ptr;
    size_t len;
    size_t off; /* internal: offset in the input or the scratch buffer */
} colony__resp_arg;

typedef struct colony__resp_parser {
    colony__resp_limits limits;
    int unauthenticated; /* set by the caller while a password is required */
    /* progress through the current command, so bytes arriving one at a time
     * are read once (no rescans of what was already parsed) */
    int kind;           /* 0 = not started, '*' = multibulk, 'i' = inline */
    size_t pos;         /* bytes of the input already parsed */
    size_t scan;        /* the end of line searched for up to here (when > pos) */
    int nul_seen;       /* a NUL came before the end of the line: it never ends */
    long long want;     /* multibulk: elements announced */
    long long bulk_len; /* multibulk: length of the bulk being read, -1 = header */
    colony__resp_arg *args;
    size_t nargs, cap;
    colony_buf scratch; /* inline arguments, unescaped */
    char error[160];    /* the protocol error, without "-ERR " and CRLF */
} colony__resp_parser;

void colony__resp_parser_init(colony__resp_parser *p, const colony__resp_limits *limits);
void colony__resp_parser_free(colony__resp_parser *p);

/* Parses one command from data[0..len) (the same bytes again, plus more, on
 * each call until it completes). Returns:
 *   > 0  a command is complete and used that many bytes: p->args[0..nargs)
 *        (nargs may be 0: an empty line or *0, which Redis skips);
 *        consume those bytes, then call colony__resp_parser_next();
 *   0    incomplete: call again with more bytes (data may have moved);
 *   COLONY_EPROTO  protocol error: p->error holds Redis's text; reply with it
 *        and close the connection;
 *   COLONY_ENOMEM  out of memory. */
long colony__resp_parse(colony__resp_parser *p, const char *data, size_t len);
/* Forgets the completed command (keeps the buffers for the next one). */
void colony__resp_parser_next(colony__resp_parser *p);

/* An integer as Redis accepts one: an optional '-', no '+', no leading zeros, no spaces,
 * fits in a long long. 1 if s[0..n) is one, else 0. */
int colony__resp_parse_ll(const char *s, size_t n, long long *out);

/* The reply writer: each appends one RESP2 value to out and returns 0,
 * COLONY_E2BIG (out's cap; out unchanged) or COLONY_ENOMEM. Strings given to
 * simple and error must not hold CR or LF; colony__resp_errorf turns any into
 * spaces, as Redis's addReplyErrorFormat does. */
int colony__resp_simple(colony_buf *out, const char *s);
int colony__resp_error(colony_buf *out, const char *s);
int colony__resp_errorf(colony_buf *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int colony__resp_int(colony_buf *out, long long v);
int colony__resp_bulk(colony_buf *out, const void *data, size_t len);
int colony__resp_bulk_str(colony_buf *out, const char *s);
int colony__resp_null_bulk(colony_buf *out);
int colony__resp_array(colony_buf *out, size_t n);
int colony__resp_null_array(colony_buf *out);

#endif
