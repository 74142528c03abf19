/* colony_service_run when the service cannot listen: the shutdown hooks still
 * run (they release what the service set up before run), the client from
 * colony_service_client() is closed, the loop closes cleanly and run returns 1.
 * The listen address is a unix socket in a folder that does not exist. */
#include <string.h>
#include "colony/log.h"
#include "colony/service.h"
#include "test_support.h"

typedef struct hook_state {
    int ran;
    uv_timer_t timer; /* an asynchronous hook: done() runs from a timer */
    void (*done)(colony_service *);
    colony_service *svc;
} hook_state;

static void hook_timer_closed(uv_handle_t *h)
{
    hook_state *hs = h->data;
    hs->done(hs->svc);
}

static void hook_timer_fired(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, hook_timer_closed);
}

static void async_hook(colony_service *svc, void (*done)(colony_service *), void *ud)
{
    hook_state *hs = ud;
    hs->ran++;
    hs->done = done;
    hs->svc = svc;
    uv_timer_init(colony_service_loop(svc), &hs->timer);
    hs->timer.data = hs;
    uv_timer_start(&hs->timer, hook_timer_fired, 1, 0);
}

static void never_started(colony_service *svc, void *ud)
{
    (void)svc;
    *(int *)ud = 1;
}

static colony_service *service_on_bad_address(void)
{
    static char *argv[] = {"lifecycle-test", NULL};
    int exit_code = 0;
    colony_service_options so = {.name = "lifecycle-test",
                                 .argc = 1,
                                 .argv = argv,
                                 .config_dir = "/nonexistent-colony-config",
                                 .listen = "unix:/nonexistent-colony-dir/service.sock"};
    colony_service *svc = colony_service_new(&so, stderr, &exit_code);
    assert_non_null(svc);
    return svc;
}

/* The hooks run (asynchronously too), the client is closed (LeakSanitizer
 * would report it), started callbacks do not run, and the default loop was
 * closed: the one uv_default_loop() gives now has no handle left open. */
static void cannot_listen_runs_hooks_and_closes_loop(void **state)
{
    (void)state;
    colony_service *svc = service_on_bad_address();
    hook_state first = {0}, second = {0};
    int started = 0;
    assert_int_equal(colony_service_on_shutdown(svc, async_hook, &first), 0);
    assert_int_equal(colony_service_on_shutdown(svc, async_hook, &second), 0);
    assert_int_equal(colony_service_on_started(svc, never_started, &started), 0);
    assert_non_null(colony_service_client(svc));
    assert_int_equal(colony_service_run(svc), 1);
    assert_int_equal(first.ran, 1);
    assert_int_equal(second.ran, 1);
    assert_int_equal(started, 0);
    colony_test_loop_close(uv_default_loop());
}

/* A service with nothing extra also exits 1 and leaves a closed loop. */
static void cannot_listen_plain_service(void **state)
{
    (void)state;
    colony_service *svc = service_on_bad_address();
    assert_int_equal(colony_service_run(svc), 1);
    colony_test_loop_close(uv_default_loop());
}

int main(void)
{
    colony_log_set_level(COLONY_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cannot_listen_runs_hooks_and_closes_loop),
        cmocka_unit_test(cannot_listen_plain_service),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
