/* The broker client under allocation failure (core/alloc.h's injection):
 * making a client, publishing and subscribing fail with COLONY_ENOMEM or
 * work, a failed call never calls back, and closing frees everything (LSan
 * fails the test on a leak). Nothing listens on the port: every call ends
 * with a refused connection, so no broker is needed. Also the argument
 * checks of the public functions. */
#include "test_support.h"
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "colony/broker_client.h"
#include "colony/error.h"
#include "core/alloc.h"

static uv_loop_t loop;
static char url[64];

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

static int published, closed;

static void on_published(int err, const colony_broker_reply *r, void *ud)
{
    (void)r;
    (void)ud;
    assert_true(err < 0);
    published++;
}

static void on_closed(void *ud)
{
    (void)ud;
    closed = 1;
}

static colony_broker_verdict handler(colony_broker_msg *m, void *ud)
{
    (void)m;
    (void)ud;
    return COLONY_BROKER_ACK;
}

/* One round with the nth allocation failing; 1 once nothing failed. */
static int round_with_failure(long n)
{
    colony_broker_client_options o;
    colony_broker_client_options_init(&o);
    o.url = url;
    o.retry_min_ms = 5;
    o.retry_max_ms = 10;
    published = closed = 0;
    colony__alloc_fail_reset();
    colony__alloc_fail_once_after(n);
    colony_broker_client *c = colony_broker_client_new(&loop, &o);
    int sent = 0;
    if (c) {
        const char *headers[] = {"a", "b", NULL};
        colony_broker_message m = {.stream = "s 1",
                                   .data = "{\"x\":[1,2]}",
                                   .json = 1,
                                   .headers = headers,
                                   .idempotency_key = "k"};
        int rc = colony_broker_publish(c, &m, on_published, NULL);
        assert_true(rc == 0 || rc == COLONY_ENOMEM);
        sent += rc == 0;
        colony_broker_message t = {.topic = "t", .data = "text"};
        rc = colony_broker_publish(c, &t, on_published, NULL);
        assert_true(rc == 0 || rc == COLONY_ENOMEM);
        sent += rc == 0;
        rc = colony_broker_subscribe(
            c, &(colony_broker_sub_options){.stream = "s", .group = "g", .handler = handler}, NULL);
        assert_true(rc == 0 || rc == COLONY_ENOMEM);
        colony_test_run_until(&loop, &(int){0}, 30); /* polls fail and back off */
        colony_broker_client_close(c, on_closed, NULL);
        assert_true(colony_test_run_until(&loop, &closed, 5000));
        assert_int_equal(published, sent);
    }
    int clean = colony__alloc_failures() == 0;
    colony__alloc_fail_reset();
    return clean;
}

static void test_allocation_failures(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", free_port());
    long n = 0;
    for (; n < 400; n++)
        if (round_with_failure(n)) break;
    assert_true(n > 10 && n < 400); /* went through every allocation of a round */
    colony_test_loop_close(&loop);
}

static void test_arguments(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_null(colony_broker_client_new(&loop, &(colony_broker_client_options){.url = "ftp://x"}));
    assert_null(colony_broker_client_new(NULL, NULL));
    colony_broker_client *c = colony_broker_client_new(&loop, NULL); /* the default URL */
    assert_non_null(c);
    colony_broker_message none = {.data = "x"};
    assert_int_equal(colony_broker_publish(c, &none, NULL, NULL), COLONY_EINVAL);
    colony_broker_message bin = {.stream = "s", .data = "\xff\xfe", .len = 2};
    assert_int_equal(colony_broker_publish(c, &bin, NULL, NULL), COLONY_EINVAL);
    colony_broker_message odd = {
        .stream = "s", .data = "x", .headers = (const char *[]){"only-a-name", NULL}};
    assert_int_equal(colony_broker_publish(c, &odd, NULL, NULL), COLONY_EINVAL);
    assert_int_equal(colony_broker_subscribe(c, &(colony_broker_sub_options){.stream = "s"}, NULL),
                     COLONY_EINVAL);
    assert_int_equal(
        colony_broker_subscribe(c,
                                &(colony_broker_sub_options){
                                    .stream = "s", .group = "g", .handler = handler, .start = "7"},
                                NULL),
        COLONY_EINVAL);
    closed = 0;
    colony_broker_client_close(c, on_closed, NULL);
    assert_int_equal(closed, 0); /* never inside the call */
    assert_true(colony_test_run_until(&loop, &closed, 5000));
    colony_test_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
