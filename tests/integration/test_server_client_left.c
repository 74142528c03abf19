/* A client that hangs up while its request waits for a deferred, streamed
 * answer (a proxy's shape: head, pieces, end, from a timer later) must not
 * keep the server from shutting down: the request finishes (its on_finish
 * runs) and the closed callback of a graceful shutdown comes. */
#include "test_support.h"
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#include "colony/colony.h"
#include "server_test_util.h"

typedef struct deferred {
    uv_timer_t timer;
    colony_request *req;
} deferred;

static int finished, finish_status;

static void on_finish(colony_request *req, int status, void *ud)
{
    (void)req;
    (void)ud;
    finished++;
    finish_status = status;
}

static void deferred_closed(uv_handle_t *h)
{
    free(h->data);
}

static void answer(uv_timer_t *t)
{
    deferred *d = t->data;
    colony_response_header(d->req, "Content-Length", "5");
    if (colony_response_start(d->req, 200) == 0) {
        colony_response_write(d->req, "hel", 3, NULL, NULL);
        colony_response_write(d->req, "lo", 2, NULL, NULL);
        colony_response_end(d->req);
    }
    t->data = d;
    uv_close((uv_handle_t *)t, deferred_closed);
}

static void handler(colony_request *req, void *ud)
{
    (void)ud;
    colony_request_on_finish(req, on_finish, NULL);
    deferred *d = calloc(1, sizeof(*d));
    d->req = req;
    uv_timer_init(colony_request_loop(req), &d->timer);
    d->timer.data = d;
    uv_timer_start(&d->timer, answer, 200, 0);
}

static void hang_up_early(tclient *t)
{
    tconn *c = tc_connect(t->port);
    TCHECK(t, c != NULL);
    if (!c) return;
    TCHECK(t, tc_send(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    tc_close(c); /* before the answer */
    usleep(400 * 1000);
}

static void client_leaves_then_shutdown_completes(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    int port;
    colony_server *srv = start_server(&loop, NULL, handler, NULL, &port);
    tclient t = {.port = port, .fn = hang_up_early};
    finished = 0;
    run_client(&loop, &t, 5000);
    /* let the deferred answer run into the closed connection */
    for (int i = 0; i < 50 && !finished; i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(finished, 1);
    uint64_t start = colony_test_now_ms();
    stop_server(&loop, srv, 2000); /* fails the test if closed never comes */
    assert_true(colony_test_now_ms() - start < 2500);
    colony_test_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(client_leaves_then_shutdown_completes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
