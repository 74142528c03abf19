/* The discovery client against the real `colony registry` started as a child
 * process on a free loopback port with a temporary data dir: TTL heartbeats
 * keep a check passing and silence turns it critical; watches fill the cache
 * and a balancer with passing instances only and wake on changes; watches
 * back off while the registry is down and recover when it is back (with a
 * fresh index); a colony_service registers itself and deregisters during
 * graceful shutdown. */
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
#include "colony/colony.h"
#include "colony/discovery.h"

typedef struct registry_proc {
    pid_t pid;
    int port;
    char dir[128];
    char url[64];
} registry_proc;

static uv_loop_t loop;
static colony_client *client;

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

/* Runs the loop for about ms milliseconds. */
static void run_for(uint64_t ms)
{
    uint64_t end = colony_test_now_ms() + ms;
    while (colony_test_now_ms() < end) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

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

/* One call on the test's own client; the caller frees result.json. */
static http_result http(const char *method, const char *url, const char *body)
{
    http_result r = {0};
    colony_client_request req = {.method = method,
                                 .url = url,
                                 .body = body,
                                 .body_len = body ? strlen(body) : 0,
                                 .timeout_ms = 5000};
    assert_int_equal(colony_client_request_send(client, &req, on_http_done, &r, NULL), 0);
    assert_true(colony_test_run_until(&loop, &r.done, 8000));
    return r;
}

static void registry_spawn(registry_proc *p)
{
    char listen[32], data[192], log[192];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", p->port);
    snprintf(data, sizeof(data), "%s/data", p->dir);
    snprintf(log, sizeof(log), "%s/registry.log", p->dir);
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        if (!freopen(log, "a", stderr) || !freopen(log, "a", stdout)) _exit(126);
        execl(COLONY_BIN_DIR "/colony", "colony", "registry", "--listen", listen, "--data-dir",
              data, (char *)NULL);
        _exit(127);
    }
    char url[96];
    snprintf(url, sizeof(url), "%s/v1/status/leader", p->url);
    for (int i = 0; i < 200; i++) {
        http_result r = http("GET", url, NULL);
        json_decref(r.json);
        if (!r.err && r.status == 200) return;
        run_for(50);
    }
    fail_msg("colony registry did not start on port %d", p->port);
}

/* Starts a registry on a new port (port 0) or the given one, fresh data dir. */
static void registry_start(registry_proc *p, int port)
{
    snprintf(p->dir, sizeof(p->dir), "/tmp/colony-discovery-XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    p->port = port ? port : free_port();
    snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%d", p->port);
    registry_spawn(p);
}

static void registry_stop(registry_proc *p, int sig, int remove_dir)
{
    if (p->pid > 0) {
        kill(p->pid, sig);
        waitpid(p->pid, NULL, 0);
        p->pid = 0;
    }
    if (remove_dir) {
        char cmd[200];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p->dir);
        assert_int_equal(system(cmd), 0);
    }
}

static void setup_loop(void)
{
    assert_int_equal(uv_loop_init(&loop), 0);
    client = colony_client_new(&loop, NULL);
    assert_non_null(client);
}

static int closed;
static void on_closed(void *ud)
{
    (void)ud;
    closed++;
}

static void teardown_loop(colony_registry_client *r)
{
    closed = 0;
    int want = 1;
    if (r) {
        colony_registry_client_close(r, on_closed, NULL);
        want = 2;
    }
    colony_client_close(client, on_closed, NULL);
    for (int i = 0; i < 400 && closed < want; i++)
        run_for(10);
    assert_int_equal(closed, want);
    colony_test_loop_close(&loop);
}

static void on_done(int err, void *ud)
{
    int *slot = ud;
    slot[0] = 1;
    slot[1] = err;
}

/* Runs a registry call to completion and returns its error. */
#define CALL(expr_with_cb)                                                                         \
    do {                                                                                           \
        int result_[2] = {0, 0};                                                                   \
        int *done_ = result_;                                                                      \
        assert_int_equal((expr_with_cb), 0);                                                       \
        assert_true(colony_test_run_until(&loop, &done_[0], 8000));                                \
        assert_int_equal(done_[1], 0);                                                             \
    } while (0)

static size_t passing_count(const registry_proc *p, const char *service)
{
    char url[160];
    snprintf(url, sizeof(url), "%s/v1/health/service/%s?passing", p->url, service);
    http_result r = http("GET", url, NULL);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 200);
    size_t n = json_array_size(r.json);
    json_decref(r.json);
    return n;
}

static int wait_passing_count(const registry_proc *p, const char *service, size_t n,
                              uint64_t timeout_ms)
{
    uint64_t end = colony_test_now_ms() + timeout_ms;
    while (colony_test_now_ms() < end) {
        if (passing_count(p, service) == n) return 1;
        run_for(50);
    }
    return 0;
}

static const char *check_status(const registry_proc *p, const char *check_id)
{
    static char status[32];
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/agent/checks", p->url);
    http_result r = http("GET", url, NULL);
    assert_int_equal(r.status, 200);
    const char *s = json_string_value(json_object_get(json_object_get(r.json, check_id), "Status"));
    snprintf(status, sizeof(status), "%s", s ? s : "(none)");
    json_decref(r.json);
    return status;
}

static void test_ttl_heartbeat(void **state)
{
    (void)state;
    setup_loop();
    registry_proc reg = {0};
    registry_start(&reg, 0);
    colony_registry_client *r = colony_registry_client_new(
        &loop, &(colony_registry_client_options){.url = reg.url, .wait_ms = 30000});
    assert_non_null(r);
    colony_registration api = {.name = "ttl-api",
                               .id = "ttl-api-1",
                               .address = "127.0.0.1",
                               .port = 9001,
                               .check = COLONY_CHECK_TTL,
                               .ttl_ms = 2000,
                               .heartbeat = 1};
    CALL(colony_registry_client_register(r, &api, on_done, done_));
    assert_true(wait_passing_count(&reg, "ttl-api", 1, 5000));
    /* well past the TTL, the heartbeat (every ttl/3) keeps it passing */
    uint64_t end = colony_test_now_ms() + 5000;
    while (colony_test_now_ms() < end) {
        assert_string_equal(check_status(&reg, "service:ttl-api-1"), "passing");
        run_for(250);
    }
    /* silence: critical after the TTL */
    assert_int_equal(colony_registry_client_set_heartbeat(r, "ttl-api-1", 0), 0);
    assert_int_equal(colony_registry_client_set_heartbeat(r, "nope", 0), COLONY_ENOENT);
    end = colony_test_now_ms() + 12000;
    while (colony_test_now_ms() < end &&
           strcmp(check_status(&reg, "service:ttl-api-1"), "critical"))
        run_for(100);
    assert_string_equal(check_status(&reg, "service:ttl-api-1"), "critical");
    assert_int_equal(passing_count(&reg, "ttl-api"), 0);
    /* resuming brings it back */
    assert_int_equal(colony_registry_client_set_heartbeat(r, "ttl-api-1", 1), 0);
    assert_true(wait_passing_count(&reg, "ttl-api", 1, 5000));
    /* deregistering stops the heartbeat and removes the instance */
    CALL(colony_registry_client_deregister(r, "ttl-api-1", on_done, done_));
    assert_int_equal(colony_registry_client_set_heartbeat(r, "ttl-api-1", 1), COLONY_ENOENT);
    run_for(1000);
    assert_string_equal(check_status(&reg, "service:ttl-api-1"), "(none)");
    teardown_loop(r);
    registry_stop(&reg, SIGTERM, 1);
}

typedef struct change_counter {
    int changes;
} change_counter;

static void on_change(colony_discovery *d, void *ud)
{
    (void)d;
    ((change_counter *)ud)->changes++;
}

static int cache_has(const colony_discovery *d, const char *id)
{
    for (size_t i = 0; i < colony_discovery_count(d); i++)
        if (strcmp(colony_discovery_at(d, i)->id, id) == 0) return 1;
    return 0;
}

static int wait_cache_count(colony_discovery *d, size_t n, uint64_t timeout_ms)
{
    uint64_t end = colony_test_now_ms() + timeout_ms;
    while (colony_test_now_ms() < end) {
        if (colony_discovery_ready(d) && colony_discovery_count(d) == n) return 1;
        run_for(5);
    }
    return 0;
}

static void register_web(colony_registry_client *r, const char *id, int port)
{
    static const char *const tags[] = {"v1", "blue"};
    static const char *const meta[] = {"zone", "z1"};
    colony_registration web = {.name = "web",
                               .id = id,
                               .address = "127.0.0.1",
                               .port = port,
                               .tags = tags,
                               .ntags = 2,
                               .meta = meta,
                               .nmeta = 1,
                               .weight = 3,
                               .check = COLONY_CHECK_TTL,
                               .ttl_ms = 60000};
    CALL(colony_registry_client_register(r, &web, on_done, done_));
}

static void pass(colony_registry_client *r, const char *id, colony_check_status status)
{
    char check[64];
    snprintf(check, sizeof(check), "service:%s", id);
    CALL(colony_registry_client_check_update(r, check, status, "from test", on_done, done_));
}

static void test_cache_balancer_and_watch(void **state)
{
    (void)state;
    setup_loop();
    registry_proc reg = {0};
    registry_start(&reg, 0);
    colony_registry_client *r = colony_registry_client_new(
        &loop, &(colony_registry_client_options){.url = reg.url, .wait_ms = 30000});
    register_web(r, "web-1", 9101);
    register_web(r, "web-2", 9102);
    register_web(r, "web-3", 9103);
    pass(r, "web-1", COLONY_CHECK_PASSING);
    pass(r, "web-2", COLONY_CHECK_PASSING);

    colony_balancer *lb;
    assert_int_equal(colony_balancer_new(COLONY_BALANCE_ROUND_ROBIN, &lb), 0);
    change_counter counter = {0};
    colony_discovery *d, *all;
    assert_int_equal(colony_discovery_watch(r,
                                            &(colony_discovery_options){.service = "web",
                                                                        .balancer = lb,
                                                                        .on_change = on_change,
                                                                        .ud = &counter},
                                            &d),
                     0);
    assert_int_equal(
        colony_discovery_watch(r, &(colony_discovery_options){.service = "web", .all_instances = 1},
                               &all),
        0);
    assert_true(wait_cache_count(d, 2, 5000));
    assert_true(wait_cache_count(all, 3, 5000));
    assert_true(cache_has(d, "web-1") && cache_has(d, "web-2") && !cache_has(d, "web-3"));
    const colony_instance *in = colony_discovery_at(d, 0);
    assert_string_equal(in->service, "web");
    assert_string_equal(in->address, "127.0.0.1");
    assert_true(in->port == 9101 || in->port == 9102);
    assert_int_equal(in->weight, 3);
    assert_int_equal(in->status, COLONY_CHECK_PASSING);
    assert_int_equal(in->ntags, 2);
    assert_string_equal(in->tags[1], "blue");
    assert_int_equal(in->nmeta, 1);
    assert_string_equal(in->meta[0], "zone");
    assert_string_equal(in->meta[1], "z1");
    assert_true(colony_discovery_index(d) > 0);
    assert_int_equal(counter.changes, 1);
    for (size_t i = 0; i < colony_discovery_count(all); i++) {
        const colony_instance *x = colony_discovery_at(all, i);
        assert_int_equal(x->status, strcmp(x->id, "web-3") == 0 ? COLONY_CHECK_CRITICAL
                                                                : COLONY_CHECK_PASSING);
    }

    /* the balancer holds the passing instances only */
    assert_int_equal(colony_balancer_count(lb), 2);
    for (int i = 0; i < 20; i++) {
        colony_endpoint *ep;
        assert_int_equal(colony_balancer_pick(lb, NULL, 0, uv_now(&loop), &ep), 0);
        assert_true(strcmp(colony_endpoint_id(ep), "web-3") != 0);
        assert_true(strcmp(colony_endpoint_address(ep), "127.0.0.1:9101") == 0 ||
                    strcmp(colony_endpoint_address(ep), "127.0.0.1:9102") == 0);
        colony_balancer_release(lb, ep, 1, 1, uv_now(&loop));
    }

    /* a new passing instance arrives through the blocking query: with a 30 s
     * wait, only a wake-up explains seeing it within a few seconds */
    run_for(300); /* the watch is now blocked */
    register_web(r, "web-4", 9104);
    pass(r, "web-4", COLONY_CHECK_PASSING);
    assert_true(wait_cache_count(d, 3, 5000));
    assert_true(cache_has(d, "web-4"));
    assert_non_null(colony_balancer_find(lb, "web-4"));
    assert_true(counter.changes >= 2);

    /* failing an instance takes it out of the cache and the balancer */
    pass(r, "web-1", COLONY_CHECK_CRITICAL);
    assert_true(wait_cache_count(d, 2, 5000));
    assert_false(cache_has(d, "web-1"));
    assert_null(colony_balancer_find(lb, "web-1"));
    assert_int_equal(colony_balancer_count(lb), 2);

    /* an unrelated change wakes nobody up needlessly: no change callback */
    int before = counter.changes;
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/kv/unrelated", reg.url);
    http_result kv = http("PUT", url, "x");
    assert_int_equal(kv.status, 200);
    json_decref(kv.json);
    run_for(500);
    assert_int_equal(counter.changes, before);

    colony_discovery_stop(all);
    teardown_loop(r);
    colony_balancer_free(lb);
    registry_stop(&reg, SIGTERM, 1);
}

static void test_backoff_and_recovery(void **state)
{
    (void)state;
    setup_loop();
    registry_proc reg = {0};
    registry_start(&reg, 0);
    colony_registry_client *r = colony_registry_client_new(
        &loop, &(colony_registry_client_options){
                   .url = reg.url, .wait_ms = 30000, .retry_min_ms = 100, .retry_max_ms = 800});
    CALL(colony_registry_client_register(
        r, &(colony_registration){.name = "svc", .id = "svc-1", .port = 1}, on_done, done_));
    colony_discovery *d;
    assert_int_equal(colony_discovery_watch(r, &(colony_discovery_options){.service = "svc"}, &d),
                     0);
    assert_true(wait_cache_count(d, 1, 5000));
    run_for(200);

    registry_stop(&reg, SIGKILL, 0);
    uint64_t end = colony_test_now_ms() + 5000;
    while (colony_test_now_ms() < end && colony_discovery_failures(d) == 0)
        run_for(10);
    assert_true(colony_discovery_failures(d) > 0);
    run_for(3000);
    unsigned failures = colony_discovery_failures(d);
    /* backing off: a handful of attempts in 3 s, not a tight loop */
    assert_true(failures >= 2);
    assert_true(failures <= 25);
    assert_int_not_equal(colony_discovery_last_error(d), 0);
    /* the cache keeps its last good content while the registry is away */
    assert_int_equal(colony_discovery_count(d), 1);
    assert_true(cache_has(d, "svc-1"));

    /* back on the same port with a fresh data dir: its index starts over */
    char old_dir[128];
    snprintf(old_dir, sizeof(old_dir), "%s", reg.dir);
    registry_proc reg2 = {0};
    registry_start(&reg2, reg.port);
    snprintf(reg.dir, sizeof(reg.dir), "%s", old_dir);
    registry_stop(&reg, SIGKILL, 1);
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/agent/service/register", reg2.url);
    http_result put = http("PUT", url, "{\"Name\":\"svc\",\"ID\":\"svc-2\",\"Port\":2}");
    assert_int_equal(put.status, 200);
    json_decref(put.json);
    end = colony_test_now_ms() + 10000;
    while (colony_test_now_ms() < end && !(colony_discovery_count(d) == 1 && cache_has(d, "svc-2")))
        run_for(10);
    assert_int_equal(colony_discovery_count(d), 1);
    assert_true(cache_has(d, "svc-2"));
    assert_int_equal(colony_discovery_failures(d), 0);
    assert_int_equal(colony_discovery_last_error(d), 0);
    /* and it blocks again: a further change arrives promptly */
    run_for(300);
    put = http("PUT", url, "{\"Name\":\"svc\",\"ID\":\"svc-3\",\"Port\":3}");
    json_decref(put.json);
    assert_true(wait_cache_count(d, 2, 5000));
    teardown_loop(r);
    registry_stop(&reg2, SIGTERM, 1);
}

static pid_t spawn_service(const registry_proc *reg, const char *const *extra)
{
    char log[192], url_env[96];
    snprintf(log, sizeof(log), "%s/service.log", reg->dir);
    snprintf(url_env, sizeof(url_env), "%s", reg->url);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(log, "a", stderr)) _exit(126);
        setenv("COLONY_REGISTRY_URL", url_env, 1);
        char *argv[16] = {"registered_service", "--listen", "127.0.0.1:0"};
        int n = 3;
        for (; extra && *extra && n < 15; extra++)
            argv[n++] = (char *)*extra;
        argv[n] = NULL;
        execv(COLONY_BIN_DIR "/registered_service", argv);
        _exit(127);
    }
    return pid;
}

static int wait_exit(pid_t pid, uint64_t timeout_ms)
{
    uint64_t end = colony_test_now_ms() + timeout_ms;
    int status;
    while (colony_test_now_ms() < end) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static json_t *health_entries(const registry_proc *reg, const char *service, int passing)
{
    char url[160];
    snprintf(url, sizeof(url), "%s/v1/health/service/%s%s", reg->url, service,
             passing ? "?passing" : "");
    http_result r = http("GET", url, NULL);
    assert_int_equal(r.status, 200);
    return r.json;
}

static void self_registration_round(const char *const *extra)
{
    setup_loop();
    registry_proc reg = {0};
    registry_start(&reg, 0);
    pid_t pid = spawn_service(&reg, extra);
    assert_true(wait_passing_count(&reg, "registered", 1, 10000));
    json_t *entries = health_entries(&reg, "registered", 1);
    json_t *svc = json_object_get(json_array_get(entries, 0), "Service");
    assert_string_equal(json_string_value(json_object_get(svc, "Address")), "127.0.0.1");
    json_int_t port = json_integer_value(json_object_get(svc, "Port"));
    assert_true(port > 0);
    assert_string_equal(json_string_value(json_array_get(json_object_get(svc, "Tags"), 1)), "b");
    assert_string_equal(json_string_value(json_object_get(json_object_get(svc, "Meta"), "version")),
                        "1.2.3");
    assert_string_equal(json_string_value(json_object_get(json_object_get(svc, "Meta"), "zone")),
                        "z1");
    json_decref(entries);
    /* the registered address really is the service */
    char url[96];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hello", (int)port);
    http_result hello = http("GET", url, NULL);
    assert_int_equal(hello.status, 200);
    json_decref(hello.json);
    /* graceful shutdown deregisters before the process exits */
    run_for(1500);
    assert_int_equal(passing_count(&reg, "registered"), 1);
    kill(pid, SIGTERM);
    assert_int_equal(wait_exit(pid, 10000), 0);
    entries = health_entries(&reg, "registered", 0);
    assert_int_equal(json_array_size(entries), 0);
    json_decref(entries);
    teardown_loop(NULL);
    registry_stop(&reg, SIGTERM, 1);
}

static void test_service_ttl_registration_and_shutdown(void **state)
{
    (void)state;
    static const char *const extra[] = {"--registry.ttl=2s", "--service.tags=a,b",
                                        "--service.meta=zone=z1", "--service.version=1.2.3", NULL};
    self_registration_round(extra);
}

static void test_service_http_check_registration_and_shutdown(void **state)
{
    (void)state;
    static const char *const extra[] = {"--registry.check=http",   "--registry.interval=500ms",
                                        "--service.tags=a, b",     "--service.meta=zone=z1",
                                        "--service.version=1.2.3", NULL};
    self_registration_round(extra);
}

static void test_service_registers_when_registry_comes_up_late(void **state)
{
    (void)state;
    setup_loop();
    registry_proc reg = {0};
    snprintf(reg.dir, sizeof(reg.dir), "/tmp/colony-discovery-XXXXXX");
    assert_non_null(mkdtemp(reg.dir));
    reg.port = free_port();
    snprintf(reg.url, sizeof(reg.url), "http://127.0.0.1:%d", reg.port);
    static const char *const extra[] = {"--registry.ttl=1500ms", NULL};
    pid_t pid = spawn_service(&reg, extra);
    run_for(1200); /* its first registration attempts fail */
    registry_spawn(&reg);
    assert_true(wait_passing_count(&reg, "registered", 1, 10000));
    kill(pid, SIGTERM);
    assert_int_equal(wait_exit(pid, 10000), 0);
    assert_int_equal(passing_count(&reg, "registered"), 0);
    teardown_loop(NULL);
    registry_stop(&reg, SIGTERM, 1);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    setup_loop();
    assert_null(colony_registry_client_new(&loop, &(colony_registry_client_options){.url = NULL}));
    assert_null(
        colony_registry_client_new(&loop, &(colony_registry_client_options){.url = "ftp://x"}));
    colony_registry_client *r = colony_registry_client_new(
        &loop, &(colony_registry_client_options){.url = "http://127.0.0.1:1/"});
    assert_non_null(r);
    assert_int_equal(
        colony_registry_client_register(r, &(colony_registration){.name = ""}, NULL, NULL),
        COLONY_EINVAL);
    assert_int_equal(colony_registry_client_register(
                         r, &(colony_registration){.name = "a", .port = 70000}, NULL, NULL),
                     COLONY_EINVAL);
    assert_int_equal(
        colony_registry_client_register(
            r, &(colony_registration){.name = "a", .check = COLONY_CHECK_TTL}, NULL, NULL),
        COLONY_EINVAL);
    assert_int_equal(
        colony_registry_client_register(
            r, &(colony_registration){.name = "a", .check = COLONY_CHECK_HTTP}, NULL, NULL),
        COLONY_EINVAL);
    colony_discovery *d;
    assert_int_equal(colony_discovery_watch(r, &(colony_discovery_options){.service = ""}, &d),
                     COLONY_EINVAL);
    /* nothing listens on port 1: the call completes with a connection error */
    int result[2] = {0, 0};
    int *done_ = result;
    assert_int_equal(colony_registry_client_deregister(r, "x", on_done, done_), 0);
    assert_true(colony_test_run_until(&loop, &result[0], 8000));
    assert_int_equal(result[1], COLONY_ECONNREFUSED);
    teardown_loop(r);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_ttl_heartbeat),
        cmocka_unit_test(test_cache_balancer_and_watch),
        cmocka_unit_test(test_backoff_and_recovery),
        cmocka_unit_test(test_service_ttl_registration_and_shutdown),
        cmocka_unit_test(test_service_http_check_registration_and_shutdown),
        cmocka_unit_test(test_service_registers_when_registry_comes_up_late),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
