/* kill -9 during a burst of acknowledged appends and deliveries: a child
 * appends entries and records each delivery in a group, both acknowledged
 * through colony__bcommit (fsync: always), and reports each id on a pipe only
 * from the ack callback; the parent kills it mid-burst, reopens the store and
 * finds every acknowledged entry and its pending delivery. */
#include "broker_store_fixture.h"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include "colony/log.h"

#define IN_FLIGHT  64
#define KILL_AFTER 3000

static char dir[64];

typedef struct child {
    uv_loop_t loop;
    uv_idle_t idle;
    colony__bstore *store;
    colony__bstream *st;
    colony__bgroup *g;
    colony__bcommit *commit;
    int out_fd;
    int in_flight;
} child;

typedef struct wait_ctx {
    child *c;
    colony__bid id;
} wait_ctx;

static void on_durable(void *ud, int err)
{
    wait_ctx *w = ud;
    if (err) _exit(3);
    uint64_t msg[2] = {w->id.ms, w->id.seq};
    if (write(w->c->out_fd, msg, sizeof(msg)) != (ssize_t)sizeof(msg)) _exit(4);
    w->c->in_flight--;
    free(w);
}

static void on_idle(uv_idle_t *h)
{
    child *c = h->data;
    char body[1024];
    memset(body, 'x', sizeof(body));
    colony__bstr f[2] = {{"body", 4}, {body, sizeof(body)}};
    while (c->in_flight < IN_FLIGHT) {
        wait_ctx *w = malloc(sizeof(*w));
        w->c = c;
        if (colony__bstream_append(c->st, COLONY__BID_AUTO, bs_min, f, 2, &w->id)) _exit(5);
        if (colony__bgroup_deliver(c->g, "worker", w->id, 0)) _exit(6);
        if (colony__bcommit_wait(c->commit, c->st, on_durable, w)) _exit(7);
        c->in_flight++;
    }
}

static void run_child(int out_fd)
{
    child c = {0};
    c.out_fd = out_fd;
    colony__bstore_options o = {0};
    o.dir = dir;
    o.segment_bytes = 256 * 1024; /* roll-overs during the burst */
    char msg[256];
    if (uv_loop_init(&c.loop) || colony__bstore_open(&c.store, &o, msg, sizeof(msg))) _exit(1);
    if (colony__bstore_create(c.store, "orders", &c.st) ||
        colony__bgroup_create(c.st, "g", bs_min, &c.g) ||
        colony__bcommit_new(&c.commit, &c.loop, COLONY__BSYNC_ALWAYS, 0))
        _exit(2);
    uv_idle_init(&c.loop, &c.idle);
    c.idle.data = &c;
    uv_idle_start(&c.idle, on_idle);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    _exit(0);
}

static void kill_mid_burst_keeps_every_ack(void **state)
{
    (void)state;
    bs_tmpdir(dir, sizeof(dir));
    colony_log_set_level(COLONY_LOG_ERROR + 1);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        run_child(fds[1]);
    }
    close(fds[1]);
    static uint64_t acked[KILL_AFTER * 4][2];
    size_t n = 0;
    uint64_t start = colony_test_now_ms();
    while (n < KILL_AFTER && colony_test_now_ms() - start < 40000) {
        ssize_t k = read(fds[0], acked[n], sizeof(acked[n]));
        if (k <= 0) break;
        assert_int_equal(k, (ssize_t)sizeof(acked[n]));
        n++;
    }
    kill(pid, SIGKILL);
    /* acks already in the pipe when the child died count too */
    for (;;) {
        ssize_t k = read(fds[0], acked[n], sizeof(acked[n]));
        if (k <= 0 || n + 1 >= KILL_AFTER * 4) break;
        n++;
    }
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status)); /* it was killed mid-burst, not finished */
    assert_true(n >= 100);

    colony__bstore_options o = bs_options(dir);
    o.segment_bytes = 256 * 1024;
    colony__bstore *s = bs_open_with(&o);
    colony__bstream *st = colony__bstore_get(s, "orders");
    assert_non_null(st);
    colony__bgroup *g = colony__bgroup_get(st, "g");
    assert_non_null(g);
    static bs_ids found;
    for (size_t i = 0; i < n; i++) {
        colony__bid id = {acked[i][0], acked[i][1]};
        found.n = 0;
        assert_int_equal(colony__bstream_range(st, id, id, 0, 0, bs_count_only, &found), 1);
        const colony__bpending *p = colony__bgroup_pending(g, id);
        assert_non_null(p);
        assert_string_equal(p->consumer, "worker");
        assert_int_equal(p->count, 1);
    }
    colony__bstream_info info;
    colony__bstream_info_get(st, &info);
    assert_true(info.length >= n);
    assert_true(info.segments > 1);
    print_message("acked before kill -9: %zu, entries after reopen: %llu\n", n,
                  (unsigned long long)info.length);
    colony__bstore_close(s);
    bs_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kill_mid_burst_keeps_every_ack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
