/* Strict HTTP/1.1 message parser (RFC 9110/9112). It allocates nothing and
 * points into the caller's buffer (picohttpparser's model): the caller keeps
 * the bytes received so far and calls the head parser again when more arrive;
 * it returns the head's length once the blank line is in, COLONY_EAGAIN before.
 * Bodies are framed by the caller from the parsed framing; chunked bodies go
 * through the incremental colony_http_chunked decoder.
 *
 * It rejects everything that enables request smuggling or confusion: both
 * Content-Length and Transfer-Encoding, differing duplicate Content-Length, a
 * Transfer-Encoding with chunked anywhere but last (and, as 501, any coding
 * other than chunked), obs-fold, bare CR, whitespace before a colon, invalid
 * token or field characters, bad chunk sizes, over-long lines. */
#ifndef COLONY_HTTP_PARSER_H
#define COLONY_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>
#include "export.h"

/* Why a message was rejected; colony_http_error_status() maps each to the
 * status a server answers with. */
typedef enum colony_http_error {
    COLONY_HTTP_OK = 0,
    COLONY_HTTP_BAD_REQUEST_LINE,      /* 400 malformed request line */
    COLONY_HTTP_BAD_METHOD,            /* 400 method is not a token */
    COLONY_HTTP_BAD_TARGET,            /* 400 invalid character in the request target */
    COLONY_HTTP_URI_TOO_LONG,          /* 414 request line over the limit */
    COLONY_HTTP_BAD_VERSION,           /* 400 not HTTP/d.d */
    COLONY_HTTP_VERSION_UNSUPPORTED,   /* 505 not HTTP/1.0 or HTTP/1.1 */
    COLONY_HTTP_BAD_STATUS_LINE,       /* response: malformed status line */
    COLONY_HTTP_BAD_HEADER_NAME,       /* 400 empty name or non-token character */
    COLONY_HTTP_BAD_HEADER_VALUE,      /* 400 control character or bare CR in a value */
    COLONY_HTTP_SPACE_BEFORE_COLON,    /* 400 "Name : value" */
    COLONY_HTTP_OBS_FOLD,              /* 400 continuation line */
    COLONY_HTTP_BARE_CR,               /* 400 CR not followed by LF */
    COLONY_HTTP_HEADERS_TOO_LARGE,     /* 431 header section over the limit */
    COLONY_HTTP_TOO_MANY_HEADERS,      /* 431 more fields than the limit */
    COLONY_HTTP_BAD_CONTENT_LENGTH,    /* 400 not digits, overflow, or differing duplicates */
    COLONY_HTTP_CL_AND_TE,             /* 400 both Content-Length and Transfer-Encoding */
    COLONY_HTTP_BAD_TRANSFER_ENCODING, /* 400 chunked not final, chunked twice, bad token */
    COLONY_HTTP_TE_NOT_IMPLEMENTED,  /* 501 a coding other than chunked ("gzip", "gzip, chunked") */
    COLONY_HTTP_BODY_TOO_LARGE,      /* 413 declared or received body over the limit */
    COLONY_HTTP_BAD_CHUNK_SIZE,      /* 400 non-hex, empty or overflowing chunk size */
    COLONY_HTTP_BAD_CHUNK_EXTENSION, /* 400 malformed chunk extension */
    COLONY_HTTP_BAD_CHUNK_DATA,      /* 400 chunk data not followed by CRLF */
    COLONY_HTTP_CHUNK_LINE_TOO_LONG, /* 400 chunk-size line or trailer over the limit */
    COLONY_HTTP_BAD_TRAILER,         /* 400 malformed trailer field */
    COLONY_HTTP_BAD_HOST,            /* 400 HTTP/1.1 request without exactly one Host */
    COLONY_HTTP_ERROR_COUNT
} colony_http_error;

/* Limits; zero fields take the defaults shown. */
typedef struct colony_http_limits {
    size_t max_request_line; /* 8192: request line or status line, bytes */
    size_t max_header_bytes; /* 65536: the whole head including the request line */
    size_t max_headers;      /* 100 fields */
    uint64_t max_body;       /* 1 MiB: declared Content-Length or decoded chunked total */
    size_t max_chunk_line;   /* 4096: a chunk-size line with extensions, or a trailer line */
} colony_http_limits;

/* A header field as received: name and value point into the input, the value
 * with surrounding whitespace trimmed. Not NUL-terminated. */
typedef struct colony_http_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} colony_http_header;

typedef enum colony_http_body_kind {
    COLONY_HTTP_BODY_NONE,    /* no body (length 0, HEAD, 1xx/204/304) */
    COLONY_HTTP_BODY_LENGTH,  /* exactly content_length bytes */
    COLONY_HTTP_BODY_CHUNKED, /* chunked: feed to colony_http_chunked_decode() */
    COLONY_HTTP_BODY_EOF,     /* response only: body runs until the connection closes */
} colony_http_body_kind;

/* What both requests and responses share. */
typedef struct colony_http_message {
    int version_minor;           /* 0 or 1 (major is always 1) */
    colony_http_header *headers; /* the caller's array */
    size_t num_headers;
    colony_http_body_kind body_kind;
    uint64_t content_length; /* for BODY_LENGTH */
    int keep_alive;          /* connection may be reused after this message */
    colony_http_error error; /* why the last parse failed */
} colony_http_message;

typedef struct colony_http_request {
    colony_http_message msg;
    const char *method;
    size_t method_len;
    const char *target; /* request-target as sent (origin-form, absolute-form, ...) */
    size_t target_len;
    int expect_continue; /* "Expect: 100-continue" */
    int upgrade;         /* Connection: upgrade with an Upgrade field */
} colony_http_request;

typedef struct colony_http_response {
    colony_http_message msg;
    int status;
    const char *reason;
    size_t reason_len;
} colony_http_response;

/* Parses a request head from buf[0..len). headers[0..max_headers) receives the
 * fields (limits->max_headers is the effective cap, at most max_headers).
 * Returns the head's length in bytes (> 0), COLONY_EAGAIN if more input is
 * needed, or COLONY_EPROTO with req->msg.error telling why. */
COLONY_API int colony_http_parse_request(const char *buf, size_t len, colony_http_request *req,
                                         colony_http_header *headers, size_t max_headers,
                                         const colony_http_limits *limits);

/* Parses a response head. request_was_head and the status decide framing
 * (HEAD, 1xx, 204 and 304 have no body). Returns as colony_http_parse_request.
 * A 1xx response is returned like any other; the caller parses the next head. */
COLONY_API int colony_http_parse_response(const char *buf, size_t len, colony_http_response *res,
                                          colony_http_header *headers, size_t max_headers,
                                          int request_was_head, const colony_http_limits *limits);

/* Incremental chunked-body decoder. Zero-initialise (or call _init) per body. */
typedef struct colony_http_chunked {
    int state;
    uint64_t chunk_remaining; /* data bytes left in the current chunk */
    uint64_t total;           /* decoded bytes so far */
    size_t line_len;          /* bytes of the current size/trailer line seen */
    size_t trailer_bytes;     /* bytes of trailer section so far */
    size_t trailer_count;
    colony_http_error error;
} colony_http_chunked;

COLONY_API void colony_http_chunked_init(colony_http_chunked *d);

/* Consumes input from in[0..len). On return *consumed bytes were used, and
 * (*data, *data_len) is a slice of body data inside `in` (possibly empty) that the
 * caller delivers before calling again with the rest. Returns 1 when the body
 * (with trailers) is complete, 0 when more input is needed or more data may
 * follow, COLONY_EPROTO (d->error says why) on a framing error. Limits:
 * max_body bounds the decoded total, max_chunk_line each line. */
COLONY_API int colony_http_chunked_decode(colony_http_chunked *d, const char *in, size_t len,
                                          size_t *consumed, const char **data, size_t *data_len,
                                          const colony_http_limits *limits);

/* Status code to answer with for a parse error (400, 413, 414, 431, 501, 505). */
COLONY_API int colony_http_error_status(colony_http_error err);
/* Human-readable reason, for the JSON error body ("whitespace before colon"). */
COLONY_API const char *colony_http_error_message(colony_http_error err);
/* Case-insensitive header lookup in a parsed message; NULL if absent. */
COLONY_API const colony_http_header *colony_http_find_header(const colony_http_message *m,
                                                             const char *name);
/* Fills zero fields of *limits with the defaults. */
COLONY_API void colony_http_limits_init(colony_http_limits *limits);
/* Reason phrase for a status code ("Not Found"); "" when unknown. */
COLONY_API const char *colony_http_status_reason(int status);
/* Normalizes a request path (no query) for matching and forwarding: escapes
 * of unreserved characters are decoded and other escapes uppercased (%2f ->
 * %2F: an encoded '/' is never a separator), "." and ".." segments are removed
 * and runs of '/' merged. out must hold len + 1 bytes (the result is never
 * longer; NUL-terminated). Returns the length, or COLONY_EINVAL for a path not
 * starting with '/', a bad escape, %00, or ".." above the root. */
COLONY_API int colony_http_path_normalize(const char *path, size_t len, char *out);
/* 1 for the methods RFC 9110 calls idempotent (GET HEAD OPTIONS PUT DELETE TRACE,
 * case-sensitive as in HTTP), else 0. NULL counts as GET. */
COLONY_API int colony_http_method_idempotent(const char *method);

#endif
