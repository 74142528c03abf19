/* colony registry internals: the in-memory state (services, checks, KV) and
 * the functions that change it (state.c). Each other part has its own header,
 * included only by its users: acl.h, names.h, parse.h, store.h, waiters.h,
 * checks.h, api.h. Everything runs on the registry's single loop thread
 * except the store's commit work. */
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
#include "registry/acl.h"

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

/* The store (store.h), the waiters (waiters.h), the checks (checks.h), the
 * names (names.h), parsing (parse.h) and the HTTP API (api.h) have their own
 * headers, each included by its users only. */
typedef struct reg_store reg_store;

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
/* Frees the services, the checks map (checks are stopped and freed by
 * colony__reg_checks_stop first), the names and the KV entries. */
void colony__reg_state_free(registry *reg);
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

#endif
