/* colony registry checks against hostile or broken targets: 200 checks of a
 * server that accepts and never answers do not delay the checks of a closed
 * port; a target that streams an endless body is judged by its status with
 * an output that says the body was cut; checks.max-per-target caps the runs
 * against one target; a bad TCP address or HTTP URL is a 400 with a JSON
 * error at registration. */
#include <jansson.h>
#include "registry_test_util.h"

static const char *check_field(const char *check_id, const char *field, char *out, size_t cap)
{
    rt_resp r;
    out[0] = '\0';
    if (rt_get(reg.port, "/v1/agent/checks", &r) != 0) return out;
    json_t *j = json_loads(r.body, 0, NULL);
    const char *s = json_string_value(json_object_get(json_object_get(j, check_id), field));
    snprintf(out, cap, "%s", s ? s : "");
    json_decref(j);
    return out;
}

/* Counts the checks of service "dead" whose Status is want (from
 * /v1/health/service: /v1/agent/checks with 220 checks is too long for
 * rt_resp). */
static int count_dead(const char *want)
{
    rt_resp r;
    if (rt_get(reg.port, "/v1/health/service/dead", &r) != 0) return -1;
    json_t *j = json_loads(r.body, 0, NULL);
    json_t *checks = json_object_get(json_array_get(j, 0), "Checks");
    size_t i;
    json_t *c;
    int n = 0;
    json_array_foreach(checks, i, c)
    {
        const char *s = json_string_value(json_object_get(c, "Status"));
        if (s && strcmp(s, want) == 0) n++;
    }
    json_decref(j);
    return n;
}

/* Accepts every connection and holds it open without answering. */
static volatile int hold_stop;
static void *hold_server(void *arg)
{
    int lfd = *(int *)arg;
    int fds[512], n = 0;
    while (!hold_stop) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0) continue;
        int fd = accept(lfd, NULL, NULL);
        if (fd >= 0 && n < 512)
            fds[n++] = fd;
        else if (fd >= 0)
            close(fd);
    }
    for (int i = 0; i < n; i++)
        close(fds[i]);
    return NULL;
}

static void test_hanging_checks_do_not_starve_others(void **state)
{
    (void)state;
    int slow_port, dead_port;
    int slow = rt_listen(&slow_port);
    close(rt_listen(&dead_port)); /* nothing listens there any more */
    pthread_t th;
    hold_stop = 0;
    pthread_create(&th, NULL, hold_server, &slow);
    /* 200 checks of the server that never answers, 2 s timeout. */
    size_t cap = 200 * 200 + 256, len = 0;
    char *body = malloc(cap);
    len += (size_t)snprintf(body + len, cap - len, "{\"Name\":\"slow\",\"Checks\":[");
    for (int i = 0; i < 200; i++)
        len += (size_t)snprintf(body + len, cap - len,
                                "%s{\"CheckID\":\"slow-%d\",\"HTTP\":\"http://127.0.0.1:%d/h\","
                                "\"Interval\":\"100ms\",\"Timeout\":\"2s\"}",
                                i ? "," : "", i, slow_port);
    snprintf(body + len, cap - len, "]}");
    rt_resp r;
    assert_int_equal(rt_put(reg.port, "/v1/agent/service/register", body, &r), 0);
    assert_int_equal(r.status, 200);
    free(body);
    usleep(300000); /* the slow checks are all started and hanging */
    /* 20 passing checks of a closed port: they must turn critical at once. */
    char dead[4096];
    len = (size_t)snprintf(dead, sizeof(dead), "{\"Name\":\"dead\",\"Checks\":[");
    for (int i = 0; i < 20; i++) {
        if (i % 2)
            len += (size_t)snprintf(dead + len, sizeof(dead) - len,
                                    ",{\"CheckID\":\"dead-%d\",\"TCP\":\"127.0.0.1:%d\","
                                    "\"Interval\":\"100ms\",\"Timeout\":\"1s\","
                                    "\"Status\":\"passing\"}",
                                    i, dead_port);
        else
            len += (size_t)snprintf(dead + len, sizeof(dead) - len,
                                    "%s{\"CheckID\":\"dead-%d\",\"HTTP\":\"http://127.0.0.1:%d/\","
                                    "\"Interval\":\"100ms\",\"Timeout\":\"1s\","
                                    "\"Status\":\"passing\"}",
                                    i ? "," : "", i, dead_port);
    }
    snprintf(dead + len, sizeof(dead) - len, "]}");
    assert_int_equal(rt_put(reg.port, "/v1/agent/service/register", dead, &r), 0);
    assert_int_equal(r.status, 200);
    uint64_t t0 = colony_test_now_ms(); /* after the commit, however slow the disk */
    int critical = 0;
    while (critical < 20 && colony_test_now_ms() - t0 < 5000) {
        usleep(20000);
        critical = count_dead("critical");
    }
    uint64_t took = colony_test_now_ms() - t0;
    print_message("20 closed-port checks critical after %llu ms beside 200 hanging ones\n",
                  (unsigned long long)took);
    assert_int_equal(critical, 20);
    /* Interval 100 ms (first run within it): a couple of intervals, not the
     * 200 hanging runs of 2 s each that a shared queue would put first. */
    assert_true(took < 600);
    /* /metrics shows the hanging checks waiting, and at most 64 runs at once. */
    assert_int_equal(rt_get(reg.port, "/metrics", &r), 0);
    const char *inflight = strstr(r.body, "\ncolony_registry_checks_inflight ");
    const char *due = strstr(r.body, "\ncolony_registry_checks_due ");
    assert_non_null(inflight);
    assert_non_null(due);
    double n_inflight = atof(inflight + strlen("\ncolony_registry_checks_inflight ")),
           n_due = atof(due + strlen("\ncolony_registry_checks_due "));
    assert_true(n_inflight >= 1 && n_inflight <= 64);
    assert_true(n_due >= 100); /* the slow target's checks take turns */
    hold_stop = 1;
    pthread_join(th, NULL);
    close(slow);
}

static double metric(const char *name)
{
    rt_resp r;
    char needle[128];
    snprintf(needle, sizeof(needle), "\n%s ", name);
    assert_int_equal(rt_get(reg.port, "/metrics", &r), 0);
    const char *p = strstr(r.body, needle);
    assert_non_null(p);
    return atof(p + strlen(needle));
}

/* checks.max-per-target is a setting: with 3, a hanging target holds 3 runs. */
static void test_max_per_target_setting(void **state)
{
    (void)state;
    memset(&reg, 0, sizeof(reg));
    const char *extra[] = {"--checks.max-per-target=3", NULL};
    rt_start(&reg, extra);
    int slow_port;
    int slow = rt_listen(&slow_port);
    pthread_t th;
    hold_stop = 0;
    pthread_create(&th, NULL, hold_server, &slow);
    char body[4096];
    size_t len = (size_t)snprintf(body, sizeof(body), "{\"Name\":\"slow\",\"Checks\":[");
    for (int i = 0; i < 10; i++)
        len += (size_t)snprintf(body + len, sizeof(body) - len,
                                "%s{\"CheckID\":\"slow-%d\",\"HTTP\":\"http://127.0.0.1:%d/\","
                                "\"Interval\":\"50ms\",\"Timeout\":\"5s\"}",
                                i ? "," : "", i, slow_port);
    snprintf(body + len, sizeof(body) - len, "]}");
    rt_resp r;
    assert_int_equal(rt_put(reg.port, "/v1/agent/service/register", body, &r), 0);
    assert_int_equal(r.status, 200);
    double inflight = 0;
    for (int i = 0; i < 100 && inflight < 3; i++) {
        usleep(20000);
        inflight = metric("colony_registry_checks_inflight");
    }
    assert_true(inflight == 3); /* 10 due, 3 hanging runs at once: the cap */
    usleep(200000);
    assert_true(metric("colony_registry_checks_inflight") == 3);
    assert_true(metric("colony_registry_checks_due") == 7);
    hold_stop = 1;
    pthread_join(th, NULL);
    close(slow);
}

/* Answers every request with a 200 head and a chunked body that never ends. */
static void *endless_server(void *arg)
{
    int lfd = *(int *)arg;
    for (int served = 0; served < 3 && !hold_stop;) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0) continue;
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) continue;
        served++;
        char buf[4096];
        if (read(fd, buf, sizeof(buf)) <= 0) {
            close(fd);
            continue;
        }
        const char *head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        char chunk[8192 + 16];
        int h = snprintf(chunk, sizeof(chunk), "2000\r\n");
        memset(chunk + h, 'z', 8192);
        memcpy(chunk + h + 8192, "\r\n", 2);
        size_t clen = (size_t)h + 8194;
        if (send(fd, head, strlen(head), MSG_NOSIGNAL) > 0)
            while (!hold_stop && send(fd, chunk, clen, MSG_NOSIGNAL) > 0) {
            }
        close(fd);
    }
    return NULL;
}

static void test_endless_body(void **state)
{
    (void)state;
    int port;
    int lfd = rt_listen(&port);
    pthread_t th;
    hold_stop = 0;
    pthread_create(&th, NULL, endless_server, &lfd);
    char body[512];
    snprintf(body, sizeof(body),
             "{\"Name\":\"stream\",\"Check\":{\"CheckID\":\"stream-http\","
             "\"HTTP\":\"http://127.0.0.1:%d/\",\"Interval\":\"10s\",\"Timeout\":\"5s\"}}",
             port);
    rt_resp r;
    uint64_t t0 = colony_test_now_ms();
    assert_int_equal(rt_put(reg.port, "/v1/agent/service/register", body, &r), 0);
    assert_int_equal(r.status, 200);
    char status[32], output[8192];
    while (strcmp(check_field("stream-http", "Status", status, sizeof(status)), "passing") != 0 &&
           colony_test_now_ms() - t0 < 15000)
        usleep(20000);
    assert_string_equal(status, "passing");
    assert_true(colony_test_now_ms() - t0 < 12000); /* the first run, not a timeout */
    check_field("stream-http", "Output", output, sizeof(output));
    assert_non_null(strstr(output, ": 200 Output: zzzz"));
    assert_non_null(strstr(output, "response body larger than 4096 bytes"));
    assert_null(strstr(output, "argument list too long"));
    assert_true(strlen(output) <= 4096);
    hold_stop = 1;
    pthread_join(th, NULL);
    close(lfd);
}

static void expect_400(const char *check, const char *needle)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"Name\":\"bad\",\"Check\":%s}", check);
    rt_resp r;
    assert_int_equal(rt_put(reg.port, "/v1/agent/service/register", body, &r), 0);
    if (r.status != 400) fail_msg("%s: got %d %s", check, r.status, r.body);
    json_t *j = json_loads(r.body, 0, NULL);
    assert_non_null(j); /* a JSON error */
    const char *msg = json_string_value(json_object_get(j, "message"));
    if (!msg || !strstr(msg, needle)) fail_msg("%s: message %s lacks %s", check, r.body, needle);
    json_decref(j);
}

static void test_bad_targets_are_400(void **state)
{
    (void)state;
    expect_400("{\"TCP\":\"127.0.0.1:99999\",\"Interval\":\"1s\"}", "1 to 65535");
    expect_400("{\"TCP\":\"127.0.0.1:0\",\"Interval\":\"1s\"}", "1 to 65535");
    expect_400("{\"TCP\":\"127.0.0.1:80abc\",\"Interval\":\"1s\"}", "1 to 65535");
    expect_400("{\"TCP\":\"127.0.0.1:-5\",\"Interval\":\"1s\"}", "1 to 65535");
    expect_400("{\"TCP\":\":8080\",\"Interval\":\"1s\"}", "no host");
    expect_400("{\"TCP\":\"nohostport\",\"Interval\":\"1s\"}", "host:port");
    expect_400("{\"HTTP\":\"https://127.0.0.1/\",\"Interval\":\"1s\"}", "HTTPS");
    expect_400("{\"HTTP\":\"http://127.0.0.1:70000/\",\"Interval\":\"1s\"}", "1..65535");
    expect_400("{\"HTTP\":\"127.0.0.1/\",\"Interval\":\"1s\"}", "http://");
    rt_resp r;
    assert_int_equal(rt_get(reg.port, "/v1/agent/services", &r), 0);
    assert_null(strstr(r.body, "\"bad\"")); /* nothing was registered */
    assert_int_equal(rt_put(reg.port, "/v1/agent/service/register",
                            "{\"Name\":\"good\",\"Check\":{\"TCP\":\"[::1]:65535\","
                            "\"Interval\":\"1s\"}}",
                            &r),
                     0);
    assert_int_equal(r.status, 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hanging_checks_do_not_starve_others, rt_setup,
                                        rt_teardown),
        cmocka_unit_test_setup_teardown(test_endless_body, rt_setup, rt_teardown),
        cmocka_unit_test_teardown(test_max_per_target_setting, rt_teardown),
        cmocka_unit_test_setup_teardown(test_bad_targets_are_400, rt_setup, rt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
