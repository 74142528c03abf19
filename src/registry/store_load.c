/* Loading at startup, every step's result checked: a read error is not "no
 * more rows". A database that cannot be read whole refuses to start (the
 * message names the file), and so does one that holds no data while the
 * index ceiling (registry.index) says indexes were served. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "registry/store_internal.h"
#include "registry/parse.h"

typedef int (*row_fn)(sqlite3_stmt *st, registry *reg);

/* Runs sql and calls row for each row; 0, row's error, or COLONY_EIO with
 * msg naming the file and SQLite's reason. */
static int each_row(reg_store *s, registry *reg, const char *what, const char *sql, row_fn row,
                    char *msg, size_t msg_size)
{
    sqlite3_stmt *st = NULL;
    int step = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    int rc = 0;
    if (step == SQLITE_OK) {
        while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW)
            rc = row(st, reg);
    }
    if (!rc && step != SQLITE_DONE) {
        snprintf(msg, msg_size, "cannot read %s (%s): %s; refusing to start", s->path, what,
                 sqlite3_errmsg(s->db));
        rc = COLONY_EIO;
    } else if (rc) {
        snprintf(msg, msg_size, "cannot load %s (%s): %s", s->path, what, colony_strerror(rc));
    }
    sqlite3_finalize(st);
    return rc;
}

static const char *text(sqlite3_stmt *st, int col)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    return t ? t : "";
}

static int index_row(sqlite3_stmt *st, registry *reg)
{
    const char *topic = text(st, 0);
    uint64_t idx = (uint64_t)sqlite3_column_int64(st, 1);
    if (idx > reg->index) reg->index = idx;
    if (strcmp(topic, "catalog") == 0) reg->catalog_index = idx;
    if (strcmp(topic, "checks") == 0) reg->checks_index = idx;
    if (strcmp(topic, "kvfloor") == 0) reg->kv_floor = idx;
    if (strncmp(topic, "svc:", 4) == 0) {
        uint64_t *slot = colony__reg_service_index_slot(reg, topic + 4);
        if (!slot) return COLONY_ENOMEM;
        *slot = idx;
    }
    return 0;
}

/* A row that cannot be used is skipped (logged), unless memory ran out while
 * reading it: then the load fails rather than start without it. */
static int service_row(sqlite3_stmt *st, registry *reg)
{
    unsigned long failed_before = colony__alloc_failed_count();
    json_t *doc = json_loads(text(st, 0), 0, NULL);
    reg_service *svc = NULL;
    reg_check **checks = NULL;
    char msg[256] = "";
    int rc = 0;
    json_t *name = doc ? json_object_get(doc, "Service") : NULL;
    if (name && json_object_set(doc, "Name", name)) rc = COLONY_ENOMEM;
    if (!rc && doc && colony__reg_parse_service(doc, &svc, &checks, msg, sizeof(msg)) == 0) {
        json_t *ci = json_object_get(doc, "CreateIndex"), *mi = json_object_get(doc, "ModifyIndex");
        svc->create_index = (uint64_t)json_integer_value(ci);
        svc->modify_index = (uint64_t)json_integer_value(mi);
        colony__free(checks);
        if (colony__map_put(&reg->services, svc->id, svc)) {
            colony__reg_service_free(svc);
            rc = COLONY_ENOMEM;
        }
    } else if (!rc && colony__alloc_failed_count() != failed_before) {
        rc = COLONY_ENOMEM;
    } else if (!rc) {
        COLONY_LOG_WARN("registry: skipping unreadable stored service",
                        COLONY_LF_STR("reason", doc ? msg : "invalid JSON"));
    }
    json_decref(doc);
    return rc;
}

static int check_row(sqlite3_stmt *st, registry *reg)
{
    unsigned long failed_before = colony__alloc_failed_count();
    json_t *doc = json_loads(text(st, 0), 0, NULL);
    const char *sid = json_string_value(json_object_get(doc, "ServiceID"));
    const char *sname = json_string_value(json_object_get(doc, "ServiceName"));
    char msg[256] = "";
    int rc = 0;
    reg_check *c = doc ? colony__reg_parse_check(json_object_get(doc, "Definition"), sid, sname, 0,
                                                 msg, sizeof(msg))
                       : NULL;
    if (c) {
        c->status = colony__reg_status_parse(json_string_value(json_object_get(doc, "Status")));
        if (c->status < 0) c->status = REG_CRITICAL;
        const char *out = json_string_value(json_object_get(doc, "Output"));
        char *copy = colony__strdup(out ? out : "");
        if (copy) {
            colony__free(c->output);
            c->output = copy;
        }
        c->create_index = (uint64_t)json_integer_value(json_object_get(doc, "CreateIndex"));
        c->modify_index = (uint64_t)json_integer_value(json_object_get(doc, "ModifyIndex"));
        c->reg = reg;
        if (colony__map_put(&reg->checks, c->id, c)) {
            colony__reg_check_free(c);
            rc = COLONY_ENOMEM;
        }
    } else if (colony__alloc_failed_count() != failed_before) {
        rc = COLONY_ENOMEM;
    } else {
        COLONY_LOG_WARN("registry: skipping unreadable stored check",
                        COLONY_LF_STR("reason", doc ? msg : "invalid JSON"));
    }
    json_decref(doc);
    return rc;
}

static int kv_row(sqlite3_stmt *st, registry *reg)
{
    const char *key = text(st, 0);
    const void *value = sqlite3_column_blob(st, 1);
    size_t len = (size_t)sqlite3_column_bytes(st, 1);
    uint64_t mi = (uint64_t)sqlite3_column_int64(st, 4);
    int rc = colony__reg_kv_set(reg, key, value, len, (uint64_t)sqlite3_column_int64(st, 2),
                                sqlite3_column_int(st, 6), (uint64_t)sqlite3_column_int64(st, 3),
                                mi, (uint64_t)sqlite3_column_int64(st, 5));
    if (mi > reg->index) reg->index = mi;
    return rc;
}

int colony__reg_store_load(reg_store *s, registry *reg, char *msg, size_t msg_size)
{
    int rc =
        each_row(s, reg, "indexes", "SELECT topic, idx FROM indexes", index_row, msg, msg_size);
    if (!rc)
        rc = each_row(s, reg, "services", "SELECT doc FROM services", service_row, msg, msg_size);
    if (!rc) rc = each_row(s, reg, "checks", "SELECT doc FROM checks", check_row, msg, msg_size);
    if (!rc)
        rc = each_row(s, reg, "kv",
                      "SELECT key, value, flags, create_index, modify_index, lock_index,"
                      " deleted FROM kv ORDER BY key",
                      kv_row, msg, msg_size);
    if (rc) return rc;
    /* Tables that are all there but hold nothing, while the ceiling says
     * indexes were served: the rows were lost; starting would reuse them. */
    if (reg->index == 0 && s->ceiling) {
        return colony__reg_store_refuse_lost(s, msg, msg_size);
    }
    /* A data dir from before the ceiling existed gets one now (a new one gets
     * it with its first commit). */
    if (reg->index && s->ceiling < reg->index) {
        rc = colony__reg_store_write_ceiling(s, reg->index + REG_INDEX_CEILING_STEP);
        if (rc)
            snprintf(msg, msg_size, "cannot write %s: %s", s->ceiling_path, colony_strerror(rc));
    }
    if (reg->index == 0) reg->index = 1; /* the node's own registration */
    reg->committed = reg->index;
    return rc;
}
