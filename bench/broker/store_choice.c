/* Storage choice for the broker (issue 9): appends 1 KB records with one
 * fsync per batch into (a) a segment file (write + fdatasync, the broker's
 * segment log framing: 36-byte header with CRC, as src/broker/store/segment.c)
 * and (b) SQLite in WAL mode with synchronous=FULL (the registry's settings),
 * one transaction per batch. Prints records/s and fsync'd batches/s per batch
 * size. A measurement, not a test: nothing is asserted.
 *
 *   bench/broker/store_choice [DIR] [SECONDS_PER_CASE]
 */
#include <fcntl.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RECORD 1024

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double run_segment(const char *dir, int batch, double secs, long *records)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/bench.seg", dir);
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    char rec[RECORD + 36];
    memset(rec, 'x', sizeof(rec));
    char *buf = malloc(sizeof(rec) * (size_t)batch);
    long n = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < batch; i++)
            memcpy(buf + (size_t)i * sizeof(rec), rec, sizeof(rec));
        if (write(fd, buf, sizeof(rec) * (size_t)batch) < 0 || fdatasync(fd) != 0) {
            perror("write/fdatasync");
            exit(1);
        }
        n += batch;
        t = now();
    } while (t - t0 < secs);
    free(buf);
    close(fd);
    unlink(path);
    *records = n;
    return t - t0;
}

static double run_sqlite(const char *dir, int batch, double secs, long *records)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/bench.db", dir);
    unlink(path);
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        fprintf(stderr, "sqlite open\n");
        exit(1);
    }
    sqlite3_exec(db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                 "CREATE TABLE e(ms INTEGER, seq INTEGER, body BLOB, PRIMARY KEY(ms, seq));",
                 NULL, NULL, NULL);
    sqlite3_stmt *ins;
    sqlite3_prepare_v2(db, "INSERT INTO e VALUES(?,?,?)", -1, &ins, NULL);
    char rec[RECORD];
    memset(rec, 'x', sizeof(rec));
    long n = 0;
    double t0 = now(), t;
    do {
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        for (int i = 0; i < batch; i++) {
            sqlite3_bind_int64(ins, 1, n + i);
            sqlite3_bind_int64(ins, 2, 0);
            sqlite3_bind_blob(ins, 3, rec, RECORD, SQLITE_STATIC);
            if (sqlite3_step(ins) != SQLITE_DONE) {
                fprintf(stderr, "insert\n");
                exit(1);
            }
            sqlite3_reset(ins);
        }
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            fprintf(stderr, "commit\n");
            exit(1);
        }
        n += batch;
        t = now();
    } while (t - t0 < secs);
    sqlite3_finalize(ins);
    sqlite3_close(db);
    unlink(path);
    char wal[4200];
    snprintf(wal, sizeof(wal), "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof(wal), "%s-shm", path);
    unlink(wal);
    *records = n;
    return t - t0;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    double secs = argc > 2 ? atof(argv[2]) : 3.0;
    int batches[] = {1, 32, 256};
    printf("%-8s %6s %14s %14s %12s\n", "store", "batch", "records/s", "batches/s", "MB/s");
    for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
        for (int which = 0; which < 2; which++) {
            long n;
            double el = which == 0 ? run_segment(dir, batches[b], secs, &n)
                                   : run_sqlite(dir, batches[b], secs, &n);
            printf("%-8s %6d %14.0f %14.0f %12.1f\n", which == 0 ? "segment" : "sqlite", batches[b],
                   (double)n / el, (double)n / el / batches[b], (double)n * RECORD / el / 1e6);
            fflush(stdout);
        }
    }
    return 0;
}
