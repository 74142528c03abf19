/* colony registry internals: the in-memory state (services, checks, KV),
 * ACLs and the health-check runner. The durable store is registry/store.h,
 * the blocking-query waiters registry/waiters.h. Everything here runs on the
 * registry's single loop thread except the store's commit work. */
#ifndef COLONY_REGISTRY_INTERNAL_H
#define COLONY_REGISTRY_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "colony/http_client.h"
#include "colony/router.h"
#include "core/list.h"
#include "core/map.h"

#define REG_NODE_NAME  "colony"
#define REG_DATACENTER "dc1"
#define REG_MAX_VALUE  (512u * 1024u) /* Consul's KV value limit */
#define REG_MAX_OUTPUT 4096u          /* check output is truncated to this */
/* Service IDs and names and check IDs, in bytes: each must fit, percent-encoded
 * (x3) after its longest route prefix, in the server's 8 KB request line, or
 * it could be registered but never deregistered (414). */
#define REG_MAX_ID_LEN               512u
#define REG_DEFAULT_WAIT_MS          300000u /* 5 min */
#define REG_MAX_WAIT_MS              600000u /* 10 min */
#define REG_DEFAULT_CHECK_TIMEOUT_MS 10000u
#define REG_REAP_INTERVAL_MS         1000u

/* ---- values ---- */
enum { REG_PASSING = 0, REG_WARNING = 1, REG_CRITICAL = 2 };
const char *colony__reg_status_name(int status);
int colony__reg_status_parse(const char *s); /* -1 if unknown */

/* Go duration strings ("300ms", "1.5s", "1m30s", "2h") to milliseconds
 * (rounded up to whole ms when positive). 0 or COLONY_EINVAL. */
int colony__reg_parse_duration(const char *s, uint64_t *out_ms);
/* Case- and underscore-insensitive field lookup ("DeregisterCriticalServiceAfter"
 * matches "deregister_critical_service_after"), as Consul's decoder allows. */
json_t *colony__reg_field(const json_t *obj, const char *name);

typedef struct reg_service {
    char *id, *name, *address;
    int port;
    json_t *tags, *meta; /* array of strings, object of strings */
    int weight_passing, weight_warning;
    int enable_tag_override;
    uint64_t create_index, modify_index;
} reg_service;

enum { REG_CHECK_TTL, REG_CHECK_HTTP, REG_CHECK_TCP };

typedef struct registry registry;
typedef struct reg_check {
    registry *reg;
    char *id, *name, *notes, *service_id, *service_name;
    int type;
    char *target; /* URL for HTTP, host:port for TCP */
    char *method, *body;
    json_t *header;     /* object of arrays of strings, or NULL */
    json_t *definition; /* as registered (normalized), persisted and re-armed */
    uint64_t interval_ms, timeout_ms, ttl_ms, deregister_after_ms;
    int success_before_passing, failures_before_critical;
    int status;
    char *output;
    uint64_t create_index, modify_index;
    int ok_streak, fail_streak;
    uint64_t critical_since_ms; /* loop time it became critical, 0 if not */
    uint64_t ttl_deadline_ms;
    uv_timer_t timer;           /* TTL expiry (registry/checks.c) */
    struct colony_probe *probe; /* HTTP and TCP: the probe that runs the check */
    int timer_open, probe_open, removed;
} reg_check;

typedef struct reg_kv {
    char *key;
    char *value;
    size_t len;
    uint64_t flags, create_index, modify_index, lock_index;
    int deleted;            /* a tombstone keeps prefix indexes from going backwards */
    uint64_t deleted_at_ms; /* loop time it became a tombstone (0: not yet seen by the reaper) */
} reg_kv;

/* ---- ACL ---- */
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

/* The store (store.h) and the waiters (waiters.h) have their own headers. */
typedef struct reg_store reg_store;

/* ---- per service name: instances and checks indexed, rendered answers cached ---- */
#define REG_RENDER_CACHE_SLOTS 8u /* variants (passing/all, tag filters) kept per name */
typedef struct reg_render_cache {
    char *key; /* variant: endpoint, ?passing, tags; NULL = empty slot */
    char *body;
    size_t len;
} reg_render_cache;
typedef struct reg_name {
    uint64_t index;          /* last change to any instance or check of the name */
    reg_service **instances; /* sorted by ID */
    size_t ninstances, instances_cap;
    reg_check **checks; /* checks whose ServiceName is the name, sorted by (ServiceID, ID) */
    size_t nchecks, checks_cap;
    reg_render_cache cache[REG_RENDER_CACHE_SLOTS];
    unsigned cache_next; /* slot replaced on the next miss when all are used */
} reg_name;

reg_name *colony__reg_name_get(registry *reg, const char *name);  /* NULL if unknown */
reg_name *colony__reg_name_slot(registry *reg, const char *name); /* creates; NULL on ENOMEM */
/* Room for one more instance / check, so the insert after a map change cannot fail. */
int colony__reg_name_reserve(reg_name *nm, int instances, int checks);
void colony__reg_name_add_instance(reg_name *nm, reg_service *svc); /* after reserve */
void colony__reg_name_remove_instance(registry *reg, const reg_service *svc);
void colony__reg_name_add_check(reg_name *nm, reg_check *chk); /* after reserve */
void colony__reg_name_remove_check(registry *reg, const reg_check *chk);
/* Rebuilds every name's lists from the services and checks maps (after load). */
int colony__reg_names_rebuild(registry *reg);
void colony__reg_names_free(registry *reg);
/* The cached body for a variant key, or NULL. */
const reg_render_cache *colony__reg_cache_get(const reg_name *nm, const char *key);
/* Keeps a copy of a rendered body (best effort: silently skipped without memory). */
void colony__reg_cache_put(reg_name *nm, const char *key, const char *body, size_t len);

/* ---- the registry ---- */
struct registry {
    uv_loop_t *loop;
    reg_store *store;
    reg_acl acl;
    char *node_address; /* advertised node address */
    char *leader;       /* "host:port" for /v1/status/leader */
    uint64_t index;     /* last assigned */
    uint64_t committed; /* last durable */
    uint64_t catalog_index, checks_index, kv_floor;
    colony__map services; /* id -> reg_service */
    colony__map checks;   /* id -> reg_check */
    colony__map names;    /* service name -> reg_name (instances, checks, index, cache) */
    reg_kv **kv;          /* sorted by key, includes tombstones */
    size_t nkv, kv_cap;
    colony__list waiters;         /* parked reads (colony__reg_waiters_init) */
    colony__list acks;            /* write acks in index order */
    struct colony_prober *prober; /* runs HTTP and TCP checks (registry/checks.c) */
    uv_timer_t reaper;
    int reaper_open, shutting_down;
    uint64_t min_interval_ms;   /* checks run at most this often */
    uint64_t min_deregister_ms; /* floor for DeregisterCriticalServiceAfter */
    uint64_t tombstone_ttl_ms;  /* deleted keys are forgotten after this */
};

/* State changes: each assigns the next index, applies in memory and queues the
 * durable op. The op is allocated first: on COLONY_ENOMEM nothing changed
 * (the caller answers 500), so memory never holds a change the disk will
 * not get. */
uint64_t colony__reg_next_index(registry *reg);
int colony__reg_service_put(registry *reg, reg_service *svc);  /* takes svc */
int colony__reg_service_remove(registry *reg, const char *id); /* and its checks */
int colony__reg_check_put(registry *reg, reg_check *chk);      /* takes chk; arms it */
/* 1 if the status changed, 0 if not, COLONY_ENOMEM (status kept). */
int colony__reg_check_set_status(registry *reg, reg_check *chk, int status, const char *output);
int colony__reg_check_remove(registry *reg, const char *id); /* 0, ENOENT or ENOMEM */
void colony__reg_service_free(reg_service *svc);
void colony__reg_check_free(reg_check *chk); /* only a check never armed */
uint64_t *colony__reg_service_index_slot(registry *reg, const char *name);
/* Notes a change to anything a name's answers render (status, output, tags):
 * drops its cached bodies. */
void colony__reg_name_touch(registry *reg, const char *name);
char *colony__reg_service_doc(const reg_service *svc);
char *colony__reg_check_doc(const reg_check *chk);

/* KV (sorted array with tombstones). */
reg_kv *colony__reg_kv_find(registry *reg, const char *key); /* live or tombstone */
size_t colony__reg_kv_lower_bound(registry *reg, const char *key);
int colony__reg_kv_set(registry *reg, const char *key, const char *value, size_t len,
                       uint64_t flags, int deleted, uint64_t create_index, uint64_t modify_index,
                       uint64_t lock_index);
uint64_t colony__reg_kv_prefix_index(registry *reg, const char *prefix);
/* A KV put at the next index, in memory and queued for disk; 0, or
 * COLONY_ENOMEM with nothing changed. */
int colony__reg_kv_write(registry *reg, const char *key, const char *value, size_t len,
                         uint64_t flags);
/* Deletes key (with recurse, every key under it) at one index, keeping
 * tombstones. Returns how many live keys it deleted, or COLONY_ENOMEM with
 * nothing changed. */
int colony__reg_kv_delete(registry *reg, const char *key, int recurse);
/* Forgets tombstones older than reg->tombstone_ttl_ms (memory and disk),
 * raising kv_floor to their highest ModifyIndex so no index goes backwards.
 * Returns how many were reaped. */
size_t colony__reg_kv_reap_tombstones(registry *reg, uint64_t now_ms);
size_t colony__reg_kv_tombstones(const registry *reg);

/* Parses a service registration body into svc and checks (NULL-terminated
 * array, caller frees). On error, msg says what is wrong. */
int colony__reg_parse_service(const json_t *body, reg_service **svc_out, reg_check ***checks_out,
                              char *msg, size_t msg_size);
/* Parses one check definition (also used to restore checks). */
reg_check *colony__reg_parse_check(const json_t *def, const char *service_id,
                                   const char *service_name, int ordinal, char *msg,
                                   size_t msg_size);

/* Consul-shaped JSON for answers. */
json_t *colony__reg_service_agent_json(const reg_service *svc);
json_t *colony__reg_check_json(const registry *reg, const reg_check *chk);
json_t *colony__reg_node_json(const registry *reg);
json_t *colony__reg_node_check_json(const registry *reg);

/* Routes. */
int colony__reg_routes_agent(registry *reg, colony_router *r);
int colony__reg_routes_catalog(registry *reg, colony_router *r);
int colony__reg_routes_kv(registry *reg, colony_router *r);
/* Answers 403 unless allowed; returns nonzero when it answered. */
int colony__reg_deny(colony_request *req, int have, int need, const char *what, const char *name);
/* Parses the body as JSON whatever its Content-Type (Consul ignores it);
 * on failure answers 400 with the line and column. */
int colony__reg_body_json(colony_request *req, json_t **out);
/* Answers 400 with {"error":"bad_request","message":msg}. */
void colony__reg_bad_request(colony_request *req, const char *msg);
void colony__reg_respond_json(colony_request *req, int status, json_t *body); /* steals body */

#endif
