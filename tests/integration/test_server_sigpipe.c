/* A client that resets its connection while a response bigger than the socket
 * buffers is being written must not kill the server: libcolony ignores
 * SIGPIPE for every program that creates a server (tests/apps/big_server, a
 * separate process that does nothing about signals itself). */
#include "server_test_util.h"
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

static pid_t child;
static int child_port;

static void start_child(void)
{
    int out[2];
    assert_int_equal(pipe(out), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    char *args[] = {COLONY_BIN_DIR "/big_server", NULL};
    assert_int_equal(posix_spawn(&child, args[0], &fa, NULL, args, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    char line[64] = {0};
    size_t len = 0;
    while (len < sizeof(line) - 1 && !strchr(line, '\n')) {
        ssize_t n = read(out[0], line + len, sizeof(line) - 1 - len);
        if (n <= 0) break;
        len += (size_t)n;
    }
    close(out[0]);
    assert_int_equal(sscanf(line, "port %d", &child_port), 1);
}

static void check_alive(void)
{
    int status;
    pid_t gone = waitpid(child, &status, WNOHANG);
    if (gone == child && WIFSIGNALED(status))
        fail_msg("server died of signal %d", WTERMSIG(status));
    assert_int_equal(gone, 0);
}

/* Reads a little of a big response, then closes with RST (SO_LINGER 0);
 * half_close first sends FIN, so the server is in CLOSE_WAIT when the reset
 * comes and its next write fails with EPIPE (the SIGPIPE case). */
static void reset_mid_response(const char *requests, int half_close)
{
    check_alive();
    tconn *c = tc_connect(child_port);
    assert_non_null(c);
    int small = 4096;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    assert_int_equal(tc_send(c, requests), 0);
    char buf[4096];
    ssize_t got = recv(c->fd, buf, sizeof(buf), 0);
    if (got <= 0) {
        tc_close(c);
        check_alive();
        fail_msg("no response from the server");
    }
    usleep(20 * 1000); /* let the server fill the socket buffers */
    if (half_close) {
        shutdown(c->fd, SHUT_WR);
        usleep(20 * 1000);
    }
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    tc_close(c);
}

static void reset_during_big_response_does_not_kill(void **state)
{
    (void)state;
    start_child();
    static const char big[] = "GET /big?mb=16 HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < 4; i++) {
        reset_mid_response(big, i % 2);
        reset_mid_response("GET /big?mb=16 HTTP/1.1\r\nHost: x\r\n\r\n"
                           "GET /big?mb=16 HTTP/1.1\r\nHost: x\r\n\r\n"
                           "GET /small HTTP/1.1\r\nHost: x\r\n\r\n",
                           i % 2);
    }
    usleep(100 * 1000);
    check_alive();

    tconn *c = tc_connect(child_port);
    assert_non_null(c);
    tresp r;
    assert_int_equal(tc_send(c, "GET /small HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    assert_int_equal(tc_read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok");
    tc_close(c);

    kill(child, SIGKILL);
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reset_during_big_response_does_not_kill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
