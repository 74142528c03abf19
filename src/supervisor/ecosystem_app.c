/* One app of the ecosystem file (ecosystem_parse.h): its keys with PM2's
 * defaults, Colony's own (depends_on, port, ready), its env for --env NAME,
 * its argv and cwd. */
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include "core/alloc.h"
#include "supervisor/ecosystem_parse.h"

/* ---- one app ---- */

typedef struct app_src {
    const json_t *script, *cmd, *args, *interpreter, *interpreter_args;
    const json_t *env, *env_chosen, *instances, *port;
} app_src;

void colony__sup_eco_app_free(sup_app *a)
{
    colony__free(a->name);
    colony__sup_strv_free(a->argv);
    colony__free(a->cwd);
    colony__sup_strv_free(a->env);
    colony__free(a->ready_path);
    colony__free(a->stop_exit_codes);
    colony__free(a->out_file);
    colony__free(a->error_file);
    colony__free(a->log_date_format);
    colony__free(a->registry_url);
    colony__free(a->registry_service);
    colony__sup_strv_free(a->depends_on);
    memset(a, 0, sizeof(*a));
}

static void app_defaults(sup_app *a)
{
    memset(a, 0, sizeof(*a));
    a->instances = 1;
    a->autorestart = 1;
    a->max_restarts = 16;
    a->min_uptime_ms = 1000;
    a->kill_timeout_ms = 1600;
    a->listen_timeout_ms = 3000;
    a->log_max_size = SUP_LOG_MAX_SIZE_DEFAULT;
    a->log_retain = SUP_LOG_RETAIN_DEFAULT;
}

/* PM2's interpreter by extension; NULL runs the script itself. */
static const char *interpreter_for(const char *script)
{
    static const char *const map[][2] = {
        {".js", "node"},       {".mjs", "node"},   {".cjs", "node"}, {".py", "python3"},
        {".sh", "bash"},       {".rb", "ruby"},    {".php", "php"},  {".pl", "perl"},
        {".coffee", "coffee"}, {".ts", "ts-node"},
    };
    const char *dot = strrchr(script, '.');
    const char *slash = strrchr(script, '/');
    if (!dot || (slash && dot < slash)) return NULL;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(dot, map[i][0]) == 0) return map[i][1];
    return NULL;
}

static int valid_name(const char *s)
{
    if (!*s || strlen(s) > 64 || s[0] == '.') return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return 0;
    return 1;
}

/* Keys PM2 knows that Colony accepts without acting on them yet. */
static const char *const accepted_unsupported[] = {
    "watch",
    "ignore_watch",
    "watch_options",
    "wait_ready",
    "shutdown_with_message",
    "source_map_support",
    "instance_var",
    "pid_file",
    "log_file",
    "log_type",
    "time",
    "disable_logs",
    "vizion",
    "autostart",
    "cron_restart",
    "increment_var",
    "namespace",
    "treekill",
    "filter_env",
    "append_env_to_name",
    "force",
    "post_update",
    "combine_logs_file",
    "exec_interpreter",
    "pmx",
    "automation",
    "version",
};

static int is_accepted_unsupported(const char *key)
{
    for (size_t i = 0; i < sizeof(accepted_unsupported) / sizeof(accepted_unsupported[0]); i++)
        if (strcmp(key, accepted_unsupported[i]) == 0) return 1;
    return 0;
}

static int read_exit_codes(parse_ctx *c, sup_app *a, const json_t *v)
{
    const json_t *one = v;
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (n > MAX_LIST) return fail(c, "more than %d exit codes", MAX_LIST);
    colony__free(a->stop_exit_codes);
    a->nstop_exit_codes = 0;
    if (!(a->stop_exit_codes = colony__calloc(n ? n : 1, sizeof(int)))) return nomem(c);
    for (size_t i = 0; i < n; i++) {
        if (json_is_array(v)) one = json_array_get(v, i);
        if (!json_is_integer(one) || json_integer_value(one) < 0 || json_integer_value(one) > 255)
            return fail(c, "expected exit codes (0 to 255), one or an array");
        a->stop_exit_codes[a->nstop_exit_codes++] = (int)json_integer_value(one);
    }
    return 0;
}

static int read_depends(parse_ctx *c, sup_app *a, const json_t *v)
{
    if (json_is_string(v)) {
        if (colony__sup_strv_push_str(&a->depends_on, &a->ndepends_on, json_string_value(v)))
            return nomem(c);
        return 0;
    }
    if (!json_is_array(v)) return fail(c, "expected an app name or an array of app names");
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item)) return fail(c, "item %zu: expected an app name", i);
        int rc =
            colony__sup_strv_push_str(&a->depends_on, &a->ndepends_on, json_string_value(item));
        if (rc == COLONY_E2BIG) return fail(c, "more than %d dependencies", MAX_LIST);
        if (rc) return nomem(c);
    }
    return 0;
}

static int registry_url_ok(const char *url)
{
    return strncmp(url, "http://", 7) == 0 && url[7] && strlen(url) < 400;
}

/* "registry": "http://127.0.0.1:8500", or {"url": ..., "service": ...}: the
 * Consul-API registry the app's instances register with. */
static int read_registry(parse_ctx *c, sup_app *a, const json_t *v)
{
    const json_t *url = json_is_object(v) ? json_object_get(v, "url") : v;
    const json_t *service = json_is_object(v) ? json_object_get(v, "service") : NULL;
    if (!json_is_string(url) || !registry_url_ok(json_string_value(url)))
        return fail(c, "expected an http:// URL, or {\"url\": URL, \"service\": NAME}");
    if (service && (!json_is_string(service) || !valid_name(json_string_value(service))))
        return fail(c, "service: expected a service name");
    int rc = colony__sup_read_string(c, url, &a->registry_url);
    return rc || !service ? rc : colony__sup_read_string(c, service, &a->registry_service);
}

/* Without a "registry" key, COLONY_REGISTRY_URL in the app's env names it. */
static int registry_from_env(parse_ctx *c, sup_app *a)
{
    if (a->registry_url) return 0;
    for (size_t i = 0; i < a->nenv; i++) {
        if (strncmp(a->env[i], "COLONY_REGISTRY_URL=", 20) != 0) continue;
        const char *url = a->env[i] + 20;
        if (!registry_url_ok(url)) return 0; /* empty or not http: the app's business */
        if (!(a->registry_url = colony__strdup(url))) return nomem(c);
    }
    return 0;
}

/* Reads one key of app number idx into a (or src for keys resolved later). */
static int read_key(parse_ctx *c, size_t idx, sup_app *a, app_src *src, const char *key,
                    const json_t *v)
{
    set_path(c, idx, key);
    if (strcmp(key, "name") == 0) {
        int rc = colony__sup_read_string(c, v, &a->name);
        if (!rc && !valid_name(a->name))
            return fail(c, "a name is letters, digits, '-', '_' and '.' (at most 64)");
        return rc;
    }
    if (strcmp(key, "script") == 0) {
        if (!json_is_string(v) || !*json_string_value(v)) return fail(c, "expected a file to run");
        src->script = v;
        return 0;
    }
    if (strcmp(key, "cmd") == 0) {
        if (!(json_is_array(v) && json_array_size(v)) &&
            !(json_is_string(v) && *json_string_value(v)))
            return fail(c, "expected a command line: an array (argv) or a string for /bin/sh -c");
        src->cmd = v;
        return 0;
    }
    if (strcmp(key, "args") == 0) return src->args = v, 0;
    if (strcmp(key, "interpreter") == 0 || strcmp(key, "exec_interpreter") == 0) {
        if (!json_is_string(v) || !*json_string_value(v)) return fail(c, "expected a program name");
        return src->interpreter = v, 0;
    }
    if (strcmp(key, "interpreter_args") == 0 || strcmp(key, "node_args") == 0)
        return src->interpreter_args = v, 0;
    if (strcmp(key, "cwd") == 0) return colony__sup_read_string(c, v, &a->cwd);
    if (strcmp(key, "env") == 0) {
        if (!json_is_object(v)) return fail(c, "expected an object of variables");
        return src->env = v, 0;
    }
    if (strncmp(key, "env_", 4) == 0) {
        if (!json_is_object(v)) return fail(c, "expected an object of variables");
        if (c->opts->env_name && strcmp(key + 4, c->opts->env_name) == 0) src->env_chosen = v;
        return 0;
    }
    if (strcmp(key, "instances") == 0) return src->instances = v, 0;
    if (strcmp(key, "exec_mode") == 0) {
        static const char *const modes[] = {"fork", "fork_mode", "cluster", "cluster_mode"};
        for (size_t i = 0; json_is_string(v) && i < 4; i++)
            if (strcmp(json_string_value(v), modes[i]) == 0) return 0;
        return fail(c, "expected \"fork\" or \"cluster\"");
    }
    if (strcmp(key, "port") == 0) return src->port = v, 0;
    if (strcmp(key, "ready") == 0) {
        if (!json_is_string(v) || json_string_value(v)[0] != '/')
            return fail(c, "expected a path such as \"/ready\" (GET answering 200 means ready)");
        return colony__sup_read_string(c, v, &a->ready_path);
    }
    if (strcmp(key, "autorestart") == 0) return colony__sup_read_bool(c, v, &a->autorestart);
    if (strcmp(key, "merge_logs") == 0 || strcmp(key, "combine_logs") == 0)
        return colony__sup_read_bool(c, v, &a->merge_logs);
    if (strcmp(key, "max_restarts") == 0)
        return colony__sup_read_count(c, v, 0, INT_MAX, &a->max_restarts);
    if (strcmp(key, "min_uptime") == 0) return colony__sup_read_duration(c, v, &a->min_uptime_ms);
    if (strcmp(key, "restart_delay") == 0)
        return colony__sup_read_duration(c, v, &a->restart_delay_ms);
    if (strcmp(key, "exp_backoff_restart_delay") == 0)
        return colony__sup_read_duration(c, v, &a->exp_backoff_ms);
    if (strcmp(key, "kill_timeout") == 0)
        return colony__sup_read_duration(c, v, &a->kill_timeout_ms);
    if (strcmp(key, "listen_timeout") == 0)
        return colony__sup_read_duration(c, v, &a->listen_timeout_ms);
    if (strcmp(key, "max_memory_restart") == 0)
        return colony__sup_read_size(c, v, &a->max_memory_bytes);
    if (strcmp(key, "stop_exit_codes") == 0) return read_exit_codes(c, a, v);
    if (strcmp(key, "out_file") == 0 || strcmp(key, "output") == 0)
        return colony__sup_read_string(c, v, &a->out_file);
    if (strcmp(key, "error_file") == 0 || strcmp(key, "err_file") == 0 || strcmp(key, "error") == 0)
        return colony__sup_read_string(c, v, &a->error_file);
    if (strcmp(key, "log_date_format") == 0)
        return colony__sup_read_string(c, v, &a->log_date_format);
    /* pm2-logrotate's names: "10M", "1G", bytes; retain: rotated files kept. */
    if (strcmp(key, "max_size") == 0) return colony__sup_read_size(c, v, &a->log_max_size);
    if (strcmp(key, "retain") == 0)
        return colony__sup_read_count(c, v, 0, SUP_LOG_RETAIN_MAX, &a->log_retain);
    if (strcmp(key, "depends_on") == 0) return read_depends(c, a, v);
    if (strcmp(key, "registry") == 0) return read_registry(c, a, v);
    if (is_accepted_unsupported(key))
        warn(c, "accepted, not supported yet");
    else
        warn(c, "unknown key, ignored");
    return 0;
}

static int push_env(parse_ctx *c, sup_app *a, const char *key, const char *value)
{
    char buf[8192];
    int n = snprintf(buf, sizeof(buf), "%s=%s", key, value);
    if (n < 0 || (size_t)n >= sizeof(buf)) return fail(c, "variable %s is too long", key);
    /* A later layer (env_<name>) replaces the same key. */
    size_t klen = strlen(key);
    for (size_t i = 0; i < a->nenv; i++) {
        if (strncmp(a->env[i], key, klen) == 0 && a->env[i][klen] == '=') {
            char *copy = colony__strdup(buf);
            if (!copy) return nomem(c);
            colony__free(a->env[i]);
            a->env[i] = copy;
            return 0;
        }
    }
    int rc = colony__sup_strv_push_str(&a->env, &a->nenv, buf);
    if (rc == COLONY_E2BIG) return fail(c, "more than %d variables", MAX_LIST);
    return rc ? nomem(c) : 0;
}

static int read_env(parse_ctx *c, size_t idx, sup_app *a, const json_t *env, const char *key)
{
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)env, name, v)
    {
        char path[96];
        snprintf(path, sizeof(path), "%s.%s", key, name);
        set_path(c, idx, path);
        char buf[64];
        const char *text;
        if (!*name || strchr(name, '=')) return fail(c, "not a variable name");
        if (json_is_null(v)) continue;
        if (colony__sup_scalar_text(v, buf, sizeof(buf), &text))
            return fail(c, "expected a string, a number or a boolean");
        int rc = push_env(c, a, name, text);
        if (rc) return rc;
    }
    return 0;
}

static int ncpu(const sup_parse_options *o)
{
    if (o->ncpu > 0) return o->ncpu;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* instances: n >= 1; 0 or "max": one per CPU; -1: one per CPU but one (PM2). */
static int resolve_instances(parse_ctx *c, size_t idx, sup_app *a, const json_t *v)
{
    if (!v) return 0;
    set_path(c, idx, "instances");
    long long n;
    if (json_is_string(v) && strcmp(json_string_value(v), "max") == 0)
        n = 0;
    else if (json_is_integer(v))
        n = json_integer_value(v);
    else
        return fail(c, "expected a number, \"max\" or -1");
    if (n == 0)
        n = ncpu(c->opts);
    else if (n == -1)
        n = ncpu(c->opts) > 1 ? ncpu(c->opts) - 1 : 1;
    if (n < 1 || n > MAX_INSTANCES)
        return fail(c, "expected 1 to %d, \"max\" (0) or -1", MAX_INSTANCES);
    a->instances = (int)n;
    return 0;
}

static int resolve_port(parse_ctx *c, size_t idx, sup_app *a, const json_t *v)
{
    long long port = 0;
    if (v) {
        set_path(c, idx, "port");
        if (!json_is_integer(v)) return fail(c, "expected a port number");
        port = json_integer_value(v);
    } else {
        for (size_t i = 0; i < a->nenv; i++) {
            if (strncmp(a->env[i], "PORT=", 5) != 0) continue;
            char *end;
            port = strtoll(a->env[i] + 5, &end, 10);
            if (*end) port = 0; /* not a number: the app's business */
            set_path(c, idx, "env.PORT");
        }
    }
    if (port == 0 && !v) return 0;
    if (port < 1 || port + a->instances - 1 > 65535)
        return fail(c, "ports %lld to %lld are not all valid ports", port, port + a->instances - 1);
    a->port = (int)port;
    return 0;
}

/* Whether dir/file names an existing file. */
static int exists_in(const char *dir, const char *file)
{
    char path[PATH_MAX];
    if (file[0] == '/') return access(file, F_OK) == 0;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path)) return 0;
    return access(path, F_OK) == 0;
}

static int build_argv(parse_ctx *c, size_t idx, sup_app *a, const app_src *s)
{
    int rc = 0;
    set_path(c, idx, NULL);
    if (s->script && s->cmd) {
        set_path(c, idx, "cmd");
        return fail(c, "give \"script\" or \"cmd\", not both");
    }
    if (!s->script && !s->cmd) return fail(c, "an app needs \"script\" (or \"cmd\")");
    if (s->cmd) {
        set_path(c, idx, "cmd");
        if (json_is_string(s->cmd)) {
            if ((rc = colony__sup_strv_push_str(&a->argv, &a->argc, "/bin/sh")) ||
                (rc = colony__sup_strv_push_str(&a->argv, &a->argc, "-c")) ||
                (rc = colony__sup_strv_push_str(&a->argv, &a->argc, json_string_value(s->cmd))))
                return nomem(c);
        } else if ((rc = colony__sup_read_words(c, s->cmd, &a->argv, &a->argc))) {
            return rc;
        }
    } else {
        const char *script = json_string_value(s->script);
        const char *interp =
            s->interpreter ? json_string_value(s->interpreter) : interpreter_for(script);
        if (interp && strcmp(interp, "none") == 0) interp = NULL;
        if (interp) {
            if (colony__sup_strv_push_str(&a->argv, &a->argc, interp)) return nomem(c);
            set_path(c, idx, "interpreter_args");
            if (s->interpreter_args &&
                (rc = colony__sup_read_words(c, s->interpreter_args, &a->argv, &a->argc)))
                return rc;
        }
        /* A script run by itself: a file of its folder, else a command on PATH. */
        char buf[PATH_MAX];
        const char *cwd = a->cwd ? a->cwd : c->dir;
        if (!interp && !strchr(script, '/') && exists_in(cwd, script)) {
            snprintf(buf, sizeof(buf), "./%s", script);
            script = buf;
        }
        if (colony__sup_strv_push_str(&a->argv, &a->argc, script)) return nomem(c);
    }
    set_path(c, idx, "args");
    if (s->args && (rc = colony__sup_read_words(c, s->args, &a->argv, &a->argc))) return rc;
    if (!a->name) {
        /* PM2 names an unnamed app after its script, without the extension. */
        const char *from = s->script ? json_string_value(s->script) : a->argv[0];
        const char *base = strrchr(from, '/');
        base = base ? base + 1 : from;
        size_t n = strcspn(base, ".");
        if (!(a->name = colony__strndup(base, n ? n : strlen(base)))) return nomem(c);
        set_path(c, idx, s->script ? "script" : "cmd");
        if (!valid_name(a->name)) return fail(c, "cannot name the app after it: give \"name\"");
    }
    return 0;
}

static int resolve_cwd(parse_ctx *c, size_t idx, sup_app *a)
{
    if (!a->cwd) return (a->cwd = colony__strdup(c->dir)) ? 0 : nomem(c);
    if (a->cwd[0] == '/') return 0;
    char path[PATH_MAX];
    set_path(c, idx, "cwd");
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", c->dir, a->cwd) >= sizeof(path))
        return fail(c, "path too long");
    char *copy = colony__strdup(path);
    if (!copy) return nomem(c);
    colony__free(a->cwd);
    a->cwd = copy;
    return 0;
}

int colony__sup_eco_parse_app(parse_ctx *c, size_t idx, const json_t *obj, sup_app *a)
{
    app_defaults(a);
    set_path(c, idx, NULL);
    if (!json_is_object(obj)) return fail(c, "an app is an object");
    app_src src;
    memset(&src, 0, sizeof(src));
    const char *key;
    const json_t *v;
    int rc;
    json_object_foreach((json_t *)obj, key, v)
    {
        if ((rc = read_key(c, idx, a, &src, key, v))) return rc;
    }
    if ((rc = resolve_cwd(c, idx, a))) return rc;
    if ((rc = build_argv(c, idx, a, &src))) return rc;
    if (src.env && (rc = read_env(c, idx, a, src.env, "env"))) return rc;
    if (src.env_chosen) {
        char key_name[80];
        snprintf(key_name, sizeof(key_name), "env_%s", c->opts->env_name);
        if ((rc = read_env(c, idx, a, src.env_chosen, key_name))) return rc;
    }
    if ((rc = registry_from_env(c, a))) return rc;
    if ((rc = resolve_instances(c, idx, a, src.instances))) return rc;
    return resolve_port(c, idx, a, src.port);
}
