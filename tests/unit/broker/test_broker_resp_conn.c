/* RESP connections end to end over socketpairs (src/broker/conn.c,
 * commands.c, pubsub.c): pipelined replies in order, pub/sub between
 * clients with PUBLISH's counts, a protocol error closing after its reply,
 * and every allocation failure during a pub/sub exchange handled: the client
 * concerned is closed, nothing leaks, the channel tables end empty. */
#include "test_support.h"
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "broker/conn.h"

static uv_loop_t loop;
static colony__broker_resp srv;
static int closed_called;

typedef struct tclient {
    colony__broker_client *c;
    int peer;
} tclient;

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
    closed_called = 0;
}

static void on_closed(void *ud)
{
    (void)ud;
    closed_called++;
}

static void teardown_srv(void)
{
    colony__broker_resp_close(&srv, on_closed, NULL);
    for (int i = 0; i < 100 && !closed_called; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(closed_called, 1);
    assert_int_equal(srv.nclients, 0);
    colony_test_loop_close(&loop);
}

/* A client whose other end is a socketpair the test reads and writes; NULL
 * c when the allocation failed. */
static tclient new_client(void)
{
    tclient t = {NULL, -1};
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    t.peer = sv[1];
    colony__broker_client *c = colony__calloc(1, sizeof(*c));
    if (!c) {
        close(sv[0]);
        return t;
    }
    assert_int_equal(uv_tcp_init(&loop, &c->tcp), 0);
    assert_int_equal(uv_tcp_open(&c->tcp, sv[0]), 0);
    if (colony__broker_client_start(&srv, c)) colony__broker_client_close(c);
    t.c = c;
    return t;
}

/* Sends in, runs the loop, and returns what came back within ~1 s once it
 * is at least `want` bytes long (or the connection ended: "<EOF>" added). */
static char *exchange(tclient *t, const char *in, size_t want)
{
    static char got[65536];
    size_t n = 0;
    /* a client closed by a failed allocation no longer reads: no SIGPIPE */
    if (*in) (void)send(t->peer, in, strlen(in), MSG_NOSIGNAL);
    for (int i = 0; i < 1000 && n < want; i++) {
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

static void drop(tclient *t)
{
    close(t->peer);
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
}

static void pipelined_replies_in_order(void **state)
{
    (void)state;
    setup_srv();
    tclient a = new_client();
    const char *want = "+PONG\r\n$1\r\nx\r\n$2\r\nhi\r\n+OK\r\n$3\r\nabc\r\n";
    assert_string_equal(exchange(&a,
                                 "PING\r\n*2\r\n$4\r\nECHO\r\n$1\r\nx\r\nping hi\r\n"
                                 "client setname abc\r\nclient getname\r\n",
                                 strlen(want)),
                        want);
    drop(&a);
    teardown_srv();
}

/* A client that pipelines 4 MiB of replies before reading any: reading it
 * pauses at half its 1 MiB output limit unsent (it is not cut off) and
 * resumes once they drain; every reply arrives, in order. The test sends
 * and reads without blocking, turning the loop. */
static void pause_and_resume_keep_order(void **state)
{
    (void)state;
    setup_srv();
    tclient a = new_client();
    enum { N = 400, LEN = 10000 };
    char cmd[LEN + 64];
    int h = snprintf(cmd, sizeof(cmd), "*2\r\n$4\r\nECHO\r\n$%d\r\n", LEN);
    size_t clen = (size_t)h + LEN + 2;
    size_t rlen = (size_t)snprintf(NULL, 0, "$%d\r\n", LEN) + LEN + 2;
    char *reply = colony__malloc(N * rlen);
    assert_non_null(reply);
    size_t sent = 0, got = 0;
    int paused_seen = 0;
    for (int i = 0; i < 200000 && got < N * rlen; i++) {
        if (sent < N * clen) {
            size_t k = sent % clen;
            int idx = (int)(sent / clen);
            int m = snprintf(cmd, sizeof(cmd), "*2\r\n$4\r\nECHO\r\n$%d\r\n", LEN);
            memset(cmd + m, 'a' + idx % 26, LEN);
            memcpy(cmd + m + LEN, "\r\n", 2);
            ssize_t w = send(a.peer, cmd + k, clen - k, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0) sent += (size_t)w;
        }
        uv_run(&loop, UV_RUN_NOWAIT);
        paused_seen |= a.c->paused;
        /* no reading until the broker has paused: the replies pile up */
        if (paused_seen || sent == N * clen) {
            ssize_t r = recv(a.peer, reply + got, N * rlen - got, MSG_DONTWAIT);
            if (r > 0) got += (size_t)r;
        }
    }
    assert_int_equal(got, N * rlen);
    assert_true(paused_seen);
    for (int i = 0; i < N; i++) {
        const char *r = reply + (size_t)i * rlen;
        assert_int_equal(r[rlen - 3], 'a' + i % 26);
        assert_memory_equal(r + rlen - 2, "\r\n", 2);
    }
    colony__free(reply);
    drop(&a);
    teardown_srv();
}

static void publish_reaches_subscribers(void **state)
{
    (void)state;
    setup_srv();
    tclient a = new_client(), b = new_client(), p = new_client();
    const char *sa = "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n";
    assert_string_equal(exchange(&a, "SUBSCRIBE news\r\n", strlen(sa)), sa);
    const char *sb = "*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:1\r\n";
    assert_string_equal(exchange(&b, "PSUBSCRIBE n*\r\n", strlen(sb)), sb);
    assert_string_equal(exchange(&p, "PUBLISH news hi\r\nPUBLISH other x\r\n", 8), ":2\r\n:0\r\n");
    const char *ma = "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n";
    assert_string_equal(exchange(&a, "", strlen(ma)), ma);
    const char *mb = "*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n";
    assert_string_equal(exchange(&b, "", strlen(mb)), mb);
    /* a subscriber that leaves is no longer counted */
    drop(&a);
    assert_string_equal(exchange(&p, "PUBLISH news hi\r\nPUBSUB NUMSUB news\r\n", 20),
                        ":1\r\n*2\r\n$4\r\nnews\r\n:0\r\n");
    drop(&b);
    drop(&p);
    assert_int_equal(srv.pubsub.channels.count, 0);
    assert_int_equal(srv.pubsub.patterns.count, 0);
    teardown_srv();
}

static void protocol_error_closes_after_reply(void **state)
{
    (void)state;
    setup_srv();
    tclient a = new_client();
    const char *want = "+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n<EOF>";
    assert_string_equal(exchange(&a, "PING\r\n*x\r\nPING\r\n", strlen(want)), want);
    drop(&a);
    teardown_srv();
}

/* The pub/sub exchange of publish_reaches_subscribers with allocation n
 * failing: whichever client hit it is closed; no leak, tables end empty. */
static void allocation_failures_close_the_client(void **state)
{
    (void)state;
    int clean = 0;
    for (long n = 0; n < 400 && !clean; n++) {
        setup_srv();
        colony__alloc_fail_once_after(n);
        tclient a = new_client(), b = new_client(), p = new_client();
        char *r = exchange(&a, "SUBSCRIBE news other\r\n", 10);
        int ok = strstr(r, ":2\r\n") != NULL;
        r = exchange(&b, "PSUBSCRIBE n* o*\r\n", 10);
        ok = ok && strstr(r, ":2\r\n") != NULL;
        r = exchange(&p, "PUBLISH news hi\r\n", 4);
        ok = ok && strcmp(r, ":2\r\n") == 0;
        r = exchange(&a, "UNSUBSCRIBE\r\n", 20);
        r = exchange(&b, "PUNSUBSCRIBE\r\n", 20);
        if (colony__alloc_failures() == 0) {
            assert_true(ok);
            clean = 1;
        }
        colony__alloc_fail_reset();
        drop(&a);
        drop(&b);
        drop(&p);
        assert_int_equal(srv.pubsub.channels.count, 0);
        assert_int_equal(srv.pubsub.patterns.count, 0);
        assert_int_equal(srv.pubsub.npattern_subs, 0);
        teardown_srv();
    }
    assert_true(clean);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pipelined_replies_in_order),
        cmocka_unit_test(pause_and_resume_keep_order),
        cmocka_unit_test(publish_reaches_subscribers),
        cmocka_unit_test(protocol_error_closes_after_reply),
        cmocka_unit_test(allocation_failures_close_the_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
