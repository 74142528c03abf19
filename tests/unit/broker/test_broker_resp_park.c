/* Replies parked until the write is durable (src/broker/conn.c's tickets,
 * cmd_stream.c's XADD), over socketpairs with a real store and group commit:
 * nothing of an XADD's reply, nor of the replies pipelined after it, reaches
 * the client before the commit calls back; then all of them, in order; QUIT
 * after a parked reply closes only once it is sent; a client that goes away
 * while its commit is in flight leaks nothing and the server's close waits
 * for that commit. */
#include "broker_store_fixture.h"
#include <sys/socket.h>
#include <unistd.h>
#include "core/alloc.h"
#include "broker/conn.h"

static uv_loop_t loop;
static colony__broker_resp srv;
static colony__bstore *store;
static colony__bcommit *commit;
static char dir[64];
static int closed_called;

static void on_closed(void *ud)
{
    (void)ud;
    closed_called++;
}

static void setup_srv(void)
{
    assert_int_equal(uv_loop_init(&loop), 0);
    colony__broker_settings s = {.limits = {.max_bulk = 1 << 20, .max_args = 1000},
                                 .max_query_buffer = 4 << 20,
                                 .output_limit = 1 << 20,
                                 .pubsub_limit = 1 << 20,
                                 .max_clients = 100,
                                 .requirepass = ""};
    colony__broker_resp_init(&srv, &loop, &s);
    bs_tmpdir(dir, sizeof(dir));
    colony__bstore_options o = bs_options(dir);
    store = bs_open_with(&o);
    assert_int_equal(colony__bcommit_new(&commit, &loop, COLONY__BSYNC_ALWAYS, 0), 0);
    srv.store = store;
    srv.commit = commit;
    closed_called = 0;
}

static void teardown_srv(void)
{
    colony__broker_resp_close(&srv, on_closed, NULL);
    for (int i = 0; i < 2000 && !closed_called; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        if (!closed_called) usleep(1000);
    }
    assert_int_equal(closed_called, 1);
    assert_int_equal(srv.commits_inflight, 0);
    assert_true(colony__bcommit_idle(commit));
    colony__bcommit_close(commit);
    colony__bstore_close(store);
    colony_test_loop_close(&loop);
    bs_rmtree(dir);
}

typedef struct tclient {
    colony__broker_client *c;
    int peer;
} tclient;

static tclient new_client(void)
{
    tclient t = {NULL, -1};
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    t.peer = sv[1];
    colony__broker_client *c = colony__calloc(1, sizeof(*c));
    assert_non_null(c);
    assert_int_equal(uv_tcp_init(&loop, &c->tcp), 0);
    assert_int_equal(uv_tcp_open(&c->tcp, sv[0]), 0);
    assert_int_equal(colony__broker_client_start(&srv, c), 0);
    t.c = c;
    return t;
}

/* Turns the loop once at a time until the server has run n commands in all. */
static void run_until_processed(uint64_t n)
{
    for (int i = 0; i < 2000 && srv.stats.commands_processed < n; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        if (srv.stats.commands_processed < n) usleep(1000);
    }
    assert_true(srv.stats.commands_processed >= n);
}

/* What has arrived on the peer without turning the loop. */
static size_t peek(tclient *t)
{
    char buf[256];
    ssize_t r = recv(t->peer, buf, sizeof(buf), MSG_DONTWAIT | MSG_PEEK);
    return r > 0 ? (size_t)r : 0;
}

static const char *read_all(tclient *t, size_t want)
{
    static char got[4096];
    size_t n = 0;
    for (int i = 0; i < 2000 && n < want; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        ssize_t r = recv(t->peer, got + n, sizeof(got) - 1 - n, MSG_DONTWAIT);
        if (r == 0) {
            memcpy(got + n, "<EOF>", 5);
            n += 5;
            break;
        }
        if (r > 0)
            n += (size_t)r;
        else
            usleep(1000);
    }
    got[n] = '\0';
    return got;
}

static const char PIPELINE[] = "PING\r\nXADD s 1-1 f v\r\nPING\r\nXLEN s\r\nXADD s 2-1 f v\r\n"
                               "XRANGE s 2 2\r\n";
static const char REPLIES[] = "+PONG\r\n$3\r\n1-1\r\n+PONG\r\n:1\r\n$3\r\n2-1\r\n"
                              "*1\r\n*2\r\n$3\r\n2-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n";

static void replies_wait_for_the_commit(void **state)
{
    (void)state;
    setup_srv();
    tclient a = new_client();
    assert_int_equal(send(a.peer, PIPELINE, strlen(PIPELINE), 0), (ssize_t)strlen(PIPELINE));
    run_until_processed(6);
    /* the commands ran and the entries are in the store, but the fsync runs
     * on the thread pool and its callback comes in a later turn of the loop:
     * only the PING before the first XADD is out */
    assert_int_equal(peek(&a), strlen("+PONG\r\n"));
    assert_true(a.c->parked.len > 0);
    assert_string_equal(read_all(&a, strlen(REPLIES)), REPLIES);
    assert_true(colony__bcommit_fsyncs(commit) >= 1);
    close(a.peer);
    teardown_srv();
}

static void quit_after_a_parked_reply(void **state)
{
    (void)state;
    setup_srv();
    tclient a = new_client();
    const char *in = "XADD s 1-1 f v\r\nQUIT\r\n";
    assert_int_equal(send(a.peer, in, strlen(in), 0), (ssize_t)strlen(in));
    assert_string_equal(read_all(&a, 100), "$3\r\n1-1\r\n+OK\r\n<EOF>");
    close(a.peer);
    teardown_srv();
}

static void client_gone_while_its_commit_runs(void **state)
{
    (void)state;
    setup_srv();
    tclient a = new_client();
    tclient b = new_client();
    const char *in = "XADD s 1-1 f v\r\nXADD t 2-1 f v\r\n";
    assert_int_equal(send(a.peer, in, strlen(in), 0), (ssize_t)strlen(in));
    run_until_processed(2);
    assert_int_equal(srv.commits_inflight, 2); /* two streams: two tickets */
    colony__broker_client_close(a.c);          /* its tickets outlive it */
    close(a.peer);
    /* the entries stay (they were written); another client sees them once
     * its own reply is not held back by anything */
    const char *q = "XLEN s\r\nXLEN t\r\n";
    assert_int_equal(send(b.peer, q, strlen(q), 0), (ssize_t)strlen(q));
    assert_string_equal(read_all(&b, 8), ":1\r\n:1\r\n");
    close(b.peer);
    teardown_srv(); /* waits for the commits; LeakSanitizer checks the tickets */
}

/* XADDs to one stream read together share one ticket and one commit wait
 * (cmd_stream.c's open wait): 32 pipelined XADDs are one commit in flight,
 * not 32, and one fdatasync; their replies still wait for it and come in
 * order. A command that does not join (PING, DEL) hands the open wait over
 * first, so DEL cannot free a stream a wait still points at. */
static void pipelined_xadds_share_one_commit(void **state)
{
    (void)state;
    setup_srv();
    tclient a = new_client();
    char in[2048], want[1024];
    size_t n = 0, w = 0;
    for (int i = 1; i <= 32; i++) {
        n += (size_t)snprintf(in + n, sizeof(in) - n, "XADD s %d-1 f v\r\n", i);
        char id[16];
        int len = snprintf(id, sizeof(id), "%d-1", i);
        w += (size_t)snprintf(want + w, sizeof(want) - w, "$%d\r\n%s\r\n", len, id);
    }
    n += (size_t)snprintf(in + n, sizeof(in) - n, "PING\r\n");
    w += (size_t)snprintf(want + w, sizeof(want) - w, "+PONG\r\n");
    assert_int_equal(send(a.peer, in, n, 0), (ssize_t)n);
    run_until_processed(33);
    assert_int_equal(srv.commits_inflight, 1);
    assert_int_equal(peek(&a), 0); /* all parked behind the one ticket */
    assert_string_equal(read_all(&a, w), want);
    assert_int_equal(colony__bcommit_fsyncs(commit), 1);

    /* DEL between XADDs of s: the first wait is handed over before DEL runs */
    const char *in2 = "XADD s 40-1 f v\r\nXADD s 41-1 f v\r\nDEL s\r\nXADD s 1-1 f v\r\n"
                      "XADD u 1-1 f v\r\nXLEN s\r\n";
    const char *want2 = "$4\r\n40-1\r\n$4\r\n41-1\r\n:1\r\n$3\r\n1-1\r\n$3\r\n1-1\r\n:1\r\n";
    assert_int_equal(send(a.peer, in2, strlen(in2), 0), (ssize_t)strlen(in2));
    run_until_processed(33 + 6);
    assert_int_equal(srv.commits_inflight, 3); /* s before DEL, s after it, u */
    assert_string_equal(read_all(&a, strlen(want2)), want2);
    close(a.peer);
    teardown_srv();
}

/* Reads until the reply holds "PONG\r\n" or the connection ends. */
static const char *read_to_pong(tclient *t)
{
    static char got[4096];
    size_t n = 0;
    got[0] = '\0';
    for (int i = 0; i < 2000 && !strstr(got, "PONG\r\n"); i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        ssize_t r = recv(t->peer, got + n, sizeof(got) - 1 - n, MSG_DONTWAIT);
        if (r == 0) {
            memcpy(got + n, "<EOF>", 6);
            return got;
        }
        if (r > 0) {
            n += (size_t)r;
            got[n] = '\0';
        } else {
            usleep(500);
        }
    }
    return got;
}

/* XADD to a new stream, then PING, with allocation n failing: the client
 * gets both replies, an error then PONG, or is closed; nothing leaks and
 * the server's close finds no commit in flight. */
static void allocation_failures_are_handled(void **state)
{
    (void)state;
    int clean = 0;
    for (long n = 0; n < 600 && !clean; n++) {
        setup_srv();
        tclient a = new_client();
        colony__alloc_fail_once_after(n);
        const char *in = "XADD s 1-1 f v\r\nPING\r\n";
        (void)send(a.peer, in, strlen(in), MSG_NOSIGNAL);
        const char *r = read_to_pong(&a);
        if (colony__alloc_failures() == 0) {
            assert_string_equal(r, "$3\r\n1-1\r\n+PONG\r\n");
            clean = 1;
            print_message("clean after %ld allocations failed one at a time\n", n);
        } else {
            assert_true(strstr(r, "PONG\r\n") || strstr(r, "<EOF>"));
        }
        colony__alloc_fail_reset();
        close(a.peer);
        teardown_srv();
    }
    assert_true(clean);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(replies_wait_for_the_commit),
        cmocka_unit_test(quit_after_a_parked_reply),
        cmocka_unit_test(client_gone_while_its_commit_runs),
        cmocka_unit_test(pipelined_xadds_share_one_commit),
        cmocka_unit_test(allocation_failures_are_handled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
