/* Layered configuration: the settings table, the layering of defaults, JSON
 * files, environment variables and flags, getters, and reload. Every load
 * builds a complete new set of values aside and swaps it in only when every
 * layer was valid, so a bad config never half-applies. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "core/config_internal.h"

static const char *const source_names[] = {"default", NULL,          NULL,
                                           NULL,      "environment", "command line"};

long colony__config_find(const colony_config *cfg, const char *key, size_t key_len)
{
    for (size_t i = 0; i < cfg->n; i++) {
        const char *k = cfg->table[i].key;
        if (strncmp(k, key, key_len) == 0 && k[key_len] == '\0') return (long)i;
    }
    return -1;
}

int colony__config_is_prefix(const colony_config *cfg, const char *prefix, size_t len)
{
    for (size_t i = 0; i < cfg->n; i++) {
        const char *k = cfg->table[i].key;
        if (strncmp(k, prefix, len) == 0 && k[len] == '.') return 1;
    }
    return 0;
}

static void plan_free(colony__config_plan *p)
{
    colony__free(p->dir);
    colony__free(p->env);
    for (int i = 0; i < COLONY__CONFIG_FILE_LAYERS; i++)
        colony__free(p->files[i]);
    colony__free(p->env_prefix);
    for (int i = 0; i < p->argc; i++)
        colony__free(p->argv[i]);
    colony__free(p->argv);
    memset(p, 0, sizeof *p);
}

static char *join_path(const char *dir, const char *name)
{
    size_t dl = strlen(dir), nl = strlen(name);
    char *p = colony__malloc(dl + 1 + nl + 6);
    if (!p) return NULL;
    memcpy(p, dir, dl);
    p[dl] = '/';
    memcpy(p + dl + 1, name, nl);
    memcpy(p + dl + 1 + nl, ".json", 6);
    return p;
}

/* Copies what the options ask for, resolving the defaults now so a reload
 * sees the same files even if $COLONY_ENV changed since. */
static int plan_from_options(colony__config_plan *p, const colony_config_options *o)
{
    memset(p, 0, sizeof *p);
    const char *dir = o && o->dir ? o->dir : "config";
    const char *env = o && o->env && *o->env ? o->env : getenv("COLONY_ENV");
    if (!env || !*env) env = "development";
    p->dir = colony__strdup(dir);
    p->env = colony__strdup(env);
    if (!p->dir || !p->env) goto nomem;
    p->files[0] = join_path(dir, "default");
    p->files[2] = join_path(dir, "local");
    if (!p->files[0] || !p->files[2]) goto nomem;
    /* An environment named like another layer would read that file twice. */
    if (strcmp(env, "default") != 0 && strcmp(env, "local") != 0) {
        p->files[1] = join_path(dir, env);
        if (!p->files[1]) goto nomem;
    }
    if (o && o->use_environment) {
        p->env_prefix = colony__strdup(o->env_prefix ? o->env_prefix : "COLONY_");
        if (!p->env_prefix) goto nomem;
    }
    if (o && o->argc > 0 && o->argv) {
        p->argv = colony__calloc((size_t)o->argc, sizeof *p->argv);
        if (!p->argv) goto nomem;
        for (int i = 0; i < o->argc; i++) {
            if (!o->argv[i]) continue;
            p->argv[p->argc] = colony__strdup(o->argv[i]);
            if (!p->argv[p->argc]) goto nomem;
            p->argc++;
        }
    }
    return 0;
nomem:
    plan_free(p);
    return COLONY_ENOMEM;
}

static int defaults_into(const colony_config *cfg, colony__config_value *values,
                         colony_config_error *err)
{
    for (size_t i = 0; i < cfg->n; i++) {
        const colony_config_setting *s = &cfg->table[i];
        char reason[256];
        int rc =
            colony__config_value_from_text(s, s->default_value, &values[i], reason, sizeof reason);
        if (rc) {
            colony__config_error_set(err, "default", 0, s->key, "%s",
                                     rc == COLONY_ENOMEM ? "out of memory" : reason);
            return rc;
        }
        values[i].source = COLONY__CONFIG_SRC_DEFAULT;
    }
    return 0;
}

/* COLONY_ + "gateway.port" -> COLONY_GATEWAY_PORT. */
static void env_var_name(const char *prefix, const char *key, char *out)
{
    size_t o = strlen(prefix);
    memcpy(out, prefix, o);
    for (const char *k = key; *k; k++)
        out[o++] = (*k == '.' || *k == '-') ? '_' : (char)toupper((unsigned char)*k);
    out[o] = '\0';
}

static int apply_environment(const colony_config *cfg, const char *prefix,
                             colony__config_value *values, colony_config_error *err)
{
    size_t longest = 0;
    for (size_t i = 0; i < cfg->n; i++)
        if (strlen(cfg->table[i].key) > longest) longest = strlen(cfg->table[i].key);
    char *name = colony__malloc(strlen(prefix) + longest + 1);
    if (!name) {
        colony__config_error_set(err, "environment", 0, "", "out of memory");
        return COLONY_ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < cfg->n && rc == 0; i++) {
        const colony_config_setting *s = &cfg->table[i];
        env_var_name(prefix, s->key, name);
        const char *text = getenv(name);
        if (!text) continue;
        char reason[256];
        rc = colony__config_value_from_text(s, text, &values[i], reason, sizeof reason);
        if (rc == 0)
            values[i].source = COLONY__CONFIG_SRC_ENVIRONMENT;
        else
            colony__config_error_set(err, "environment", 0, s->key, "%s: %s", name,
                                     rc == COLONY_ENOMEM ? "out of memory" : reason);
    }
    colony__free(name);
    return rc;
}

/* --key=value or --key value; a bool flag alone (last, or followed by another
 * flag) means true. Everything in argv must be a known setting. */
static int apply_flags(const colony_config *cfg, int argc, char **argv,
                       colony__config_value *values, colony_config_error *err)
{
    const char *file = "command line";
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0' || arg[2] == '=') {
            colony__config_error_set(err, file, 0, "",
                                     "unexpected argument \"%.64s\" (expected --key=value)", arg);
            return COLONY_EINVAL;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        long idx = colony__config_find(cfg, name, name_len);
        if (idx < 0) {
            colony__config_error_set(err, file, 0, "", "unknown flag --%.*s",
                                     (int)(name_len > 100 ? 100 : name_len), name);
            if (err) snprintf(err->key, sizeof err->key, "%.*s", (int)name_len, name);
            return COLONY_EINVAL;
        }
        const colony_config_setting *s = &cfg->table[idx];
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (s->type == COLONY_CONFIG_BOOL &&
                   (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)) {
            value = "true";
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            colony__config_error_set(err, file, 0, s->key, "--%s needs a value", s->key);
            return COLONY_EINVAL;
        }
        char reason[256];
        int rc = colony__config_value_from_text(s, value, &values[idx], reason, sizeof reason);
        if (rc) {
            colony__config_error_set(err, file, 0, s->key, "--%s: %s", s->key,
                                     rc == COLONY_ENOMEM ? "out of memory" : reason);
            return rc;
        }
        values[idx].source = COLONY__CONFIG_SRC_COMMAND_LINE;
    }
    return 0;
}

/* Builds a complete value set from plan, lowest layer first. */
static int build_values(const colony_config *cfg, const colony__config_plan *plan,
                        colony__config_value **out, colony_config_error *err)
{
    colony__config_value *values = colony__calloc(cfg->n, sizeof *values);
    if (!values) {
        colony__config_error_set(err, "", 0, "", "out of memory");
        return COLONY_ENOMEM;
    }
    int rc = defaults_into(cfg, values, err);
    for (int f = 0; f < COLONY__CONFIG_FILE_LAYERS && rc == 0; f++)
        if (plan->files[f])
            rc = colony__config_apply_file(cfg, values, COLONY__CONFIG_SRC_FILE_DEFAULT + f,
                                           plan->files[f], err);
    if (rc == 0 && plan->env_prefix) rc = apply_environment(cfg, plan->env_prefix, values, err);
    if (rc == 0) rc = apply_flags(cfg, plan->argc, plan->argv, values, err);
    if (rc) {
        colony__config_values_free(values, cfg->n);
        return rc;
    }
    *out = values;
    return 0;
}

static int valid_key(const char *key)
{
    if (!key || !*key || strlen(key) >= sizeof(((colony_config_error *)0)->key)) return 0;
    if (key[0] == '.' || key[strlen(key) - 1] == '.' || strstr(key, "..")) return 0;
    for (const char *k = key; *k; k++)
        if (!isalnum((unsigned char)*k) && *k != '.' && *k != '_' && *k != '-') return 0;
    return 1;
}

void colony_config_options_init(colony_config_options *o)
{
    *o = (colony_config_options){.dir = "config", .env_prefix = "COLONY_", .use_environment = 1};
}

colony_config *colony_config_new(const colony_config_setting *table, size_t n)
{
    if (!table && n) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!valid_key(table[i].key) || (unsigned)table[i].type > COLONY_CONFIG_SIZE ||
            table[i].min > table[i].max)
            return NULL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(table[i].key, table[j].key) == 0) return NULL;
    }
    colony_config *cfg = colony__calloc(1, sizeof *cfg);
    if (!cfg) return NULL;
    cfg->table = table;
    cfg->n = n;
    cfg->values = colony__calloc(n, sizeof *cfg->values);
    if (!cfg->values || defaults_into(cfg, cfg->values, NULL) != 0) {
        colony_config_free(cfg);
        return NULL;
    }
    return cfg;
}

void colony_config_free(colony_config *cfg)
{
    if (!cfg) return;
    colony__config_watch_detach(cfg);
    colony__config_values_free(cfg->values, cfg->n);
    plan_free(&cfg->plan);
    colony__free(cfg);
}

/* Swaps in a fully built, valid set of values and the plan that made them.
 * Loads call it only after everything succeeded, so a failed load leaves cfg
 * untouched. */
static void install(colony_config *cfg, colony__config_value *values, colony__config_plan *plan)
{
    colony__config_values_free(cfg->values, cfg->n);
    plan_free(&cfg->plan);
    cfg->values = values;
    cfg->plan = *plan;
    cfg->loaded = 1;
}

int colony_config_load(colony_config *cfg, const colony_config_options *opts,
                       colony_config_error *err)
{
    colony_config_error scratch;
    if (!err) err = &scratch;
    if (!cfg) {
        colony__config_error_set(err, "", 0, "", "no config");
        return COLONY_EINVAL;
    }
    colony__config_plan plan;
    if (plan_from_options(&plan, opts) != 0) {
        colony__config_error_set(err, "", 0, "", "out of memory");
        return COLONY_ENOMEM;
    }
    colony__config_value *values;
    int rc = build_values(cfg, &plan, &values, err);
    if (rc) {
        plan_free(&plan);
        return rc;
    }
    install(cfg, values, &plan);
    return 0;
}

int colony__config_load_buffer(colony_config *cfg, const char *name, const char *text, size_t len,
                               colony_config_error *err)
{
    colony_config_error scratch;
    if (!err) err = &scratch;
    if (!cfg || !name || (!text && len)) {
        colony__config_error_set(err, "", 0, "", "bad argument");
        return COLONY_EINVAL;
    }
    colony__config_plan plan = {0};
    plan.from_memory = 1;
    plan.files[0] = colony__strdup(name);
    colony__config_value *values = colony__calloc(cfg->n, sizeof *values);
    int rc = COLONY_ENOMEM;
    if (!plan.files[0] || !values) {
        colony__config_error_set(err, name, 0, "", "out of memory");
        goto fail;
    }
    rc = defaults_into(cfg, values, err);
    if (rc == 0)
        rc = colony__config_apply_json(cfg, values, COLONY__CONFIG_SRC_FILE_DEFAULT, name,
                                       text ? text : "", len, err);
    if (rc) goto fail;
    install(cfg, values, &plan);
    return 0;
fail:
    colony__config_values_free(values, cfg->n);
    plan_free(&plan);
    return rc;
}

static const colony__config_value *lookup(const colony_config *cfg, const char *key,
                                          const colony_config_setting **setting)
{
    if (!cfg || !key) return NULL;
    long idx = colony__config_find(cfg, key, strlen(key));
    if (idx < 0) return NULL;
    *setting = &cfg->table[idx];
    return &cfg->values[idx];
}

const char *colony_config_get_string(const colony_config *cfg, const char *key)
{
    const colony_config_setting *s;
    const colony__config_value *v = lookup(cfg, key, &s);
    return v && s->type == COLONY_CONFIG_STRING ? v->text : NULL;
}

int64_t colony_config_get_int(const colony_config *cfg, const char *key)
{
    const colony_config_setting *s;
    const colony__config_value *v = lookup(cfg, key, &s);
    if (!v) return 0;
    return s->type == COLONY_CONFIG_INT || s->type == COLONY_CONFIG_DURATION ||
                   s->type == COLONY_CONFIG_SIZE
               ? v->i
               : 0;
}

int colony_config_get_bool(const colony_config *cfg, const char *key)
{
    const colony_config_setting *s;
    const colony__config_value *v = lookup(cfg, key, &s);
    return v && s->type == COLONY_CONFIG_BOOL ? (int)v->i : 0;
}

double colony_config_get_double(const colony_config *cfg, const char *key)
{
    const colony_config_setting *s;
    const colony__config_value *v = lookup(cfg, key, &s);
    return v && s->type == COLONY_CONFIG_DOUBLE ? v->d : 0;
}

const char *colony_config_source(const colony_config *cfg, const char *key)
{
    const colony_config_setting *s;
    const colony__config_value *v = lookup(cfg, key, &s);
    if (!v) return NULL;
    if (v->source >= COLONY__CONFIG_SRC_FILE_DEFAULT && v->source <= COLONY__CONFIG_SRC_FILE_LOCAL)
        return cfg->plan.files[v->source - COLONY__CONFIG_SRC_FILE_DEFAULT];
    return source_names[v->source];
}

static int same_text(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

int colony_config_reload(colony_config *cfg, colony_config_error *err, colony_config_change_cb cb,
                         void *ud)
{
    colony_config_error scratch;
    if (!err) err = &scratch;
    if (!cfg || !cfg->loaded || cfg->plan.from_memory) {
        colony__config_error_set(err, "", 0, "", "nothing to reload: load the config first");
        return COLONY_EINVAL;
    }
    colony__config_value *fresh;
    int rc = build_values(cfg, &cfg->plan, &fresh, err);
    if (rc) return rc;
    colony__config_value *old = cfg->values;
    unsigned char *changed = colony__calloc(cfg->n, 1);
    if (!changed) {
        colony__config_values_free(fresh, cfg->n);
        colony__config_error_set(err, "", 0, "", "out of memory");
        return COLONY_ENOMEM;
    }
    /* Keep the old text of unchanged values (their pointers stay valid) and
     * the whole old value of non-reloadable settings, which wait for a restart.
     * After a swap, old[i] holds what the files asked for. */
    for (size_t i = 0; i < cfg->n; i++) {
        if (same_text(old[i].text, fresh[i].text)) {
            char *t = fresh[i].text;
            fresh[i].text = old[i].text;
            old[i].text = t;
        } else {
            changed[i] = 1;
            if (!cfg->table[i].reloadable) {
                colony__config_value t = fresh[i];
                fresh[i] = old[i];
                old[i] = t;
            }
        }
    }
    cfg->values = fresh;
    for (size_t i = 0; i < cfg->n && cb; i++) {
        if (!changed[i]) continue;
        if (cfg->table[i].reloadable)
            cb(&cfg->table[i], old[i].text, fresh[i].text, 1, ud);
        else
            cb(&cfg->table[i], fresh[i].text, old[i].text, 0, ud);
    }
    colony__free(changed);
    colony__config_values_free(old, cfg->n);
    return 0;
}

void colony_config_print_help(const colony_config_setting *table, size_t n, FILE *out)
{
    if (!table || !out) return;
    int width = 0;
    for (size_t i = 0; i < n; i++) {
        if (!table[i].key) continue;
        int w = (int)(strlen(table[i].key) + strlen(colony__config_type_name(table[i].type)) + 5);
        if (w > width) width = w;
    }
    for (size_t i = 0; i < n; i++) {
        const colony_config_setting *s = &table[i];
        if (!s->key) continue;
        int w = fprintf(out, "  --%s=<%s>", s->key, colony__config_type_name(s->type));
        fprintf(out, "%*s%s (default: %s)%s\n", width + 4 - w, "",
                s->description ? s->description : "", s->default_value ? s->default_value : "none",
                s->reloadable ? " [reloadable]" : "");
    }
}

const char *colony_config_error_format(const colony_config_error *err, char *out, size_t size)
{
    if (!out || size == 0) return out;
    if (!err) {
        snprintf(out, size, "unknown error");
        return out;
    }
    char line[16] = "";
    if (err->line > 0) snprintf(line, sizeof line, ":%d", err->line);
    snprintf(out, size, "%.256s%s: %.128s%s%.256s", err->file, line, err->key,
             err->key[0] ? ": " : "", err->reason);
    return out;
}
