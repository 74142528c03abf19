/* Flow control of a request body (src/http/server_body.c), over a real
 * loopback socket: a paused body delivers nothing and does not time out,
 * resumes where it stopped; 100 Continue waits for the first resume; a
 * request refused while paused closes the connection, or keeps it when its
 * small body was already received; a client that leaves a paused request
 * still lets its holder answer (and free) it; a response started mid-body
 * lets the rest of the body flow. */
#include "server_test_util.h"

static uv_loop_t loop;
static colony_server *srv;
static int port;

/* What the server side saw (loop thread only, read by the test after the
 * client thread finished). */
typedef struct body_state {
    colony_request *req; /* the request held (paused) by the head hook */
    size_t bytes, pieces;
    size_t while_paused; /* data callbacks that ran while paused: must stay 0 */
    size_t pauses;
    int finished, finish_status;
    uv_timer_t resume_timer;
} body_state;

static body_state st;
static uv_async_t command;
static atomic_int command_kind; /* 1: resume, 2: refuse with 401 */

enum { CMD_RESUME = 1, CMD_REFUSE = 2 };

static void handler(colony_request *req, void *ud)
{
    (void)ud;
    if (colony_response_status(req) != 0) { /* /duplex: the response started mid-body */
        char out[64];
        snprintf(out, sizeof(out), "then %zu bytes", st.bytes);
        colony_response_write(req, out, strlen(out), NULL, NULL);
        colony_response_end(req);
        return;
    }
    size_t n;
    colony_request_body(req, &n);
    char out[64];
    snprintf(out, sizeof(out), "%zu bytes", st.bytes + n); /* streamed so far + buffered */
    colony_respond(req, 200, "text/plain", out, strlen(out));
}

static void on_resume_timer(uv_timer_t *t)
{
    (void)t;
    if (st.req) assert_int_equal(colony_request_resume_body(st.req), 0);
}

static void on_piece(colony_request *req, const char *data, size_t len, void *ud)
{
    (void)data;
    (void)ud;
    if (colony_request_body_paused(req)) st.while_paused++;
    st.bytes += len;
    st.pieces++;
}

/* Pauses after every piece and resumes 2 ms later from a timer. */
static void on_piece_repause(colony_request *req, const char *data, size_t len, void *ud)
{
    on_piece(req, data, len, ud);
    if (colony_request_pause_body(req) == 0) {
        st.pauses++;
        uv_timer_start(&st.resume_timer, on_resume_timer, 2, 0);
    }
}

/* Starts the response at the first piece; the body goes on flowing. */
static void on_piece_duplex(colony_request *req, const char *data, size_t len, void *ud)
{
    on_piece(req, data, len, ud);
    if (colony_response_status(req) == 0) {
        assert_int_equal(colony_response_start(req, 200), 0);
        assert_int_equal(colony_response_write(req, "started;", 8, NULL, NULL), 0);
    }
}

static void on_finish(colony_request *req, int status, void *ud)
{
    (void)req;
    (void)ud;
    st.finished = 1;
    st.finish_status = status;
}

static void head_hook(colony_request *req, void *ud)
{
    (void)ud;
    const char *path = colony_request_path(req);
    if (strcmp(path, "/paused") == 0) { /* held until the client thread says */
        assert_int_equal(colony_request_stream_body(req, on_piece, NULL), 0);
        assert_int_equal(colony_request_pause_body(req), 0);
        assert_int_equal(colony_request_on_finish(req, on_finish, NULL), 0);
        st.req = req;
    } else if (strcmp(path, "/paused-buffered") == 0) {
        assert_int_equal(colony_request_pause_body(req), 0);
        st.req = req;
    } else if (strcmp(path, "/duplex") == 0) {
        assert_int_equal(colony_request_stream_body(req, on_piece_duplex, NULL), 0);
    } else if (strcmp(path, "/repause") == 0) {
        assert_int_equal(colony_request_stream_body(req, on_piece_repause, NULL), 0);
        st.req = req;
    }
}

static void on_command(uv_async_t *a)
{
    (void)a;
    int kind = atomic_exchange(&command_kind, 0);
    if (!st.req) return;
    if (kind == CMD_RESUME) assert_int_equal(colony_request_resume_body(st.req), 0);
    if (kind == CMD_REFUSE) {
        colony_respond_error(st.req, 401, "unauthorized", "no token");
        st.req = NULL;
    }
}

/* From the client thread: the loop resumes or refuses the held request. */
static void send_command(int kind)
{
    atomic_store(&command_kind, kind);
    uv_async_send(&command);
}

static void setup(void)
{
    memset(&st, 0, sizeof(st));
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(uv_async_init(&loop, &command, on_command), 0);
    assert_int_equal(uv_timer_init(&loop, &st.resume_timer), 0);
    colony_server_options opts = {0};
    opts.limits.max_body = 1 << 20;
    opts.body_timeout_ms = 100; /* a pause is much longer: it must not count */
    srv = start_server(&loop, &opts, handler, NULL, &port);
    colony_server_set_head_hook(srv, head_hook, NULL);
}

static void teardown(void)
{
    stop_server(&loop, srv, 1000);
    uv_close((uv_handle_t *)&command, NULL);
    uv_close((uv_handle_t *)&st.resume_timer, NULL);
    colony_test_loop_close(&loop);
}

/* 1 if nothing arrives on c within ms. */
static int quiet_for(tconn *c, int ms)
{
    struct timeval tv = {0, ms * 1000};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK);
    tc_set_timeout(c->fd, TC_TIMEOUT_MS);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* The whole body is sent while the request is paused: nothing is delivered,
 * nothing times out (the body timeout is 100 ms, the pause 300 ms); after
 * the resume every byte arrives. */
static void client_paused(tclient *t)
{
    tconn *c = tc_connect(t->port);
    char body[3000];
    memset(body, 'z', sizeof(body));
    TCHECK(t, tc_send(c, "POST /paused HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n") == 0);
    TCHECK(t, send(c->fd, body, sizeof(body), 0) == (ssize_t)sizeof(body));
    TCHECK(t, quiet_for(c, 300)); /* no 408, no answer */
    TCHECK(t, st.bytes == 0);
    send_command(CMD_RESUME);
    tresp r;
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 200);
    TCHECK(t, strcmp(r.body, "3000 bytes") == 0);
    tc_close(c);
}

static void paused_body_delivers_nothing_and_does_not_time_out(void **state)
{
    (void)state;
    setup();
    tclient t = {.port = port, .fn = client_paused};
    run_client(&loop, &t, 20000);
    assert_int_equal(st.bytes, 3000);
    assert_int_equal(st.while_paused, 0);
    teardown();
}

/* 100 Continue comes only once the body is wanted. */
static void client_continue(tclient *t)
{
    tconn *c = tc_connect(t->port);
    tresp r;
    TCHECK(t, tc_send(c, "POST /paused HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                         "Content-Length: 5\r\n\r\n") == 0);
    TCHECK(t, quiet_for(c, 200)); /* no 100 while paused */
    send_command(CMD_RESUME);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 100);
    TCHECK(t, tc_send(c, "hello") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 200);
    TCHECK(t, strcmp(r.body, "5 bytes") == 0);
    /* the same for a buffered body, on the same connection */
    TCHECK(t, tc_send(c, "POST /paused-buffered HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                         "Content-Length: 4\r\n\r\n") == 0);
    TCHECK(t, quiet_for(c, 100));
    send_command(CMD_RESUME);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 100);
    TCHECK(t, tc_send(c, "abcd") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 200);
    TCHECK(t, strcmp(r.body, "9 bytes") == 0); /* st.bytes from the streamed one: 5 + 4 */
    tc_close(c);
}

static void continue_is_sent_when_the_body_is_wanted(void **state)
{
    (void)state;
    setup();
    tclient t = {.port = port, .fn = client_continue};
    run_client(&loop, &t, 20000);
    teardown();
}

/* Refused while paused: with Expect and a large body, the answer comes
 * without a 100 and the connection closes (the body was never read); a small
 * body that already arrived whole is skipped and the connection lives. */
static void client_refused(tclient *t)
{
    tconn *c = tc_connect(t->port);
    tresp r;
    TCHECK(t, tc_send(c, "POST /paused HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                         "Content-Length: 100000\r\n\r\n") == 0);
    TCHECK(t, quiet_for(c, 100));
    send_command(CMD_REFUSE);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 401);
    TCHECK(t, strstr(r.head, "Connection: close") != NULL);
    TCHECK(t, tc_wait_closed(c));
    tc_close(c);

    c = tc_connect(t->port);
    TCHECK(t,
           tc_send(c, "POST /paused HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello") == 0);
    TCHECK(t, quiet_for(c, 100));
    send_command(CMD_REFUSE);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 401);
    TCHECK(t, strstr(r.head, "Connection: close") == NULL);
    TCHECK(t, tc_send(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok") == 0);
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 200);
    TCHECK(t, strcmp(r.body, "7 bytes") == 0); /* st.bytes: the refused bodies were never read */
    tc_close(c);
}

static void refused_while_paused_closes_or_skips(void **state)
{
    (void)state;
    setup();
    st.bytes = 5; /* the handler answers st.bytes + what it buffered */
    tclient t = {.port = port, .fn = client_refused};
    run_client(&loop, &t, 20000);
    assert_int_equal(st.bytes, 5); /* nothing of the refused bodies was delivered */
    teardown();
}

/* A body paused after every piece and resumed from a timer: every byte
 * arrives, in order of the pauses, and no piece comes while paused. */
static void client_repause(tclient *t)
{
    tconn *c = tc_connect(t->port);
    size_t size = 512 * 1024;
    char *body = malloc(size);
    memset(body, 'q', size);
    char head[128];
    snprintf(head, sizeof(head), "POST /repause HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n",
             size);
    TCHECK(t, tc_send(c, head) == 0);
    size_t off = 0;
    while (off < size) {
        ssize_t n = send(c->fd, body + off, size - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += (size_t)n;
    }
    TCHECK(t, off == size);
    tresp r;
    TCHECK(t, tc_read_response(c, &r, 0) == 0 && r.status == 200);
    char want[64];
    snprintf(want, sizeof(want), "%zu bytes", size);
    TCHECK(t, strcmp(r.body, want) == 0);
    free(body);
    tc_close(c);
}

static void body_paused_after_every_piece_arrives_whole(void **state)
{
    (void)state;
    setup();
    tclient t = {.port = port, .fn = client_repause};
    run_client(&loop, &t, 20000);
    assert_int_equal(st.bytes, 512 * 1024);
    assert_int_equal(st.while_paused, 0);
    assert_true(st.pauses >= 2);
    assert_true(st.pieces >= st.pauses);
    teardown();
}

/* The client leaves while its request is paused: the request finishes with
 * an error, stays valid for its holder, and is freed once answered. */
static void client_leaves(tclient *t)
{
    tconn *c = tc_connect(t->port);
    TCHECK(t, tc_send(c, "POST /paused HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n") == 0);
    usleep(50 * 1000);
    tc_close(c);
    usleep(50 * 1000);
    send_command(CMD_RESUME); /* reading again sees the hang-up */
}

static void client_leaving_a_paused_request(void **state)
{
    (void)state;
    setup();
    tclient t = {.port = port, .fn = client_leaves};
    run_client(&loop, &t, 20000);
    assert_true(colony_test_run_until(&loop, &st.finished, 5000));
    assert_int_not_equal(st.finish_status, 0);
    /* still ours to answer: the answer goes nowhere and frees it */
    assert_int_equal(colony_respond_error(st.req, 503, "late", "the client left"),
                     COLONY_ECONNRESET);
    st.req = NULL;
    teardown();
}

/* A response that starts before the body is complete: the rest of the body
 * still flows to the data callback, and the handler ends the response. */
static void client_duplex(tclient *t)
{
    tconn *c = tc_connect(t->port);
    TCHECK(t, tc_send(c, "POST /duplex HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
                         "abcd") == 0);
    /* the head and the first chunk arrive while 6 body bytes are still owed */
    char *end;
    while (!(end = memmem(c->buf, c->len, "started;", 8)))
        if (tc_fill(c) <= 0) break;
    TCHECK(t, end != NULL);
    TCHECK(t, strncmp(c->buf, "HTTP/1.1 200", 12) == 0);
    TCHECK(t, tc_send(c, "efghij") == 0);
    while (!memmem(c->buf, c->len, "0\r\n\r\n", 5))
        if (tc_fill(c) <= 0) break;
    TCHECK(t, memmem(c->buf, c->len, "then 10 bytes", 13) != NULL);
    TCHECK(t, memmem(c->buf, c->len, "0\r\n\r\n", 5) != NULL);
    tc_close(c);
}

static void response_started_mid_body_lets_the_body_flow(void **state)
{
    (void)state;
    setup();
    tclient t = {.port = port, .fn = client_duplex};
    run_client(&loop, &t, 20000);
    assert_int_equal(st.bytes, 10);
    assert_true(st.pieces >= 2);
    teardown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(paused_body_delivers_nothing_and_does_not_time_out),
        cmocka_unit_test(continue_is_sent_when_the_body_is_wanted),
        cmocka_unit_test(refused_while_paused_closes_or_skips),
        cmocka_unit_test(body_paused_after_every_piece_arrives_whole),
        cmocka_unit_test(client_leaving_a_paused_request),
        cmocka_unit_test(response_started_mid_body_lets_the_body_flow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
