/* Status reasons, parse-error mapping, limits defaults, header lookup, method
 * idempotency and the character-class table the parser files share. */
#include <string.h>
#include "http/parser_internal.h"

/* Bits: 01 tchar, 02 field value, 04 target, 08 hex, 10 qdtext, 20 SP/HTAB,
 * 40 digit. Generated from the RFC 9110 ABNF; see parser_internal.h. */
const uint8_t colony__http_cc[256] = {
    /* 00 */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00,          0x32, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    /* 10 */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00,          0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    /* 20 */ 0x32, 0x17, 0x06, 0x17, 0x17, 0x17, 0x17, 0x17,
    0x16,          0x16, 0x17, 0x17, 0x16, 0x17, 0x17, 0x16,
    /* 30 */ 0x5f, 0x5f, 0x5f, 0x5f, 0x5f, 0x5f, 0x5f, 0x5f,
    0x5f,          0x5f, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16,
    /* 40 */ 0x16, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x17,
    0x17,          0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17,
    /* 50 */ 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17,
    0x17,          0x17, 0x17, 0x16, 0x06, 0x16, 0x17, 0x17,
    /* 60 */ 0x17, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x17,
    0x17,          0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17,
    /* 70 */ 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17,
    0x17,          0x17, 0x17, 0x16, 0x17, 0x16, 0x17, 0x00,
    /* 80 */ 0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12,
    0x12,          0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12,
    /* 90 */ 0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12,
    0x12,          0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12,
    /* a0 */ 0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12,
    0x12,          0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12,
    /* b0 */ 0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12,
    0x12,          0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12,
    /* c0 */ 0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12,
    0x12,          0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12,
    /* d0 */ 0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12,
    0x12,          0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12,
    /* e0 */ 0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12,
    0x12,          0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12,
    /* f0 */ 0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12,
    0x12,          0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0x12,
};

static const colony_http_limits default_limits = {
    .max_request_line = 8192,
    .max_header_bytes = 65536,
    .max_headers = 100,
    .max_body = 1024 * 1024,
    .max_chunk_line = 4096,
};

void colony_http_limits_init(colony_http_limits *limits)
{
    if (!limits) return;
    if (!limits->max_request_line) limits->max_request_line = default_limits.max_request_line;
    if (!limits->max_header_bytes) limits->max_header_bytes = default_limits.max_header_bytes;
    if (!limits->max_headers) limits->max_headers = default_limits.max_headers;
    if (!limits->max_body) limits->max_body = default_limits.max_body;
    if (!limits->max_chunk_line) limits->max_chunk_line = default_limits.max_chunk_line;
}

void colony__http_effective_limits(colony_http_limits *out, const colony_http_limits *in)
{
    if (!in) {
        *out = default_limits;
        return;
    }
    *out = *in;
    colony_http_limits_init(out);
}

const colony_http_header *colony_http_find_header(const colony_http_message *m, const char *name)
{
    if (!m || !name || !m->headers) return NULL;
    size_t name_len = strlen(name);
    for (size_t i = 0; i < m->num_headers; i++) {
        const colony_http_header *h = &m->headers[i];
        if (h->name_len != name_len) continue;
        size_t j = 0;
        for (; j < name_len; j++) {
            unsigned char a = (unsigned char)h->name[j], b = (unsigned char)name[j];
            if (a >= 'A' && a <= 'Z') a = (unsigned char)(a + 32);
            if (b >= 'A' && b <= 'Z') b = (unsigned char)(b + 32);
            if (a != b) break;
        }
        if (j == name_len) return h;
    }
    return NULL;
}

static const struct {
    int status;
    const char *message;
} error_table[COLONY_HTTP_ERROR_COUNT] = {
    [COLONY_HTTP_OK] = {200, "ok"},
    [COLONY_HTTP_BAD_REQUEST_LINE] = {400, "malformed request line"},
    [COLONY_HTTP_BAD_METHOD] = {400, "invalid character in method"},
    [COLONY_HTTP_BAD_TARGET] = {400, "invalid character in request target"},
    [COLONY_HTTP_URI_TOO_LONG] = {414, "request line too long"},
    [COLONY_HTTP_BAD_VERSION] = {400, "malformed HTTP version"},
    [COLONY_HTTP_VERSION_UNSUPPORTED] = {505, "HTTP version not supported"},
    [COLONY_HTTP_BAD_STATUS_LINE] = {400, "malformed status line"},
    [COLONY_HTTP_BAD_HEADER_NAME] = {400, "invalid header field name"},
    [COLONY_HTTP_BAD_HEADER_VALUE] = {400, "invalid character in header field value"},
    [COLONY_HTTP_SPACE_BEFORE_COLON] = {400, "whitespace before colon in header field"},
    [COLONY_HTTP_OBS_FOLD] = {400, "obsolete line folding in header field"},
    [COLONY_HTTP_BARE_CR] = {400, "CR not followed by LF"},
    [COLONY_HTTP_HEADERS_TOO_LARGE] = {431, "header section too large"},
    [COLONY_HTTP_TOO_MANY_HEADERS] = {431, "too many header fields"},
    [COLONY_HTTP_BAD_CONTENT_LENGTH] = {400, "invalid Content-Length"},
    [COLONY_HTTP_CL_AND_TE] = {400, "both Content-Length and Transfer-Encoding"},
    [COLONY_HTTP_BAD_TRANSFER_ENCODING] = {400, "invalid Transfer-Encoding"},
    [COLONY_HTTP_TE_NOT_IMPLEMENTED] = {501, "transfer coding not implemented"},
    [COLONY_HTTP_BODY_TOO_LARGE] = {413, "body too large"},
    [COLONY_HTTP_BAD_CHUNK_SIZE] = {400, "invalid chunk size"},
    [COLONY_HTTP_BAD_CHUNK_EXTENSION] = {400, "invalid chunk extension"},
    [COLONY_HTTP_BAD_CHUNK_DATA] = {400, "chunk data not followed by CRLF"},
    [COLONY_HTTP_CHUNK_LINE_TOO_LONG] = {400, "chunk line too long"},
    [COLONY_HTTP_BAD_TRAILER] = {400, "invalid trailer field"},
    [COLONY_HTTP_BAD_HOST] = {400, "HTTP/1.1 request needs exactly one Host field"},
};

int colony_http_error_status(colony_http_error err)
{
    if ((int)err <= 0 || err >= COLONY_HTTP_ERROR_COUNT) return 400;
    return error_table[err].status;
}

const char *colony_http_error_message(colony_http_error err)
{
    if ((int)err < 0 || err >= COLONY_HTTP_ERROR_COUNT) return "malformed message";
    return error_table[err].message;
}

const char *colony_http_status_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 203:
        return "Non-Authoritative Information";
    case 204:
        return "No Content";
    case 205:
        return "Reset Content";
    case 206:
        return "Partial Content";
    case 300:
        return "Multiple Choices";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 407:
        return "Proxy Authentication Required";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 417:
        return "Expectation Failed";
    case 421:
        return "Misdirected Request";
    case 422:
        return "Unprocessable Content";
    case 425:
        return "Too Early";
    case 426:
        return "Upgrade Required";
    case 428:
        return "Precondition Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "";
    }
}

int colony_http_method_idempotent(const char *method)
{
    static const char *const idempotent[] = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"};
    if (!method) return 1;
    for (size_t i = 0; i < sizeof(idempotent) / sizeof(idempotent[0]); i++)
        if (strcmp(method, idempotent[i]) == 0) return 1;
    return 0;
}
