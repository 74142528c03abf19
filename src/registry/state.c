/* The registry's in-memory state and its change functions. Every change
 * takes the next global index, is applied here at once (so later requests on
 * the loop see it, and CAS decisions are serial) and queues a durable op;
 * readers never see it before that op is committed (see waiters.c). */
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "registry/registry_internal.h"

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

/* Queues a durable op; on allocation failure the change stays in memory only
 * and is logged (it will be rewritten by the next change to the same item). */
static void push_op(registry *reg, int type, const char *key, char *doc, const char *service,
                    uint64_t idx)
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
        COLONY_LOG_ERROR("registry: out of memory queueing a durable write",
                         COLONY_LF_STR("key", key));
        if (op) colony__reg_op_free(op);
        colony__free(doc);
        return;
    }
    colony__reg_store_push(reg->store, op);
}

int colony__reg_service_put(registry *reg, reg_service *svc)
{
    reg_service *old = colony__reg_map_get(&reg->services, svc->id);
    reg_name *nm = colony__reg_name_slot(reg, svc->name);
    if (!nm || colony__reg_name_reserve(nm, 1, 0) ||
        colony__reg_map_put(&reg->services, svc->id, svc)) {
        colony__reg_service_free(svc);
        return COLONY_ENOMEM;
    }
    uint64_t idx = colony__reg_next_index(reg);
    svc->create_index = old ? old->create_index : idx;
    svc->modify_index = idx;
    if (old) colony__reg_name_remove_instance(reg, old);
    colony__reg_name_add_instance(nm, svc);
    if (old && strcmp(old->name, svc->name) != 0) bump_service_name(reg, old->name, idx);
    colony__reg_service_free(old);
    bump_service_name(reg, svc->name, idx);
    reg->catalog_index = idx;
    push_op(reg, OP_SERVICE_PUT, svc->id, colony__reg_service_doc(svc), svc->name, idx);
    return 0;
}

int colony__reg_service_remove(registry *reg, const char *id)
{
    reg_service *svc = colony__reg_map_get(&reg->services, id);
    if (!svc) return COLONY_ENOENT;
    /* Collect the service's checks first: removing mutates the map. */
    size_t n = 0;
    char **ids = colony__calloc(reg->checks.count + 1, sizeof(*ids));
    for (size_t i = 0; ids && i < reg->checks.cap; i++) {
        reg_check *c = reg->checks.slots[i].key ? reg->checks.slots[i].value : NULL;
        if (c && c->service_id && strcmp(c->service_id, id) == 0) ids[n++] = c->id;
    }
    for (size_t i = 0; i < n; i++) {
        char *cid = colony__strdup(ids[i]);
        if (cid) colony__reg_check_remove(reg, cid);
        colony__free(cid);
    }
    colony__free(ids);
    colony__reg_map_remove(&reg->services, id);
    colony__reg_name_remove_instance(reg, svc);
    uint64_t idx = colony__reg_next_index(reg);
    bump_service_name(reg, svc->name, idx);
    reg->catalog_index = idx;
    push_op(reg, OP_SERVICE_DEL, svc->id, NULL, svc->name, idx);
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
    reg_check *old = colony__reg_map_remove(&reg->checks, chk->id);
    uint64_t idx = colony__reg_next_index(reg);
    if (old) {
        colony__reg_name_remove_check(reg, old);
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
        colony__reg_check_disarm(old);
    } else {
        chk->create_index = idx;
    }
    chk->modify_index = idx;
    chk->reg = reg;
    if (colony__reg_map_put(&reg->checks, chk->id, chk)) {
        colony__reg_check_free(chk);
        return COLONY_ENOMEM;
    }
    if (nm) colony__reg_name_add_check(nm, chk);
    reg->checks_index = idx;
    if (chk->service_name) bump_service_name(reg, chk->service_name, idx);
    push_op(reg, OP_CHECK_PUT, chk->id, colony__reg_check_doc(chk), chk->service_name, idx);
    colony__reg_check_arm(reg, chk);
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
    if (status == REG_CRITICAL && chk->status != REG_CRITICAL)
        chk->critical_since_ms = uv_now(reg->loop);
    else if (status != REG_CRITICAL)
        chk->critical_since_ms = 0;
    if (status == chk->status) return 0;
    chk->status = status;
    uint64_t idx = colony__reg_next_index(reg);
    chk->modify_index = idx;
    reg->checks_index = idx;
    if (chk->service_name) bump_service_name(reg, chk->service_name, idx);
    push_op(reg, OP_CHECK_PUT, chk->id, colony__reg_check_doc(chk), chk->service_name, idx);
    return 1;
}

void colony__reg_check_remove(registry *reg, const char *id)
{
    reg_check *chk = colony__reg_map_remove(&reg->checks, id);
    if (!chk) return;
    colony__reg_name_remove_check(reg, chk);
    uint64_t idx = colony__reg_next_index(reg);
    reg->checks_index = idx;
    if (chk->service_name) bump_service_name(reg, chk->service_name, idx);
    push_op(reg, OP_CHECK_DEL, chk->id, NULL, chk->service_name, idx);
    colony__reg_check_disarm(chk);
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

void colony__reg_kv_persist(registry *reg, const reg_kv *e)
{
    reg_op *op = colony__calloc(1, sizeof(*op));
    char *value = op ? colony__malloc(e->len + 1) : NULL;
    if (op) op->key = colony__strdup(e->key);
    if (!op || !value || !op->key) {
        COLONY_LOG_ERROR("registry: out of memory queueing a KV write",
                         COLONY_LF_STR("key", e->key));
        colony__free(value);
        if (op) colony__reg_op_free(op);
        return;
    }
    memcpy(value, e->value, e->len + 1);
    op->type = OP_KV_PUT;
    op->kv = *e;
    op->kv.key = op->key;
    op->kv.value = value;
    op->index = e->modify_index;
    colony__reg_store_push(reg->store, op);
}
