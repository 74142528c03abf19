/* kill -9 between nack and reopen: a child publishes, delivers and nacks
 * entries (with an error text and a long delay) through the delivery engine,
 * each acknowledged through colony__bcommit (fsync: always) and reported on a
 * pipe only from the durable callback. The parent kills it mid-burst,
 * reopens, and finds every reported nack: the entry pending with its count,
 * its due time, and its error text, which a dead-letter move then carries. */
#include "broker_delivery_fixture.h"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define IN_FLIGHT  16
#define KILL_AFTER 400
#define NACK_DELAY 3600000

static char dir[64];

typedef struct child {
    uv_loop_t loop;
    uv_idle_t idle;
    colony__bstore *store;
    colony__bdelivery *d;
    colony__bcommit *commit;
    int out_fd, in_flight;
    uint64_t seq;
} child;

typedef struct wait_ctx {
    child *c;
    colony__bid id;
    uint64_t i;
} wait_ctx;

static int keep_id(void *ud, const colony__bdelivered *e)
{
    *(colony__bid *)ud = e->id;
    return 0;
}

static void on_durable(void *ud, int err)
{
    wait_ctx *w = ud;
    if (err) _exit(3);
    uint64_t msg[3] = {w->id.ms, w->id.seq, w->i};
    if (write(w->c->out_fd, msg, sizeof(msg)) != (ssize_t)sizeof(msg)) _exit(4);
    w->c->in_flight--;
    free(w);
}

static void on_idle(uv_idle_t *h)
{
    child *c = h->data;
    while (c->in_flight < IN_FLIGHT) {
        wait_ctx *w = calloc(1, sizeof(*w));
        w->c = c;
        w->i = c->seq++;
        char v[32], err[32];
        snprintf(v, sizeof(v), "v%llu", (unsigned long long)w->i);
        snprintf(err, sizeof(err), "error %llu", (unsigned long long)w->i);
        colony__bstr f[2] = {{"k", 1}, {v, strlen(v)}};
        colony__bpublish m = {.strs = f, .n = 2, .deliver_at_ms = 0, .ttl_ms = 0};
        colony__bid id;
        if (colony__bdelivery_publish(c->d, "jobs", &m, &id)) _exit(5);
        if (colony__bdelivery_next(c->d, "jobs", "g", "worker", 1, keep_id, &w->id) != 1) _exit(6);
        if (colony__bid_cmp(id, w->id)) _exit(7);
        if (colony__bdelivery_nack(c->d, "jobs", "g", id, NACK_DELAY, err, strlen(err), 0))
            _exit(8);
        if (colony__bcommit_wait(c->commit, colony__bstore_get(c->store, "jobs"), on_durable, w))
            _exit(9);
        c->in_flight++;
    }
}

static void run_child(int out_fd)
{
    child c = {0};
    c.out_fd = out_fd;
    colony__bstore_options o = {0};
    o.dir = dir;
    char msg[256];
    if (uv_loop_init(&c.loop) || colony__bstore_open(&c.store, &o, msg, sizeof(msg))) _exit(1);
    colony__bdelivery_options d = {0};
    d.store = c.store;
    if (colony__bcommit_new(&c.commit, &c.loop, COLONY__BSYNC_ALWAYS, 0)) _exit(2);
    d.commit = c.commit;
    if (colony__bdelivery_open(&c.d, &d)) _exit(2);
    uv_idle_init(&c.loop, &c.idle);
    c.idle.data = &c;
    uv_idle_start(&c.idle, on_idle);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    _exit(0);
}

static void kill_between_nack_and_reopen_keeps_count_and_error(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/colony-bdcrash-XXXXXX");
    assert_non_null(mkdtemp(dir));
    colony_log_set_level(COLONY_LOG_ERROR + 1);
    static uint64_t acked[KILL_AFTER * 8][3];
    size_t n = bs_crash_run(run_child, acked, KILL_AFTER * 8, KILL_AFTER);
    assert_true(n >= 50);

    colony__bstore_options o = {0};
    o.dir = dir;
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st = colony__bstore_get(s, "jobs");
    assert_non_null(st);
    colony__bgroup *g = colony__bgroup_get(st, "g");
    assert_non_null(g);
    for (size_t i = 0; i < n; i++) {
        colony__bid id = {acked[i][0], acked[i][1]};
        const colony__bpending *p = colony__bgroup_pending(g, id);
        assert_non_null(p);
        assert_string_equal(p->consumer, "worker");
        assert_int_equal(p->count, 1);
        assert_true(p->due_ms >= p->last_ms + NACK_DELAY);
        char want[32];
        snprintf(want, sizeof(want), "error %llu", (unsigned long long)acked[i][2]);
        colony__bstr err;
        assert_int_equal(colony__bnote_get(st, "g", id, &err), 0);
        assert_int_equal(err.len, strlen(want));
        assert_memory_equal(err.data, want, err.len);
    }
    /* the error text reaches the dead letter after the restart */
    colony__bdelivery *d;
    colony__bdelivery_options dopt = {0};
    dopt.store = s;
    assert_int_equal(colony__bdelivery_open(&d, &dopt), 0);
    colony__bid first = {acked[0][0], acked[0][1]};
    assert_int_equal(colony__bdelivery_nack(d, "jobs", "g", first, 0, NULL, 0, 1), 0);
    bd = d;
    bd_deads dl = bd_dead("dlq:jobs:g");
    bd = NULL;
    assert_int_equal(dl.n, 1);
    char want0[32];
    snprintf(want0, sizeof(want0), "error %llu", (unsigned long long)acked[0][2]);
    assert_string_equal(dl.error[0], want0);
    assert_int_equal(dl.count[0], 1);
    print_message("before kill -9: %zu nacks acknowledged, all found after reopen\n", n);
    colony__bdelivery_close(d);
    colony__bstore_close(s);
    bs_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kill_between_nack_and_reopen_keeps_count_and_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
