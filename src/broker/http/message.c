/* A message over HTTP and an entry in a stream: one mapping, so a message
 * published over HTTP reads well over RESP (XRANGE) and an entry added by
 * XADD reads well over HTTP.
 *
 *   {"data": "text", "headers": {"k": "v"}}  ->  data "text"  h:k "v"
 *   {"data": {"id": 1}}                      ->  json "{\"id\":1}"
 *
 * Back: a "data" field is the string data, a "json" field is parsed into
 * data, "h:<name>" fields are headers, any other field goes to "fields"
 * (bytes that are not UTF-8 read as '?'). */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "broker/http/http.h"

#define HEADER_PREFIX "h:"
#define MAX_HEADERS   64

static int bad(char *err, size_t size, const char *msg)
{
    snprintf(err, size, "%s", msg);
    return COLONY_EINVAL;
}

int colony__bmsg_from_json(json_t *obj, colony__bmsg *msg, char *err, size_t err_size)
{
    memset(msg, 0, sizeof(*msg));
    if (!json_is_object(obj)) return bad(err, err_size, "a message is a JSON object");
    json_t *data = json_object_get(obj, "data");
    json_t *headers = json_object_get(obj, "headers");
    if (!data) return bad(err, err_size, "a message needs \"data\"");
    if (headers && !json_is_object(headers))
        return bad(err, err_size, "\"headers\" is an object of strings");
    size_t nh = headers ? json_object_size(headers) : 0;
    if (nh > MAX_HEADERS) return bad(err, err_size, "more than 64 headers");
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (strcmp(key, "data") && strcmp(key, "headers") && strcmp(key, "delay") &&
            strcmp(key, "ttl")) {
            snprintf(err, err_size, "unknown field \"%.100s\" (data, headers, delay, ttl)", key);
            return COLONY_EINVAL;
        }
    }
    msg->strs = colony__calloc(2 + 2 * nh, sizeof(*msg->strs));
    if (!msg->strs) return COLONY_ENOMEM;
    if (json_is_string(data)) {
        msg->strs[0] = (colony__bstr){"data", 4};
        msg->strs[1] = (colony__bstr){json_string_value(data), json_string_length(data)};
    } else {
        msg->json_text = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!msg->json_text) {
            colony__bmsg_free(msg);
            return COLONY_ENOMEM;
        }
        msg->strs[0] = (colony__bstr){"json", 4};
        msg->strs[1] = (colony__bstr){msg->json_text, strlen(msg->json_text)};
    }
    msg->n = 2;
    if (nh) {
        /* "h:name" keys: one allocation for all, after the array */
        size_t total = 0;
        json_object_foreach(headers, key, v)
        {
            if (!json_is_string(v)) {
                colony__bmsg_free(msg);
                return bad(err, err_size, "header values are strings");
            }
            total += sizeof(HEADER_PREFIX) + strlen(key);
        }
        char *names = colony__malloc(total);
        if (!names) {
            colony__bmsg_free(msg);
            return COLONY_ENOMEM;
        }
        /* keep it with the strings: freed by _free through strs[2].data */
        char *p = names;
        json_object_foreach(headers, key, v)
        {
            size_t kl = strlen(key);
            memcpy(p, HEADER_PREFIX, sizeof(HEADER_PREFIX) - 1);
            memcpy(p + sizeof(HEADER_PREFIX) - 1, key, kl + 1);
            msg->strs[msg->n++] = (colony__bstr){p, sizeof(HEADER_PREFIX) - 1 + kl};
            msg->strs[msg->n++] = (colony__bstr){json_string_value(v), json_string_length(v)};
            p += sizeof(HEADER_PREFIX) + kl;
        }
    }
    return 0;
}

void colony__bmsg_free(colony__bmsg *msg)
{
    if (msg->strs && msg->n > 2) colony__free((void *)msg->strs[2].data);
    colony__free(msg->strs);
    colony__free(msg->json_text);
    memset(msg, 0, sizeof(*msg));
}

/* A JSON string of bytes that may not be UTF-8 (an XADD over RESP is
 * binary): invalid bytes become '?', so the message can still be read. */
static json_t *text_json(const char *data, size_t len)
{
    json_t *s = json_stringn(data, len);
    if (s) return s;
    char *copy = colony__malloc(len + 1);
    if (!copy) return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)data[i];
        copy[i] = ch >= 0x80 || ch == 0 ? '?' : (char)ch;
    }
    s = json_stringn(copy, len);
    colony__free(copy);
    return s;
}

json_t *colony__bmsg_to_json(const colony__bentry *e)
{
    json_t *out = json_object(), *headers = NULL, *fields = NULL;
    if (!out || json_object_set_new(out, "id", colony__bhttp_id_json(e->id))) goto oom;
    for (size_t i = 0; i + 1 < e->n; i += 2) {
        const colony__bstr *f = &e->strs[i], *v = &e->strs[i + 1];
        json_t *val = NULL;
        if (f->len == 4 && !memcmp(f->data, "data", 4) && !json_object_get(out, "data")) {
            if (json_object_set_new(out, "data", text_json(v->data, v->len))) goto oom;
            continue;
        }
        if (f->len == 4 && !memcmp(f->data, "json", 4) && !json_object_get(out, "data") &&
            (val = json_loadb(v->data, v->len, JSON_DECODE_ANY, NULL))) {
            if (json_object_set_new(out, "data", val)) goto oom;
            continue;
        }
        size_t pl = sizeof(HEADER_PREFIX) - 1;
        int is_header = f->len > pl && !memcmp(f->data, HEADER_PREFIX, pl);
        json_t **into = is_header ? &headers : &fields;
        if (!*into && !(*into = json_object())) goto oom;
        const char *k = is_header ? f->data + pl : f->data;
        size_t kl = is_header ? f->len - pl : f->len;
        if (json_object_setn_new(*into, k, kl, text_json(v->data, v->len))) goto oom;
    }
    if (headers && json_object_set_new(out, "headers", headers)) {
        headers = NULL;
        goto oom;
    }
    headers = NULL;
    if (fields && json_object_set_new(out, "fields", fields)) {
        fields = NULL;
        goto oom;
    }
    return out;
oom:
    json_decref(headers);
    json_decref(fields);
    json_decref(out);
    return NULL;
}
