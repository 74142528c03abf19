/* The "shutdown has begun" hook (colony_service_on_stopping): it runs once,
 * when SIGTERM or colony_service_stop starts the drain, after readiness turned
 * false and while a request is still in flight, so a service can answer its
 * long-held requests and the drain does not wait for them (without the hook
 * answering it, the parked request would hold the drain for the whole
 * shutdown_timeout of 10 s). colony_service_discard runs the hooks too. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "colony/service.h"
#include "test_support.h"

typedef struct lifecycle {
    colony_service *svc;
    uv_timer_t stop_timer;
    colony_request *parked; /* the /slow request, unanswered */
    int stopping_calls, shutdown_calls, parked_when_stopping, ready_when_stopping;
    int response_status, use_signal;
} lifecycle;

static lifecycle lc;

static void stop_now(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, NULL);
    colony_service_stop(lc.svc);
    colony_service_stop(lc.svc); /* a second stop starts nothing */
}

/* Parks the request (the stopping hook answers it) and stops the service
 * once the handler has returned. */
static void slow_handler(colony_request *req, void *ud)
{
    (void)ud;
    lc.parked = req;
    if (lc.use_signal) {
        kill(getpid(), SIGTERM);
        return;
    }
    assert_int_equal(uv_timer_init(colony_service_loop(lc.svc), &lc.stop_timer), 0);
    assert_int_equal(uv_timer_start(&lc.stop_timer, stop_now, 1, 0), 0);
}

static void on_stopping(colony_service *svc, void *ud)
{
    (void)svc;
    (void)ud;
    lc.stopping_calls++;
    lc.parked_when_stopping = lc.parked != NULL;
    lc.ready_when_stopping = lc.shutdown_calls == 0;
    if (lc.parked) colony_respond(lc.parked, 503, "text/plain", "stopping", 8);
    lc.parked = NULL;
}

static void on_shutdown(colony_service *svc, void (*done)(colony_service *), void *ud)
{
    (void)ud;
    lc.shutdown_calls++;
    done(svc);
}

static void on_response(colony_client_call *call, int err, const colony_client_response *res,
                        void *ud)
{
    (void)call;
    (void)ud;
    lc.response_status = err ? err : res->status;
}

static void on_started(colony_service *svc, void *ud)
{
    (void)ud;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/slow", colony_service_port(svc));
    colony_client_request r = {.url = url};
    assert_int_equal(
        colony_client_request_send(colony_service_client(svc), &r, on_response, NULL, NULL), 0);
}

static colony_service *new_service(void)
{
    static char *argv[] = {"stopping-test", NULL};
    int exit_code = 0;
    colony_service_options so = {.name = "stopping-test",
                                 .argc = 1,
                                 .argv = argv,
                                 .config_dir = "/nonexistent-colony-config",
                                 .listen = "127.0.0.1:0"};
    colony_service *svc = colony_service_new(&so, stderr, &exit_code);
    assert_non_null(svc);
    memset(&lc, 0, sizeof(lc));
    lc.svc = svc;
    assert_int_equal(colony_service_on_stopping(svc, on_stopping, NULL), 0);
    assert_int_equal(colony_service_on_shutdown(svc, on_shutdown, NULL), 0);
    return svc;
}

static void run_and_check(colony_service *svc)
{
    assert_int_equal(
        colony_router_add(colony_service_router(svc), "GET", "/slow", slow_handler, NULL), 0);
    assert_int_equal(colony_service_on_started(svc, on_started, NULL), 0);
    uint64_t t0 = colony_test_now_ms();
    assert_int_equal(colony_service_run(svc), 0);
    assert_true(colony_test_now_ms() - t0 < 5000); /* the drain did not wait 10 s */
    assert_int_equal(lc.stopping_calls, 1);
    assert_int_equal(lc.parked_when_stopping, 1); /* before in-flight requests finished */
    assert_int_equal(lc.ready_when_stopping, 1);  /* and before the shutdown hooks */
    assert_int_equal(lc.shutdown_calls, 1);
    assert_int_equal(lc.response_status, 503); /* the hook's answer reached the client */
}

static void stop_runs_the_stopping_hook_once_before_the_drain(void **state)
{
    (void)state;
    run_and_check(new_service());
}

static void sigterm_runs_the_stopping_hook(void **state)
{
    (void)state;
    colony_service *svc = new_service();
    lc.use_signal = 1;
    run_and_check(svc);
}

static void discard_runs_the_hooks_and_returns_the_code(void **state)
{
    (void)state;
    colony_service *svc = new_service();
    assert_int_equal(colony_service_discard(svc, 7), 7);
    assert_int_equal(lc.stopping_calls, 1);
    assert_int_equal(lc.shutdown_calls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stop_runs_the_stopping_hook_once_before_the_drain),
        cmocka_unit_test(sigterm_runs_the_stopping_hook),
        cmocka_unit_test(discard_runs_the_hooks_and_returns_the_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
