/* The ecosystem file: PM2's own sample ecosystem.json reads as PM2 runs it
 * (interpreter, env and env_production, instances, names); Colony's keys
 * (depends_on order, port, cmd); durations and PM2 sizes; unknown keys warned;
 * every mistake refused with its file, line and key; allocation failures. */
#include "test_support.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "colony/colony.h"
#include "core/alloc.h"
#include "supervisor/ecosystem.h"

/* PM2's documented sample (two Node.js apps, env and env_production). */
static const char *pm2_sample = "{\n"
                                "  \"apps\" : [{\n"
                                "    \"name\"        : \"worker-app\",\n"
                                "    \"script\"      : \"./worker.js\",\n"
                                "    \"watch\"       : true,\n"
                                "    \"env\": {\n"
                                "      \"NODE_ENV\": \"development\"\n"
                                "    },\n"
                                "    \"env_production\" : {\n"
                                "       \"NODE_ENV\": \"production\"\n"
                                "    }\n"
                                "  },{\n"
                                "    \"name\"       : \"api-app\",\n"
                                "    \"script\"     : \"./api.js\",\n"
                                "    \"instances\"  : 4,\n"
                                "    \"exec_mode\"  : \"cluster\"\n"
                                "  }]\n"
                                "}\n";

typedef struct warnings {
    int count;
    int line[8];
    char key[8][64];
    char reason[8][96];
} warnings;

static void on_warn(const char *file, int line, const char *key, const char *reason, void *ud)
{
    (void)file;
    warnings *w = ud;
    if (w->count < 8) {
        w->line[w->count] = line;
        snprintf(w->key[w->count], sizeof(w->key[0]), "%s", key);
        snprintf(w->reason[w->count], sizeof(w->reason[0]), "%s", reason);
    }
    w->count++;
}

static int parse(const char *text, const char *env, warnings *w, sup_ecosystem *eco,
                 colony_config_error *err)
{
    sup_parse_options o = {.env_name = env, .ncpu = 8, .warn = on_warn, .warn_ud = w};
    return colony__sup_ecosystem_parse("eco.json", "/srv/app", text, strlen(text), &o, eco, err);
}

static const char *env_of(const sup_app *a, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < a->nenv; i++)
        if (strncmp(a->env[i], key, n) == 0 && a->env[i][n] == '=') return a->env[i] + n + 1;
    return NULL;
}

static void pm2_sample_reads_as_pm2_runs_it(void **state)
{
    (void)state;
    warnings w = {0};
    sup_ecosystem eco;
    colony_config_error err;
    assert_int_equal(parse(pm2_sample, NULL, &w, &eco, &err), 0);
    assert_int_equal(eco.napps, 2);
    const sup_app *worker = colony__sup_ecosystem_find(&eco, "worker-app");
    const sup_app *api = colony__sup_ecosystem_find(&eco, "api-app");
    assert_non_null(worker);
    assert_non_null(api);
    /* .js runs under node, from the file's folder, once. */
    assert_int_equal(worker->argc, 2);
    assert_string_equal(worker->argv[0], "node");
    assert_string_equal(worker->argv[1], "./worker.js");
    assert_null(worker->argv[2]);
    assert_string_equal(worker->cwd, "/srv/app");
    assert_int_equal(worker->instances, 1);
    assert_string_equal(env_of(worker, "NODE_ENV"), "development");
    assert_int_equal(api->instances, 4);
    assert_int_equal(api->nenv, 0);
    /* PM2's defaults. */
    assert_int_equal(api->autorestart, 1);
    assert_int_equal(api->max_restarts, 16);
    assert_int_equal(api->min_uptime_ms, 1000);
    assert_int_equal(api->kill_timeout_ms, 1600);
    assert_int_equal(api->restart_delay_ms, 0);
    assert_int_equal(api->exp_backoff_ms, 0);
    /* "watch" is PM2's and not built: a warning with its line, not an error. */
    assert_int_equal(w.count, 1);
    assert_int_equal(w.line[0], 5);
    assert_string_equal(w.key[0], "apps.0.watch");
    assert_non_null(strstr(w.reason[0], "not supported yet"));
    colony__sup_ecosystem_free(&eco);

    /* --env production: env_production over env. */
    memset(&w, 0, sizeof(w));
    assert_int_equal(parse(pm2_sample, "production", &w, &eco, &err), 0);
    worker = colony__sup_ecosystem_find(&eco, "worker-app");
    assert_string_equal(env_of(worker, "NODE_ENV"), "production");
    assert_int_equal(worker->nenv, 1);
    colony__sup_ecosystem_free(&eco);
}

static void colony_keys_and_order(void **state)
{
    (void)state;
    const char *text =
        "{\"apps\": [\n"
        " {\"name\": \"gateway\", \"cmd\": [\"colony\", \"gateway\", \"--listen\", 8000],\n"
        "  \"depends_on\": [\"hello\"]},\n"
        " {\"name\": \"hello\", \"script\": \"hello.py\", \"args\": \"--greeting 'hi there'\",\n"
        "  \"instances\": \"max\", \"env\": {\"PORT\": 3000, \"DEBUG\": true},\n"
        "  \"ready\": \"/ready\", \"depends_on\": \"registry-daemon\",\n"
        "  \"restart_delay\": \"1.5s\", \"exp_backoff_restart_delay\": 100,\n"
        "  \"max_memory_restart\": \"200M\", \"stop_exit_codes\": [0, 3],\n"
        "  \"kill_timeout\": 5000, \"merge_logs\": true, \"cwd\": \"svc\",\n"
        "  \"log_date_format\": \"YYYY-MM-DD HH:mm:ss\", \"frobnicate\": 1},\n"
        " {\"script\": \"/usr/bin/registry-daemon\", \"instances\": -1}\n"
        "]}\n";
    warnings w = {0};
    sup_ecosystem eco;
    colony_config_error err;
    assert_int_equal(parse(text, NULL, &w, &eco, &err), 0);
    assert_int_equal(eco.napps, 3);
    /* Start order: what an app depends on comes first. */
    assert_string_equal(eco.apps[0].name, "registry-daemon");
    assert_string_equal(eco.apps[1].name, "hello");
    assert_string_equal(eco.apps[2].name, "gateway");
    const sup_app *reg = &eco.apps[0], *hello = &eco.apps[1], *gw = &eco.apps[2];
    assert_int_equal(reg->instances, 7); /* -1: every CPU but one */
    assert_null(reg->argv[1]);           /* no interpreter for a file without extension */
    assert_string_equal(reg->argv[0], "/usr/bin/registry-daemon");
    assert_int_equal(hello->instances, 8); /* max: every CPU */
    assert_string_equal(hello->argv[0], "python3");
    assert_string_equal(hello->argv[1], "hello.py");
    assert_string_equal(hello->argv[2], "--greeting");
    assert_string_equal(hello->argv[3], "hi there");
    assert_string_equal(hello->cwd, "/srv/app/svc");
    assert_int_equal(hello->port, 3000);
    assert_string_equal(env_of(hello, "DEBUG"), "true");
    assert_string_equal(hello->ready_path, "/ready");
    assert_int_equal(hello->restart_delay_ms, 1500);
    assert_int_equal(hello->exp_backoff_ms, 100);
    assert_int_equal(hello->max_memory_bytes, 200 * 1024 * 1024);
    assert_int_equal(hello->nstop_exit_codes, 2);
    assert_int_equal(hello->stop_exit_codes[1], 3);
    assert_int_equal(hello->kill_timeout_ms, 5000);
    assert_int_equal(hello->merge_logs, 1);
    assert_string_equal(gw->argv[3], "8000");
    assert_int_equal(gw->port, 0);
    /* Warned: the unknown key, with its line. */
    assert_int_equal(w.count, 1);
    assert_string_equal(w.key[0], "apps.1.frobnicate");
    assert_int_equal(w.line[0], 10);
    assert_non_null(strstr(w.reason[0], "unknown key"));
    colony__sup_ecosystem_free(&eco);
}

typedef struct mistake {
    const char *text;
    int line;
    const char *key;
    const char *reason;
} mistake;

static void mistakes_name_their_line(void **state)
{
    (void)state;
    static const mistake cases[] = {
        {"{\"apps\": [{\"name\": \"a\",\n \"script\": \"a.js\",,}]}", 2, "", ""},
        {"{\"apps\": {}}", 1, "apps", "array of apps"},
        {"{\"apps\": []}", 1, "apps", "no apps"},
        {"{\"procs\": []}", 0, "", "no \"apps\""},
        {"{\"apps\": [{\"name\": \"a\"}]}", 1, "apps.0", "needs \"script\""},
        {"{\"apps\": [\n{\"name\": \"a\", \"script\": \"a.js\",\n \"instances\": \"lots\"}]}", 3,
         "apps.0.instances", "\"max\" or -1"},
        {"{\"apps\": [\n{\"name\": \"a\", \"script\": \"a.js\",\n \"instances\": -2}]}", 3,
         "apps.0.instances", "1 to 1024"},
        {"{\"apps\": [{\"name\": \"a\", \"script\": \"a.js\"},\n{\"name\": \"a\", \"script\": "
         "\"b.js\"}]}",
         2, "apps.1.name", "two apps are named \"a\""},
        {"{\"apps\": [\n{\"name\": \"a\", \"script\": \"a.js\",\n \"depends_on\": [\"nope\"]}]}", 3,
         "apps.0.depends_on", "no app is named \"nope\""},
        {"{\"apps\": [\n{\"name\": \"a\", \"script\": \"a.js\", \"depends_on\": \"b\"},\n"
         "{\"name\": \"b\", \"script\": \"b.js\",\n \"depends_on\": [\"a\"]}]}",
         2, "apps.0.depends_on", "dependency cycle: a -> b -> a"},
        {"{\"apps\": [\n{\"name\": \"a\", \"script\": \"a.js\",\n \"restart_delay\": \"soon\"}]}",
         3, "apps.0.restart_delay", "duration"},
        {"{\"apps\": [\n{\"name\": \"a\", \"script\": \"a.js\",\n \"max_memory_restart\": "
         "\"lots\"}]}",
         3, "apps.0.max_memory_restart", "\"200M\""},
        {"{\"apps\": [\n{\"name\": \"a\", \"script\": \"a.js\",\n \"autorestart\": \"yes\"}]}", 3,
         "apps.0.autorestart", "true or false"},
        {"{\"apps\": [\n{\"name\": \"a b\", \"script\": \"a.js\"}]}", 2, "apps.0.name", "letters"},
        {"{\"apps\": [\n{\"name\": \"a\", \"script\": \"a.js\",\n \"env\": {\"X\": {\"y\": 1}}}]}",
         3, "apps.0.env.X", "a string, a number"},
        {"{\"apps\": [\n{\"name\": \"a\", \"script\": \"a.js\", \"instances\": 2,\n"
         " \"env\": {\"PORT\": 65535}}]}",
         3, "apps.0.env.PORT", "not all valid ports"},
        {"{\"apps\": [\n{\"name\": \"a\", \"script\": \"a.js\",\n \"exec_mode\": \"swarm\"}]}", 3,
         "apps.0.exec_mode", "\"fork\" or \"cluster\""},
        {"{\"apps\": [\n{\"name\": \"a\", \"script\": \"a.js\",\n \"args\": \"'open\"}]}", 3,
         "apps.0.args", "unbalanced quote"},
        {"{\"apps\": [\n{\"name\": \"a\", \"script\": \"a.js\",\n \"stop_exit_codes\": [\"0\"]}]}",
         3, "apps.0.stop_exit_codes", "exit codes"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        warnings w = {0};
        sup_ecosystem eco;
        colony_config_error err;
        int rc = parse(cases[i].text, NULL, &w, &eco, &err);
        if (rc != COLONY_EINVAL || err.line != cases[i].line ||
            strcmp(err.key, cases[i].key) != 0 || !strstr(err.reason, cases[i].reason)) {
            print_error("case %zu: rc %d line %d key '%s' reason '%s'\n", i, rc, err.line, err.key,
                        err.reason);
            fail();
        }
        assert_string_equal(err.file, "eco.json");
        assert_int_equal(eco.napps, 0);
    }
}

static void loading_a_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/colony-eco-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], script[128];
    snprintf(path, sizeof(path), "%s/ecosystem.json", dir);
    snprintf(script, sizeof(script), "%s/run", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"apps\": [{\"name\": \"x\", \"script\": \"run\"}, {\"name\": \"y\", \"script\": "
          "\"npm\", \"args\": [\"start\"]}]}",
          f);
    fclose(f);
    f = fopen(script, "w");
    fclose(f);
    sup_ecosystem eco;
    colony_config_error err;
    assert_int_equal(colony__sup_ecosystem_load(path, NULL, &eco, &err), 0);
    assert_string_equal(eco.dir, dir);
    /* A file of the app's folder runs as ./file; anything else from PATH. */
    assert_string_equal(eco.apps[0].argv[0], "./run");
    assert_string_equal(eco.apps[1].argv[0], "npm");
    colony__sup_ecosystem_free(&eco);
    unlink(script);
    unlink(path);
    assert_int_equal(colony__sup_ecosystem_load(path, NULL, &eco, &err), COLONY_EINVAL);
    assert_string_equal(err.file, path);
    assert_non_null(strstr(err.reason, "cannot read"));
    rmdir(dir);
}

/* Every allocation failure is refused cleanly (LeakSanitizer checks nothing leaks). */
/* max_size / retain (pm2-logrotate's names) and registry: values, defaults,
 * COLONY_REGISTRY_URL in env as the registry, mistakes with their line. */
static void log_and_registry_keys(void **state)
{
    (void)state;
    static const char text[] =
        "{\"apps\": [\n"
        "{\"name\": \"a\", \"script\": \"a.js\", \"max_size\": \"10M\", \"retain\": 3,\n"
        " \"registry\": \"http://127.0.0.1:8500\"},\n"
        "{\"name\": \"b\", \"script\": \"b.js\", \"max_size\": 4096,\n"
        " \"registry\": {\"url\": \"http://r:1\", \"service\": \"bee\"}},\n"
        "{\"name\": \"c\", \"script\": \"c.js\", \"env\": {\"COLONY_REGISTRY_URL\": "
        "\"http://r:2\"}},\n"
        "{\"name\": \"d\", \"script\": \"d.js\"}]}\n";
    warnings w = {0};
    sup_ecosystem eco;
    colony_config_error err;
    assert_int_equal(parse(text, NULL, &w, &eco, &err), 0);
    assert_int_equal(w.count, 0);
    const sup_app *a = colony__sup_ecosystem_find(&eco, "a");
    assert_int_equal(a->log_max_size, 10 * 1024 * 1024);
    assert_int_equal(a->log_retain, 3);
    assert_string_equal(a->registry_url, "http://127.0.0.1:8500");
    assert_null(a->registry_service);
    const sup_app *b = colony__sup_ecosystem_find(&eco, "b");
    assert_int_equal(b->log_max_size, 4096);
    assert_int_equal(b->log_retain, SUP_LOG_RETAIN_DEFAULT);
    assert_string_equal(b->registry_url, "http://r:1");
    assert_string_equal(b->registry_service, "bee");
    assert_string_equal(colony__sup_ecosystem_find(&eco, "c")->registry_url, "http://r:2");
    const sup_app *d = colony__sup_ecosystem_find(&eco, "d");
    assert_null(d->registry_url);
    assert_int_equal(d->log_max_size, SUP_LOG_MAX_SIZE_DEFAULT);
    colony__sup_ecosystem_free(&eco);

    static const struct {
        const char *text, *key, *reason;
    } bad[] = {
        {"{\"apps\": [\n{\"name\": \"a\", \"script\": \"a.js\",\n \"max_size\": \"big\"}]}",
         "apps.0.max_size", "\"200M\""},
        {"{\"apps\": [\n{\"name\": \"a\", \"script\": \"a.js\",\n \"retain\": -1}]}",
         "apps.0.retain", "0 to 1000"},
        {"{\"apps\": [\n{\"name\": \"a\", \"script\": \"a.js\",\n \"registry\": \"r:8500\"}]}",
         "apps.0.registry", "http:// URL"},
        {"{\"apps\": [\n{\"name\": \"a\", \"script\": \"a.js\",\n \"registry\": {\"url\": "
         "\"http://r\", \"service\": \"a b\"}}]}",
         "apps.0.registry", "service name"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&w, 0, sizeof(w));
        assert_int_equal(parse(bad[i].text, NULL, &w, &eco, &err), COLONY_EINVAL);
        assert_int_equal(err.line, 3);
        assert_string_equal(err.key, bad[i].key);
        if (!strstr(err.reason, bad[i].reason)) fail_msg("%s: %s", bad[i].key, err.reason);
    }
}

static void allocation_failures(void **state)
{
    (void)state;
    int failed = 0;
    for (long n = 0; n < 2000; n++) {
        warnings w = {0};
        sup_ecosystem eco;
        colony_config_error err;
        colony__alloc_fail_after(n);
        int rc = parse(pm2_sample, "production", &w, &eco, &err);
        long failures = colony__alloc_failures();
        colony__alloc_fail_reset();
        if (rc == 0) {
            colony__sup_ecosystem_free(&eco);
            if (failures == 0) break;
            continue;
        }
        if (rc != COLONY_ENOMEM) fail_msg("after %ld: %d %s: %s", n, rc, err.key, err.reason);
        assert_int_equal(eco.napps, 0);
        failed++;
    }
    assert_true(failed > 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pm2_sample_reads_as_pm2_runs_it), cmocka_unit_test(colony_keys_and_order),
        cmocka_unit_test(mistakes_name_their_line),        cmocka_unit_test(loading_a_file),
        cmocka_unit_test(log_and_registry_keys),           cmocka_unit_test(allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
