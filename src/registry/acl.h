/* The registry's ACLs: tokens with prefix rules for service names and keys,
 * loaded from a JSON file (docs/registry.md). */
#ifndef COLONY_REGISTRY_ACL_H
#define COLONY_REGISTRY_ACL_H

#include <jansson.h>
#include <stddef.h>
#include "colony/request.h"

enum { REG_ACL_NONE = 0, REG_ACL_READ = 1, REG_ACL_WRITE = 2 };
typedef struct reg_acl_rule {
    char *prefix;
    int level;
} reg_acl_rule;
typedef struct reg_acl_token {
    char *secret;
    int management;
    reg_acl_rule *service_rules, *key_rules;
    size_t nservice, nkey;
} reg_acl_token;
typedef struct reg_acl {
    int enabled;
    int anonymous; /* REG_ACL_* level for requests without a known token */
    reg_acl_token *tokens;
    size_t ntokens;
} reg_acl;

/* Loads an ACL file; on error fills msg and returns COLONY_EINVAL. */
int colony__reg_acl_load(reg_acl *acl, const char *path, char *msg, size_t msg_size);
/* Parses the ACL JSON document (for tests). */
int colony__reg_acl_parse(reg_acl *acl, json_t *doc, char *msg, size_t msg_size);
void colony__reg_acl_free(reg_acl *acl);
/* The token sent with a request (X-Consul-Token, Authorization: Bearer, ?token=), or NULL. */
const char *colony__reg_acl_request_token(colony_request *req);
/* Access level of token (NULL = anonymous) for a service name or key. */
int colony__reg_acl_service(const reg_acl *acl, const char *token, const char *name);
int colony__reg_acl_key(const reg_acl *acl, const char *token, const char *key);

#endif
