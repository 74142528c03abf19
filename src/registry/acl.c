/* ACLs from a JSON file: tokens with read or write rights per service-name
 * prefix and KV key prefix (the longest matching prefix wins, like Consul's
 * service_prefix/key_prefix rules), management tokens, and a policy for
 * requests without a known token. See docs/registry.md for the format. */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "registry/registry_internal.h"
#include "registry/acl.h"

static int parse_level(const char *s)
{
    if (!s) return -1;
    if (strcmp(s, "deny") == 0) return REG_ACL_NONE;
    if (strcmp(s, "read") == 0) return REG_ACL_READ;
    if (strcmp(s, "write") == 0 || strcmp(s, "allow") == 0) return REG_ACL_WRITE;
    return -1;
}

static int parse_rules(json_t *obj, const char *what, size_t t, reg_acl_rule **out, size_t *n,
                       char *msg, size_t msg_size)
{
    *out = NULL;
    *n = 0;
    if (!obj) return 0;
    if (!json_is_object(obj)) {
        snprintf(msg, msg_size,
                 "tokens[%zu].%s must be an object of prefix: \"read\"|\"write\"|\"deny\"", t,
                 what);
        return COLONY_EINVAL;
    }
    *out = colony__calloc(json_object_size(obj) + 1, sizeof(**out));
    if (!*out) return COLONY_ENOMEM;
    const char *prefix;
    json_t *v;
    json_object_foreach(obj, prefix, v)
    {
        int level = parse_level(json_string_value(v));
        if (level < 0) {
            snprintf(msg, msg_size, "tokens[%zu].%s[\"%s\"]: use \"read\", \"write\" or \"deny\"",
                     t, what, prefix);
            return COLONY_EINVAL;
        }
        (*out)[*n].prefix = colony__strdup(prefix);
        if (!(*out)[*n].prefix) return COLONY_ENOMEM;
        (*out)[(*n)++].level = level;
    }
    return 0;
}

int colony__reg_acl_parse(reg_acl *acl, json_t *doc, char *msg, size_t msg_size)
{
    memset(acl, 0, sizeof(*acl));
    acl->enabled = 1;
    acl->anonymous = REG_ACL_NONE;
    if (!json_is_object(doc)) {
        snprintf(msg, msg_size, "the ACL file must hold a JSON object");
        return COLONY_EINVAL;
    }
    json_t *anon = json_object_get(doc, "anonymous");
    if (anon) {
        acl->anonymous = parse_level(json_string_value(anon));
        if (acl->anonymous < 0) {
            snprintf(msg, msg_size, "anonymous: use \"deny\", \"read\" or \"write\"");
            return COLONY_EINVAL;
        }
    }
    json_t *tokens = json_object_get(doc, "tokens");
    if (tokens && !json_is_array(tokens)) {
        snprintf(msg, msg_size, "tokens must be an array");
        return COLONY_EINVAL;
    }
    size_t n = tokens ? json_array_size(tokens) : 0;
    acl->tokens = colony__calloc(n + 1, sizeof(*acl->tokens));
    if (!acl->tokens) return COLONY_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(tokens, i);
        const char *secret = json_string_value(json_object_get(t, "token"));
        if (!secret || !*secret) {
            snprintf(msg, msg_size, "tokens[%zu].token must be a non-empty string", i);
            return COLONY_EINVAL;
        }
        reg_acl_token *tok = &acl->tokens[acl->ntokens++];
        tok->secret = colony__strdup(secret);
        if (!tok->secret) return COLONY_ENOMEM;
        tok->management = json_is_true(json_object_get(t, "management"));
        int rc = parse_rules(json_object_get(t, "service_prefix"), "service_prefix", i,
                             &tok->service_rules, &tok->nservice, msg, msg_size);
        if (!rc)
            rc = parse_rules(json_object_get(t, "key_prefix"), "key_prefix", i, &tok->key_rules,
                             &tok->nkey, msg, msg_size);
        if (rc) return rc;
    }
    return 0;
}

int colony__reg_acl_load(reg_acl *acl, const char *path, char *msg, size_t msg_size)
{
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (!doc) {
        memset(acl, 0, sizeof(*acl));
        snprintf(msg, msg_size, "%s:%d: %s", path, jerr.line, jerr.text);
        return COLONY_EINVAL;
    }
    int rc = colony__reg_acl_parse(acl, doc, msg, msg_size);
    json_decref(doc);
    if (rc) colony__reg_acl_free(acl);
    return rc;
}

static void free_rules(reg_acl_rule *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        colony__free(r[i].prefix);
    colony__free(r);
}

void colony__reg_acl_free(reg_acl *acl)
{
    for (size_t i = 0; acl->tokens && i < acl->ntokens; i++) {
        colony__free(acl->tokens[i].secret);
        free_rules(acl->tokens[i].service_rules, acl->tokens[i].nservice);
        free_rules(acl->tokens[i].key_rules, acl->tokens[i].nkey);
    }
    colony__free(acl->tokens);
    memset(acl, 0, sizeof(*acl));
}

const char *colony__reg_acl_request_token(colony_request *req)
{
    const char *t = colony_request_header(req, "X-Consul-Token");
    if (t && *t) return t;
    t = colony_request_header(req, "Authorization");
    if (t && strncmp(t, "Bearer ", 7) == 0 && t[7]) return t + 7;
    t = colony_request_query_param(req, "token");
    return t && *t ? t : NULL;
}

static const reg_acl_token *find_token(const reg_acl *acl, const char *secret)
{
    for (size_t i = 0; secret && i < acl->ntokens; i++)
        if (strcmp(acl->tokens[i].secret, secret) == 0) return &acl->tokens[i];
    return NULL;
}

static int longest_prefix(const reg_acl_rule *rules, size_t n, const char *name)
{
    int level = REG_ACL_NONE;
    size_t best = 0;
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(rules[i].prefix);
        if (strncmp(name, rules[i].prefix, len) != 0) continue;
        if (!found || len > best) {
            best = len;
            level = rules[i].level;
            found = 1;
        }
    }
    return level;
}

static int token_access(const reg_acl *acl, const char *token, const char *name, int keys)
{
    if (!acl->enabled) return REG_ACL_WRITE;
    const reg_acl_token *tok = find_token(acl, token);
    if (!tok) return acl->anonymous;
    if (tok->management) return REG_ACL_WRITE;
    return keys ? longest_prefix(tok->key_rules, tok->nkey, name)
                : longest_prefix(tok->service_rules, tok->nservice, name);
}

int colony__reg_acl_service(const reg_acl *acl, const char *token, const char *name)
{
    return token_access(acl, token, name, 0);
}

int colony__reg_acl_key(const reg_acl *acl, const char *token, const char *key)
{
    return token_access(acl, token, key, 1);
}
