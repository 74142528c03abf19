/* The registry's in-memory state and its change functions. Every change
 * takes the next global index, is applied here at once (so later requests on
 * the loop see it, and CAS decisions are serial) and queues a durable op;
 * readers never see it before that op is committed (see waiters.c). */
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "registry/checks.h"
#include "registry/registry_internal.h"
#include "registry/store.h"
#include "registry/names.h"

uint64_t colony__reg_next_index(registry *reg)
{
    return ++reg->index;
}

void colony__reg_service_free(reg_service *s)
{
    if (!s) return;
    colony__free(s->id);
    colony__free(s->name);
    colony__free(s->address);
    json_decref(s->tags);
    json_decref(s->meta);
    colony__free(s);
}

void colony__reg_check_free(reg_check *c)
{
    if (!c) return;
    colony__free(c->id);
    colony__free(c->name);
    colony__free(c->notes);
    colony__free(c->service_id);
    colony__free(c->service_name);
    colony__free(c->target);
    colony__free(c->method);
    colony__free(c->body);
    colony__free(c->output);
    json_decref(c->header);
    json_decref(c->definition);
    colony__free(c);
}

static void bump_service_name(registry *reg, const char *name, uint64_t idx)
{
    uint64_t *slot = colony__reg_service_index_slot(reg, name);
    if (slot) *slot = idx;
    colony__reg_name_touch(reg, name);
}

static char *dump(json_t *doc)
{
    char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return s;
}

char *colony__reg_service_doc(const reg_service *s)
{
    return dump(json_pack("{s:s, s:s, s:s, s:i, s:O, s:O, s:{s:i, s:i}, s:b, s:I, s:I}", "ID",
                          s->id, "Service", s->name, "Address", s->address, "Port", s->port, "Tags",
                          s->tags, "Meta", s->meta, "Weights", "Passing", s->weight_passing,
                          "Warning", s->weight_warning, "EnableTagOverride", s->enable_tag_override,
                          "CreateIndex", (json_int_t)s->create_index, "ModifyIndex",
                          (json_int_t)s->modify_index));
}

char *colony__reg_check_doc(const reg_check *c)
{
    return dump(json_pack("{s:O, s:s?, s:s?, s:s, s:s, s:I, s:I}", "Definition", c->definition,
                          "ServiceID", c->service_id, "ServiceName", c->service_name, "Status",
                          colony__reg_status_name(c->status), "Output", c->output, "CreateIndex",
                          (json_int_t)c->create_index, "ModifyIndex", (json_int_t)c->modify_index));
}

/* A durable op, built before memory changes so that when it cannot be
 * allocated the change is refused (ENOMEM, memory untouched) instead of
 * living in memory only. doc is taken (freed on failure). */
static reg_op *new_op(int type, const char *key, char *doc, const char *service, uint64_t idx)
{
    reg_op *op = colony__calloc(1, sizeof(*op));
    if (op) {
        op->type = type;
        op->key = colony__strdup(key);
        op->doc = doc;
        op->index = idx;
        op->topic_service = service ? colony__strdup(service) : NULL;
        doc = NULL;
    }
    if (!op || !op->key || (service && !op->topic_service) ||
        ((type == OP_SERVICE_PUT || type == OP_CHECK_PUT) && !op->doc)) {
        if (op) colony__reg_op_free(op);
        colony__free(doc);
        return NULL;
    }
    return op;
}

int colony__reg_service_put(registry *reg, reg_service *svc)
{
    reg_service *old = colony__map_get(&reg->services, svc->id);
    uint64_t idx = reg->index + 1;
    svc->create_index = old ? old->create_index : idx;
    svc->modify_index = idx;
    reg_op *op = new_op(OP_SERVICE_PUT, svc->id, colony__reg_service_doc(svc), svc->name, idx);
    reg_name *nm = op ? colony__reg_name_slot(reg, svc->name) : NULL;
    if (!nm || colony__reg_name_reserve(nm, 1, 0) ||
        colony__map_put(&reg->services, svc->id, svc)) {
        if (op) colony__reg_op_free(op);
        colony__reg_service_free(svc);
        return COLONY_ENOMEM;
    }
    colony__reg_next_index(reg);
    if (old) colony__reg_name_remove_instance(reg, old);
    colony__reg_name_add_instance(nm, svc);
    if (old && strcmp(old->name, svc->name) != 0) bump_service_name(reg, old->name, idx);
    colony__reg_service_free(old);
    bump_service_name(reg, svc->name, idx);
    reg->catalog_index = idx;
    colony__reg_store_push(reg->store, op);
    return 0;
}

/* Removes a check whose deletion op is already allocated (cannot fail). */
static void check_remove_with(registry *reg, reg_check *chk, reg_op *op)
{
    colony__map_remove(&reg->checks, chk->id);
    colony__reg_name_remove_check(reg, chk);
    uint64_t idx = colony__reg_next_index(reg);
    op->index = idx;
    reg->checks_index = idx;
    if (chk->service_name) bump_service_name(reg, chk->service_name, idx);
    colony__reg_store_push(reg->store, op);
    colony__reg_check_disarm(chk);
}

/* All or nothing: every op (the service's and its checks') is allocated
 * before anything is removed. */
int colony__reg_service_remove(registry *reg, const char *id)
{
    reg_service *svc = colony__map_get(&reg->services, id);
    if (!svc) return COLONY_ENOENT;
    size_t n = 0;
    reg_check **checks = colony__calloc(reg->checks.count + 1, sizeof(*checks));
    reg_op **ops = colony__calloc(reg->checks.count + 1, sizeof(*ops));
    int rc = checks && ops ? 0 : COLONY_ENOMEM;
    for (size_t i = 0; !rc && i < reg->checks.cap; i++) {
        reg_check *c = reg->checks.slots[i].key ? reg->checks.slots[i].value : NULL;
        if (!c || !c->service_id || strcmp(c->service_id, id) != 0) continue;
        checks[n] = c;
        ops[n] = new_op(OP_CHECK_DEL, c->id, NULL, c->service_name, 0);
        if (!ops[n++]) rc = COLONY_ENOMEM;
    }
    reg_op *svc_op = rc ? NULL : new_op(OP_SERVICE_DEL, svc->id, NULL, svc->name, 0);
    if (!svc_op) {
        for (size_t i = 0; ops && i < n; i++)
            if (ops[i]) colony__reg_op_free(ops[i]);
        colony__free(checks);
        colony__free(ops);
        return COLONY_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        check_remove_with(reg, checks[i], ops[i]);
    colony__free(checks);
    colony__free(ops);
    colony__map_remove(&reg->services, id);
    colony__reg_name_remove_instance(reg, svc);
    uint64_t idx = colony__reg_next_index(reg);
    svc_op->index = idx;
    bump_service_name(reg, svc->name, idx);
    reg->catalog_index = idx;
    colony__reg_store_push(reg->store, svc_op);
    colony__reg_service_free(svc);
    return 0;
}

int colony__reg_check_put(registry *reg, reg_check *chk)
{
    reg_name *nm = chk->service_name ? colony__reg_name_slot(reg, chk->service_name) : NULL;
    if (chk->service_name && (!nm || colony__reg_name_reserve(nm, 0, 1))) {
        colony__reg_check_free(chk);
        return COLONY_ENOMEM;
    }
    reg_check *old = colony__map_get(&reg->checks, chk->id);
    uint64_t idx = reg->index + 1;
    if (old) {
        /* Re-registering keeps the known status, as Consul does, so a
         * heartbeating client that re-registers does not flap. */
        if (old->type == chk->type) {
            chk->status = old->status;
            char *out = colony__strdup(old->output);
            if (out) {
                colony__free(chk->output);
                chk->output = out;
            }
        }
        chk->create_index = old->create_index;
    } else {
        chk->create_index = idx;
    }
    chk->modify_index = idx;
    chk->reg = reg;
    reg_op *op = new_op(OP_CHECK_PUT, chk->id, colony__reg_check_doc(chk), chk->service_name, idx);
    /* Armed before anything changes: a check that cannot run is refused. */
    int rc = op ? colony__reg_check_arm(reg, chk) : COLONY_ENOMEM;
    if (rc || colony__map_put(&reg->checks, chk->id, chk)) { /* replaces old in place */
        if (op) colony__reg_op_free(op);
        colony__reg_check_disarm(chk); /* freed once its timer or probe is closed */
        return rc ? rc : COLONY_ENOMEM;
    }
    colony__reg_next_index(reg);
    if (old) {
        colony__reg_name_remove_check(reg, old);
        colony__reg_check_disarm(old);
    }
    if (nm) colony__reg_name_add_check(nm, chk);
    reg->checks_index = idx;
    if (chk->service_name) bump_service_name(reg, chk->service_name, idx);
    colony__reg_store_push(reg->store, op);
    return 0;
}

int colony__reg_check_set_status(registry *reg, reg_check *chk, int status, const char *output)
{
    if (output) {
        size_t n = strlen(output);
        char *copy = colony__strndup(output, n > REG_MAX_OUTPUT ? REG_MAX_OUTPUT : n);
        if (copy) {
            /* Output alone moves no index, but cached answers show it. */
            if (chk->service_name && (!chk->output || strcmp(chk->output, copy) != 0))
                colony__reg_name_touch(reg, chk->service_name);
            colony__free(chk->output);
            chk->output = copy;
        }
    }
    if (status == chk->status) {
        if (status != REG_CRITICAL) chk->critical_since_ms = 0;
        return 0;
    }
    int old_status = chk->status;
    uint64_t old_modify = chk->modify_index, idx = reg->index + 1;
    chk->status = status;
    chk->modify_index = idx;
    reg_op *op = new_op(OP_CHECK_PUT, chk->id, colony__reg_check_doc(chk), chk->service_name, idx);
    if (!op) {
        chk->status = old_status;
        chk->modify_index = old_modify;
        return COLONY_ENOMEM;
    }
    chk->critical_since_ms = status == REG_CRITICAL ? uv_now(reg->loop) : 0;
    colony__reg_next_index(reg);
    reg->checks_index = idx;
    if (chk->service_name) bump_service_name(reg, chk->service_name, idx);
    colony__reg_store_push(reg->store, op);
    return 1;
}

int colony__reg_check_remove(registry *reg, const char *id)
{
    reg_check *chk = colony__map_get(&reg->checks, id);
    if (!chk) return COLONY_ENOENT;
    reg_op *op = new_op(OP_CHECK_DEL, chk->id, NULL, chk->service_name, 0);
    if (!op) return COLONY_ENOMEM;
    check_remove_with(reg, chk, op);
    return 0;
}

/* ---- KV: a sorted array (prefix scans are ranges), tombstones kept ---- */
size_t colony__reg_kv_lower_bound(registry *reg, const char *key)
{
    size_t lo = 0, hi = reg->nkv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(reg->kv[mid]->key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

reg_kv *colony__reg_kv_find(registry *reg, const char *key)
{
    size_t i = colony__reg_kv_lower_bound(reg, key);
    return i < reg->nkv && strcmp(reg->kv[i]->key, key) == 0 ? reg->kv[i] : NULL;
}

int colony__reg_kv_set(registry *reg, const char *key, const char *value, size_t len,
                       uint64_t flags, int deleted, uint64_t create_index, uint64_t modify_index,
                       uint64_t lock_index)
{
    char *copy = colony__malloc(len + 1);
    if (!copy) return COLONY_ENOMEM;
    if (len) memcpy(copy, value, len);
    copy[len] = '\0';
    size_t i = colony__reg_kv_lower_bound(reg, key);
    reg_kv *e = i < reg->nkv && strcmp(reg->kv[i]->key, key) == 0 ? reg->kv[i] : NULL;
    if (!e) {
        if (reg->nkv == reg->kv_cap) {
            size_t cap = reg->kv_cap ? reg->kv_cap * 2 : 64;
            reg_kv **grown = colony__realloc(reg->kv, cap * sizeof(*grown));
            if (!grown) goto nomem;
            reg->kv = grown;
            reg->kv_cap = cap;
        }
        e = colony__calloc(1, sizeof(*e));
        if (!e) goto nomem;
        e->key = colony__strdup(key);
        if (!e->key) {
            colony__free(e);
            goto nomem;
        }
        memmove(reg->kv + i + 1, reg->kv + i, (reg->nkv - i) * sizeof(*reg->kv));
        reg->kv[i] = e;
        reg->nkv++;
    }
    colony__free(e->value);
    e->value = copy;
    e->len = len;
    e->flags = flags;
    e->deleted = deleted;
    e->deleted_at_ms = 0;
    e->create_index = create_index;
    e->modify_index = modify_index;
    e->lock_index = lock_index;
    return 0;
nomem:
    colony__free(copy);
    return COLONY_ENOMEM;
}

uint64_t colony__reg_kv_prefix_index(registry *reg, const char *prefix)
{
    uint64_t idx = reg->kv_floor;
    size_t plen = strlen(prefix);
    for (size_t i = colony__reg_kv_lower_bound(reg, prefix); i < reg->nkv; i++) {
        if (strncmp(reg->kv[i]->key, prefix, plen) != 0) break;
        if (reg->kv[i]->modify_index > idx) idx = reg->kv[i]->modify_index;
    }
    return idx;
}

/* A KV op for an entry's new state, built before memory changes. */
static reg_op *kv_op(const char *key, const char *value, size_t len, uint64_t flags, int deleted,
                     uint64_t create_index, uint64_t modify_index, uint64_t lock_index)
{
    reg_op *op = colony__calloc(1, sizeof(*op));
    char *copy = op ? colony__malloc(len + 1) : NULL;
    if (op) op->key = colony__strdup(key);
    if (!op || !copy || !op->key) {
        colony__free(copy);
        if (op) colony__reg_op_free(op);
        return NULL;
    }
    if (len) memcpy(copy, value, len);
    copy[len] = '\0';
    op->type = OP_KV_PUT;
    op->kv = (reg_kv){.key = op->key,
                      .value = copy,
                      .len = len,
                      .flags = flags,
                      .create_index = create_index,
                      .modify_index = modify_index,
                      .lock_index = lock_index,
                      .deleted = deleted};
    op->index = modify_index;
    return op;
}

int colony__reg_kv_write(registry *reg, const char *key, const char *value, size_t len,
                         uint64_t flags)
{
    reg_kv *e = colony__reg_kv_find(reg, key);
    int exists = e && !e->deleted;
    uint64_t idx = reg->index + 1;
    uint64_t create_index = exists ? e->create_index : idx, lock_index = exists ? e->lock_index : 0;
    reg_op *op = kv_op(key, value, len, flags, 0, create_index, idx, lock_index);
    if (!op || colony__reg_kv_set(reg, key, value, len, flags, 0, create_index, idx, lock_index)) {
        if (op) colony__reg_op_free(op);
        return COLONY_ENOMEM;
    }
    colony__reg_next_index(reg);
    colony__reg_store_push(reg->store, op);
    return 0;
}

/* Tombstones every live key equal to key (or under it with recurse) at one
 * index. All or nothing: each tombstone's op and empty value are allocated
 * before any key changes. Returns how many keys were deleted, or ENOMEM. */
int colony__reg_kv_delete(registry *reg, const char *key, int recurse)
{
    size_t first = colony__reg_kv_lower_bound(reg, key), plen = strlen(key), n = 0, end = first;
    for (; end < reg->nkv; end++) {
        reg_kv *e = reg->kv[end];
        if (recurse ? strncmp(e->key, key, plen) != 0 : strcmp(e->key, key) != 0) break;
        n += !e->deleted;
    }
    if (!n) return 0;
    uint64_t idx = reg->index + 1;
    reg_op **ops = colony__calloc(n, sizeof(*ops));
    char **empty = colony__calloc(n, sizeof(*empty));
    int rc = ops && empty ? 0 : COLONY_ENOMEM;
    for (size_t i = first, k = 0; !rc && i < end; i++) {
        reg_kv *e = reg->kv[i];
        if (e->deleted) continue;
        ops[k] = kv_op(e->key, "", 0, e->flags, 1, e->create_index, idx, e->lock_index);
        empty[k] = colony__strdup("");
        if (!ops[k] || !empty[k]) rc = COLONY_ENOMEM;
        k++;
    }
    if (rc) {
        for (size_t k = 0; ops && empty && k < n; k++) {
            if (ops[k]) colony__reg_op_free(ops[k]);
            colony__free(empty[k]);
        }
        colony__free(ops);
        colony__free(empty);
        return rc;
    }
    colony__reg_next_index(reg);
    for (size_t i = first, k = 0; i < end; i++) {
        reg_kv *e = reg->kv[i];
        if (e->deleted) continue;
        e->deleted = 1;
        e->deleted_at_ms = uv_now(reg->loop);
        e->modify_index = idx;
        colony__free(e->value);
        e->value = empty[k];
        e->len = 0;
        colony__reg_store_push(reg->store, ops[k++]);
    }
    colony__free(ops);
    colony__free(empty);
    return (int)n;
}

void colony__reg_state_free(registry *reg)
{
    size_t pos = 0;
    for (colony__map_slot *s; (s = colony__map_next(&reg->services, &pos));)
        colony__reg_service_free(s->value);
    colony__map_free(&reg->services);
    colony__map_free(&reg->checks);
    colony__reg_names_free(reg);
    for (size_t i = 0; i < reg->nkv; i++) {
        colony__free(reg->kv[i]->key);
        colony__free(reg->kv[i]->value);
        colony__free(reg->kv[i]);
    }
    colony__free(reg->kv);
    reg->kv = NULL;
    reg->nkv = reg->kv_cap = 0;
}
