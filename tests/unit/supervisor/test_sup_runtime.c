/* The runtime in-process, with real children: dependency order, an exit code
 * in stop_exit_codes left stopped, a crash loop errored, shutdown closing
 * every handle (also pipes a background leftover holds, killing it) (a leaked handle or allocation
 * fails the test), and every allocation failure while building the runtime handled. */
#include "test_support.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "supervisor/pidfile.h"
#include "supervisor/runtime.h"

static char state_dir[64];

static int setup(void **st)
{
    (void)st;
    snprintf(state_dir, sizeof(state_dir), "/tmp/colony-sup-XXXXXX");
    if (!mkdtemp(state_dir)) return -1;
    return colony__sup_state_dir_init(state_dir);
}

static int teardown(void **st)
{
    (void)st;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", state_dir);
    return system(cmd);
}

static const char *file =
    "{\"apps\": [\n"
    " {\"name\": \"last\", \"cmd\": \"exec sleep 30\", \"depends_on\": \"first\"},\n"
    " {\"name\": \"first\", \"cmd\": \"exec sleep 30\", \"instances\": 2},\n"
    " {\"name\": \"done\", \"cmd\": \"exit 3\", \"stop_exit_codes\": 3},\n"
    " {\"name\": \"loop\", \"cmd\": \"exit 1\", \"max_restarts\": 2}\n"
    "]}";

static int build(uv_loop_t *loop, sup **out)
{
    sup_ecosystem eco;
    colony_config_error err;
    int rc = colony__sup_ecosystem_parse("t.json", "/tmp", file, strlen(file), NULL, &eco, &err);
    if (rc) return rc;
    sup_options o = {.state_dir = state_dir};
    rc = colony__sup_new(loop, &eco, &o, out);
    colony__sup_ecosystem_free(&eco); /* taken on success: already empty */
    return rc;
}

static void on_done(sup *s, void *ud)
{
    (void)s;
    *(int *)ud = 1;
}

static sup_status status_of(sup *s, const char *app, int i)
{
    for (size_t a = 0; a < s->napps; a++)
        if (strcmp(s->apps[a].conf->name, app) == 0) return s->apps[a].instances[i]->status;
    return SUP_WAITING;
}

static int settled(sup *s)
{
    return status_of(s, "done", 0) == SUP_STOPPED && status_of(s, "loop", 0) == SUP_ERRORED &&
           status_of(s, "last", 0) == SUP_ONLINE;
}

static void runs_and_stops(void **st)
{
    (void)st;
    uv_loop_t loop;
    uv_loop_init(&loop);
    sup *s;
    assert_int_equal(build(&loop, &s), 0);
    /* Start order: first (two instances) before last. */
    assert_string_equal(s->apps[0].conf->name, "first");
    colony__sup_start(s);
    uint64_t deadline = colony_test_now_ms() + 10000;
    while (!settled(s) && colony_test_now_ms() < deadline)
        colony_test_run_once(&loop);
    assert_true(settled(s));
    assert_true(s->apps[0].instances[0]->pid > 0);
    assert_true(s->apps[0].instances[1]->pid != s->apps[0].instances[0]->pid);
    assert_int_equal(s->apps[2].instances[0]->last_exit_code, 3);
    assert_int_equal(s->apps[3].instances[0]->restart.restarts, 1);
    int pid_first = s->apps[0].instances[0]->pid;
    char pidfile[PATH_MAX];
    snprintf(pidfile, sizeof(pidfile), "%s/pids/first-0.pid", state_dir);
    assert_int_equal(access(pidfile, F_OK), 0);
    /* ps */
    json_t *ps = colony__sup_ps(s);
    assert_int_equal(json_array_size(json_object_get(ps, "apps")), 5);
    json_decref(ps);
    /* A user's stop of an unknown app, then shutdown. */
    assert_int_equal(colony__sup_stop(s, "nosuch"), COLONY_ENOENT);
    int done = 0;
    colony__sup_shutdown(s, on_done, &done);
    assert_int_equal(colony__sup_stop(s, "all"), COLONY_ESHUTDOWN);
    assert_true(colony_test_run_until(&loop, &done, 10000));
    assert_int_equal(kill(pid_first, 0), -1); /* reaped and gone */
    assert_int_not_equal(access(pidfile, F_OK), 0);
    colony__sup_free(s);
    colony_test_loop_close(&loop);
}

/* An instance that exits leaving a background process that holds its output
 * pipe: shutdown does not wait for it forever, and kills it. */
static void leftover_holding_the_pipe(void **st)
{
    (void)st;
    char text[512], bgfile[128];
    snprintf(bgfile, sizeof(bgfile), "%s/bg.pid", state_dir);
    snprintf(text, sizeof(text),
             "{\"apps\": [{\"name\": \"leaky\", \"cmd\": \"sleep 30 & echo $! > %s; exit 0\",\n"
             "  \"stop_exit_codes\": 0}]}",
             bgfile);
    sup_ecosystem eco;
    colony_config_error err;
    assert_int_equal(
        colony__sup_ecosystem_parse("t.json", "/tmp", text, strlen(text), NULL, &eco, &err), 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    sup *s;
    sup_options o = {.state_dir = state_dir};
    assert_int_equal(colony__sup_new(&loop, &eco, &o, &s), 0);
    colony__sup_start(s);
    uint64_t deadline = colony_test_now_ms() + 10000;
    while (status_of(s, "leaky", 0) != SUP_STOPPED && colony_test_now_ms() < deadline)
        colony_test_run_once(&loop);
    assert_int_equal(status_of(s, "leaky", 0), SUP_STOPPED);
    assert_int_equal(s->open_runs, 1); /* the pipes, held by sleep */
    FILE *f = fopen(bgfile, "r");
    assert_non_null(f);
    int bg = 0;
    assert_int_equal(fscanf(f, "%d", &bg), 1);
    fclose(f);
    uint64_t start;
    assert_int_equal(colony__sup_proc_starttime(bg, &start), 0);
    int done = 0;
    colony__sup_shutdown(s, on_done, &done);
    assert_true(colony_test_run_until(&loop, &done, 5000));
    colony__sup_free(s);
    colony_test_loop_close(&loop);
    for (int i = 0; i < 100 && colony__sup_proc_starttime(bg, &start) == 0; i++)
        usleep(10000);
    assert_int_not_equal(colony__sup_proc_starttime(bg, &start), 0);
}

/* Every allocation failure while building: refused, and what was opened closes. */
static void allocation_failures(void **st)
{
    (void)st;
    int failed = 0;
    for (long n = 0; n < 500; n++) {
        uv_loop_t loop;
        uv_loop_init(&loop);
        sup *s = NULL;
        colony__alloc_fail_after(n);
        int rc = build(&loop, &s);
        long failures = colony__alloc_failures();
        colony__alloc_fail_reset();
        if (s) {
            int done = 0;
            colony__sup_shutdown(s, on_done, &done);
            assert_true(colony_test_run_until(&loop, &done, 5000));
            colony__sup_free(s);
        }
        colony_test_loop_close(&loop);
        if (rc == 0 && failures == 0) break;
        if (rc) {
            assert_int_equal(rc, COLONY_ENOMEM);
            failed++;
        }
    }
    assert_true(failed > 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runs_and_stops),
        cmocka_unit_test(leftover_holding_the_pipe),
        cmocka_unit_test(allocation_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
