/* Durable store: SQLite in WAL mode with synchronous=FULL, so a commit that
 * returned survives kill -9 and power loss. Changes are queued on the loop;
 * one batch at a time is committed on libuv's thread pool, and everything that
 * arrives meanwhile goes into the next batch (group commit). The loop keeps
 * serving reads from memory while a batch commits. */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "registry/registry_internal.h"

struct reg_store {
    sqlite3 *db;
    uv_loop_t *loop;
    uv_work_t work;
    reg_op *pending_head, *pending_tail;
    reg_op *batch; /* being committed */
    int busy, result;
    uint64_t batch_index, batches;
    registry *reg;
    reg_store_committed_cb cb;
    uv_timer_t *retry_timer; /* heap: freed by its close callback */
    uint64_t retry_delay_ms; /* 0 while commits succeed */
    int stopping;            /* shutdown: one last attempt, then give up */
    size_t lost;             /* ops given up at shutdown */
};

static const char *const schema =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS services(id TEXT PRIMARY KEY, doc TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS checks(id TEXT PRIMARY KEY, doc TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS kv(key TEXT PRIMARY KEY, value BLOB, flags INTEGER,"
    " create_index INTEGER, modify_index INTEGER, lock_index INTEGER, deleted INTEGER);"
    "CREATE TABLE IF NOT EXISTS indexes(topic TEXT PRIMARY KEY, idx INTEGER NOT NULL);";

void colony__reg_op_free(reg_op *op)
{
    colony__free(op->key);
    colony__free(op->doc);
    colony__free(op->kv.value);
    colony__free(op->topic_service);
    colony__free(op);
}

int colony__reg_store_open(reg_store **out, uv_loop_t *loop, const char *dir, char *msg,
                           size_t msg_size)
{
    reg_store *s = colony__calloc(1, sizeof(*s));
    if (!s) return COLONY_ENOMEM;
    s->loop = loop;
    char path[4096];
    snprintf(path, sizeof(path), "%s/registry.db", dir);
    char *err = NULL;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(s->db, schema, NULL, NULL, &err) != SQLITE_OK) {
        snprintf(msg, msg_size, "cannot open %s: %s", path,
                 err     ? err
                 : s->db ? sqlite3_errmsg(s->db)
                         : "out of memory");
        sqlite3_free(err);
        sqlite3_close(s->db);
        colony__free(s);
        return COLONY_EIO;
    }
    sqlite3_busy_timeout(s->db, 5000);
    s->retry_timer = colony__malloc(sizeof(*s->retry_timer));
    if (!s->retry_timer) {
        snprintf(msg, msg_size, "out of memory");
        sqlite3_close(s->db);
        colony__free(s);
        return COLONY_ENOMEM;
    }
    uv_timer_init(loop, s->retry_timer);
    s->retry_timer->data = s;
    *out = s;
    return 0;
}

void colony__reg_store_set_callback(reg_store *s, registry *reg, reg_store_committed_cb cb)
{
    s->reg = reg;
    s->cb = cb;
}

static int exec_index(sqlite3 *db, const char *topic, uint64_t idx)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO indexes(topic, idx) VALUES(?1, ?2) ON CONFLICT(topic)"
                           " DO UPDATE SET idx = max(idx, excluded.idx)",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, topic, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)idx);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    return rc;
}

static int exec_op(sqlite3 *db, const reg_op *op)
{
    static const char *const sql[] = {
        [OP_SERVICE_PUT] = "INSERT OR REPLACE INTO services(id, doc) VALUES(?1, ?2)",
        [OP_SERVICE_DEL] = "DELETE FROM services WHERE id = ?1",
        [OP_CHECK_PUT] = "INSERT OR REPLACE INTO checks(id, doc) VALUES(?1, ?2)",
        [OP_CHECK_DEL] = "DELETE FROM checks WHERE id = ?1",
        [OP_KV_PUT] = "INSERT OR REPLACE INTO kv(key, value, flags, create_index, modify_index,"
                      " lock_index, deleted) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        [OP_INDEX] = NULL,
        [OP_KV_DEL] = "DELETE FROM kv WHERE key = ?1",
    };
    if (op->type == OP_INDEX) return exec_index(db, op->key, op->index);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql[op->type], -1, &st, NULL) != SQLITE_OK) return -1;
    sqlite3_bind_text(st, 1, op->key, -1, SQLITE_STATIC);
    if (op->type == OP_SERVICE_PUT || op->type == OP_CHECK_PUT)
        sqlite3_bind_text(st, 2, op->doc, -1, SQLITE_STATIC);
    if (op->type == OP_KV_PUT) {
        sqlite3_bind_blob(st, 2, op->kv.value, (int)op->kv.len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)op->kv.flags);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)op->kv.create_index);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)op->kv.modify_index);
        sqlite3_bind_int64(st, 6, (sqlite3_int64)op->kv.lock_index);
        sqlite3_bind_int(st, 7, op->kv.deleted);
    }
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    if (rc) return rc;
    /* Per-topic indexes must survive deletes so they never go backwards. */
    char topic[1024];
    if (op->topic_service) {
        snprintf(topic, sizeof(topic), "svc:%s", op->topic_service);
        if (exec_index(db, topic, op->index)) return -1;
    }
    if (op->type == OP_SERVICE_PUT || op->type == OP_SERVICE_DEL)
        return exec_index(db, "catalog", op->index);
    if (op->type == OP_CHECK_PUT || op->type == OP_CHECK_DEL)
        return exec_index(db, "checks", op->index);
    return 0;
}

/* Thread-pool side: one transaction for the whole batch. */
static void commit_work(uv_work_t *w)
{
    reg_store *s = w->data;
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
    for (reg_op *op = s->batch; !rc && op; op = op->next)
        rc = exec_op(s->db, op);
    if (!rc) rc = exec_index(s->db, "global", s->batch_index);
    if (!rc) rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
    if (rc) {
        COLONY_LOG_ERROR("registry: commit failed", COLONY_LF_STR("error", sqlite3_errmsg(s->db)));
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    s->result = rc ? COLONY_EIO : 0;
}

static void start_batch(reg_store *s);
static void queue_commit(reg_store *s);

static void free_ops(reg_op *ops)
{
    while (ops) {
        reg_op *next = ops->next;
        colony__reg_op_free(ops);
        ops = next;
    }
}

static void retry_fire(uv_timer_t *t)
{
    queue_commit(t->data);
}

/* A failed batch is not committed: it stays the current batch (its changes
 * are in memory, and readers wait for them) and is retried with a backoff
 * doubling up to REG_COMMIT_RETRY_MAX_MS, until it commits or the registry
 * shuts down. Later changes wait behind it, so the disk never holds a change
 * without the ones before it. */
static void commit_failed(reg_store *s, int err)
{
    if (!s->stopping) {
        s->retry_delay_ms = s->retry_delay_ms ? s->retry_delay_ms * 2 : REG_COMMIT_RETRY_MIN_MS;
        if (s->retry_delay_ms > REG_COMMIT_RETRY_MAX_MS)
            s->retry_delay_ms = REG_COMMIT_RETRY_MAX_MS;
        COLONY_LOG_WARN("registry: commit failed, retrying",
                        COLONY_LF_INT("index", (long long)s->batch_index),
                        COLONY_LF_INT("retry_ms", (long long)s->retry_delay_ms));
        if (s->cb) s->cb(s->reg, err, s->batch_index, s->batch);
        uv_timer_start(s->retry_timer, retry_fire, s->retry_delay_ms, 0);
        return;
    }
    /* Shutting down: what is not on disk now is lost; say so. */
    size_t n = 0;
    for (reg_op *op = s->batch; op; op = op->next)
        n++;
    for (reg_op *op = s->pending_head; op; op = op->next)
        n++;
    s->lost += n;
    COLONY_LOG_ERROR("registry: giving up on a failed commit at shutdown; changes not saved",
                     COLONY_LF_INT("index", (long long)s->batch_index),
                     COLONY_LF_INT("changes", (long long)n));
    reg_op *ops = s->batch;
    s->batch = NULL;
    free_ops(s->pending_head);
    s->pending_head = s->pending_tail = NULL;
    s->busy = 0;
    if (s->cb) s->cb(s->reg, err, s->batch_index, ops);
    free_ops(ops);
}

static void commit_done(uv_work_t *w, int status)
{
    reg_store *s = w->data;
    s->batches++;
    int err = status ? status : s->result;
    if (err) {
        commit_failed(s, err);
        return;
    }
    reg_op *ops = s->batch;
    s->batch = NULL;
    s->busy = 0;
    s->retry_delay_ms = 0;
    if (s->cb) s->cb(s->reg, 0, s->batch_index, ops);
    free_ops(ops);
    start_batch(s);
}

static void queue_commit(reg_store *s)
{
    s->work.data = s;
    int rc = uv_queue_work(s->loop, &s->work, commit_work, commit_done);
    if (rc) {
        s->result = rc;
        commit_done(&s->work, rc);
    }
}

static void start_batch(reg_store *s)
{
    if (s->busy || !s->pending_head) return;
    s->batch = s->pending_head;
    s->pending_head = s->pending_tail = NULL;
    s->batch_index = 0;
    for (reg_op *op = s->batch; op; op = op->next)
        if (op->index > s->batch_index) s->batch_index = op->index;
    s->busy = 1;
    queue_commit(s);
}

void colony__reg_store_push(reg_store *s, reg_op *op)
{
    op->next = NULL;
    if (s->pending_tail)
        s->pending_tail->next = op;
    else
        s->pending_head = op;
    s->pending_tail = op;
    start_batch(s);
}

int colony__reg_store_idle(const reg_store *s)
{
    return !s->busy && !s->pending_head;
}

uint64_t colony__reg_store_batches(const reg_store *s)
{
    return s->batches;
}

void colony__reg_store_shutdown(reg_store *s)
{
    s->stopping = 1;
    if (s->busy && uv_is_active((uv_handle_t *)s->retry_timer)) {
        uv_timer_stop(s->retry_timer);
        queue_commit(s); /* the last attempt, now */
    }
}

size_t colony__reg_store_lost(const reg_store *s)
{
    return s->lost;
}

static void retry_timer_closed(uv_handle_t *h)
{
    colony__free(h);
}

void colony__reg_store_close(reg_store *s)
{
    if (!s) return;
    free_ops(s->pending_head);
    free_ops(s->batch);
    uv_close((uv_handle_t *)s->retry_timer, retry_timer_closed);
    sqlite3_close(s->db);
    colony__free(s);
}

/* ---- loading at startup ---- */
static int load_indexes(reg_store *s, registry *reg)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT topic, idx FROM indexes", -1, &st, NULL) != SQLITE_OK)
        return COLONY_EIO;
    int rc = 0;
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        const char *topic = (const char *)sqlite3_column_text(st, 0);
        uint64_t idx = (uint64_t)sqlite3_column_int64(st, 1);
        if (idx > reg->index) reg->index = idx;
        if (strcmp(topic, "catalog") == 0) reg->catalog_index = idx;
        if (strcmp(topic, "checks") == 0) reg->checks_index = idx;
        if (strcmp(topic, "kvfloor") == 0) reg->kv_floor = idx;
        if (strncmp(topic, "svc:", 4) == 0) {
            uint64_t *slot = colony__reg_service_index_slot(reg, topic + 4);
            if (!slot)
                rc = COLONY_ENOMEM;
            else
                *slot = idx;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static int load_services(reg_store *s, registry *reg)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT doc FROM services", -1, &st, NULL) != SQLITE_OK)
        return COLONY_EIO;
    int rc = 0;
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        json_t *doc = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
        reg_service *svc = NULL;
        reg_check **checks = NULL;
        char msg[256];
        if (doc) json_object_set(doc, "Name", json_object_get(doc, "Service"));
        if (doc && colony__reg_parse_service(doc, &svc, &checks, msg, sizeof(msg)) == 0) {
            json_t *ci = json_object_get(doc, "CreateIndex"),
                   *mi = json_object_get(doc, "ModifyIndex");
            svc->create_index = (uint64_t)json_integer_value(ci);
            svc->modify_index = (uint64_t)json_integer_value(mi);
            colony__free(checks);
            if (colony__map_put(&reg->services, svc->id, svc)) {
                colony__reg_service_free(svc);
                rc = COLONY_ENOMEM;
            }
        } else {
            COLONY_LOG_WARN("registry: skipping unreadable stored service");
        }
        json_decref(doc);
    }
    sqlite3_finalize(st);
    return rc;
}

static int load_checks(reg_store *s, registry *reg)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT doc FROM checks", -1, &st, NULL) != SQLITE_OK)
        return COLONY_EIO;
    int rc = 0;
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        json_t *doc = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
        const char *sid = json_string_value(json_object_get(doc, "ServiceID"));
        const char *sname = json_string_value(json_object_get(doc, "ServiceName"));
        char msg[256];
        reg_check *c = doc ? colony__reg_parse_check(json_object_get(doc, "Definition"), sid, sname,
                                                     0, msg, sizeof(msg))
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
        } else {
            COLONY_LOG_WARN("registry: skipping unreadable stored check");
        }
        json_decref(doc);
    }
    sqlite3_finalize(st);
    return rc;
}

static int load_kv(reg_store *s, registry *reg)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT key, value, flags, create_index, modify_index, lock_index,"
                           " deleted FROM kv ORDER BY key",
                           -1, &st, NULL) != SQLITE_OK)
        return COLONY_EIO;
    int rc = 0;
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 0);
        const void *value = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        uint64_t mi = (uint64_t)sqlite3_column_int64(st, 4);
        rc = colony__reg_kv_set(reg, key, value, len, (uint64_t)sqlite3_column_int64(st, 2),
                                sqlite3_column_int(st, 6), (uint64_t)sqlite3_column_int64(st, 3),
                                mi, (uint64_t)sqlite3_column_int64(st, 5));
        if (mi > reg->index) reg->index = mi;
    }
    sqlite3_finalize(st);
    return rc;
}

int colony__reg_store_load(reg_store *s, registry *reg)
{
    int rc = load_indexes(s, reg);
    if (!rc) rc = load_services(s, reg);
    if (!rc) rc = load_checks(s, reg);
    if (!rc) rc = load_kv(s, reg);
    if (reg->index == 0) reg->index = 1; /* the node's own registration */
    reg->committed = reg->index;
    return rc;
}
