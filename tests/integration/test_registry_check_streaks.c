/* colony registry: FailuresBeforeCritical and SuccessBeforePassing delay
 * status changes. An HTTP server answers the n-th probe from a script
 * (P = 200, W = 429, F = 500) and counts the probes it answered before
 * writing each answer, so the assertions compare the status the registry
 * shows with the number of probes it can have seen, never with elapsed time:
 * the registry cannot have processed more probes than the server answered. */
#include <jansson.h>
#include <stdatomic.h>
#include "registry_test_util.h"

static const char *script; /* status of probe n is script[n], the last one repeats */
static atomic_int answered;
static atomic_int stop_server;

static int scripted_status(int n)
{
    size_t len = strlen(script);
    char c = script[(size_t)n < len ? (size_t)n : len - 1];
    return c == 'P' ? 200 : c == 'W' ? 429 : 500;
}

static void *script_server(void *arg)
{
    int lfd = *(int *)arg;
    while (!atomic_load(&stop_server)) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) continue;
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) continue;
        char buf[4096];
        size_t n = 0;
        ssize_t got;
        struct pollfd q = {.fd = fd, .events = POLLIN};
        while (n < sizeof(buf) - 1 && poll(&q, 1, 1000) > 0 &&
               (got = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0) {
            n += (size_t)got;
            buf[n] = '\0';
            if (strstr(buf, "\r\n\r\n")) break;
        }
        int status = scripted_status(atomic_load(&answered));
        atomic_fetch_add(&answered, 1); /* counted before the registry can see it */
        char resp[160];
        int len =
            snprintf(resp, sizeof(resp),
                     "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", status);
        if (write(fd, resp, (size_t)len) < 0) {
        }
        close(fd);
    }
    return NULL;
}

static void check_status(const char *check_id, char *out, size_t size)
{
    rt_resp r;
    out[0] = '\0';
    if (rt_get(reg.port, "/v1/agent/checks", &r) != 0) return;
    json_t *j = json_loads(r.body, 0, NULL);
    const char *s = json_string_value(json_object_get(json_object_get(j, check_id), "Status"));
    snprintf(out, size, "%s", s ? s : "");
    json_decref(j);
}

/* Polls the check until it shows want; returns the number of probes answered
 * right after it did (an upper bound of the probes the registry had seen).
 * Every observation before that must be `before` when fewer than
 * `before_until` probes had been answered. */
static int wait_for(const char *id, const char *want, const char *before, int before_until,
                    int timeout_ms)
{
    uint64_t end = colony_test_now_ms() + (uint64_t)timeout_ms;
    char status[32];
    while (colony_test_now_ms() < end) {
        check_status(id, status, sizeof(status));
        int seen = atomic_load(&answered);
        if (strcmp(status, want) == 0) return seen;
        if (before && seen < before_until && strcmp(status, before) != 0)
            fail_msg("check %s is %s after %d probes, wanted %s until %d probes", id, status, seen,
                     before, before_until);
        usleep(10000);
    }
    fail_msg("check %s never became %s (%d probes answered)", id, want, atomic_load(&answered));
    return 0;
}

static pthread_t start_server(const char *s, int *port, int *lfd)
{
    script = s;
    atomic_store(&answered, 0);
    atomic_store(&stop_server, 0);
    *lfd = rt_listen(port);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, script_server, lfd), 0);
    return th;
}

static void stop(pthread_t th, int lfd)
{
    atomic_store(&stop_server, 1);
    pthread_join(th, NULL);
    close(lfd);
}

static void register_check(int port, const char *extra)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"Name\":\"web\",\"Port\":%d,\"Check\":{\"CheckID\":\"web-http\","
             "\"HTTP\":\"http://127.0.0.1:%d/health\",\"Interval\":\"200ms\","
             "\"Timeout\":\"2s\",%s}}",
             port, port, extra);
    rt_resp r;
    assert_int_equal(rt_put(reg.port, "/v1/agent/service/register", body, &r), 0);
    assert_int_equal(r.status, 200);
}

/* With FailuresBeforeCritical 3 and SuccessBeforePassing 2, from passing:
 *   probe  1 F  2 F  3 P (streak reset)  4 W  5 F  6 P  7 F  8 W  9 F -> critical
 *   10-13 F  14 P  15 F (resets the success streak)  16 P  17 P -> passing */
static void test_streaks_delay_status_changes(void **state)
{
    (void)state;
    int port, lfd;
    pthread_t th = start_server("FFPWFPFWFFFFFPFPP", &port, &lfd);
    register_check(port, "\"Status\":\"passing\",\"FailuresBeforeCritical\":3,"
                         "\"SuccessBeforePassing\":2");
    int seen = wait_for("web-http", "critical", "passing", 9, 15000);
    assert_true(seen >= 9);
    seen = wait_for("web-http", "passing", "critical", 17, 15000);
    assert_true(seen >= 17);
    /* and the health endpoint agrees */
    assert_true(rt_wait_body(reg.port, "/v1/health/service/web?passing", "web-http", 2000));
    stop(th, lfd);
}

/* Without the settings every result applies at once (Consul's defaults). */
static void test_defaults_apply_at_once(void **state)
{
    (void)state;
    int port, lfd;
    pthread_t th = start_server("PPFFFFFFP", &port, &lfd);
    register_check(port, "\"Status\":\"critical\"");
    int seen = wait_for("web-http", "passing", NULL, 0, 15000);
    assert_true(seen >= 1);
    seen = wait_for("web-http", "critical", NULL, 0, 15000);
    assert_true(seen >= 3);
    /* one success is enough to pass again */
    seen = wait_for("web-http", "passing", "critical", 9, 15000);
    assert_true(seen >= 9);
    stop(th, lfd);
}

/* SuccessBeforePassing from the initial critical status: 3 successes needed. */
static void test_success_before_passing_from_start(void **state)
{
    (void)state;
    int port, lfd;
    pthread_t th = start_server("PPFPPP", &port, &lfd);
    register_check(port, "\"SuccessBeforePassing\":3");
    int seen = wait_for("web-http", "passing", "critical", 6, 15000);
    assert_true(seen >= 6);
    stop(th, lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_streaks_delay_status_changes, rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(test_defaults_apply_at_once, rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(test_success_before_passing_from_start, rt_setup,
                                        rt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
