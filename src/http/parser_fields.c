/* Semantic checks on a parsed head's fields: message framing (Content-Length,
 * Transfer-Encoding) and connection handling (Host, Connection, Expect,
 * Upgrade). The syntax of every field was already checked by parser.c. */
#include "http/parser_internal.h"

#define IS(c, cls) COLONY__HTTP_IS(c, cls)

static const char *skip_ows(const char *p, const char *end)
{
    while (p < end && IS(*p, COLONY__CC_WS))
        p++;
    return p;
}

/* Content-Length = 1*DIGIT, or a list of identical values (RFC 9110 §8.6).
 * Returns 0 and updates *f, or -1 when malformed, overflowing, or different
 * from a value seen before. */
static int parse_content_length(const char *p, size_t len, colony__http_fields *f)
{
    const char *end = p + len;
    if (len == 0) return -1;
    for (;;) {
        p = skip_ows(p, end);
        if (p == end || !IS(*p, COLONY__CC_DIGIT)) return -1;
        uint64_t v = 0;
        while (p < end && IS(*p, COLONY__CC_DIGIT)) {
            unsigned d = (unsigned)(*p - '0');
            if (v > ((uint64_t)INT64_MAX - d) / 10) return -1; /* at most 2^63 - 1 */
            v = v * 10 + d;
            p++;
        }
        if (f->has_content_length && f->content_length != v) return -1;
        f->has_content_length = 1;
        f->content_length = v;
        p = skip_ows(p, end);
        if (p == end) return 0;
        if (*p != ',') return -1;
        p++;
    }
}

static const char *skip_token(const char *p, const char *end)
{
    while (p < end && IS(*p, COLONY__CC_TCHAR))
        p++;
    return p;
}

/* quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE; p is at the opening
 * quote. Returns the position after the closing quote, or NULL. */
static const char *skip_quoted(const char *p, const char *end)
{
    p++;
    while (p < end) {
        if (*p == '"') return p + 1;
        if (*p == '\\') {
            p++;
            if (p == end || !IS(*p, COLONY__CC_FIELD)) return NULL;
            p++;
        } else if (IS(*p, COLONY__CC_QDTEXT)) {
            p++;
        } else {
            return NULL;
        }
    }
    return NULL;
}

/* Transfer-Encoding = #transfer-coding, transfer-coding = token
 * *( OWS ";" OWS token BWS "=" BWS ( token / quoted-string ) ). Empty list
 * elements are refused: a smuggling-safe parser has no use for them. */
static void parse_transfer_encoding(const char *p, size_t len, colony__http_fields *f)
{
    const char *end = p + len;
    for (;;) {
        p = skip_ows(p, end);
        const char *name = p;
        p = skip_token(p, end);
        if (p == name) goto malformed;
        int chunked = colony__http_ieq(name, (size_t)(p - name), "chunked", 7);
        int has_params = 0;
        for (;;) {
            p = skip_ows(p, end);
            if (p == end || *p != ';') break;
            has_params = 1;
            p = skip_ows(p + 1, end);
            const char *param = p;
            p = skip_token(p, end);
            if (p == param) goto malformed;
            p = skip_ows(p, end);
            if (p == end || *p != '=') goto malformed;
            p = skip_ows(p + 1, end);
            if (p < end && *p == '"') {
                p = skip_quoted(p, end);
                if (!p) goto malformed;
            } else {
                const char *val = p;
                p = skip_token(p, end);
                if (p == val) goto malformed;
            }
        }
        if (chunked && has_params) goto malformed; /* chunked takes no parameters */
        f->te_codings++;
        f->te_chunked_count += chunked;
        f->te_chunked_last = chunked;
        if (p == end) return;
        if (*p != ',') goto malformed;
        p++;
    }
malformed:
    f->te_malformed = 1;
}

/* Connection = #connection-option; only close, keep-alive and upgrade matter.
 * Anything unrecognised is ignored (it does not affect framing). */
static void parse_connection(const char *p, size_t len, colony__http_fields *f)
{
    const char *end = p + len;
    while (p < end) {
        p = skip_ows(p, end);
        const char *tok = p;
        while (p < end && *p != ',')
            p++;
        const char *tok_end = p;
        while (tok_end > tok && IS(tok_end[-1], COLONY__CC_WS))
            tok_end--;
        size_t n = (size_t)(tok_end - tok);
        if (colony__http_ieq(tok, n, "close", 5))
            f->connection_close = 1;
        else if (colony__http_ieq(tok, n, "keep-alive", 10))
            f->connection_keep_alive = 1;
        else if (colony__http_ieq(tok, n, "upgrade", 7))
            f->connection_upgrade = 1;
        if (p < end) p++;
    }
}

/* Host = uri-host [ ":" port ] (RFC 9112 §3.2): reg-name, IPv4 or an IP-literal
 * in brackets. Checked by character set only: enough to refuse whitespace,
 * userinfo ("@"), paths and quotes that confuse virtual-host routing. */
static int host_value_ok(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9')) continue;
        switch (c) {
        case '-':
        case '.':
        case '_':
        case '~':
        case '%':
        case '!':
        case '$':
        case '&':
        case '\'':
        case '(':
        case ')':
        case '*':
        case '+':
        case ',':
        case ';':
        case '=':
        case ':':
        case '[':
        case ']':
            continue;
        default:
            return 0;
        }
    }
    return 1;
}

colony_http_error colony__http_scan_fields(const colony_http_header *headers, size_t n,
                                           colony__http_fields *f)
{
    for (size_t i = 0; i < n; i++) {
        const colony_http_header *h = &headers[i];
        switch (h->name_len) {
        case 4:
            if (colony__http_ieq(h->name, 4, "host", 4)) {
                f->host_count++;
                if (!host_value_ok(h->value, h->value_len)) f->host_invalid = 1;
            }
            break;
        case 6:
            if (colony__http_ieq(h->name, 6, "expect", 6) &&
                colony__http_ieq(h->value, h->value_len, "100-continue", 12))
                f->expect_continue = 1;
            break;
        case 7:
            if (colony__http_ieq(h->name, 7, "upgrade", 7)) f->has_upgrade = 1;
            break;
        case 10:
            if (colony__http_ieq(h->name, 10, "connection", 10))
                parse_connection(h->value, h->value_len, f);
            break;
        case 14:
            if (colony__http_ieq(h->name, 14, "content-length", 14) &&
                parse_content_length(h->value, h->value_len, f) < 0)
                return COLONY_HTTP_BAD_CONTENT_LENGTH;
            break;
        case 17:
            if (colony__http_ieq(h->name, 17, "transfer-encoding", 17)) {
                f->has_transfer_encoding = 1;
                parse_transfer_encoding(h->value, h->value_len, f);
            }
            break;
        default:
            break;
        }
    }
    return COLONY_HTTP_OK;
}
