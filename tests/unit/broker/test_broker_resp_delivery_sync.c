/* XREADGROUP's delivery records and the commit (cmd_xread.c serve_group,
 * docs/broker.md "Delivery records"), over socketpairs with a real store and
 * group commit: new entries that are durable go out at once, without a
 * commit of their own; a history read (a redelivery: its count goes up)
 * and a read of entries not durable yet wait for theirs. A power loss is
 * simulated by cutting the group journal back to its size when the last
 * commit called back (kill -9 keeps the page cache, so it cannot lose an
 * unsynced record): the entry whose first delivery was not synced comes back
 * undelivered (one delivery uncounted, never lost), and a redelivery's count
 * is never lost. A plain XREAD that would show an entry past the stream's
 * durable top holds its reply until that entry is durable. */
#include "broker_store_fixture.h"
#include <sys/socket.h>
#include <unistd.h>
#include "core/alloc.h"
#include "broker/conn.h"
#include "broker/store/stream.h"
#include "colony/log.h"

static uv_loop_t loop;
static colony__broker_resp srv;
static colony__bstore *store;
static colony__bcommit *commit;
static int closed_called;

static void on_closed(void *ud)
{
    (void)ud;
    closed_called++;
}

/* A server on the store in bs_dir (kept across restarts of the server). */
static void start_srv(void)
{
    assert_int_equal(uv_loop_init(&loop), 0);
    colony__broker_settings s = {.limits = {.max_bulk = 1 << 20, .max_args = 1000},
                                 .max_query_buffer = 4 << 20,
                                 .output_limit = 1 << 20,
                                 .pubsub_limit = 1 << 20,
                                 .max_clients = 100,
                                 .requirepass = ""};
    colony__broker_resp_init(&srv, &loop, &s);
    colony__bstore_options o = bs_options(bs_dir);
    store = bs_open_with(&o);
    assert_int_equal(colony__bcommit_new(&commit, &loop, COLONY__BSYNC_ALWAYS, 0), 0);
    srv.store = store;
    srv.commit = commit;
    closed_called = 0;
}

static void stop_srv(void)
{
    colony__broker_resp_close(&srv, on_closed, NULL);
    for (int i = 0; i < 2000 && !closed_called; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        if (!closed_called) usleep(1000);
    }
    assert_int_equal(closed_called, 1);
    assert_true(colony__bcommit_idle(commit));
    colony__bcommit_close(commit);
    colony__bstore_close(store);
    colony_test_loop_close(&loop);
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

static void send_str(tclient *t, const char *s)
{
    assert_int_equal(send(t->peer, s, strlen(s), 0), (ssize_t)strlen(s));
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

/* What has arrived on the peer, without turning the loop (consumed). */
static const char *take_now(tclient *t)
{
    static char got[4096];
    ssize_t r = recv(t->peer, got, sizeof(got) - 1, MSG_DONTWAIT);
    got[r > 0 ? r : 0] = '\0';
    return got;
}

/* Turns the loop until want bytes arrived (or 2 s). */
static const char *read_all(tclient *t, size_t want)
{
    static char got[4096];
    size_t n = 0;
    for (int i = 0; i < 2000 && n < want; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        ssize_t r = recv(t->peer, got + n, sizeof(got) - 1 - n, MSG_DONTWAIT);
        if (r > 0)
            n += (size_t)r;
        else
            usleep(1000);
    }
    got[n] = '\0';
    return got;
}

#define ENTRY(id)    "*2\r\n$3\r\n" id "\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
#define READ_1(id)   "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n" ENTRY(id)
#define READ_2(a, b) "*1\r\n*2\r\n$1\r\ns\r\n*2\r\n" ENTRY(a) ENTRY(b)

static const char SETUP[] = "XGROUP CREATE s g 0 MKSTREAM\r\nXADD s 1-1 f v\r\nXADD s 2-1 f v\r\n";
static const char SETUP_REPLIES[] = "+OK\r\n$3\r\n1-1\r\n$3\r\n2-1\r\n";

/* The delivery count XPENDING gives for the only pending entry ("" if none). */
static const char *pending_count(tclient *t, uint64_t *processed)
{
    static char count[32];
    send_str(t, "XPENDING s g - + 10\r\n");
    run_until_processed(++*processed);
    const char *r = read_all(t, 4);
    if (strcmp(r, "*0\r\n") == 0) return "";
    const char *last = strrchr(r, ':');
    assert_non_null(last);
    snprintf(count, sizeof(count), "%s", last + 1);
    count[strcspn(count, "\r")] = '\0';
    return count;
}

static void durable_new_entries_go_out_at_once(void **state)
{
    (void)state;
    start_srv();
    tclient a = new_client();
    send_str(&a, SETUP);
    assert_string_equal(read_all(&a, strlen(SETUP_REPLIES)), SETUP_REPLIES);
    /* the reply is on the socket once the command ran: no ticket, nothing parked */
    send_str(&a, "XREADGROUP GROUP g c STREAMS s >\r\n");
    run_until_processed(4);
    assert_int_equal(srv.commits_inflight, 0);
    assert_int_equal(a.c->parked.len, 0);
    assert_string_equal(take_now(&a), READ_2("1-1", "2-1"));
    /* a history read counts a redelivery: its reply waits for the commit */
    send_str(&a, "XREADGROUP GROUP g c STREAMS s 0\r\n");
    run_until_processed(5);
    assert_string_equal(take_now(&a), "");
    assert_true(a.c->parked.len > 0);
    assert_string_equal(read_all(&a, strlen(READ_2("1-1", "2-1"))), READ_2("1-1", "2-1"));
    close(a.peer);
    stop_srv();
}

static void entries_not_durable_yet_wait(void **state)
{
    (void)state;
    start_srv();
    tclient a = new_client();
    send_str(&a, "XGROUP CREATE s g 0 MKSTREAM\r\n");
    assert_string_equal(read_all(&a, 5), "+OK\r\n");
    /* both run in one turn of the loop, before the XADD's commit calls back:
     * the read gives the entry (Redis does) and takes a ticket of its own */
    send_str(&a, "XADD s 1-1 f v\r\nXREADGROUP GROUP g c STREAMS s >\r\n");
    run_until_processed(3);
    assert_int_equal(srv.commits_inflight, 2);
    const char *want = "$3\r\n1-1\r\n" READ_1("1-1");
    assert_string_equal(read_all(&a, strlen(want)), want);
    close(a.peer);
    stop_srv();
}

/* Cuts the stream's group journal back to `size` bytes: what a power loss
 * leaves of writes no fdatasync covered. */
static void lose_unsynced_journal(uint64_t size)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/streams/s/groups.jnl", bs_dir);
    assert_int_equal(truncate(path, (off_t)size), 0);
}

static uint64_t journal_size(void)
{
    colony__bstream *st = colony__bstore_get(store, "s");
    assert_non_null(st);
    return st->journal_bytes;
}

static void a_power_loss_uncounts_at_most_one_delivery(void **state)
{
    (void)state;
    start_srv();
    tclient a = new_client();
    send_str(&a, "XGROUP CREATE s g 0 MKSTREAM\r\nXADD s 1-1 f v\r\n");
    assert_string_equal(read_all(&a, 14), "+OK\r\n$3\r\n1-1\r\n");
    uint64_t processed = 2;
    uint64_t synced = journal_size(); /* the XADD's commit covered the journal */
    send_str(&a, "XREADGROUP GROUP g c STREAMS s >\r\n");
    run_until_processed(++processed);
    assert_string_equal(take_now(&a), READ_1("1-1"));
    assert_true(journal_size() > synced); /* the delivery, not synced */
    close(a.peer);
    stop_srv();

    lose_unsynced_journal(synced);
    start_srv();
    a = new_client();
    processed = 0;
    /* the delivery is gone: the entry is not pending and comes again as new */
    assert_string_equal(pending_count(&a, &processed), "");
    send_str(&a, "XREADGROUP GROUP g c STREAMS s >\r\n");
    run_until_processed(++processed);
    assert_string_equal(read_all(&a, strlen(READ_1("1-1"))), READ_1("1-1"));
    /* a redelivery waits for its commit, which covers the delivery before it */
    send_str(&a, "XREADGROUP GROUP g c STREAMS s 0\r\n");
    run_until_processed(++processed);
    assert_string_equal(take_now(&a), "");
    assert_string_equal(read_all(&a, strlen(READ_1("1-1"))), READ_1("1-1"));
    synced = journal_size();
    assert_string_equal(pending_count(&a, &processed), "2");
    close(a.peer);
    stop_srv();

    lose_unsynced_journal(synced);
    start_srv();
    a = new_client();
    processed = 0;
    assert_string_equal(pending_count(&a, &processed), "2");
    close(a.peer);
    stop_srv();
}

/* An entry written to the store without a commit wait (what an XADD of
 * another connection is until its commit calls back) is past the durable
 * top: an XREAD that reaches it holds its reply until a commit covers it. */
static void xread_never_shows_an_entry_not_durable(void **state)
{
    (void)state;
    start_srv();
    tclient a = new_client();
    send_str(&a, "XADD s 1-1 f v\r\n");
    assert_string_equal(read_all(&a, 9), "$3\r\n1-1\r\n");
    colony__bstream *st = colony__bstore_get(store, "s");
    assert_non_null(st);
    colony__bstr fv[2] = {{"f", 1}, {"v", 1}};
    colony__bid id;
    assert_int_equal(
        colony__bstream_append(st, COLONY__BID_EXPLICIT, (colony__bid){2, 1}, fv, 2, &id), 0);
    assert_true(colony__bid_cmp(colony__bcommit_durable_top(commit, st), id) < 0);
    /* the durable entry alone goes out at once */
    send_str(&a, "XREAD COUNT 1 STREAMS s 0\r\n");
    run_until_processed(2);
    assert_string_equal(take_now(&a), READ_1("1-1"));
    /* the one past the durable top: held until its commit */
    send_str(&a, "XREAD STREAMS s 1-1\r\n");
    run_until_processed(3);
    assert_string_equal(take_now(&a), "");
    assert_true(a.c->parked.len > 0);
    assert_string_equal(read_all(&a, strlen(READ_1("2-1"))), READ_1("2-1"));
    assert_true(colony__bid_cmp(colony__bcommit_durable_top(commit, st), id) >= 0);
    close(a.peer);
    stop_srv();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(durable_new_entries_go_out_at_once, bs_setup_1s,
                                        bs_teardown),
        cmocka_unit_test_setup_teardown(entries_not_durable_yet_wait, bs_setup_1s, bs_teardown),
        cmocka_unit_test_setup_teardown(a_power_loss_uncounts_at_most_one_delivery, bs_setup_1s,
                                        bs_teardown),
        cmocka_unit_test_setup_teardown(xread_never_shows_an_entry_not_durable, bs_setup_1s,
                                        bs_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
