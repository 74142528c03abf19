/* /v1/kv/<key>: Consul's KV store. GET (exact, ?recurse, ?keys with
 * ?separator, ?raw), PUT (raw body, ?flags, ?cas) and DELETE (?recurse,
 * ?cas). Values are at most 512 KB; a missing key is 404 with X-Consul-Index. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "registry/registry_internal.h"
#include "registry/waiters.h"
#include "registry/api.h"

static json_t *base64(const char *data, size_t len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t out_len = (len + 2) / 3 * 4;
    char *out = colony__malloc(out_len + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned char)data[i] << 16;
        if (i + 1 < len) v |= (unsigned char)data[i + 1] << 8;
        if (i + 2 < len) v |= (unsigned char)data[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? tbl[v & 63] : '=';
    }
    json_t *s = json_stringn(out, o);
    colony__free(out);
    return s;
}

static json_t *entry_json(const reg_kv *e)
{
    return json_pack("{s:I, s:s, s:I, s:o, s:I, s:I}", "LockIndex", (json_int_t)e->lock_index,
                     "Key", e->key, "Flags", (json_int_t)e->flags, "Value",
                     e->len ? base64(e->value, e->len) : json_null(), "CreateIndex",
                     (json_int_t)e->create_index, "ModifyIndex", (json_int_t)e->modify_index);
}

static const char *kv_key(colony_request *req)
{
    const char *k = colony_request_param(req, "*");
    return k ? k : "";
}

static int flag_set(colony_request *req, const char *name)
{
    const char *v = colony_request_query_param(req, name);
    return v && strcmp(v, "false") != 0 && strcmp(v, "0") != 0;
}

static int parse_u64(colony_request *req, const char *name, uint64_t *out, int *present)
{
    const char *s = colony_request_query_param(req, name);
    *present = s != NULL;
    *out = 0;
    if (!s) return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || *s == '-') return COLONY_EINVAL;
    *out = v;
    return 0;
}

static int key_readable(registry *reg, const char *token, const char *key)
{
    return colony__reg_acl_key(&reg->acl, token, key) >= REG_ACL_READ;
}

/* Answers 403 unless the request's token may read key; nonzero if it did. */
static int denied_read(registry *reg, colony_request *req, const char *key)
{
    int have = colony__reg_acl_key(&reg->acl, colony__reg_acl_request_token(req), key);
    return colony__reg_deny(req, have, REG_ACL_READ, "key", key);
}

/* Every entry or none: a list that lost an entry to a failed allocation is
 * answered 500, never 200 with a hole in it. */
static void render_list(registry *reg, colony_request *req, int keys_only)
{
    const char *prefix = kv_key(req);
    const char *sep = keys_only ? colony_request_query_param(req, "separator") : NULL;
    const char *token = colony__reg_acl_request_token(req);
    size_t plen = strlen(prefix), slen = sep ? strlen(sep) : 0;
    json_t *out = json_array();
    const char *last_group = NULL;
    size_t last_group_len = 0;
    for (size_t i = colony__reg_kv_lower_bound(reg, prefix); out && i < reg->nkv; i++) {
        const reg_kv *e = reg->kv[i];
        if (strncmp(e->key, prefix, plen) != 0) break;
        if (e->deleted || !key_readable(reg, token, e->key)) continue;
        if (!keys_only) {
            if (json_array_append_new(out, entry_json(e)) != 0) {
                json_decref(out);
                out = NULL;
            }
            continue;
        }
        size_t len = strlen(e->key);
        const char *cut = slen ? strstr(e->key + plen, sep) : NULL;
        if (cut) len = (size_t)(cut - e->key) + slen;
        /* keys are sorted, so equal groups are adjacent */
        if (last_group && len == last_group_len && strncmp(last_group, e->key, len) == 0) continue;
        last_group = e->key;
        last_group_len = len;
        if (json_array_append_new(out, json_stringn(e->key, len)) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    if (out && json_array_size(out) == 0) {
        json_decref(out);
        colony_respond(req, 404, NULL, "", 0);
        return;
    }
    colony__reg_respond_json(req, 200, out); /* 500 JSON when out is NULL */
}

static void render_get(registry *reg, colony_request *req)
{
    if (flag_set(req, "recurse")) {
        render_list(reg, req, 0);
        return;
    }
    if (colony_request_query_param(req, "keys")) {
        render_list(reg, req, 1);
        return;
    }
    const char *key = kv_key(req);
    if (denied_read(reg, req, key)) return;
    reg_kv *e = colony__reg_kv_find(reg, key);
    if (!e || e->deleted) {
        colony_respond(req, 404, NULL, "", 0);
        return;
    }
    if (colony_request_query_param(req, "raw")) {
        colony_respond(req, 200, "text/plain; charset=utf-8", e->value, e->len);
        return;
    }
    colony__reg_respond_json(req, 200, json_pack("[o]", entry_json(e)));
}

static void kv_get(colony_request *req, void *ud)
{
    int list = flag_set(req, "recurse") || colony_request_query_param(req, "keys");
    /* A denied key is refused before parking: no waiter, no index for it. */
    if (!list && denied_read(ud, req, kv_key(req))) return;
    reg_topic t = {list ? TOPIC_KV_PREFIX : TOPIC_KV_KEY, kv_key(req)};
    colony__reg_serve_read(ud, req, &t, render_get);
}

static int check_write(registry *reg, colony_request *req, const char *key)
{
    int have = colony__reg_acl_key(&reg->acl, colony__reg_acl_request_token(req), key);
    return colony__reg_deny(req, have, REG_ACL_WRITE, "key", key);
}

static void kv_put(colony_request *req, void *ud)
{
    registry *reg = ud;
    const char *key = kv_key(req);
    if (!*key) {
        colony__reg_bad_request(req, "Missing key name");
        return;
    }
    if (colony_request_query_param(req, "acquire") || colony_request_query_param(req, "release")) {
        colony__reg_bad_request(req, "sessions (acquire/release) are not supported by colony");
        return;
    }
    uint64_t flags, cas;
    int has_flags, has_cas;
    if (parse_u64(req, "flags", &flags, &has_flags) || parse_u64(req, "cas", &cas, &has_cas)) {
        colony__reg_bad_request(req, "invalid flags or cas: must be a non-negative integer");
        return;
    }
    size_t len;
    const char *body = colony_request_body(req, &len);
    if (len > REG_MAX_VALUE) {
        colony_respond_error(req, 413, "too_large", "Value exceeds 524288 byte limit");
        return;
    }
    if (check_write(reg, req, key)) return;
    reg_kv *e = colony__reg_kv_find(reg, key);
    int exists = e && !e->deleted;
    if (has_cas && ((cas == 0 && exists) || (cas != 0 && (!exists || e->modify_index != cas)))) {
        colony__reg_ack_write(reg, req, 200, json_false());
        return;
    }
    if (colony__reg_kv_write(reg, key, body, len, flags)) {
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    colony__reg_ack_write(reg, req, 200, json_true());
}

static void kv_delete(colony_request *req, void *ud)
{
    registry *reg = ud;
    const char *key = kv_key(req);
    uint64_t cas;
    int has_cas;
    if (parse_u64(req, "cas", &cas, &has_cas)) {
        colony__reg_bad_request(req, "invalid cas: must be a non-negative integer");
        return;
    }
    if (check_write(reg, req, key)) return;
    if (flag_set(req, "recurse")) {
        size_t plen = strlen(key);
        /* A longer prefix rule may deny keys under the one asked for: the
         * whole tree is refused unless every key in it is writable. */
        for (size_t i = colony__reg_kv_lower_bound(reg, key); i < reg->nkv; i++) {
            reg_kv *e = reg->kv[i];
            if (strncmp(e->key, key, plen) != 0) break;
            if (!e->deleted && check_write(reg, req, e->key)) return;
        }
        if (colony__reg_kv_delete(reg, key, 1) < 0) {
            colony_respond_error(req, 500, "internal", "out of memory");
            return;
        }
        colony__reg_ack_write(reg, req, 200, json_true());
        return;
    }
    reg_kv *e = colony__reg_kv_find(reg, key);
    int exists = e && !e->deleted;
    if (has_cas && (!exists || (cas != 0 && e->modify_index != cas))) {
        colony__reg_ack_write(reg, req, 200, json_false());
        return;
    }
    if (colony__reg_kv_delete(reg, key, 0) < 0) {
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    colony__reg_ack_write(reg, req, 200, json_true());
}

int colony__reg_routes_kv(registry *reg, colony_router *r)
{
    int rc = 0;
    const char *patterns[] = {"/v1/kv/*", "/v1/kv"};
    for (size_t i = 0; !rc && i < 2; i++) {
        rc = colony_router_add(r, "GET", patterns[i], kv_get, reg);
        if (!rc) rc = colony_router_add(r, "PUT", patterns[i], kv_put, reg);
        if (!rc) rc = colony_router_add(r, "DELETE", patterns[i], kv_delete, reg);
    }
    return rc;
}
