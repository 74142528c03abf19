/* RESP PUBLISH into bound streams (src/broker/topic/resp_publish.c, the hook
 * in pubsub.c), over a socketpair with a real store and group commit: the
 * reply (Redis's receiver count) waits for the bound streams' fsync, the
 * entry's fields are channel/message, a full stream gives an error naming
 * it, and a channel with no binding replies at once as Redis does. The
 * daemon does not load bindings yet (broker.c is the HTTP engineer's), so
 * this is a unit test of the path, not an integration test. */
#include "broker_delivery_fixture.h"
#include <sys/socket.h>
#include <unistd.h>
#include "core/alloc.h"
#include "broker/conn.h"

static uv_loop_t loop;
static colony__broker_resp srv;
static colony__bcommit *commit;
static colony__btopics *topics;
static int closed_called;

static void on_closed(void *ud)
{
    (void)ud;
    closed_called++;
}

static int setup(void **state)
{
    bd_setup(state);
    assert_int_equal(uv_loop_init(&loop), 0);
    colony__broker_settings s = {.limits = {.max_bulk = 1 << 20, .max_args = 1000},
                                 .max_query_buffer = 4 << 20,
                                 .output_limit = 1 << 20,
                                 .pubsub_limit = 1 << 20,
                                 .max_clients = 100,
                                 .requirepass = ""};
    colony__broker_resp_init(&srv, &loop, &s);
    assert_int_equal(colony__bcommit_new(&commit, &loop, COLONY__BSYNC_ALWAYS, 0), 0);
    char path[128], msg[256];
    snprintf(path, sizeof(path), "%s/bindings", bd_dir);
    assert_int_equal(colony__btopics_open(&topics, path, msg, sizeof(msg)), 0);
    srv.store = bd_store;
    srv.commit = commit;
    srv.topics = topics;
    srv.delivery = bd;
    closed_called = 0;
    return 0;
}

static int teardown(void **state)
{
    colony__broker_resp_close(&srv, on_closed, NULL);
    for (int i = 0; i < 2000 && !closed_called; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        if (!closed_called) usleep(1000);
    }
    assert_int_equal(closed_called, 1);
    assert_int_equal(srv.commits_inflight, 0);
    colony__bcommit_close(commit);
    colony__btopics_close(topics);
    colony_test_loop_close(&loop);
    return bd_teardown(state);
}

static int new_client(void)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    colony__broker_client *c = colony__calloc(1, sizeof(*c));
    assert_non_null(c);
    assert_int_equal(uv_tcp_init(&loop, &c->tcp), 0);
    assert_int_equal(uv_tcp_open(&c->tcp, sv[0]), 0);
    assert_int_equal(colony__broker_client_start(&srv, c), 0);
    return sv[1];
}

static void run_until_processed(uint64_t n)
{
    for (int i = 0; i < 2000 && srv.stats.commands_processed < n; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        if (srv.stats.commands_processed < n) usleep(1000);
    }
    assert_true(srv.stats.commands_processed >= n);
}

static size_t peek(int peer)
{
    char buf[256];
    ssize_t r = recv(peer, buf, sizeof(buf), MSG_DONTWAIT | MSG_PEEK);
    return r > 0 ? (size_t)r : 0;
}

static const char *read_all(int peer, size_t want)
{
    static char got[4096];
    size_t n = 0;
    for (int i = 0; i < 2000 && n < want; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        ssize_t r = recv(peer, got + n, sizeof(got) - 1 - n, MSG_DONTWAIT);
        if (r > 0)
            n += (size_t)r;
        else
            usleep(1000);
    }
    got[n] = '\0';
    return got;
}

typedef struct fields {
    char s[4][32];
    size_t n, entries;
} fields;

static int keep_fields(void *ud, const colony__bentry *e)
{
    fields *f = ud;
    f->entries++;
    f->n = e->n;
    for (size_t i = 0; i < e->n && i < 4; i++)
        snprintf(f->s[i], sizeof(f->s[i]), "%.*s", (int)e->strs[i].len, e->strs[i].data);
    return 0;
}

static void publish_waits_for_bound_streams(void **state)
{
    (void)state;
    assert_int_equal(colony__btopics_bind(topics, "order.*", 7, "audit"), 0);
    assert_int_equal(colony__btopics_bind(topics, "order.created", 13, "billing"), 0);
    int peer = new_client();
    const char *in = "PUBLISH order.created hello\r\nPING\r\n";
    assert_int_equal(send(peer, in, strlen(in), 0), (ssize_t)strlen(in));
    run_until_processed(2);
    assert_int_equal(peek(peer), 0); /* the fsync has not called back yet */
    assert_string_equal(read_all(peer, 11), ":0\r\n+PONG\r\n");
    const char *names[2] = {"audit", "billing"};
    for (int i = 0; i < 2; i++) {
        fields f = {0};
        colony__bstream *st = colony__bstore_get(bd_store, names[i]);
        assert_non_null(st);
        assert_int_equal(colony__bstream_range(st, bs_min, bs_max, 0, 0, keep_fields, &f), 1);
        assert_int_equal(f.n, 4);
        assert_string_equal(f.s[0], "channel");
        assert_string_equal(f.s[1], "order.created");
        assert_string_equal(f.s[2], "message");
        assert_string_equal(f.s[3], "hello");
    }
    /* no binding for this channel: Redis's reply at once, nothing stored */
    in = "PUBLISH user.x hi\r\n";
    assert_int_equal(send(peer, in, strlen(in), 0), (ssize_t)strlen(in));
    run_until_processed(3);
    assert_string_equal(read_all(peer, 4), ":0\r\n");
    assert_null(colony__bstore_get(bd_store, "user.x"));
    close(peer);
}

static void full_bound_stream_is_an_error(void **state)
{
    (void)state;
    assert_int_equal(colony__btopics_bind(topics, "jobs", 4, "jobs"), 0);
    bd_pub("jobs", 1, 0, 0);
    colony__bstream_policy sp;
    colony__bstream_policy_default(&sp);
    sp.max_len = 1;
    sp.overflow = COLONY__BOVERFLOW_REJECT;
    assert_int_equal(colony__bdelivery_stream_policy_set(bd, "jobs", &sp), 0);
    int peer = new_client();
    const char *in = "PUBLISH jobs x\r\n";
    assert_int_equal(send(peer, in, strlen(in), 0), (ssize_t)strlen(in));
    run_until_processed(1);
    const char *want = "-ERR message not stored in stream 'jobs' bound to this channel: stream "
                       "full\r\n";
    assert_string_equal(read_all(peer, strlen(want)), want);
    close(peer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(publish_waits_for_bound_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(full_bound_stream_is_an_error, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
