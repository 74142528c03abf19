/* Config reload and watching: exactly the changed keys are reported, with
 * non-reloadable ones kept until restart; an invalid new file keeps the old
 * config; file edits and SIGHUP trigger a (debounced) reload on the loop. */
#include "test_support.h"
#include "config_fixture.h"
#include <signal.h>
#include "core/alloc.h"

typedef struct change {
    char key[64];
    char old_text[64];
    char new_text[64];
    int applied;
} change;

typedef struct recorder {
    change changes[16];
    int count;
    colony_config *cfg; /* to read values from inside the callback */
    int64_t port_seen_in_cb;
} recorder;

static void record(const colony_config_setting *s, const char *old_text, const char *new_text,
                   int applied, void *ud)
{
    recorder *r = ud;
    assert_true(r->count < 16);
    change *c = &r->changes[r->count++];
    snprintf(c->key, sizeof c->key, "%s", s->key);
    snprintf(c->old_text, sizeof c->old_text, "%s", old_text ? old_text : "(null)");
    snprintf(c->new_text, sizeof c->new_text, "%s", new_text ? new_text : "(null)");
    c->applied = applied;
    if (r->cfg) r->port_seen_in_cb = colony_config_get_int(r->cfg, "http.port");
}

static const change *find_change(const recorder *r, const char *key)
{
    for (int i = 0; i < r->count; i++)
        if (strcmp(r->changes[i].key, key) == 0) return &r->changes[i];
    return NULL;
}

static void reload_reports_exactly_the_changes(void **state)
{
    (void)state;
    char dir[64];
    fixture_mkdir(dir, sizeof dir);
    fixture_write(dir, "default.json",
                  "{\"http\": {\"port\": 1000, \"timeout\": \"1s\", \"host\": \"a\"},"
                  " \"name\": \"x\"}");
    colony_config *cfg = colony_config_new(fixture_table, FIXTURE_N);
    colony_config_options o = fixture_options(dir);
    colony_config_error err;
    assert_int_equal(colony_config_load(cfg, &o, &err), 0);
    const char *host_before = colony_config_get_string(cfg, "http.host");

    /* port (not reloadable) and timeout, name (reloadable) change; host is
     * rewritten in the same value; the timeout moves from "1s" to 1000 (the
     * same) in the local layer and then really changes. */
    fixture_write(dir, "default.json",
                  "{\"http\": {\"port\": 2000, \"timeout\": 1000, \"host\": \"a\"},"
                  " \"name\": null, \"log\": {\"verbose\": true}}");
    fixture_write(dir, "local.json", "{\"http\": {\"max_body_bytes\": \"1024kb\"}}");
    recorder r = {.cfg = cfg};
    assert_int_equal(colony_config_reload(cfg, &err, record, &r), 0);
    assert_int_equal(r.count, 3);
    const change *c = find_change(&r, "http.port");
    assert_non_null(c);
    assert_string_equal(c->old_text, "1000");
    assert_string_equal(c->new_text, "2000");
    assert_int_equal(c->applied, 0);
    c = find_change(&r, "name");
    assert_non_null(c);
    assert_string_equal(c->old_text, "x");
    assert_string_equal(c->new_text, "(null)");
    assert_int_equal(c->applied, 1);
    c = find_change(&r, "log.verbose");
    assert_non_null(c);
    assert_string_equal(c->old_text, "false");
    assert_string_equal(c->new_text, "true");
    assert_int_equal(c->applied, 1);
    assert_null(find_change(&r, "http.timeout"));
    assert_null(find_change(&r, "http.max_body_bytes")); /* 1024kb == 1mb default */

    assert_int_equal(colony_config_get_int(cfg, "http.port"), 1000); /* kept until restart */
    assert_int_equal(r.port_seen_in_cb, 1000);
    assert_null(colony_config_get_string(cfg, "name"));
    assert_true(colony_config_get_bool(cfg, "log.verbose"));
    assert_ptr_equal(colony_config_get_string(cfg, "http.host"), host_before); /* unchanged */

    /* An invalid new file: error, nothing reported, old config kept. */
    fixture_write(dir, "local.json", "{\"http\": {\"timeout\": \"soon\"}}");
    r.count = 0;
    assert_int_equal(colony_config_reload(cfg, &err, record, &r), COLONY_EINVAL);
    assert_string_equal(err.key, "http.timeout");
    assert_int_equal(err.line, 1);
    assert_int_equal(r.count, 0);
    assert_int_equal(colony_config_get_int(cfg, "http.timeout"), 1000);
    assert_true(colony_config_get_bool(cfg, "log.verbose"));

    /* A real timeout change; the port change is still pending and reported. */
    fixture_write(dir, "local.json", "{\"http\": {\"timeout\": \"2.5s\"}}");
    assert_int_equal(colony_config_reload(cfg, &err, NULL, NULL), 0); /* cb may be NULL */
    assert_int_equal(colony_config_get_int(cfg, "http.timeout"), 2500);
    fixture_write(dir, "local.json", "{\"http\": {\"timeout\": \"3s\"}}");
    r.count = 0;
    assert_int_equal(colony_config_reload(cfg, &err, record, &r), 0);
    assert_int_equal(r.count, 2);
    c = find_change(&r, "http.timeout");
    assert_non_null(c);
    assert_string_equal(c->old_text, "2500ms");
    assert_string_equal(c->new_text, "3000ms");
    assert_non_null(find_change(&r, "http.port"));
    colony_config_free(cfg);
    fixture_rmdir(dir);
}

typedef struct watch_state {
    volatile int reloads;
} watch_state;

static void on_reloaded(colony_config *cfg, void *ud)
{
    watch_state *w = ud;
    assert_non_null(cfg);
    w->reloads++;
}

/* What a watch test owns lives here, not in the test's stack frame. A failed
 * assertion longjmps out of the test; teardown must still find the loop, the
 * deadline timer and the watched config to close them. Left behind (as they
 * were when they lived on the stack), the watcher's SIGHUP handle stayed in
 * libuv's process-wide signal table pointing at a dead frame, and the next
 * test's raise(SIGHUP) ran it on a loop that no longer existed: one failure
 * became undefined behaviour in the next test (a reload of the dead test's
 * config, or a hang until the ctest timeout). */
typedef struct watch_fixture {
    uv_loop_t loop;
    uv_timer_t deadline; /* a repeating tick: see wait_for */
    uint64_t end;
    int expired;
    colony_config *cfg;
    char dir[64];
    watch_state ws;
} watch_fixture;

static watch_fixture wf;

static int watch_setup(void **state)
{
    (void)state;
    memset(&wf, 0, sizeof wf);
    if (uv_loop_init(&wf.loop)) return -1;
    uv_timer_init(&wf.loop, &wf.deadline);
    return 0;
}

/* Runs after the test whether it passed or failed: frees the config (which
 * detaches its watcher and closes the watcher's handles), then closes the loop,
 * failing on any other handle still open. */
static int watch_teardown(void **state)
{
    (void)state;
    if (wf.cfg) colony_config_free(wf.cfg);
    wf.cfg = NULL;
    uv_close((uv_handle_t *)&wf.deadline, NULL);
    colony_test_loop_close(&wf.loop);
    if (wf.dir[0]) fixture_rmdir(wf.dir);
    unsetenv("HUPTEST_SAMPLING_RATIO");
    return 0;
}

static void on_tick(uv_timer_t *t)
{
    if (uv_now(t->loop) >= wf.end) wf.expired = 1;
}

/* Runs the loop until *flag is set or ms pass. The deadline is a repeating
 * tick: UV_RUN_ONCE runs due timers before it polls, and a one-shot deadline
 * that fired there left the poll with no timer to wake it (this test hung in
 * CI that way; test_support.c says more). */
static int wait_for(volatile int *flag, uint64_t ms)
{
    wf.expired = 0;
    uv_update_time(&wf.loop);
    wf.end = uv_now(&wf.loop) + ms;
    uv_timer_start(&wf.deadline, on_tick, COLONY_TEST_TICK_MS, COLONY_TEST_TICK_MS);
    while (!*flag && !wf.expired)
        uv_run(&wf.loop, UV_RUN_ONCE);
    uv_timer_stop(&wf.deadline);
    return *flag;
}

/* Runs the loop for ms milliseconds (to let a refused reload happen). */
static void run_for(uint64_t ms)
{
    volatile int never = 0;
    wait_for(&never, ms);
}

static void watch_reloads_on_file_change(void **state)
{
    (void)state;
    char *dir = wf.dir;
    fixture_mkdir(wf.dir, sizeof wf.dir);
    fixture_write(dir, "default.json", "{\"http\": {\"timeout\": \"1s\"}}");
    colony_config *cfg = wf.cfg = colony_config_new(fixture_table, FIXTURE_N);
    colony_config_options o = fixture_options(dir);
    colony_config_error err;
    assert_int_equal(colony_config_load(cfg, &o, &err), 0);
    assert_int_equal(colony_config_watch(cfg, &wf.loop, on_reloaded, &wf.ws), 0);
    assert_int_equal(colony_config_watch(cfg, &wf.loop, on_reloaded, &wf.ws), COLONY_EBUSY);

    /* An edit in place (truncate + several writes), as an editor does it. */
    char path[128];
    snprintf(path, sizeof path, "%s/default.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"http\": {", f);
    fflush(f);
    fputs("\"timeout\": \"2s\"}}", f);
    fclose(f);
    assert_true(wait_for(&wf.ws.reloads, 5000));
    assert_int_equal(colony_config_get_int(cfg, "http.timeout"), 2000);
    run_for(300);
    assert_int_equal(wf.ws.reloads, 1); /* one reload for the whole edit */

    /* An invalid edit is refused and the running value stays. */
    fixture_write(dir, "default.json", "{\"http\": {\"timeout\": \"2s\",}}");
    run_for(500);
    assert_int_equal(colony_config_get_int(cfg, "http.timeout"), 2000);
    assert_int_equal(wf.ws.reloads, 1);

    /* A new local.json is a layer too; other files are noise. */
    fixture_write(dir, "notes.txt", "hello");
    fixture_write(dir, "local.json", "{\"http\": {\"timeout\": \"4s\"}}");
    fixture_write(dir, "default.json", "{}");
    for (uint64_t end = colony_test_now_ms() + 5000;
         colony_config_get_int(cfg, "http.timeout") != 4000 && colony_test_now_ms() < end;)
        run_for(50);
    assert_int_equal(colony_config_get_int(cfg, "http.timeout"), 4000);

    colony_config_unwatch(cfg);
    colony_config_unwatch(cfg); /* twice is harmless */
}

static void sighup_reloads(void **state)
{
    (void)state;
    colony_config *cfg = wf.cfg = colony_config_new(fixture_table, FIXTURE_N);
    colony_config_options o = fixture_options("/nonexistent/colony-config"); /* SIGHUP only */
    o.use_environment = 1;
    o.env_prefix = "HUPTEST_";
    colony_config_error err;
    assert_int_equal(colony_config_load(cfg, &o, &err), 0);
    assert_int_equal(colony_config_watch(cfg, &wf.loop, on_reloaded, &wf.ws), 0);

    setenv("HUPTEST_SAMPLING_RATIO", "0.125", 1);
    raise(SIGHUP);
    assert_true(wait_for(&wf.ws.reloads, 5000));
    assert_true(colony_config_get_double(cfg, "sampling.ratio") == 0.125);

    /* A refused reload after SIGHUP keeps the value. */
    setenv("HUPTEST_SAMPLING_RATIO", "2", 1);
    raise(SIGHUP);
    run_for(300);
    assert_true(colony_config_get_double(cfg, "sampling.ratio") == 0.125);
    assert_int_equal(wf.ws.reloads, 1);

    /* Freeing a watched config detaches the watcher; its handles close on the
     * loop (teardown closes the loop and fails on a handle left open). */
    colony_config_free(cfg);
    wf.cfg = NULL;
}

static void watch_needs_a_loaded_config(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    colony_config *cfg = colony_config_new(fixture_table, FIXTURE_N);
    assert_int_equal(colony_config_watch(cfg, &loop, NULL, NULL), COLONY_EINVAL);
    assert_int_equal(colony_config_watch(NULL, &loop, NULL, NULL), COLONY_EINVAL);
    colony_config_unwatch(NULL);
    colony_config_unwatch(cfg);
    colony_config_free(cfg);
    colony_test_loop_close(&loop);
}

/* Every allocation of a reload failed in turn: an error, no leak, and the
 * running config untouched; then the reload goes through. */
static void reload_allocation_failures(void **state)
{
    (void)state;
    char dir[64];
    fixture_mkdir(dir, sizeof dir);
    fixture_write(dir, "default.json", "{\"name\": \"old\", \"http\": {\"port\": 1}}");
    colony_config *cfg = colony_config_new(fixture_table, FIXTURE_N);
    colony_config_options o = fixture_options(dir);
    colony_config_error err;
    assert_int_equal(colony_config_load(cfg, &o, &err), 0);
    fixture_write(dir, "default.json", "{\"name\": \"new\", \"http\": {\"port\": 2}}");
    int done = 0;
    for (long n = 0; n < 10000 && !done; n++) {
        recorder r = {.cfg = NULL};
        colony__alloc_fail_after(n);
        int rc = colony_config_reload(cfg, &err, record, &r);
        colony__alloc_fail_reset();
        if (rc == 0) {
            done = 1;
            assert_int_equal(r.count, 2);
            break;
        }
        assert_int_equal(rc, COLONY_ENOMEM);
        assert_int_equal(r.count, 0);
        assert_string_equal(colony_config_get_string(cfg, "name"), "old");
    }
    assert_true(done);
    assert_string_equal(colony_config_get_string(cfg, "name"), "new");
    assert_int_equal(colony_config_get_int(cfg, "http.port"), 1);

    /* colony_config_watch under the same torture: fails cleanly or works. */
    for (long n = 0; n < 100; n++) {
        uv_loop_t loop;
        assert_int_equal(uv_loop_init(&loop), 0);
        colony__alloc_fail_after(n);
        int rc = colony_config_watch(cfg, &loop, NULL, NULL);
        colony__alloc_fail_reset();
        colony_config_unwatch(cfg);
        colony_test_loop_close(&loop);
        if (rc == 0) break;
    }
    colony_config_free(cfg);
    fixture_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reload_reports_exactly_the_changes),
        cmocka_unit_test(reload_allocation_failures),
        cmocka_unit_test_setup_teardown(watch_reloads_on_file_change, watch_setup, watch_teardown),
        cmocka_unit_test_setup_teardown(sighup_reloads, watch_setup, watch_teardown),
        cmocka_unit_test(watch_needs_a_loaded_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
