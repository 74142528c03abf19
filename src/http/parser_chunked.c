/* Incremental chunked transfer-coding decoder (RFC 9112 §7.1).
 *
 * The caller may drop input once it has been consumed, so nothing here looks
 * back: chunk-size lines, extensions and trailers are validated byte by byte
 * with all state in the colony_http_chunked struct, and the result is the same
 * however the body is split across calls. Data is returned as a slice of the
 * current input, at most one slice per call.
 *
 * Strictness: no whitespace after the chunk size unless an extension follows
 * (BWS ";"), no trailing whitespace after an extension, no bare LF or CR, chunk
 * sizes bounded by max_body as soon as the digits arrive. Trailer fields are
 * validated like header fields and discarded (the API does not expose them). */
#include "colony/error.h"
#include "http/parser_internal.h"

#define IS(c, cls) COLONY__HTTP_IS(c, cls)

enum chunked_state {
    CH_SIZE_START = 0,  /* first HEXDIG of a chunk size */
    CH_SIZE,            /* more HEXDIG */
    CH_SIZE_WS,         /* BWS after the size: only ";" may follow */
    CH_EXT_NAME_START,  /* after ";": BWS then ext-name */
    CH_EXT_NAME,        /* in ext-name */
    CH_EXT_NAME_WS,     /* BWS after ext-name: "=" or ";" */
    CH_EXT_VALUE_START, /* after "=": BWS then token or quoted-string */
    CH_EXT_TOKEN_VALUE, /* in a token value */
    CH_EXT_QUOTED,      /* in a quoted-string value */
    CH_EXT_QUOTED_ESC,  /* after a backslash in a quoted-string */
    CH_EXT_AFTER_VALUE, /* after a value: ";" or CR, or BWS before ";" */
    CH_EXT_VALUE_WS,    /* BWS after a value: only ";" may follow */
    CH_SIZE_LF,         /* the LF ending the size line */
    CH_DATA,            /* chunk data */
    CH_DATA_CR,         /* CR after chunk data */
    CH_DATA_LF,         /* LF after chunk data */
    CH_TRAILER_START,   /* start of a trailer line, or the final CRLF */
    CH_TRAILER_NAME,
    CH_TRAILER_VALUE,
    CH_TRAILER_LF,
    CH_FINAL_LF,
    CH_DONE,
    CH_ERROR,
};

void colony_http_chunked_init(colony_http_chunked *d)
{
    d->state = CH_SIZE_START;
    d->chunk_remaining = 0;
    d->total = 0;
    d->line_len = 0;
    d->trailer_bytes = 0;
    d->trailer_count = 0;
    d->error = COLONY_HTTP_OK;
}

/* After an extension value or name: ";" starts another extension, CR ends the
 * line. Returns the next state or CH_ERROR. */
static int after_extension(unsigned char c, int ws_state)
{
    if (c == ';') return CH_EXT_NAME_START;
    if (c == '\r') return CH_SIZE_LF;
    if (IS(c, COLONY__CC_WS)) return ws_state;
    return CH_ERROR;
}

int colony_http_chunked_decode(colony_http_chunked *d, const char *in, size_t len, size_t *consumed,
                               const char **data, size_t *data_len,
                               const colony_http_limits *limits)
{
    colony_http_limits lim;
    colony__http_effective_limits(&lim, limits);
    *consumed = 0;
    *data = in;
    *data_len = 0;
    if (d->state == CH_ERROR) return COLONY_EPROTO;
    if (d->state == CH_DONE) return 1;

    colony_http_error err = COLONY_HTTP_OK;
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)in[i];
        int st = d->state;
        if (st == CH_DATA) {
            size_t avail = len - i;
            size_t n = d->chunk_remaining < avail ? (size_t)d->chunk_remaining : avail;
            d->chunk_remaining -= n;
            d->total += n;
            if (d->chunk_remaining == 0) d->state = CH_DATA_CR;
            *data = in + i;
            *data_len = n;
            *consumed = i + n;
            return 0;
        }
        i++;
        if (st < CH_SIZE_LF && c != '\r' && ++d->line_len > lim.max_chunk_line) {
            err = COLONY_HTTP_CHUNK_LINE_TOO_LONG;
            break;
        }
        if (st >= CH_TRAILER_START && st <= CH_FINAL_LF) {
            if (++d->trailer_bytes > lim.max_header_bytes) {
                err = COLONY_HTTP_HEADERS_TOO_LARGE;
                break;
            }
            if (st != CH_TRAILER_START && c != '\r' && c != '\n' &&
                ++d->line_len > lim.max_chunk_line) {
                err = COLONY_HTTP_CHUNK_LINE_TOO_LONG;
                break;
            }
        }
        switch (st) {
        case CH_SIZE_START:
        case CH_SIZE:
            if (IS(c, COLONY__CC_HEX)) {
                uint64_t size = d->chunk_remaining;
                if (size > (UINT64_MAX >> 4)) {
                    err = COLONY_HTTP_BAD_CHUNK_SIZE;
                    break;
                }
                size = size * 16 + (uint64_t)colony__http_hex_value(c);
                if (size > lim.max_body - d->total) {
                    err = COLONY_HTTP_BODY_TOO_LARGE;
                    break;
                }
                d->chunk_remaining = size;
                d->state = CH_SIZE;
            } else if (st == CH_SIZE_START) {
                err = COLONY_HTTP_BAD_CHUNK_SIZE;
            } else if (c == ';') {
                d->state = CH_EXT_NAME_START;
            } else if (c == '\r') {
                d->state = CH_SIZE_LF;
            } else if (IS(c, COLONY__CC_WS)) {
                d->state = CH_SIZE_WS;
            } else {
                err = COLONY_HTTP_BAD_CHUNK_SIZE;
            }
            break;
        case CH_SIZE_WS:
            if (c == ';')
                d->state = CH_EXT_NAME_START;
            else if (!IS(c, COLONY__CC_WS))
                err = COLONY_HTTP_BAD_CHUNK_SIZE;
            break;
        case CH_EXT_NAME_START:
            if (IS(c, COLONY__CC_TCHAR))
                d->state = CH_EXT_NAME;
            else if (!IS(c, COLONY__CC_WS))
                err = COLONY_HTTP_BAD_CHUNK_EXTENSION;
            break;
        case CH_EXT_NAME:
            if (IS(c, COLONY__CC_TCHAR)) break;
            if (c == '=')
                d->state = CH_EXT_VALUE_START;
            else if ((d->state = after_extension(c, CH_EXT_NAME_WS)) == CH_ERROR)
                err = COLONY_HTTP_BAD_CHUNK_EXTENSION;
            break;
        case CH_EXT_NAME_WS:
            if (c == '=')
                d->state = CH_EXT_VALUE_START;
            else if (c == ';')
                d->state = CH_EXT_NAME_START;
            else if (!IS(c, COLONY__CC_WS))
                err = COLONY_HTTP_BAD_CHUNK_EXTENSION;
            break;
        case CH_EXT_VALUE_START:
            if (c == '"')
                d->state = CH_EXT_QUOTED;
            else if (IS(c, COLONY__CC_TCHAR))
                d->state = CH_EXT_TOKEN_VALUE;
            else if (!IS(c, COLONY__CC_WS))
                err = COLONY_HTTP_BAD_CHUNK_EXTENSION;
            break;
        case CH_EXT_TOKEN_VALUE:
        case CH_EXT_AFTER_VALUE:
            if (st == CH_EXT_TOKEN_VALUE && IS(c, COLONY__CC_TCHAR)) break;
            if ((d->state = after_extension(c, CH_EXT_VALUE_WS)) == CH_ERROR)
                err = COLONY_HTTP_BAD_CHUNK_EXTENSION;
            break;
        case CH_EXT_QUOTED:
            if (c == '"')
                d->state = CH_EXT_AFTER_VALUE;
            else if (c == '\\')
                d->state = CH_EXT_QUOTED_ESC;
            else if (!IS(c, COLONY__CC_QDTEXT))
                err = COLONY_HTTP_BAD_CHUNK_EXTENSION;
            break;
        case CH_EXT_QUOTED_ESC:
            if (IS(c, COLONY__CC_FIELD))
                d->state = CH_EXT_QUOTED;
            else
                err = COLONY_HTTP_BAD_CHUNK_EXTENSION;
            break;
        case CH_EXT_VALUE_WS:
            if (c == ';')
                d->state = CH_EXT_NAME_START;
            else if (!IS(c, COLONY__CC_WS))
                err = COLONY_HTTP_BAD_CHUNK_EXTENSION;
            break;
        case CH_SIZE_LF:
            if (c != '\n') {
                err = COLONY_HTTP_BARE_CR;
                break;
            }
            d->line_len = 0;
            d->state = d->chunk_remaining ? CH_DATA : CH_TRAILER_START;
            break;
        case CH_DATA_CR:
            if (c == '\r')
                d->state = CH_DATA_LF;
            else
                err = COLONY_HTTP_BAD_CHUNK_DATA;
            break;
        case CH_DATA_LF:
            if (c == '\n')
                d->state = CH_SIZE_START;
            else
                err = COLONY_HTTP_BAD_CHUNK_DATA;
            break;
        case CH_TRAILER_START:
            d->line_len = 0;
            if (c == '\r') {
                d->state = CH_FINAL_LF;
            } else if (IS(c, COLONY__CC_TCHAR)) {
                if (++d->trailer_count > lim.max_headers) {
                    err = COLONY_HTTP_TOO_MANY_HEADERS;
                    break;
                }
                d->line_len = 1;
                d->state = CH_TRAILER_NAME;
            } else {
                err = COLONY_HTTP_BAD_TRAILER; /* obs-fold, bare LF, empty name */
            }
            break;
        case CH_TRAILER_NAME:
            if (c == ':')
                d->state = CH_TRAILER_VALUE;
            else if (!IS(c, COLONY__CC_TCHAR))
                err = COLONY_HTTP_BAD_TRAILER;
            break;
        case CH_TRAILER_VALUE:
            if (c == '\r')
                d->state = CH_TRAILER_LF;
            else if (!IS(c, COLONY__CC_FIELD))
                err = COLONY_HTTP_BAD_TRAILER;
            break;
        case CH_TRAILER_LF:
            if (c == '\n')
                d->state = CH_TRAILER_START;
            else
                err = COLONY_HTTP_BAD_TRAILER;
            break;
        case CH_FINAL_LF:
            if (c != '\n') {
                err = COLONY_HTTP_BAD_TRAILER;
                break;
            }
            d->state = CH_DONE;
            *consumed = i;
            return 1;
        default:
            err = COLONY_HTTP_BAD_CHUNK_SIZE; /* corrupted state: refuse */
            break;
        }
        if (err) break;
    }
    if (err) {
        d->state = CH_ERROR;
        d->error = err;
        *consumed = i;
        return COLONY_EPROTO;
    }
    *consumed = i;
    return 0;
}
