/* Durable store: SQLite in WAL mode with synchronous=FULL, so a commit that
 * returned survives kill -9 and power loss. Changes are group-committed by
 * kit/durable: one batch at a time is one transaction on libuv's thread pool,
 * everything that arrives meanwhile goes into the next batch, and a failed
 * batch is retried with a capped backoff. The loop keeps serving reads from
 * memory while a batch commits.
 *
 * The data dir holds, next to registry.db:
 *   registry.lock  flock'ed while a registry uses the dir; holds its pid.
 *   registry.index the index ceiling: no index above it was ever committed.
 *                  Written (fsynced) before a batch whose index passes it
 *                  commits, REG_INDEX_CEILING_STEP above that index, so it
 *                  costs one extra fsync per that many indexes. A database
 *                  that lost its tables or its rows cannot pass for a new one
 *                  while this file says data existed (store_load.c). */
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "core/dir_lock.h"
#include "registry/registry_internal.h"
#include "registry/store.h"
#include "registry/store_internal.h"

static const char *const schema =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS services(id TEXT PRIMARY KEY, doc TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS checks(id TEXT PRIMARY KEY, doc TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS kv(key TEXT PRIMARY KEY, value BLOB, flags INTEGER,"
    " create_index INTEGER, modify_index INTEGER, lock_index INTEGER, deleted INTEGER);"
    "CREATE TABLE IF NOT EXISTS indexes(topic TEXT PRIMARY KEY, idx INTEGER NOT NULL);";

static const char *const tables[] = {"meta", "services", "checks", "kv", "indexes"};

void colony__reg_op_free(reg_op *op)
{
    colony__free(op->key);
    colony__free(op->doc);
    colony__free(op->kv.value);
    colony__free(op->topic_service);
    colony__free(op);
}

/* ---- the data dir: lock and index ceiling ---- */

/* Takes the data dir's lock, or says which process holds it. */
static int take_lock(reg_store *s, const char *dir, char *msg, size_t msg_size)
{
    int fd = colony__dir_lock(dir, "registry", msg, msg_size);
    if (fd < 0) return fd;
    s->lock_fd = fd;
    return 0;
}

/* Reads the index ceiling (0 when the file does not exist). */
static int read_ceiling(reg_store *s, char *msg, size_t msg_size)
{
    s->ceiling = 0;
    FILE *f = fopen(s->ceiling_path, "re");
    if (!f) {
        if (errno == ENOENT) return 0;
        int err = -errno;
        snprintf(msg, msg_size, "cannot read %s: %s", s->ceiling_path, colony_strerror(err));
        return err;
    }
    char buf[32] = "";
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (end == buf || (*end && *end != '\n') || errno) {
        snprintf(msg, msg_size, "%s is not an index; refusing to start", s->ceiling_path);
        return COLONY_EINVAL;
    }
    s->ceiling = v;
    return 0;
}

/* Writes a new ceiling durably: temp file, fsync, rename, fsync the dir. */
int colony__reg_store_write_ceiling(reg_store *s, uint64_t ceiling)
{
    char tmp[sizeof(s->ceiling_path) + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", s->ceiling_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", ceiling);
    int rc = write(fd, buf, (size_t)n) == n && fsync(fd) == 0 ? 0 : -errno;
    if (close(fd) != 0 && !rc) rc = -errno;
    if (!rc && rename(tmp, s->ceiling_path) != 0) rc = -errno;
    if (!rc) {
        int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) != 0) rc = -errno;
        if (dfd >= 0) close(dfd);
    }
    if (rc) {
        unlink(tmp);
        return rc ? rc : COLONY_EIO;
    }
    s->ceiling = ceiling;
    return 0;
}

/* ---- opening: integrity first ---- */

/* PRAGMA quick_check, each step checked: "ok", or the first problem in msg. */
static int check_integrity(reg_store *s, char *msg, size_t msg_size)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check", -1, &st, NULL);
    const char *problem = NULL;
    char first[256] = "";
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *row = (const char *)sqlite3_column_text(st, 0);
        if (row && strcmp(row, "ok") != 0 && !first[0]) snprintf(first, sizeof(first), "%s", row);
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_DONE)
        problem = sqlite3_errmsg(s->db);
    else if (first[0])
        problem = first;
    if (problem)
        snprintf(msg, msg_size, "%s failed its integrity check (%s); refusing to start", s->path,
                 problem);
    sqlite3_finalize(st);
    return problem ? COLONY_EIO : 0;
}

/* Counts the registry's tables: all present, none (a new database, or a lost
 * one if the ceiling says data existed) or some (refused). */

/* The data is gone while registry.index says indexes were served: starting
 * empty would hand out those indexes again. */
int colony__reg_store_refuse_lost(const reg_store *s, char *msg, size_t msg_size)
{
    snprintf(msg, msg_size,
             "%s holds no registry data, but %s says indexes up to %" PRIu64
             " were served (the database was lost or replaced); refusing to start: restore "
             "the database, or remove both files to start empty",
             s->path, s->ceiling_path, s->ceiling);
    return COLONY_EIO;
}

static int check_tables(reg_store *s, char *msg, size_t msg_size)
{
    size_t present = 0;
    const char *missing = NULL;
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(
            s->db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1", -1, &st, NULL);
        if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 1, tables[i], -1, SQLITE_STATIC);
        if (rc == SQLITE_OK) rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc == SQLITE_ROW)
            present++;
        else if (rc == SQLITE_DONE)
            missing = missing ? missing : tables[i];
        else {
            snprintf(msg, msg_size, "cannot read %s: %s; refusing to start", s->path,
                     sqlite3_errmsg(s->db));
            return COLONY_EIO;
        }
    }
    if (present && missing) {
        snprintf(msg, msg_size, "%s has no table \"%s\" (damaged); refusing to start", s->path,
                 missing);
        return COLONY_EIO;
    }
    if (!present && s->ceiling) {
        return colony__reg_store_refuse_lost(s, msg, msg_size);
    }
    return 0;
}

static int open_db(reg_store *s, char *msg, size_t msg_size)
{
    if (sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        snprintf(msg, msg_size, "cannot open %s: %s", s->path,
                 s->db ? sqlite3_errmsg(s->db) : "out of memory");
        return COLONY_EIO;
    }
    sqlite3_busy_timeout(s->db, 5000);
    int rc = check_integrity(s, msg, msg_size);
    if (!rc) rc = check_tables(s, msg, msg_size);
    if (rc) return rc;
    char *err = NULL;
    if (sqlite3_exec(s->db, schema, NULL, NULL, &err) != SQLITE_OK) {
        snprintf(msg, msg_size, "cannot open %s: %s", s->path, err ? err : sqlite3_errmsg(s->db));
        sqlite3_free(err);
        return COLONY_EIO;
    }
    return 0;
}

/* ---- committing (thread pool) ---- */

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

static uint64_t batch_index(const colony__list *batch)
{
    uint64_t idx = 0;
    for (const colony__list *n = batch->next; n != batch; n = n->next) {
        const reg_op *op = COLONY__CONTAINER_OF(n, reg_op, node);
        if (op->index > idx) idx = op->index;
    }
    return idx;
}

/* Thread-pool side: one transaction for the whole batch, after the ceiling
 * covers its index. */
static int commit_batch(void *ud, const colony__list *batch)
{
    reg_store *s = ud;
    uint64_t idx = batch_index(batch);
    if (idx > s->ceiling) {
        int err = colony__reg_store_write_ceiling(s, idx + REG_INDEX_CEILING_STEP);
        if (err) {
            COLONY_LOG_ERROR("registry: cannot write the index ceiling",
                             COLONY_LF_STR("file", s->ceiling_path),
                             COLONY_LF_STR("error", colony_strerror(err)));
            return err;
        }
    }
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
    for (const colony__list *n = batch->next; !rc && n != batch; n = n->next)
        rc = exec_op(s->db, COLONY__CONTAINER_OF(n, reg_op, node));
    if (!rc) rc = exec_index(s->db, "global", idx);
    if (!rc) rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
    if (rc) {
        COLONY_LOG_ERROR("registry: commit failed", COLONY_LF_STR("error", sqlite3_errmsg(s->db)));
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc ? COLONY_EIO : 0;
}

/* Loop side, after each attempt. */
static void batch_done(void *ud, int err, int giving_up, const colony__list *batch)
{
    (void)giving_up;
    reg_store *s = ud;
    s->batches++;
    if (s->cb) s->cb(s->reg, err, batch_index(batch), batch);
}

static void op_done(void *ud, colony__list *node, int err)
{
    (void)ud;
    (void)err;
    colony__reg_op_free(COLONY__CONTAINER_OF(node, reg_op, node));
}

/* ---- the store's life ---- */

static void store_free(reg_store *s)
{
    if (s->db) sqlite3_close(s->db);
    if (s->lock_fd >= 0) close(s->lock_fd); /* releases the lock */
    colony__free(s);
}

int colony__reg_store_open(reg_store **out, uv_loop_t *loop, const char *dir, char *msg,
                           size_t msg_size)
{
    *out = NULL;
    reg_store *s = colony__calloc(1, sizeof(*s));
    if (!s) {
        snprintf(msg, msg_size, "out of memory");
        return COLONY_ENOMEM;
    }
    s->lock_fd = -1;
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    snprintf(s->path, sizeof(s->path), "%s/registry.db", dir);
    snprintf(s->ceiling_path, sizeof(s->ceiling_path), "%s/registry.index", dir);
    int rc = take_lock(s, dir, msg, msg_size);
    if (!rc) rc = read_ceiling(s, msg, msg_size);
    if (!rc) rc = open_db(s, msg, msg_size);
    if (!rc) {
        colony__durable_options o = {.commit = commit_batch,
                                     .ack = op_done,
                                     .batch = batch_done,
                                     .ud = s,
                                     .name = "registry",
                                     .retry_min_ms = REG_COMMIT_RETRY_MIN_MS,
                                     .retry_max_ms = REG_COMMIT_RETRY_MAX_MS};
        rc = colony__durable_new(&s->durable, loop, &o);
        if (rc) snprintf(msg, msg_size, "cannot start the store: %s", colony_strerror(rc));
    }
    if (rc) {
        store_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void colony__reg_store_set_callback(reg_store *s, registry *reg, reg_store_committed_cb cb)
{
    s->reg = reg;
    s->cb = cb;
}

void colony__reg_store_push(reg_store *s, reg_op *op)
{
    colony__durable_push(s->durable, &op->node);
}

int colony__reg_store_idle(const reg_store *s)
{
    return colony__durable_idle(s->durable);
}

int colony__reg_store_failing(const reg_store *s)
{
    return colony__durable_failing(s->durable);
}

uint64_t colony__reg_store_batches(const reg_store *s)
{
    return s->batches;
}

void colony__reg_store_shutdown(reg_store *s)
{
    colony__durable_shutdown(s->durable);
}

size_t colony__reg_store_lost(const reg_store *s)
{
    return colony__durable_lost(s->durable);
}

const char *colony__reg_store_path(const reg_store *s)
{
    return s->path;
}

void colony__reg_store_close(reg_store *s)
{
    if (!s) return;
    colony__durable_close(s->durable);
    store_free(s);
}
