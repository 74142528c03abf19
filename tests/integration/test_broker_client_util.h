/* Shared by the broker client's tests: a real `colony broker` child process
 * on a free loopback port with a temporary data dir, a loop, and a plain
 * HTTP client to look at the broker from the side. */
#ifndef TEST_BROKER_CLIENT_UTIL_H
#define TEST_BROKER_CLIENT_UTIL_H

#include "test_support.h"
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "colony/broker_client.h"
#include "colony/error.h"
#include "colony/http_client.h"

typedef struct broker_proc {
    pid_t pid;
    int port;
    char dir[128];
    char url[64];
} broker_proc;

static uv_loop_t loop;
static colony_client *peek; /* the test's own view of the broker */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void run_for(uint64_t ms)
{
    uint64_t end = colony_test_now_ms() + ms;
    while (colony_test_now_ms() < end) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

/* Runs the loop until cond holds or timeout_ms passes; returns whether it
 * held (cond is evaluated once per turn, never again after it held). */
#define RUN_UNTIL(cond, timeout_ms)                                                                \
    ({                                                                                             \
        uint64_t end_ = colony_test_now_ms() + (timeout_ms);                                       \
        int ok_;                                                                                   \
        while (!(ok_ = !!(cond)) && colony_test_now_ms() < end_) {                                 \
            uv_run(&loop, UV_RUN_NOWAIT);                                                          \
            usleep(1000);                                                                          \
        }                                                                                          \
        ok_;                                                                                       \
    })

typedef struct http_result {
    int done, err, status;
    json_t *json;
} http_result;

static void on_http_done(colony_client_call *call, int err, const colony_client_response *res,
                         void *ud)
{
    (void)call;
    http_result *r = ud;
    r->err = err;
    if (!err) {
        r->status = res->status;
        r->json = json_loadb(res->body ? res->body : "", res->body_len, JSON_DECODE_ANY, NULL);
    }
    r->done = 1;
}

/* One call to the broker; the caller frees result.json. */
static http_result http(const broker_proc *b, const char *method, const char *path,
                        const char *body)
{
    http_result r = {0};
    char url[512];
    snprintf(url, sizeof(url), "%s%s", b->url, path);
    colony_client_request req = {.method = method,
                                 .url = url,
                                 .body = body,
                                 .body_len = body ? strlen(body) : 0,
                                 .timeout_ms = 10000};
    assert_int_equal(colony_client_request_send(peek, &req, on_http_done, &r, NULL), 0);
    assert_true(colony_test_run_until(&loop, &r.done, 15000));
    return r;
}

/* The status of a call whose body is not needed. */
static int http_status(const broker_proc *b, const char *method, const char *path, const char *body)
{
    http_result r = http(b, method, path, body);
    json_decref(r.json);
    return r.err ? r.err : r.status;
}

/* A number field of the JSON at path. */
static long long http_field(const broker_proc *b, const char *path, const char *field)
{
    http_result r = http(b, "GET", path, NULL);
    assert_int_equal(r.status, 200);
    long long v = json_integer_value(json_object_get(r.json, field));
    json_decref(r.json);
    return v;
}

static void broker_spawn(broker_proc *p)
{
    char listen[32], data[192], log[192];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", p->port);
    snprintf(data, sizeof(data), "%s/data", p->dir);
    snprintf(log, sizeof(log), "%s/broker.log", p->dir);
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        if (!freopen(log, "a", stderr) || !freopen(log, "a", stdout)) _exit(126);
        execl(COLONY_BIN_DIR "/colony", "colony", "broker", "--listen", listen, "--resp-listen",
              "127.0.0.1:0", "--data-dir", data, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 400; i++) {
        http_result r = http(p, "GET", "/health", NULL);
        json_decref(r.json);
        if (!r.err && r.status == 200) return;
        run_for(25);
    }
    fail_msg("colony broker did not start on port %d", p->port);
}

static void broker_start(broker_proc *p)
{
    snprintf(p->dir, sizeof(p->dir), "/tmp/colony-bclient-XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    p->port = free_port();
    snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%d", p->port);
    broker_spawn(p);
}

static void broker_kill(broker_proc *p, int sig)
{
    if (p->pid > 0) {
        kill(p->pid, sig);
        waitpid(p->pid, NULL, 0);
        p->pid = 0;
    }
}

static void broker_stop(broker_proc *p)
{
    broker_kill(p, SIGTERM);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p->dir);
    assert_int_equal(system(cmd), 0);
}

static colony_broker_client *bclient_new(const broker_proc *b, uint64_t close_timeout_ms)
{
    colony_broker_client_options o;
    colony_broker_client_options_init(&o);
    o.url = b->url;
    o.retry_min_ms = 50;
    o.retry_max_ms = 400;
    if (close_timeout_ms) o.close_timeout_ms = close_timeout_ms;
    colony_broker_client *c = colony_broker_client_new(&loop, &o);
    assert_non_null(c);
    return c;
}

static int closed_count;
static void on_closed(void *ud)
{
    (void)ud;
    closed_count++;
}

static void bclient_close(colony_broker_client *c)
{
    closed_count = 0;
    colony_broker_client_close(c, on_closed, NULL);
    assert_true(RUN_UNTIL(closed_count == 1, 15000));
}

static void setup_loop(void)
{
    assert_int_equal(uv_loop_init(&loop), 0);
    peek = colony_client_new(&loop, NULL);
    assert_non_null(peek);
}

static void teardown_loop(void)
{
    closed_count = 0;
    colony_client_close(peek, on_closed, NULL);
    assert_true(RUN_UNTIL(closed_count == 1, 5000));
    colony_test_loop_close(&loop);
}

/* Publishing through the client, waiting for the callback. */
typedef struct pub_result {
    int done, err, status;
    char id[64];
    char error[64];
} pub_result;

static void on_published(int err, const colony_broker_reply *r, void *ud)
{
    pub_result *p = ud;
    p->done = 1;
    p->err = err;
    p->status = r->status;
    snprintf(p->id, sizeof(p->id), "%s", r->id ? r->id : "");
    snprintf(p->error, sizeof(p->error), "%s", r->error ? r->error : "");
}

static pub_result publish_wait(colony_broker_client *c, const char *stream, const char *data)
{
    pub_result r = {0};
    colony_broker_message m = {.stream = stream, .data = data};
    assert_int_equal(colony_broker_publish(c, &m, on_published, &r), 0);
    assert_true(RUN_UNTIL(r.done, 15000));
    return r;
}

#endif
