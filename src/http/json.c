/* JSON request bodies and responses with jansson. Every failure is answered
 * here with a JSON error body, so a handler only has to return. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "colony/buf.h"
#include "colony/error.h"
#include "colony/router.h"

#define JSON_RESPONSE_MAX ((size_t)256 << 20) /* encoded response cap */

/* Accepts application/json and any application/<x>+json, with or without
 * parameters ("; charset=utf-8"), case-insensitively. */
static int is_json_media_type(const char *content_type)
{
    const char *end = content_type + strcspn(content_type, ";");
    const char *start = content_type;
    while (start < end && (*start == ' ' || *start == '\t'))
        start++;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t len = (size_t)(end - start);
    static const char app[] = "application/";
    size_t app_len = sizeof(app) - 1;
    if (len <= app_len || strncasecmp(start, app, app_len) != 0) return 0;
    const char *subtype = start + app_len;
    size_t sub_len = len - app_len;
    if (sub_len == 4 && strncasecmp(subtype, "json", 4) == 0) return 1;
    return sub_len > 5 && strncasecmp(end - 5, "+json", 5) == 0;
}

/* jansson's error text may quote input bytes; keep it printable ASCII so it
 * is always a valid JSON string. */
static void sanitize_ascii(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) *s = '?';
}

static void respond_invalid_json(colony_request *req, const json_error_t *err)
{
    char text[JSON_ERROR_TEXT_LENGTH];
    snprintf(text, sizeof(text), "%s", err->text);
    sanitize_ascii(text);
    /* jansson counts the bytes read, the offending one included; report the
     * zero-based offset of that byte, next to the 1-based line and column. */
    int position = err->position > 0 ? err->position - 1 : 0;
    char message[JSON_ERROR_TEXT_LENGTH + 96];
    snprintf(message, sizeof(message), "invalid JSON at line %d, column %d (position %d): %s",
             err->line, err->column, position, text);
    json_t *body =
        json_pack("{s:s, s:s, s:i, s:i, s:i}", "error", "invalid_json", "message", message, "line",
                  err->line, "column", err->column, "position", position);
    if (!body) {
        colony_respond_error(req, 400, "invalid_json", "invalid JSON");
        return;
    }
    colony_respond_json(req, 400, body);
    json_decref(body);
}

int colony_request_json(colony_request *req, size_t max_bytes, json_t **out)
{
    *out = NULL;
    const char *content_type = colony_request_header(req, "Content-Type");
    if (content_type && !is_json_media_type(content_type)) {
        colony_respond_error(req, 415, "unsupported_media_type",
                             "Content-Type must be application/json");
        return COLONY_EINVAL;
    }
    size_t len = 0;
    const char *body = colony_request_body(req, &len);
    if (max_bytes && len > max_bytes) {
        char message[96];
        snprintf(message, sizeof(message), "request body is larger than %zu bytes", max_bytes);
        colony_respond_error(req, 413, "payload_too_large", message);
        return COLONY_E2BIG;
    }
    if (len == 0 || !body) {
        colony_respond_error(req, 400, "invalid_json", "request body is empty");
        return COLONY_EINVAL;
    }
    json_error_t err;
    json_t *value = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
    if (!value) {
        respond_invalid_json(req, &err);
        return COLONY_EINVAL;
    }
    *out = value;
    return 0;
}

static int append_to_buf(const char *data, size_t size, void *buf)
{
    return colony_buf_append(buf, data, size) == 0 ? 0 : -1;
}

int colony_respond_json(colony_request *req, int status, const json_t *value)
{
    colony_buf buf;
    colony_buf_init(&buf, JSON_RESPONSE_MAX);
    if (!value ||
        json_dump_callback(value, append_to_buf, &buf, JSON_COMPACT | JSON_ENCODE_ANY) != 0) {
        colony_buf_free(&buf);
        colony_respond_error(req, 500, "internal", "failed to encode the JSON response");
        return COLONY_EINVAL;
    }
    int rc = colony_respond(req, status, "application/json", buf.data ? buf.data : "", buf.len);
    colony_buf_free(&buf);
    return rc;
}
