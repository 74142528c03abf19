/* Helpers for the delivery engine's tests: a store and an engine on a fake
 * clock in a temp dir, publishing "k" = "v<i>" entries, and collecting what
 * colony__bdelivery_next hands out and what a dead-letter stream holds. */
#ifndef BROKER_DELIVERY_FIXTURE_H
#define BROKER_DELIVERY_FIXTURE_H

#include "broker_store_fixture.h"
#include "broker/delivery/delivery.h"
#include "broker/topic/topic.h"
#include "colony/log.h"

static char bd_dir[64];
static colony__bstore *bd_store;
static colony__bdelivery *bd;

static inline void bd_open(void)
{
    colony__bstore_options o = bs_options(bd_dir);
    o.segment_bytes = 4096; /* retention by segment is visible with few entries */
    bd_store = bs_open_with(&o);
    colony__bdelivery_options d = {0};
    d.store = bd_store;
    d.seed = 42;
    assert_int_equal(colony__bdelivery_open(&bd, &d), 0);
}

static inline void bd_close(void)
{
    colony__bdelivery_close(bd);
    colony__bstore_close(bd_store);
    bd = NULL;
    bd_store = NULL;
}

static inline int bd_setup(void **state)
{
    (void)state;
    snprintf(bd_dir, sizeof(bd_dir), "/tmp/colony-bdeliv-XXXXXX");
    assert_non_null(mkdtemp(bd_dir));
    colony_fake_clock_init(&bs_clock, 1000000);
    colony_log_set_level(COLONY_LOG_ERROR + 1);
    bd_open();
    return 0;
}

static inline int bd_teardown(void **state)
{
    (void)state;
    if (bd) bd_close();
    bs_rmtree(bd_dir);
    return 0;
}

/* Publishes "k" = "v<i>" to stream with delay/TTL; returns the id. */
static inline colony__bid bd_pub(const char *stream, int i, uint64_t deliver_at, uint64_t ttl)
{
    char v[32];
    snprintf(v, sizeof(v), "v%d", i);
    colony__bstr f[2] = {{"k", 1}, {v, strlen(v)}};
    colony__bpublish m = {.strs = f, .n = 2, .deliver_at_ms = deliver_at, .ttl_ms = ttl};
    colony__bid id;
    assert_int_equal(colony__bdelivery_publish(bd, stream, &m, &id), 0);
    return id;
}

typedef struct bd_got {
    colony__bid id[256];
    uint64_t count[256];
    int value[256]; /* i of "v<i>" */
    size_t n;
} bd_got;

static inline int bd_collect(void *ud, const colony__bdelivered *e)
{
    bd_got *g = ud;
    assert_int_equal(e->n, 2);
    assert_memory_equal(e->strs[0].data, "k", 1);
    char v[32] = "";
    memcpy(v, e->strs[1].data, e->strs[1].len < 31 ? e->strs[1].len : 31);
    g->id[g->n] = e->id;
    g->count[g->n] = e->count;
    g->value[g->n++] = atoi(v + 1);
    return 0;
}

/* next() for consumer, expecting n entries; returns them. */
static inline bd_got bd_next(const char *stream, const char *group, const char *consumer,
                             size_t count, long expect)
{
    bd_got g;
    memset(&g, 0, sizeof(g));
    long n = colony__bdelivery_next(bd, stream, group, consumer, count, bd_collect, &g);
    assert_int_equal(n, expect);
    assert_int_equal((size_t)n, g.n);
    return g;
}

typedef struct bd_deads {
    colony__bid id[64], original[64];
    char reason[64][24], error[64][64], stream[64][32], group[64][32];
    uint64_t count[64], time_ms[64];
    int value[64];
    size_t n;
} bd_deads;

static inline int bd_dead_collect(void *ud, const colony__bdead *e)
{
    bd_deads *d = ud;
    size_t i = d->n++;
    d->id[i] = e->id;
    d->original[i] = e->original;
    snprintf(d->reason[i], sizeof(d->reason[i]), "%.*s", (int)e->reason_len, e->reason);
    snprintf(d->error[i], sizeof(d->error[i]), "%.*s", (int)e->error_len, e->error);
    snprintf(d->stream[i], sizeof(d->stream[i]), "%.*s", (int)e->stream_len, e->stream);
    snprintf(d->group[i], sizeof(d->group[i]), "%.*s", (int)e->group_len, e->group);
    d->count[i] = e->count;
    d->time_ms[i] = e->time_ms;
    assert_int_equal(e->n, 2);
    char v[32] = "";
    memcpy(v, e->strs[1].data, e->strs[1].len < 31 ? e->strs[1].len : 31);
    d->value[i] = atoi(v + 1);
    return 0;
}

static inline bd_deads bd_dead(const char *dlq)
{
    bd_deads d;
    memset(&d, 0, sizeof(d));
    long n = colony__bdelivery_dead_list(bd, dlq, bs_min, bs_max, 0, bd_dead_collect, &d);
    if (n == COLONY_ENOENT) return d;
    assert_int_equal((size_t)n, d.n);
    return d;
}

static inline void bd_advance(uint64_t ms)
{
    colony_fake_clock_advance(&bs_clock, ms);
}

#endif
