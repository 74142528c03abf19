/* Helpers for the broker store's tests: a temp data dir, a fake wall clock,
 * opening a store, and appending/collecting entries. */
#ifndef BROKER_STORE_FIXTURE_H
#define BROKER_STORE_FIXTURE_H

#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include "broker/store/store.h"
#include "colony/error.h"
#include "colony/log.h"
#include "test_support.h"

static colony_fake_clock bs_clock;

static inline int bs_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    return remove(p);
}

static inline void bs_rmtree(const char *dir)
{
    nftw(dir, bs_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void bs_tmpdir(char *out, size_t size)
{
    snprintf(out, size, "/tmp/colony-bstore-XXXXXX");
    assert_non_null(mkdtemp(out));
}

/* The usual per-test setup: a fresh folder in bs_dir, the fake clock at
 * clock_ms, the log quiet; bs_teardown removes the folder. bs_setup starts
 * the clock at 5 s, bs_setup_1s at 1 s. */
static char bs_dir[64];

static inline int bs_setup_at(uint64_t clock_ms)
{
    bs_tmpdir(bs_dir, sizeof(bs_dir));
    colony_fake_clock_init(&bs_clock, clock_ms);
    colony_log_set_level(COLONY_LOG_ERROR + 1);
    return 0;
}

static inline int bs_setup(void **state)
{
    (void)state;
    return bs_setup_at(5000);
}

static inline int bs_setup_1s(void **state)
{
    (void)state;
    return bs_setup_at(1000);
}

static inline int bs_teardown(void **state)
{
    (void)state;
    bs_rmtree(bs_dir);
    return 0;
}

static inline colony__bstore_options bs_options(const char *dir)
{
    colony__bstore_options o = {0};
    o.dir = dir;
    o.clock = colony_clock_fake(&bs_clock);
    return o;
}

static inline colony__bstore *bs_open_with(const colony__bstore_options *o)
{
    colony__bstore *s = NULL;
    char msg[512] = "";
    int rc = colony__bstore_open(&s, o, msg, sizeof(msg));
    if (rc) fail_msg("open: %d %s", rc, msg);
    return s;
}

/* Appends an entry "k" = "v<i>" with an explicit id i-0 (or auto when i is 0). */
static inline colony__bid bs_add(colony__bstream *st, uint64_t i)
{
    char v[32];
    snprintf(v, sizeof(v), "v%llu", (unsigned long long)i);
    colony__bstr f[2] = {{"k", 1}, {v, strlen(v)}};
    colony__bid id = {i, 0}, got;
    assert_int_equal(
        colony__bstream_append(st, i ? COLONY__BID_EXPLICIT : COLONY__BID_AUTO, id, f, 2, &got), 0);
    return got;
}

typedef struct bs_ids {
    colony__bid ids[4096];
    size_t n;
    int bad_value;
} bs_ids;

static inline int bs_collect(void *ud, const colony__bentry *e)
{
    bs_ids *c = ud;
    char v[32];
    snprintf(v, sizeof(v), "v%llu", (unsigned long long)e->id.ms);
    if (e->n != 2 || e->strs[0].len != 1 || e->strs[1].len != strlen(v) ||
        memcmp(e->strs[1].data, v, e->strs[1].len) != 0)
        c->bad_value = 1;
    if (c->n < 4096) c->ids[c->n++] = e->id;
    return 0;
}

static inline int bs_count_only(void *ud, const colony__bentry *e)
{
    bs_ids *c = ud;
    if (c->n < 4096) c->ids[c->n++] = e->id;
    return 0;
}

static const colony__bid bs_min = {0, 0};
static const colony__bid bs_max = {UINT64_MAX, UINT64_MAX};

/* The ms of every entry in [a, b], forward or backward, checked for values. */
static inline size_t bs_range(colony__bstream *st, uint64_t a, uint64_t b, int reverse,
                              size_t count, bs_ids *out)
{
    memset(out, 0, sizeof(*out));
    colony__bid s = {a, 0}, e = {b, UINT64_MAX};
    long n = colony__bstream_range(st, s, e, reverse, count, bs_collect, out);
    assert_true(n >= 0);
    assert_int_equal((size_t)n, out->n);
    assert_false(out->bad_value);
    return out->n;
}

/* A crash test's harness: child(fd) runs in a forked process and writes one
 * uint64_t[3] record to fd per operation it has seen acknowledged; once
 * kill_after records arrived (or after 40 s) the child is killed with
 * SIGKILL, the records already in the pipe are kept (they were acknowledged
 * too), and the child must have died of the kill, not finished. Returns how
 * many records are in acked (fewer than cap). */
static inline size_t bs_crash_run(void (*child)(int fd), uint64_t (*acked)[3], size_t cap,
                                  size_t kill_after)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child(fds[1]);
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    uint64_t start = colony_test_now_ms();
    while (n < kill_after && colony_test_now_ms() - start < 40000) {
        ssize_t k = read(fds[0], acked[n], sizeof(acked[n]));
        if (k <= 0) break;
        assert_int_equal(k, (ssize_t)sizeof(acked[n]));
        n++;
    }
    kill(pid, SIGKILL);
    for (;;) {
        ssize_t k = read(fds[0], acked[n], sizeof(acked[n]));
        if (k <= 0 || n + 1 >= cap) break;
        n++;
    }
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    return n;
}

#endif
