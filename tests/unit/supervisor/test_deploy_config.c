/* colony deploy's side of the ecosystem file and of ssh: PM2's deploy
 * section reads as PM2 means it (host string or array, port as a number or
 * PM2's string, ssh_options, env, the default ref); a missing environment and
 * every mistake name file and line; `colony up` no longer warns about the
 * section but refuses a broken one; values reach the remote shell quoted
 * (a quote, $(...), a blank) and ssh's argv has no option a host could
 * smuggle in; allocation failures are handled. */
#include "test_support.h"
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "colony/colony.h"
#include "core/alloc.h"
#include "supervisor/deploy.h"
#include "supervisor/ecosystem.h"

/* PM2's documented deploy section, as its ecosystem.json sample has it. */
static const char *pm2_file =
    "{\n"
    "  \"apps\": [{\"name\": \"api\", \"script\": \"api.js\"}],\n"
    "  \"deploy\": {\n"
    "    \"production\": {\n"
    "      \"user\": \"node\",\n"
    "      \"host\": \"212.83.163.1\",\n"
    "      \"ref\": \"origin/master\",\n"
    "      \"repo\": \"git@github.com:repo.git\",\n"
    "      \"path\": \"/var/www/production/\",\n"
    "      \"post-deploy\": \"npm install && pm2 reload ecosystem.json --env production\"\n"
    "    },\n"
    "    \"dev\": {\n"
    "      \"user\": \"node\", \"host\": [\"10.0.0.1\", \"10.0.0.2\"], \"port\": \"2222\",\n"
    "      \"key\": \"/keys/id\", \"ssh_options\": [\"StrictHostKeyChecking=no\", "
    "\"Compression=yes\"],\n"
    "      \"repo\": \"/srv/repo.git\", \"path\": \"/var/www/dev\",\n"
    "      \"env\": {\"NODE_ENV\": \"dev\", \"WORKERS\": 3}, \"forward-agent\": \"yes\"\n"
    "    }\n"
    "  }\n"
    "}\n";

static int parse(const char *text, const char *env, sup_deploy_env *d, colony_config_error *err)
{
    return colony__sup_deploy_parse("eco.json", text, strlen(text), env, d, err);
}

static void pm2_section_reads_as_pm2_means_it(void **state)
{
    (void)state;
    sup_deploy_env d;
    colony_config_error err;
    assert_int_equal(parse(pm2_file, "production", &d, &err), 0);
    assert_int_equal(d.nhosts, 1);
    assert_string_equal(d.hosts[0], "212.83.163.1");
    assert_string_equal(d.user, "node");
    assert_string_equal(d.ref, "origin/master");
    assert_string_equal(d.path, "/var/www/production"); /* trailing '/' dropped */
    assert_non_null(strstr(d.post_deploy, "pm2 reload"));
    assert_null(d.pre_deploy);
    assert_int_equal(d.port, 0);
    colony__sup_deploy_env_free(&d);

    assert_int_equal(parse(pm2_file, "dev", &d, &err), 0);
    assert_int_equal(d.nhosts, 2);
    assert_string_equal(d.hosts[1], "10.0.0.2");
    assert_int_equal(d.port, 2222);
    assert_string_equal(d.key, "/keys/id");
    assert_int_equal(d.nssh_options, 2);
    assert_string_equal(d.ssh_options[1], "Compression=yes");
    assert_string_equal(d.ref, "origin/main"); /* the default */
    assert_int_equal(d.nenv, 2);
    assert_string_equal(d.env[0], "NODE_ENV=dev");
    assert_string_equal(d.env[1], "WORKERS=3");
    colony__sup_deploy_env_free(&d);
}

static void expect_error(const char *text, const char *env, int line, const char *key,
                         const char *reason)
{
    sup_deploy_env d;
    colony_config_error err;
    assert_int_equal(parse(text, env, &d, &err), COLONY_EINVAL);
    if (err.line != line || strcmp(err.key, key) != 0 || !strstr(err.reason, reason))
        fail_msg("wanted %d %s \"%s\", got %d %s \"%s\"", line, key, reason, err.line, err.key,
                 err.reason);
    assert_string_equal(err.file, "eco.json");
    assert_null(d.hosts);
}

static void mistakes_name_their_line(void **state)
{
    (void)state;
    expect_error(pm2_file, "staging", 3, "deploy",
                 "no environment \"staging\" (the file has: production, dev)");
    expect_error("{\"apps\": []}", "production", 0, "", "no \"deploy\" section");
    const char *head = "{\"deploy\": {\"p\": {\n"
                       " \"repo\": \"r\", \"path\": \"/srv\",\n";
    char text[512];
    struct {
        const char *line3, *key, *reason;
    } cases[] = {
        {"\"host\": \"-oProxyCommand=sh\"", "deploy.p.host", "not starting with '-'"},
        {"\"host\": \"a b\"", "deploy.p.host", "no blanks"},
        {"\"host\": []", "deploy.p.host", "no hosts"},
        {"\"host\": \"h\", \"user\": \"-l\"", "deploy.p.user", "a user name"},
        {"\"host\": \"h\", \"port\": 70000", "deploy.p.port", "1 to 65535"},
        {"\"host\": \"h\", \"port\": \"22x\"", "deploy.p.port", "1 to 65535"},
        {"\"host\": \"h\", \"ssh_options\": [\"-F/x\"]", "deploy.p.ssh_options", "NAME=VALUE"},
        {"\"host\": \"h\", \"env\": {\"A-B\": 1}", "deploy.p.env.A-B", "not a shell variable"},
        {"\"host\": \"h\", \"env\": {\"A\": []}", "deploy.p.env.A", "a string, a number"},
        {"\"host\": \"h\", \"ref\": \"--upload-pack=x\"", "deploy.p.ref", "cannot start with '-'"},
        {"\"host\": \"h\", \"post-deploy\": 3", "deploy.p.post-deploy", "expected a string"},
        {"\"host\": \"h\", \"ref\": \"origin/a b\"", "deploy.p.ref", "no blanks"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), "%s %s}}}\n", head, cases[i].line3);
        expect_error(text, "p", 3, cases[i].key, cases[i].reason);
    }
    expect_error("{\"deploy\": {\"p\": {\n\"host\": \"h\",\n \"path\": \"srv\", \"repo\": \"r\"}}}",
                 "p", 3, "deploy.p.path", "absolute");
    expect_error("{\"deploy\": {\"p\": {\n\"host\": \"h\", \"path\": \"/srv\"}}}", "p", 1,
                 "deploy.p", "no \"repo\"");
}

typedef struct warnings {
    int count;
    char key[4][64];
} warnings;

static void on_warn(const char *file, int line, const char *key, const char *reason, void *ud)
{
    (void)file, (void)line, (void)reason;
    warnings *w = ud;
    if (w->count < 4) snprintf(w->key[w->count], sizeof(w->key[0]), "%s", key);
    w->count++;
}

static void colony_up_checks_the_section(void **state)
{
    (void)state;
    warnings w = {0};
    sup_parse_options o = {.ncpu = 2, .warn = on_warn, .warn_ud = &w};
    sup_ecosystem eco;
    colony_config_error err;
    assert_int_equal(
        colony__sup_ecosystem_parse("eco.json", "/srv", pm2_file, strlen(pm2_file), &o, &eco, &err),
        0);
    /* Only PM2's forward-agent, which colony deploy does not act on. */
    assert_int_equal(w.count, 1);
    assert_string_equal(w.key[0], "deploy.dev.forward-agent");
    colony__sup_ecosystem_free(&eco);
    const char *bad = "{\"apps\": [{\"name\": \"a\", \"cmd\": \"true\"}],\n"
                      " \"deploy\": {\"p\": {\"host\": \"h\", \"repo\": \"r\",\n"
                      "   \"path\": \"relative\"}}}";
    assert_int_equal(
        colony__sup_ecosystem_parse("eco.json", "/srv", bad, strlen(bad), &o, &eco, &err),
        COLONY_EINVAL);
    assert_int_equal(err.line, 3);
    assert_string_equal(err.key, "deploy.p.path");
}

/* What sh makes of a quoted word: run it through a real shell. */
static void shell_sees(const char *value)
{
    colony_buf b;
    colony_buf_init(&b, 4096);
    assert_int_equal(colony_buf_append_str(&b, "printf %s "), 0);
    assert_int_equal(colony__sup_shell_quote(&b, value), 0);
    FILE *p = popen(b.data, "r");
    assert_non_null(p);
    char out[256] = "";
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    assert_int_equal(WEXITSTATUS(pclose(p)), 0);
    assert_string_equal(out, value);
    colony_buf_free(&b);
}

static void values_reach_the_shell_as_written(void **state)
{
    (void)state;
    shell_sees("plain");
    shell_sees("it's");
    shell_sees("$(touch /tmp/colony-should-not-exist) `id` $HOME");
    shell_sees("a b\tc\nd");
    shell_sees("''\\'\"");
    shell_sees("");
    assert_int_equal(access("/tmp/colony-should-not-exist", F_OK), -1);

    sup_deploy_env d;
    colony_config_error err;
    assert_int_equal(parse(pm2_file, "dev", &d, &err), 0);
    char **argv;
    assert_int_equal(colony__sup_deploy_ssh_argv(&d, d.hosts[0], "echo \"$NODE_ENV\"", &argv), 0);
    const char *want[] = {"ssh",
                          "-o",
                          "BatchMode=yes",
                          "-p",
                          "2222",
                          "-i",
                          "/keys/id",
                          "-o",
                          "StrictHostKeyChecking=no",
                          "-o",
                          "Compression=yes",
                          "-l",
                          "node",
                          "--",
                          "10.0.0.1"};
    size_t n = sizeof(want) / sizeof(want[0]);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(argv[i], want[i]);
    /* One remote word: sh -c with the env exported, then the script. */
    assert_string_equal(argv[n], "sh -c 'NODE_ENV='\\''dev'\\''; export NODE_ENV\n"
                                 "WORKERS='\\''3'\\''; export WORKERS\n"
                                 "echo \"$NODE_ENV\"'");
    assert_null(argv[n + 1]);
    colony__sup_deploy_argv_free(argv);
    colony__sup_deploy_env_free(&d);
}

static void allocation_failures(void **state)
{
    (void)state;
    int failed = 0;
    for (long n = 0; n < 400; n++) {
        sup_deploy_env d;
        colony_config_error err;
        colony__alloc_fail_after(n);
        int rc = parse(pm2_file, "dev", &d, &err);
        char **argv = NULL;
        if (rc == 0) rc = colony__sup_deploy_ssh_argv(&d, d.hosts[0], "true", &argv);
        long failures = colony__alloc_failures();
        colony__alloc_fail_reset();
        colony__sup_deploy_argv_free(argv);
        colony__sup_deploy_env_free(&d);
        if (rc == 0 && failures == 0) break;
        if (rc == 0) continue;
        assert_int_equal(rc, COLONY_ENOMEM);
        failed++;
    }
    assert_true(failed > 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pm2_section_reads_as_pm2_means_it),
        cmocka_unit_test(mistakes_name_their_line),
        cmocka_unit_test(colony_up_checks_the_section),
        cmocka_unit_test(values_reach_the_shell_as_written),
        cmocka_unit_test(allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
