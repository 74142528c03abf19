/* colony registry health checks against real servers: TTL expiry, HTTP
 * checks (2xx passing, 429 warning, 500 and refused critical; method, headers
 * and body sent), TCP checks going up and down, FailuresBeforeCritical,
 * DeregisterCriticalServiceAfter, and checks re-armed after a restart. */
#include <jansson.h>
#include "registry_test_util.h"

/* A tiny HTTP server thread answering every request with http_status and
 * remembering the last request head. */
static volatile int http_status = 200;
static volatile int http_stop;
static char last_request[4096];
static pthread_mutex_t last_lock = PTHREAD_MUTEX_INITIALIZER;

static void *http_server(void *arg)
{
    int lfd = *(int *)arg;
    while (!http_stop) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) continue;
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) continue;
        char buf[4096];
        ssize_t n = 0, got;
        struct pollfd q = {.fd = fd, .events = POLLIN};
        while (poll(&q, 1, 1000) > 0 &&
               (got = read(fd, buf + n, sizeof(buf) - 1 - (size_t)n)) > 0) {
            n += got;
            buf[n] = '\0';
            if (strstr(buf, "\r\n\r\n") &&
                (!strstr(buf, "Content-Length: ") || strstr(buf, "\r\n\r\n")[4] != '\0'))
                break;
        }
        buf[n > 0 ? n : 0] = '\0';
        pthread_mutex_lock(&last_lock);
        memcpy(last_request, buf, sizeof(buf));
        pthread_mutex_unlock(&last_lock);
        char resp[256];
        int len = snprintf(resp, sizeof(resp),
                           "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
                           http_status);
        if (write(fd, resp, (size_t)len) < 0) {
        }
        close(fd);
    }
    return NULL;
}

static const char *check_status(const char *check_id)
{
    static char status[32];
    rt_resp r;
    status[0] = '\0';
    if (rt_get(reg.port, "/v1/agent/checks", &r) != 0) return status;
    json_t *j = json_loads(r.body, 0, NULL);
    const char *s = json_string_value(json_object_get(json_object_get(j, check_id), "Status"));
    snprintf(status, sizeof(status), "%s", s ? s : "");
    json_decref(j);
    return status;
}

static int wait_status(const char *check_id, const char *want, int timeout_ms)
{
    uint64_t end = colony_test_now_ms() + (uint64_t)timeout_ms;
    while (colony_test_now_ms() < end) {
        if (strcmp(check_status(check_id), want) == 0) return 1;
        usleep(20000);
    }
    fail_msg("check %s is %s, wanted %s", check_id, check_status(check_id), want);
    return 0;
}

static void test_ttl_expiry(void **state)
{
    (void)state;
    rt_resp r;
    assert_int_equal(
        rt_put(reg.port, "/v1/agent/service/register",
               "{\"Name\":\"beat\",\"Check\":{\"CheckID\":\"beat-ttl\",\"TTL\":\"300ms\"}}", &r),
        0);
    assert_int_equal(r.status, 200);
    assert_string_equal(check_status("beat-ttl"), "critical"); /* initial status */
    assert_int_equal(rt_put(reg.port, "/v1/agent/check/pass/beat-ttl", NULL, &r), 0);
    assert_string_equal(check_status("beat-ttl"), "passing");
    for (int i = 0; i < 5; i++) { /* heartbeats keep it passing */
        usleep(100000);
        assert_int_equal(rt_put(reg.port, "/v1/agent/check/pass/beat-ttl", NULL, &r), 0);
        assert_string_equal(check_status("beat-ttl"), "passing");
    }
    wait_status("beat-ttl", "critical", 3000);
    assert_int_equal(rt_get(reg.port, "/v1/agent/checks", &r), 0);
    assert_non_null(strstr(r.body, "TTL expired"));
}

static void test_http_check(void **state)
{
    (void)state;
    int port;
    int lfd = rt_listen(&port);
    pthread_t th;
    http_stop = 0;
    http_status = 200;
    pthread_create(&th, NULL, http_server, &lfd);
    char body[512];
    snprintf(body, sizeof(body),
             "{\"Name\":\"api\",\"Port\":%d,\"Check\":{\"CheckID\":\"api-http\","
             "\"HTTP\":\"http://127.0.0.1:%d/healthz\",\"Method\":\"POST\","
             "\"Header\":{\"X-Probe\":[\"yes\"]},\"Body\":\"ping\",\"Interval\":\"50ms\","
             "\"Timeout\":\"1s\"}}",
             port, port);
    rt_resp r;
    assert_int_equal(rt_put(reg.port, "/v1/agent/service/register", body, &r), 0);
    assert_int_equal(r.status, 200);
    wait_status("api-http", "passing", 3000);
    pthread_mutex_lock(&last_lock);
    assert_non_null(strstr(last_request, "POST /healthz"));
    assert_non_null(strstr(last_request, "X-Probe: yes"));
    pthread_mutex_unlock(&last_lock);
    assert_true(rt_wait_body(reg.port, "/v1/agent/checks", "200 Output: hi", 2000));
    http_status = 429;
    wait_status("api-http", "warning", 3000);
    http_status = 500;
    wait_status("api-http", "critical", 3000);
    http_status = 204;
    wait_status("api-http", "passing", 3000);
    /* the server goes away: connection refused is critical */
    http_stop = 1;
    pthread_join(th, NULL);
    close(lfd);
    wait_status("api-http", "critical", 3000);
    assert_true(rt_wait_body(reg.port, "/v1/health/service/api", "critical", 1000));
}

static void test_tcp_check_and_failures_before_critical(void **state)
{
    (void)state;
    int port;
    int lfd = rt_listen(&port);
    char body[512];
    snprintf(body, sizeof(body),
             "{\"Name\":\"db\",\"Port\":%d,\"Check\":{\"CheckID\":\"db-tcp\","
             "\"TCP\":\"127.0.0.1:%d\",\"Interval\":\"50ms\",\"Timeout\":\"1s\","
             "\"FailuresBeforeCritical\":3}}",
             port, port);
    rt_resp r;
    assert_int_equal(rt_put(reg.port, "/v1/agent/service/register", body, &r), 0);
    assert_int_equal(r.status, 200);
    wait_status("db-tcp", "passing", 3000);
    close(lfd);
    wait_status("db-tcp", "critical", 3000);
    assert_true(rt_wait_body(reg.port, "/v1/agent/checks", "TCP connect 127.0.0.1", 1000));
    /* back up on the same port */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 64), 0);
    wait_status("db-tcp", "passing", 3000);
    close(fd);
}

static void test_deregister_critical_and_restart(void **state)
{
    (void)state;
    rt_resp r;
    assert_int_equal(
        rt_put(reg.port, "/v1/agent/service/register",
               "{\"Name\":\"gone\",\"Check\":{\"TTL\":\"200ms\",\"Status\":\"passing\","
               "\"DeregisterCriticalServiceAfter\":\"500ms\"}}",
               &r),
        0);
    assert_int_equal(rt_put(reg.port, "/v1/agent/service/register",
                            "{\"Name\":\"stays\",\"Check\":{\"CheckID\":\"stays-ttl\","
                            "\"TTL\":\"1h\",\"Status\":\"passing\"}}",
                            &r),
                     0);
    assert_true(rt_wait_body(reg.port, "/v1/agent/services", "\"gone\"", 100));
    uint64_t end = colony_test_now_ms() + 5000;
    int removed = 0;
    while (!removed && colony_test_now_ms() < end) {
        usleep(50000);
        assert_int_equal(rt_get(reg.port, "/v1/agent/services", &r), 0);
        removed = strstr(r.body, "\"gone\"") == NULL;
    }
    assert_true(removed);
    assert_non_null(strstr(r.body, "\"stays\""));
    /* the remaining check survives a restart, re-armed with its status */
    rt_stop(&reg, SIGKILL);
    rt_start(&reg, NULL);
    assert_string_equal(check_status("stays-ttl"), "passing");
    assert_int_equal(rt_put(reg.port, "/v1/agent/check/fail/stays-ttl?note=down", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(check_status("stays-ttl"), "critical");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ttl_expiry, rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(test_http_check, rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(test_tcp_check_and_failures_before_critical, rt_setup,
                                        rt_teardown),
        cmocka_unit_test_setup_teardown(test_deregister_critical_and_restart, rt_setup,
                                        rt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
