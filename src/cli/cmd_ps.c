/* colony ps | stop | start | restart | reload | scale | logs | down: the supervisor's control
 * API, over the Unix socket in its state folder (./.colony by default). */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include "cli/commands.h"
#include "cli/http.h"
#include "colony/error.h"
#include "colony/http_client.h"

typedef struct ctl_args {
    const char *state_dir;
    const char *target; /* app or "all" */
    const char *count;  /* scale's N */
    int json;
    int lines;
    int follow;
} ctl_args;

static void usage(FILE *out, const char *cmd)
{
    if (strcmp(cmd, "ps") == 0)
        fprintf(out, "usage: colony ps [--json] [--state-dir DIR]\n"
                     "Lists the supervised instances: name, instance, pid, status, uptime,\n"
                     "restarts, CPU and memory.\n");
    else if (strcmp(cmd, "logs") == 0)
        fprintf(out, "usage: colony logs [APP] [--lines N] [-f] [--state-dir DIR]\n"
                     "Prints the last N (15) lines of each log file of APP, or without APP\n"
                     "of the combined log (logs/colony.log: every app's lines); -f (--follow)\n"
                     "then prints new lines as they come, until Ctrl-C or the supervisor stops.\n");
    else if (strcmp(cmd, "down") == 0)
        fprintf(out, "usage: colony down [--state-dir DIR]\n"
                     "Stops every app, dependents first, and the supervisor; waits for it.\n");
    else if (strcmp(cmd, "reload") == 0)
        fprintf(out, "usage: colony reload APP|all [--state-dir DIR]\n"
                     "Replaces each instance by a new process without downtime, one at a\n"
                     "time: the new one starts beside the old with the same PORT (the app\n"
                     "shares it with SO_REUSEPORT), and once it listens the old one gets\n"
                     "SIGTERM. Waits for the end; exit 1 if a replacement was not ready\n"
                     "within listen_timeout (the old instance then keeps serving).\n");
    else if (strcmp(cmd, "scale") == 0)
        fprintf(out, "usage: colony scale APP N [--state-dir DIR]\n"
                     "Starts instances up to N, or stops the highest indexes above N.\n");
    else
        fprintf(out, "usage: colony %s APP|all [--state-dir DIR]\n", cmd);
    fprintf(out, "The state folder is ./.colony unless --state-dir or $COLONY_STATE_DIR.\n");
}

/* 0, 1 for --help (printed), or 2 for bad arguments (printed). */
static int parse_args(int argc, char **argv, int want_target, ctl_args *a)
{
    memset(a, 0, sizeof(*a));
    a->state_dir = getenv("COLONY_STATE_DIR");
    a->lines = 15;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--state-dir") == 0 && i + 1 < argc)
            a->state_dir = argv[++i];
        else if (strcmp(s, "--json") == 0 && strcmp(argv[0], "ps") == 0)
            a->json = 1;
        else if (strcmp(s, "--lines") == 0 && i + 1 < argc && strcmp(argv[0], "logs") == 0) {
            a->lines = atoi(argv[++i]);
            if (a->lines < 1 || a->lines > 10000) {
                fprintf(stderr, "colony logs: --lines is 1 to 10000\n");
                return 2;
            }
        } else if ((strcmp(s, "-f") == 0 || strcmp(s, "--follow") == 0) &&
                   strcmp(argv[0], "logs") == 0) {
            a->follow = 1;
        } else if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            usage(stdout, argv[0]);
            return 1;
        } else if (s[0] != '-' && want_target && !a->target)
            a->target = s;
        else if (s[0] != '-' && want_target && strcmp(argv[0], "scale") == 0 && !a->count)
            a->count = s;
        else {
            fprintf(stderr, "colony %s: unexpected argument '%s'\n", argv[0], s);
            usage(stderr, argv[0]);
            return 2;
        }
    }
    if ((want_target == 2 && !a->target) || (strcmp(argv[0], "scale") == 0 && !a->count)) {
        usage(stderr, argv[0]);
        return 2;
    }
    return 0;
}

/* http+unix://<percent-encoded socket path><path> */
static int control_url(const ctl_args *a, const char *path, char *url, size_t size)
{
    char dir[PATH_MAX];
    const char *state = a->state_dir ? a->state_dir : ".colony";
    if (state[0] == '/')
        snprintf(dir, sizeof(dir), "%s", state);
    else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof(cwd))) return -1;
        if ((size_t)snprintf(dir, sizeof(dir), "%.2048s/%.2000s", cwd, state) >= sizeof(dir))
            return -1;
    }
    size_t n = (size_t)snprintf(url, size, "http+unix://");
    char sock[PATH_MAX + 16];
    snprintf(sock, sizeof(sock), "%s/control.sock", dir);
    for (const char *p = sock; *p && n + 4 < size; p++) {
        if (*p == '/' || *p == '%' || *p == ':' || *p == ' ')
            n += (size_t)snprintf(url + n, size - n, "%%%02X", (unsigned char)*p);
        else
            url[n++] = *p;
    }
    int w = snprintf(url + n, size - n, "%s", path);
    return w < 0 || (size_t)w >= size - n ? -1 : 0;
}

/* One call to the supervisor; the exit code for a failure (printed), else 0. */
static int call(const char *cmd, const ctl_args *a, const char *method, const char *path,
                cli_http_response *res)
{
    char url[PATH_MAX * 3 + 256];
    if (control_url(a, path, url, sizeof(url)) != 0) {
        fprintf(stderr, "colony %s: the state folder path is too long\n", cmd);
        return 1;
    }
    cli_http_request req = {.method = method, .url = url};
    if (cli_http(&req, res) != 0) {
        fprintf(stderr, "colony %s: no supervisor answers in %s (is 'colony up' running?)\n", cmd,
                a->state_dir ? a->state_dir : ".colony");
        return 1;
    }
    return 0;
}

static void format_uptime(long long ms, char *buf, size_t size)
{
    long long s = ms / 1000;
    if (s < 60)
        snprintf(buf, size, "%llds", s);
    else if (s < 3600)
        snprintf(buf, size, "%lldm", s / 60);
    else if (s < 86400)
        snprintf(buf, size, "%lldh", s / 3600);
    else
        snprintf(buf, size, "%lldD", s / 86400);
}

static void format_memory(long long bytes, char *buf, size_t size)
{
    if (bytes >= 1024 * 1024)
        snprintf(buf, size, "%.1fmb", (double)bytes / (1024.0 * 1024.0));
    else
        snprintf(buf, size, "%.1fkb", (double)bytes / 1024.0);
}

static int print_table(const char *body)
{
    json_error_t jerr;
    json_t *doc = json_loads(body, 0, &jerr);
    json_t *apps = json_object_get(doc, "apps");
    if (!json_is_array(apps)) {
        fprintf(stderr, "colony ps: the supervisor answered something else than a list\n");
        json_decref(doc);
        return 1;
    }
    printf("%-20s %-4s %-8s %-16s %-7s %-8s %-6s %s\n", "name", "id", "pid", "status", "uptime",
           "restarts", "cpu", "memory");
    size_t i;
    json_t *row;
    json_array_foreach(apps, i, row)
    {
        char up[32] = "0", mem[32] = "0b", pid[16] = "-", cpu[16];
        const char *status = json_string_value(json_object_get(row, "status"));
        long long p = json_integer_value(json_object_get(row, "pid"));
        if (p) {
            snprintf(pid, sizeof(pid), "%lld", p);
            format_uptime(json_integer_value(json_object_get(row, "uptime_ms")), up, sizeof(up));
            format_memory(json_integer_value(json_object_get(row, "memory")), mem, sizeof(mem));
        }
        snprintf(cpu, sizeof(cpu), "%.0f%%", json_number_value(json_object_get(row, "cpu")));
        printf("%-20s %-4lld %-8s %-16s %-7s %-8lld %-6s %s\n",
               json_string_value(json_object_get(row, "name")),
               json_integer_value(json_object_get(row, "instance")), pid, status ? status : "?", up,
               json_integer_value(json_object_get(row, "restarts")), cpu, mem);
    }
    json_decref(doc);
    return 0;
}

int colony_cli_ps(int argc, char **argv)
{
    ctl_args a;
    int rc = parse_args(argc, argv, 0, &a);
    if (rc) return rc == 1 ? 0 : rc;
    cli_http_response res;
    if ((rc = call("ps", &a, "GET", "/v1/ps", &res))) return rc;
    if (res.status != 200) {
        cli_http_print_status("ps", &res);
        rc = 1;
    } else if (a.json) {
        printf("%s\n", res.body);
    } else {
        rc = print_table(res.body);
    }
    cli_http_response_free(&res);
    return rc;
}

static int action(int argc, char **argv, const char *verb)
{
    ctl_args a;
    int rc = parse_args(argc, argv, 2, &a);
    if (rc) return rc == 1 ? 0 : rc;
    char path[256];
    snprintf(path, sizeof(path), "/v1/apps/%s/%s", a.target, verb);
    cli_http_response res;
    if ((rc = call(verb, &a, "POST", path, &res))) return rc;
    if (res.status == 200) {
        json_t *doc = json_loads(res.body, 0, NULL);
        printf("%s %s: %lld instance%s\n", verb, a.target,
               json_integer_value(json_object_get(doc, "instances")),
               json_integer_value(json_object_get(doc, "instances")) == 1 ? "" : "s");
        json_decref(doc);
    } else {
        cli_http_print_status(verb, &res);
        rc = res.status == 404 ? 2 : 1;
    }
    cli_http_response_free(&res);
    return rc;
}

int colony_cli_stop(int argc, char **argv)
{
    return action(argc, argv, "stop");
}

int colony_cli_start(int argc, char **argv)
{
    return action(argc, argv, "start");
}

int colony_cli_restart(int argc, char **argv)
{
    return action(argc, argv, "restart");
}

/* Polls ps until no reload of the target runs; prints how each went. */
static int wait_reload(const ctl_args *a)
{
    for (int tick = 0; tick < 36000; tick++) { /* 1 hour at most */
        cli_http_response res;
        int rc = call("reload", a, "GET", "/v1/ps", &res);
        if (rc) return rc;
        json_t *doc = res.status == 200 ? json_loads(res.body, 0, NULL) : NULL;
        cli_http_response_free(&res);
        json_t *reloads = json_object_get(doc, "reloads");
        if (!doc) {
            fprintf(stderr, "colony reload: the supervisor's answer is not readable\n");
            return 1;
        }
        int running = 0, failed = 0;
        const char *name;
        json_t *r;
        json_object_foreach(reloads, name, r)
        {
            if (strcmp(a->target, "all") != 0 && strcmp(a->target, name) != 0) continue;
            const char *state = json_string_value(json_object_get(r, "state"));
            running |= state && strcmp(state, "running") == 0;
            failed |= state && strcmp(state, "failed") == 0;
        }
        if (!running) {
            json_object_foreach(reloads, name, r)
            {
                if (strcmp(a->target, "all") != 0 && strcmp(a->target, name) != 0) continue;
                const char *state = json_string_value(json_object_get(r, "state"));
                fprintf(state && strcmp(state, "failed") == 0 ? stderr : stdout,
                        "colony reload: %s\n", json_string_value(json_object_get(r, "message")));
            }
            json_decref(doc);
            return failed ? 1 : 0;
        }
        json_decref(doc);
        usleep(100 * 1000);
    }
    fprintf(stderr, "colony reload: still running after an hour\n");
    return 1;
}

int colony_cli_reload(int argc, char **argv)
{
    ctl_args a;
    int rc = parse_args(argc, argv, 2, &a);
    if (rc) return rc == 1 ? 0 : rc;
    char path[256];
    snprintf(path, sizeof(path), "/v1/apps/%s/reload", a.target);
    cli_http_response res;
    if ((rc = call("reload", &a, "POST", path, &res))) return rc;
    if (res.status != 202) {
        cli_http_print_status("reload", &res);
        rc = res.status == 404 ? 2 : 1;
        cli_http_response_free(&res);
        return rc;
    }
    cli_http_response_free(&res);
    return wait_reload(&a);
}

int colony_cli_scale(int argc, char **argv)
{
    ctl_args a;
    int rc = parse_args(argc, argv, 2, &a);
    if (rc) return rc == 1 ? 0 : rc;
    char *end;
    long n = strtol(a.count, &end, 10);
    if (*end || n < 0 || n > 1024) {
        fprintf(stderr, "colony scale: N is 0 to 1024, not '%s'\n", a.count);
        return 2;
    }
    char path[256];
    snprintf(path, sizeof(path), "/v1/apps/%s/scale?instances=%ld", a.target, n);
    cli_http_response res;
    if ((rc = call("scale", &a, "POST", path, &res))) return rc;
    if (res.status == 200) {
        json_t *doc = json_loads(res.body, 0, NULL);
        printf("scale %s: %lld -> %ld instance%s\n", a.target,
               json_integer_value(json_object_get(doc, "before")), n, n == 1 ? "" : "s");
        json_decref(doc);
    } else {
        cli_http_print_status("scale", &res);
        rc = res.status == 404 || res.status == 400 ? 2 : 1;
    }
    cli_http_response_free(&res);
    return rc;
}

/* ---- logs -f: a streamed response, printed as it comes ---- */

typedef struct follow_state {
    int status, err, done;
} follow_state;

static int follow_head(colony_client_call *call, const colony_client_response *res, void *ud)
{
    (void)call;
    ((follow_state *)ud)->status = res->status;
    return 0;
}

static void follow_data(colony_client_call *call, const char *data, size_t len, void *ud)
{
    (void)call;
    follow_state *st = ud;
    if (st->status == 200) {
        fwrite(data, 1, len, stdout);
        fflush(stdout);
    } else {
        fwrite(data, 1, len, stderr);
    }
}

static void follow_done(colony_client_call *call, int err, const colony_client_response *res,
                        void *ud)
{
    (void)call;
    (void)res;
    follow_state *st = ud;
    st->err = err;
    st->done = 1;
}

static int follow_logs(const char *url)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) return 1;
    colony_client_options o;
    memset(&o, 0, sizeof(o));
    colony_client_options_init(&o);
    o.read_timeout_ms = 365ULL * 24 * 3600 * 1000; /* quiet apps may say nothing for hours */
    o.total_timeout_ms = 0;
    colony_client *client = colony_client_new(&loop, &o);
    follow_state st = {0};
    colony_client_request r;
    memset(&r, 0, sizeof(r));
    r.url = url;
    r.head_cb = follow_head;
    r.data_cb = follow_data;
    int rc =
        client ? colony_client_request_send(client, &r, follow_done, &st, NULL) : COLONY_ENOMEM;
    if (rc == 0) uv_run(&loop, UV_RUN_DEFAULT);
    if (client) colony_client_close(client, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (rc || (st.err && st.status == 0)) {
        fprintf(stderr, "colony logs: no supervisor answers (is 'colony up' running?)\n");
        return 1;
    }
    if (st.status != 200) return st.status == 404 ? 2 : 1;
    return 0;
}

int colony_cli_logs(int argc, char **argv)
{
    ctl_args a;
    int rc = parse_args(argc, argv, 1, &a);
    if (rc) return rc == 1 ? 0 : rc;
    char path[256];
    snprintf(path, sizeof(path), "/v1/logs?lines=%d%s%s%s", a.lines, a.target ? "&app=" : "",
             a.target ? a.target : "", a.follow ? "&follow=1" : "");
    if (a.follow) {
        char url[PATH_MAX * 3 + 256];
        if (control_url(&a, path, url, sizeof(url)) != 0) return 1;
        return follow_logs(url);
    }
    cli_http_response res;
    if ((rc = call("logs", &a, "GET", path, &res))) return rc;
    if (res.status == 200)
        fwrite(res.body, 1, res.len, stdout);
    else {
        cli_http_print_status("logs", &res);
        rc = res.status == 404 ? 2 : 1;
    }
    cli_http_response_free(&res);
    return rc;
}

/* Asks the supervisor to stop and waits (at most 60 s) until it has. */
int colony_cli_down(int argc, char **argv)
{
    ctl_args a;
    int rc = parse_args(argc, argv, 0, &a);
    if (rc) return rc == 1 ? 0 : rc;
    cli_http_response res;
    if ((rc = call("down", &a, "POST", "/v1/down", &res))) return rc;
    int status = res.status;
    cli_http_response_free(&res);
    if (status != 202) {
        fprintf(stderr, "colony down: the supervisor answered %d\n", status);
        return 1;
    }
    char sock[PATH_MAX + 16];
    snprintf(sock, sizeof(sock), "%s/control.sock", a.state_dir ? a.state_dir : ".colony");
    for (int i = 0; i < 1200; i++) {
        if (access(sock, F_OK) != 0) {
            printf("every app stopped\n");
            return 0;
        }
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "colony down: the supervisor is still stopping after 60 s\n");
    return 1;
}
