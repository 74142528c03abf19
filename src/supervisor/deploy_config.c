/* The deploy section of the ecosystem file (deploy.h): PM2's keys for one
 * environment, checked so that what reaches ssh and the remote shell is
 * well formed (no option-looking host, absolute path, shell-safe variable
 * names), every mistake named with its file and line. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "core/alloc.h"
#include "supervisor/deploy.h"
#include "supervisor/ecosystem_parse.h"

#define MAX_HOSTS 64

static void strv_free(char **v)
{
    if (!v) return;
    for (char **p = v; *p; p++)
        colony__free(*p);
    colony__free(v);
}

static int strv_push(parse_ctx *c, char ***v, size_t *len, const char *s)
{
    if (*len >= MAX_LIST) return fail(c, "more than %d entries", MAX_LIST);
    char **grown = colony__realloc(*v, (*len + 2) * sizeof(char *));
    if (!grown) return nomem(c);
    *v = grown;
    grown[*len + 1] = NULL;
    if (!(grown[*len] = colony__strdup(s))) return nomem(c);
    ++*len;
    return 0;
}

void colony__sup_deploy_env_free(sup_deploy_env *d)
{
    if (!d) return;
    colony__free(d->name);
    strv_free(d->hosts);
    colony__free(d->user);
    colony__free(d->key);
    strv_free(d->ssh_options);
    colony__free(d->repo);
    colony__free(d->ref);
    colony__free(d->path);
    colony__free(d->pre_setup);
    colony__free(d->post_setup);
    colony__free(d->pre_deploy_local);
    colony__free(d->pre_deploy);
    colony__free(d->post_deploy);
    strv_free(d->env);
    memset(d, 0, sizeof(*d));
}

static void set_key(parse_ctx *c, const char *env, const char *key)
{
    snprintf(c->path, sizeof(c->path), "deploy.%s%s%s", env, key ? "." : "", key ? key : "");
}

static int read_text(parse_ctx *c, const json_t *v, char **out)
{
    if (!json_is_string(v)) return fail(c, "expected a string");
    colony__free(*out);
    *out = NULL;
    if (!*json_string_value(v)) return 0; /* "" means none, as in PM2 */
    return (*out = colony__strdup(json_string_value(v))) ? 0 : nomem(c);
}

/* A host or user name goes to ssh as one argv word: nothing that ssh could
 * read as an option, no blanks or control characters. */
static int plain_word(const char *s)
{
    if (!*s || s[0] == '-' || strlen(s) > 255) return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == 0x7f || *s == '@' || *s == '\'' || *s == '"')
            return 0;
    return 1;
}

static int read_hosts(parse_ctx *c, sup_deploy_env *d, const json_t *v)
{
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (!json_is_array(v) && !json_is_string(v))
        return fail(c, "expected a host name or an array of host names");
    if (n == 0) return fail(c, "no hosts");
    if (n > MAX_HOSTS) return fail(c, "more than %d hosts", MAX_HOSTS);
    strv_free(d->hosts);
    d->hosts = NULL;
    d->nhosts = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *one = json_is_array(v) ? json_array_get(v, i) : v;
        if (!json_is_string(one) || !plain_word(json_string_value(one)))
            return fail(
                c,
                "host %zu: expected a host name (no blanks, quotes or '@'; not starting with '-')",
                i);
        int rc = strv_push(c, &d->hosts, &d->nhosts, json_string_value(one));
        if (rc) return rc;
    }
    return 0;
}

static int read_port(parse_ctx *c, sup_deploy_env *d, const json_t *v)
{
    long long port = -1;
    if (json_is_integer(v)) port = json_integer_value(v);
    if (json_is_string(v)) { /* PM2's own files give "22" */
        char *end;
        port = strtoll(json_string_value(v), &end, 10);
        if (*end || end == json_string_value(v)) port = -1;
    }
    if (port < 1 || port > 65535) return fail(c, "expected a port number (1 to 65535)");
    d->port = (int)port;
    return 0;
}

static int read_ssh_options(parse_ctx *c, sup_deploy_env *d, const json_t *v)
{
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (!json_is_array(v) && !json_is_string(v))
        return fail(c, "expected an option such as \"StrictHostKeyChecking=no\", or an array");
    for (size_t i = 0; i < n; i++) {
        const json_t *one = json_is_array(v) ? json_array_get(v, i) : v;
        if (!json_is_string(one) || !*json_string_value(one) || json_string_value(one)[0] == '-')
            return fail(c, "option %zu: expected NAME=VALUE (passed as -o NAME=VALUE)", i);
        int rc = strv_push(c, &d->ssh_options, &d->nssh_options, json_string_value(one));
        if (rc) return rc;
    }
    return 0;
}

static int shell_name(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_')) return 0;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_' ||
              (*s >= '0' && *s <= '9')))
            return 0;
    return 1;
}

static int read_env(parse_ctx *c, sup_deploy_env *d, const json_t *v)
{
    if (!json_is_object(v)) return fail(c, "expected an object of variables");
    const char *name;
    const json_t *value;
    char base[sizeof(c->path)];
    snprintf(base, sizeof(base), "%s", c->path);
    json_object_foreach((json_t *)v, name, value)
    {
        snprintf(c->path, sizeof(c->path), "%.100s.%.50s", base, name);
        if (!shell_name(name)) return fail(c, "not a shell variable name");
        char buf[8192], num[64];
        const char *text = num;
        if (json_is_string(value))
            text = json_string_value(value);
        else if (json_is_integer(value))
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(value));
        else if (json_is_real(value))
            snprintf(num, sizeof(num), "%.17g", json_real_value(value));
        else if (json_is_boolean(value))
            text = json_is_true(value) ? "true" : "false";
        else
            return fail(c, "expected a string, a number or a boolean");
        int n = snprintf(buf, sizeof(buf), "%s=%s", name, text);
        if (n < 0 || (size_t)n >= sizeof(buf)) return fail(c, "value too long");
        int rc = strv_push(c, &d->env, &d->nenv, buf);
        if (rc) return rc;
    }
    return 0;
}

/* Keys of PM2's deploy section Colony does not act on. */
static int pm2_unsupported(const char *key)
{
    static const char *const keys[] = {"fetch", "forward-agent", "needs_tty", "test", "config"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(key, keys[i]) == 0) return 1;
    return 0;
}

static int read_key(parse_ctx *c, sup_deploy_env *d, const char *key, const json_t *v)
{
    static const struct {
        const char *key;
        size_t offset;
    } texts[] = {
        {"repo", offsetof(sup_deploy_env, repo)},
        {"ref", offsetof(sup_deploy_env, ref)},
        {"path", offsetof(sup_deploy_env, path)},
        {"key", offsetof(sup_deploy_env, key)},
        {"pre-setup", offsetof(sup_deploy_env, pre_setup)},
        {"post-setup", offsetof(sup_deploy_env, post_setup)},
        {"pre-deploy-local", offsetof(sup_deploy_env, pre_deploy_local)},
        {"pre-deploy", offsetof(sup_deploy_env, pre_deploy)},
        {"post-deploy", offsetof(sup_deploy_env, post_deploy)},
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        if (strcmp(key, texts[i].key) == 0)
            return read_text(c, v, (char **)((char *)d + texts[i].offset));
    if (strcmp(key, "user") == 0) {
        if (!json_is_string(v) || !plain_word(json_string_value(v)))
            return fail(c, "expected a user name (no blanks, not starting with '-')");
        return read_text(c, v, &d->user);
    }
    if (strcmp(key, "host") == 0) return read_hosts(c, d, v);
    if (strcmp(key, "port") == 0) return read_port(c, d, v);
    if (strcmp(key, "ssh_options") == 0) return read_ssh_options(c, d, v);
    if (strcmp(key, "env") == 0) return read_env(c, d, v);
    warn(c, pm2_unsupported(key) ? "accepted, not supported yet" : "unknown key, ignored");
    return 0;
}

/* "~/x" is the deploying user's home, as PM2 expands it. */
static int expand_key(parse_ctx *c, sup_deploy_env *d)
{
    if (!d->key || strncmp(d->key, "~/", 2) != 0) return 0;
    const char *home = getenv("HOME");
    if (!home) return 0;
    size_t n = strlen(home) + strlen(d->key);
    char *full = colony__malloc(n);
    if (!full) return nomem(c);
    snprintf(full, n, "%s%s", home, d->key + 1);
    colony__free(d->key);
    d->key = full;
    return 0;
}

static int parse_env(parse_ctx *c, const char *name, const json_t *obj, sup_deploy_env *d)
{
    memset(d, 0, sizeof(*d));
    set_key(c, name, NULL);
    if (!json_is_object(obj)) return fail(c, "an environment is an object (user, host, ...)");
    if (!(d->name = colony__strdup(name))) return nomem(c);
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        set_key(c, name, key);
        int rc = read_key(c, d, key, v);
        if (rc) return rc;
    }
    set_key(c, name, NULL);
    if (!d->hosts) return fail(c, "no \"host\"");
    if (!d->repo) return fail(c, "no \"repo\" (the git repository to deploy)");
    if (!d->path) return fail(c, "no \"path\" (the folder on the host)");
    set_key(c, name, "path");
    if (d->path[0] != '/') return fail(c, "expected an absolute path");
    if (strlen(d->path) > 4000) return fail(c, "longer than 4000 bytes");
    size_t n = strlen(d->path);
    while (n > 1 && d->path[n - 1] == '/') /* "/srv/app/" -> "/srv/app" */
        d->path[--n] = '\0';
    if (!d->ref && !(d->ref = colony__strdup("origin/main"))) return nomem(c);
    set_key(c, name, "ref");
    if (d->ref[0] == '-') return fail(c, "a ref cannot start with '-'");
    if (strlen(d->ref) > 255 || strpbrk(d->ref, " \t\r\n"))
        return fail(c, "expected a git ref (no blanks, at most 255 bytes)");
    return expand_key(c, d);
}

int colony__sup_deploy_check(struct parse_ctx *c, const json_t *deploy)
{
    snprintf(c->path, sizeof(c->path), "deploy");
    if (!json_is_object(deploy)) return fail(c, "expected an object of environments");
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)deploy, name, v)
    {
        sup_deploy_env d;
        int rc = parse_env(c, name, v, &d);
        colony__sup_deploy_env_free(&d);
        if (rc) return rc;
    }
    return 0;
}

static int parse_doc(const colony_json_doc *doc, const char *env_name, sup_deploy_env *out,
                     colony_config_error *err)
{
    sup_parse_options none;
    memset(&none, 0, sizeof(none));
    parse_ctx c = {.doc = doc, .opts = &none, .err = err, .dir = "."};
    const json_t *root = colony_json_doc_root(doc);
    const json_t *deploy = json_is_object(root) ? json_object_get(root, "deploy") : NULL;
    if (!deploy) return colony_json_doc_error(doc, err, "", "no \"deploy\" section");
    snprintf(c.path, sizeof(c.path), "deploy");
    if (!json_is_object(deploy)) return fail(&c, "expected an object of environments");
    const json_t *env = json_object_get(deploy, env_name);
    if (!env) {
        char names[200] = "";
        const char *name;
        const json_t *v;
        json_object_foreach((json_t *)deploy, name, v)
        {
            size_t used = strlen(names);
            snprintf(names + used, sizeof(names) - used, "%s%s", used ? ", " : "", name);
        }
        return fail(&c, "no environment \"%s\" (the file has: %s)", env_name,
                    *names ? names : "none");
    }
    int rc = parse_env(&c, env_name, env, out);
    if (rc) colony__sup_deploy_env_free(out);
    return rc;
}

int colony__sup_deploy_parse(const char *name, const char *text, size_t len, const char *env_name,
                             sup_deploy_env *out, colony_config_error *err)
{
    memset(out, 0, sizeof(*out));
    memset(err, 0, sizeof(*err));
    colony_json_doc *doc;
    int rc = colony_json_doc_parse(name, text, len, &doc, err);
    if (rc) return rc;
    rc = parse_doc(doc, env_name, out, err);
    colony_json_doc_free(doc);
    return rc;
}

int colony__sup_deploy_load(const char *path, const char *env_name, sup_deploy_env *out,
                            colony_config_error *err)
{
    memset(out, 0, sizeof(*out));
    memset(err, 0, sizeof(*err));
    colony_json_doc *doc;
    int rc = colony_json_doc_load(path, &doc, err);
    if (rc) return rc;
    rc = parse_doc(doc, env_name, out, err);
    colony_json_doc_free(doc);
    return rc;
}
