/* Routes file parsing and validation (config.h). Every key is known: an
 * unknown one is almost always a typo and is refused with its line, as the
 * layered config does. */
#include "gateway/config.h"
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "gateway/cache.h"
#include "gateway/config_upstream.h"
#include "gateway/parse.h"

#define GW_MAX_ROUTES  10000
#define GW_MAX_SPLITS  16
#define GW_MAX_RETRIES 10
#define GW_MAX_WEIGHT  COLONY_BALANCE_MAX_WEIGHT

typedef struct parse_ctx {
    const colony_json_doc *doc;
    colony_config_error *err;
    gw_config *cfg;
    char path[256]; /* colony_config_json_line path of the value being read */
    gw_parse at;    /* the same document, error and path, for the shared getters */
} parse_ctx;

static size_t push(parse_ctx *c, const char *key)
{
    return colony__gw_parse_push(&c->at, key);
}

static size_t push_index(parse_ctx *c, size_t i)
{
    return colony__gw_parse_push_index(&c->at, i);
}

static void pop(parse_ctx *c, size_t len)
{
    colony__gw_parse_pop(&c->at, len);
}

#define FAIL(c, ...) colony_json_doc_error((c)->doc, (c)->err, (c)->path, __VA_ARGS__)

static int nomem(parse_ctx *c)
{
    colony_json_doc_error(c->doc, c->err, c->path, "out of memory");
    return COLONY_ENOMEM;
}

/* Refuses keys of obj that are not in allowed (NULL-terminated). */
static int only_keys(parse_ctx *c, const json_t *obj, const char *const *allowed)
{
    return colony__gw_parse_only(&c->at, obj, allowed);
}

static int get_string(parse_ctx *c, const json_t *obj, const char *key, char **out, int required)
{
    json_t *v = json_object_get(obj, key);
    size_t at = push(c, key);
    int rc = 0;
    if (!v) {
        if (required) rc = FAIL(c, "\"%s\" is required", key);
    } else if (!json_is_string(v) || json_string_length(v) == 0 ||
               strlen(json_string_value(v)) != json_string_length(v)) {
        rc = FAIL(c, "\"%s\" must be a non-empty string", key);
    } else if (!(*out = colony__strdup(json_string_value(v)))) {
        rc = nomem(c);
    }
    pop(c, at);
    return rc;
}

static int get_strings(parse_ctx *c, const json_t *obj, const char *key, char ***out, size_t *n)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    size_t at = push(c, key);
    int rc = 0;
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 100) {
        rc = FAIL(c, "\"%s\" must be an array of 1 to 100 strings", key);
    } else if (!(*out = colony__calloc(json_array_size(v), sizeof(char *)))) {
        rc = nomem(c);
    } else {
        for (size_t i = 0; i < json_array_size(v) && !rc; i++) {
            json_t *s = json_array_get(v, i);
            size_t at_i = push_index(c, i);
            if (!json_is_string(s) || json_string_length(s) == 0 ||
                strlen(json_string_value(s)) != json_string_length(s))
                rc = FAIL(c, "must be a non-empty string");
            else if (!((*out)[(*n)++] = colony__strdup(json_string_value(s))))
                rc = nomem(c);
            pop(c, at_i);
        }
    }
    pop(c, at);
    return rc;
}

/* An integer in [min, max]; absent keeps *out. */
static int get_uint(parse_ctx *c, const json_t *obj, const char *key, uint64_t min, uint64_t max,
                    uint64_t *out)
{
    return colony__gw_parse_uint(&c->at, obj, key, min, max, out);
}

static int get_bool(parse_ctx *c, const json_t *obj, const char *key, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    if (!json_is_boolean(v)) {
        size_t at = push(c, key);
        int rc = FAIL(c, "\"%s\" must be true or false", key);
        pop(c, at);
        return rc;
    }
    *out = json_is_true(v);
    return 0;
}

/* A duration: a number of milliseconds or a string "250ms", "5s", "1m". */
static int get_duration(parse_ctx *c, const json_t *obj, const char *key, uint64_t *out)
{
    return colony__gw_parse_interval(&c->at, obj, key, out);
}

/* ---- routes --------------------------------------------------------- */

static int find_upstream(parse_ctx *c, const char *name, size_t *out)
{
    for (size_t i = 0; i < c->cfg->nupstreams; i++)
        if (strcmp(c->cfg->upstreams[i].name, name) == 0) {
            *out = i;
            return 0;
        }
    return FAIL(c, "no upstream named \"%s\" in \"upstreams\"", name);
}

static int parse_splits(parse_ctx *c, const json_t *route, gw_route_conf *r)
{
    json_t *one = json_object_get(route, "upstream"), *split = json_object_get(route, "split");
    if (!one == !split) return FAIL(c, "a route has either \"upstream\" or \"split\"");
    if (one) {
        size_t at = push(c, "upstream");
        int rc = 0;
        if (!json_is_string(one))
            rc = FAIL(c, "\"upstream\" must be the name of an upstream");
        else if (!(r->splits = colony__calloc(1, sizeof(*r->splits))))
            rc = nomem(c);
        else
            rc = find_upstream(c, json_string_value(one), &r->splits[0].upstream);
        if (!rc) {
            r->splits[0].weight = 1;
            r->nsplits = 1;
            r->total_weight = 1;
        }
        pop(c, at);
        return rc;
    }
    size_t at = push(c, "split");
    int rc = 0;
    if (!json_is_array(split) || json_array_size(split) == 0 ||
        json_array_size(split) > GW_MAX_SPLITS)
        rc = FAIL(c, "\"split\" must be an array of 1 to %d {\"upstream\", \"weight\"}",
                  GW_MAX_SPLITS);
    else if (!(r->splits = colony__calloc(json_array_size(split), sizeof(*r->splits))))
        rc = nomem(c);
    static const char *const keys[] = {"upstream", "weight", NULL};
    for (size_t i = 0; !rc && i < json_array_size(split); i++) {
        json_t *s = json_array_get(split, i);
        size_t at_i = push_index(c, i);
        char *name = NULL;
        uint64_t weight = 0;
        if (!json_is_object(s)) rc = FAIL(c, "a split is {\"upstream\": name, \"weight\": n}");
        if (!rc) rc = only_keys(c, s, keys);
        if (!rc) rc = get_string(c, s, "upstream", &name, 1);
        if (!rc) {
            size_t at_n = push(c, "upstream");
            rc = find_upstream(c, name, &r->splits[r->nsplits].upstream);
            pop(c, at_n);
        }
        if (!rc && !json_object_get(s, "weight")) rc = FAIL(c, "\"weight\" is required");
        if (!rc) rc = get_uint(c, s, "weight", 0, GW_MAX_WEIGHT, &weight);
        colony__free(name);
        if (!rc) {
            r->splits[r->nsplits++].weight = (uint32_t)weight;
            r->total_weight += (uint32_t)weight;
        }
        pop(c, at_i);
    }
    if (!rc && r->total_weight == 0) rc = FAIL(c, "the weights of a split add up to 0");
    pop(c, at);
    return rc;
}

static int parse_headers(parse_ctx *c, const json_t *obj, gw_route *rt)
{
    size_t at = push(c, "headers");
    int rc = 0;
    if (!json_is_object(obj) || json_object_size(obj) == 0 || json_object_size(obj) > 16)
        rc = FAIL(c, "\"headers\" must be an object of 1 to 16 name: value (true: present)");
    else if (!(rt->headers = colony__calloc(json_object_size(obj), sizeof(*rt->headers))))
        rc = nomem(c);
    const char *name;
    json_t *v;
    if (!rc) json_object_foreach((json_t *)obj, name, v)
        {
            gw_header_match *h = &rt->headers[rt->nheaders++];
            size_t at_h = push(c, name);
            if (!(h->name = colony__strdup(name)))
                rc = nomem(c);
            else if (json_is_true(v))
                h->value = NULL;
            else if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
                rc = FAIL(c, "a header condition is a string (exact value) or true (present)");
            else if (!(h->value = colony__strdup(json_string_value(v))))
                rc = nomem(c);
            pop(c, at_h);
            if (rc) break;
        }
    pop(c, at);
    return rc;
}

static int parse_path_rule(parse_ctx *c, const json_t *obj, gw_route *rt)
{
    static const char *const kinds[] = {"prefix", "path", "pattern"};
    static const gw_path_kind kind_of[] = {GW_PATH_PREFIX, GW_PATH_EXACT, GW_PATH_PATTERN};
    int found = 0, rc = 0;
    for (size_t i = 0; i < 3 && !rc; i++) {
        if (!json_object_get(obj, kinds[i])) continue;
        if (found++) return FAIL(c, "a route has one of \"prefix\", \"path\" or \"pattern\"");
        rt->kind = kind_of[i];
        rc = get_string(c, obj, kinds[i], &rt->path, 1);
    }
    if (!rc && !found) rc = FAIL(c, "a route needs \"prefix\", \"path\" or \"pattern\"");
    return rc;
}

static int parse_retries(parse_ctx *c, const json_t *obj, gw_route_conf *r)
{
    static const char *const keys[] = {"attempts", "on", "non_idempotent", NULL};
    static const struct {
        const char *name;
        unsigned bit;
    } conditions[] = {{"connect", GW_RETRY_CONNECT},
                      {"reset", GW_RETRY_RESET},
                      {"502", GW_RETRY_502},
                      {"503", GW_RETRY_503},
                      {"504", GW_RETRY_504}};
    size_t at = push(c, "retries");
    uint64_t attempts = 0;
    int rc =
        json_is_object(obj) ? only_keys(c, obj, keys) : FAIL(c, "\"retries\" must be an object");
    if (!rc) rc = get_uint(c, obj, "attempts", 0, GW_MAX_RETRIES, &attempts);
    if (!rc) rc = get_bool(c, obj, "non_idempotent", &r->retry_non_idempotent);
    r->retries = (uint32_t)attempts;
    json_t *on = json_object_get(obj, "on");
    if (!rc && on) {
        size_t at_on = push(c, "on");
        r->retry_on = 0;
        if (!json_is_array(on)) rc = FAIL(c, "\"on\" must be an array");
        for (size_t i = 0; !rc && i < json_array_size(on); i++) {
            const char *name = json_string_value(json_array_get(on, i));
            unsigned bit = 0;
            for (size_t k = 0; name && k < sizeof(conditions) / sizeof(conditions[0]); k++)
                if (strcmp(name, conditions[k].name) == 0) bit = conditions[k].bit;
            if (!bit) {
                size_t at_i = push_index(c, i);
                rc = FAIL(c, "retry conditions are connect, reset, 502, 503 and 504");
                pop(c, at_i);
            }
            r->retry_on |= bit;
        }
        pop(c, at_on);
    }
    pop(c, at);
    return rc;
}

static int parse_timeouts(parse_ctx *c, const json_t *obj, gw_route_conf *r)
{
    static const char *const keys[] = {"connect", "try", "read", "total", NULL};
    size_t at = push(c, "timeouts");
    int rc =
        json_is_object(obj) ? only_keys(c, obj, keys) : FAIL(c, "\"timeouts\" must be an object");
    if (!rc) rc = get_duration(c, obj, "connect", &r->connect_timeout_ms);
    if (!rc) rc = get_duration(c, obj, "try", &r->try_timeout_ms);
    if (!rc) rc = get_duration(c, obj, "read", &r->read_timeout_ms);
    if (!rc) rc = get_duration(c, obj, "total", &r->total_timeout_ms);
    pop(c, at);
    return rc;
}

/* route: the route the limit belongs to, NULL for the global limit. A limit
 * keyed by "jwt:sub" needs the subject the route's JWT check verified; the
 * global limit runs before routing, so before any token is checked. */
static int parse_rate_limit(parse_ctx *c, const json_t *obj, const gw_route_conf *route,
                            gw_ratelimit_conf **out)
{
    if (!obj) return 0;
    int rc = colony__gw_ratelimit_parse(c->doc, c->err, c->path, sizeof(c->path), obj,
                                        c->cfg->ratelimit_redis, out);
    if (rc) return rc;
    if ((*out)->redis) c->cfg->ratelimit_redis = (*out)->redis;
    if ((*out)->key != GW_RL_KEY_JWT_SUB || (route && route->access && route->access->jwt))
        return 0;
    size_t at = push(c, "rate_limit");
    size_t key_at = push(c, "key");
    rc = FAIL(c, "%s",
              route ? "\"key\": \"jwt:sub\" needs the route's \"jwt\" check (the subject "
                      "comes from the verified token)"
                    : "\"key\": \"jwt:sub\" cannot key the global limit: it runs before "
                      "routing, so before any token is checked; put it on a route with \"jwt\"");
    pop(c, key_at);
    pop(c, at);
    return rc;
}

/* colony__gw_route_compile reasons start with the field they are about
 * ("rewrite: ..."): point the error at that key's line. */
static int fail_at_reason_key(parse_ctx *c, const json_t *obj, const gw_route *rt,
                              const char *reason)
{
    static const char *const path_keys[] = {"prefix", "path", "pattern"};
    const char *colon = strchr(reason, ':');
    char key[32] = "";
    if (colon && (size_t)(colon - reason) < sizeof(key))
        snprintf(key, sizeof(key), "%.*s", (int)(colon - reason), reason);
    if (strcmp(key, "path") == 0 || strcmp(key, "pattern") == 0)
        snprintf(key, sizeof(key), "%s", path_keys[rt->kind]);
    size_t at = json_object_get(obj, key) ? push(c, key) : strlen(c->path);
    int rc = FAIL(c, "%s", reason);
    pop(c, at);
    return rc;
}

static int parse_route(parse_ctx *c, size_t order, const json_t *obj, gw_route_conf *r)
{
    static const char *const keys[] = {"name",
                                       "hosts",
                                       "methods",
                                       "prefix",
                                       "path",
                                       "pattern",
                                       "headers",
                                       "strip_prefix",
                                       "rewrite",
                                       "upstream",
                                       "split",
                                       "timeouts",
                                       "retries",
                                       "retry_budget",
                                       "request_headers",
                                       "response_headers",
                                       "rate_limit",
                                       "websocket", /* websocket.c */
                                       "cache",     /* cache.h */
                                       GW_ACCESS_KEYS,
                                       NULL};
    gw_route *rt = &r->match;
    rt->order = order;
    r->try_timeout_ms = 30000;
    r->total_timeout_ms = 60000;
    r->read_timeout_ms = 60000;
    r->retry_on = GW_RETRY_CONNECT | GW_RETRY_RESET;
    rt->target = r;
    if (!json_is_object(obj)) return FAIL(c, "a route must be an object");
    int rc = only_keys(c, obj, keys);
    if (!rc) rc = get_string(c, obj, "name", &rt->name, 0);
    if (!rc && !rt->name) {
        char name[32];
        snprintf(name, sizeof(name), "route-%zu", order);
        if (!(rt->name = colony__strdup(name))) rc = nomem(c);
    }
    if (!rc) rc = get_strings(c, obj, "hosts", &rt->hosts, &rt->nhosts);
    if (!rc) rc = get_strings(c, obj, "methods", &rt->methods, &rt->nmethods);
    if (!rc) rc = parse_path_rule(c, obj, rt);
    json_t *headers = json_object_get(obj, "headers");
    if (!rc && headers) rc = parse_headers(c, headers, rt);
    if (!rc) rc = get_bool(c, obj, "strip_prefix", &rt->strip_prefix);
    if (!rc) rc = get_string(c, obj, "rewrite", &rt->rewrite, 0);
    if (!rc) rc = get_bool(c, obj, "websocket", &r->websocket);
    if (!rc) rc = parse_splits(c, obj, r);
    json_t *t = json_object_get(obj, "timeouts");
    if (!rc && t) rc = parse_timeouts(c, t, r);
    json_t *retries = json_object_get(obj, "retries");
    if (!rc && retries) rc = parse_retries(c, retries, r);
    if (!rc) rc = colony__gw_access_parse(&c->at, obj, &r->access);
    if (!rc) rc = parse_rate_limit(c, json_object_get(obj, "rate_limit"), r, &r->rate_limit);
    gw_parse *where = &c->at;
    colony__gw_retry_budget_init(&r->retry_budget);
    json_t *budget = json_object_get(obj, "retry_budget");
    if (!rc && budget) rc = colony__gw_parse_retry_budget(where, budget, &r->retry_budget);
    json_t *req_h = json_object_get(obj, "request_headers");
    if (!rc && req_h) rc = colony__gw_parse_header_ops(where, req_h, 1, &r->request_headers);
    json_t *res_h = json_object_get(obj, "response_headers");
    if (!rc && res_h) rc = colony__gw_parse_header_ops(where, res_h, 0, &r->response_headers);
    if (!rc)
        rc = colony__gw_cache_parse_route(where, json_object_get(obj, "cache"),
                                          c->cfg->cache_max_bytes, &r->cache);
    if (!rc) {
        char reason[200];
        int crc = colony__gw_route_compile(rt, reason, sizeof(reason));
        if (crc == COLONY_ENOMEM) return nomem(c);
        if (crc) rc = fail_at_reason_key(c, obj, rt, reason);
    }
    return rc;
}

static int parse_routes(parse_ctx *c, const json_t *arr)
{
    size_t at = push(c, "routes");
    int rc = 0;
    gw_config *cfg = c->cfg;
    size_t n = json_array_size(arr);
    if (!json_is_array(arr) || n == 0 || n > GW_MAX_ROUTES)
        rc = FAIL(c, "\"routes\" must be an array of 1 to %d routes", GW_MAX_ROUTES);
    else if (!(cfg->routes = colony__calloc(n, sizeof(*cfg->routes))) ||
             !(cfg->table = colony__calloc(n, sizeof(*cfg->table))))
        rc = nomem(c);
    for (size_t i = 0; !rc && i < n; i++) {
        size_t at_i = push_index(c, i);
        cfg->nroutes++;
        rc = parse_route(c, i, json_array_get(arr, i), &cfg->routes[i]);
        cfg->table[i] = &cfg->routes[i].match;
        for (size_t j = 0; !rc && j < i; j++)
            if (strcmp(cfg->routes[j].match.name, cfg->routes[i].match.name) == 0)
                rc = FAIL(c, "two routes are named \"%s\"", cfg->routes[i].match.name);
        pop(c, at_i);
    }
    pop(c, at);
    return rc;
}

/* ---- the config ----------------------------------------------------- */

static void config_free(gw_config *cfg)
{
    for (size_t i = 0; i < cfg->nroutes; i++) {
        colony__gw_route_clear(&cfg->routes[i].match);
        colony__free(cfg->routes[i].splits);
        colony__gw_access_free(cfg->routes[i].access);
        colony__gw_ratelimit_conf_free(cfg->routes[i].rate_limit);
        colony__gw_header_ops_clear(&cfg->routes[i].request_headers);
        colony__gw_header_ops_clear(&cfg->routes[i].response_headers);
        colony__gw_cache_conf_free(cfg->routes[i].cache);
    }
    colony__gw_ratelimit_conf_free(cfg->rate_limit);
    colony__gw_listeners_free(&cfg->listeners);
    colony__free(cfg->routes);
    colony__free(cfg->table);
    for (size_t i = 0; i < cfg->nupstreams; i++)
        colony__gw_upstream_clear(&cfg->upstreams[i]);
    colony__free(cfg->upstreams);
    colony__free(cfg);
}

int colony__gw_config_build(const colony_json_doc *doc, gw_config **out, colony_config_error *err)
{
    *out = NULL;
    parse_ctx c = {.doc = doc, .err = err};
    c.at = (gw_parse){doc, err, c.path, sizeof(c.path)};
    json_t *root = colony_json_doc_root(doc);
    if (!json_is_object(root)) return FAIL(&c, "the routes file is a JSON object");
    static const char *const keys[] = {"routes",    "upstreams", "rate_limit",
                                       "listeners", "cache",     NULL};
    int rc = only_keys(&c, root, keys);
    if (rc) return rc;
    if (!(c.cfg = colony__calloc(1, sizeof(*c.cfg)))) return nomem(&c);
    c.cfg->refs = 1;
    json_t *upstreams = json_object_get(root, "upstreams");
    if (upstreams) rc = colony__gw_parse_upstreams(&c.at, upstreams, c.cfg);
    if (!rc)
        rc = parse_rate_limit(&c, json_object_get(root, "rate_limit"), NULL, &c.cfg->rate_limit);
    if (!rc)
        rc = colony__gw_cache_parse_global(&c.at, json_object_get(root, "cache"),
                                           &c.cfg->cache_max_bytes);
    if (!rc) rc = parse_routes(&c, json_object_get(root, "routes"));
    if (!rc)
        rc = colony__gw_parse_listeners(&c.at, json_object_get(root, "listeners"),
                                        &c.cfg->listeners);
    if (rc) {
        config_free(c.cfg);
        return rc;
    }
    *out = c.cfg;
    return 0;
}

int colony__gw_config_load(const char *path, gw_config **out, colony_config_error *err)
{
    colony_json_doc *doc;
    *out = NULL;
    int rc = colony_json_doc_load(path, &doc, err);
    if (rc) return rc;
    rc = colony__gw_config_build(doc, out, err);
    colony_json_doc_free(doc);
    return rc;
}

/* Writes the routes file that `--route PATH=URL ...` stands for and builds it,
 * so quick starts go through the same validation as files. */
int colony__gw_config_quick(const char *const *routes, size_t n, gw_config **out,
                            colony_config_error *err)
{
    *out = NULL;
    json_t *root = json_object(), *list = json_array(), *ups = json_object();
    int rc = root && list && ups ? 0 : COLONY_ENOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        const char *eq = strchr(routes[i], '=');
        char name[32];
        snprintf(name, sizeof(name), "route-%zu", i);
        if (!eq || eq == routes[i]) {
            snprintf(err->file, sizeof(err->file), "command line");
            err->line = 0;
            snprintf(err->key, sizeof(err->key), "--route");
            snprintf(err->reason, sizeof(err->reason), "expected PATH=URL, got \"%s\"", routes[i]);
            rc = COLONY_EINVAL;
            break;
        }
        json_t *target = json_pack("{s:[s]}", "targets", eq + 1);
        json_t *route =
            json_pack("{s:s#,s:s}", "prefix", routes[i], (int)(eq - routes[i]), "upstream", name);
        if (!target || !route || json_object_set_new(ups, name, target) ||
            json_array_append_new(list, route))
            rc = COLONY_ENOMEM;
        if (!target) json_decref(route);
    }
    char *text = NULL;
    if (!rc && (json_object_set(root, "routes", list) || json_object_set(root, "upstreams", ups) ||
                !(text = json_dumps(root, JSON_INDENT(1)))))
        rc = COLONY_ENOMEM;
    colony_json_doc *doc = NULL;
    if (!rc) rc = colony_json_doc_parse("command line", text, strlen(text), &doc, err);
    if (!rc && (rc = colony__gw_config_build(doc, out, err)) != 0)
        err->line = 0; /* a line of the generated text would mislead */
    colony_json_doc_free(doc);
    colony__free(text); /* jansson allocates through libcolony's allocator */
    json_decref(root);
    json_decref(list);
    json_decref(ups);
    return rc;
}

gw_config *colony__gw_config_ref(gw_config *c)
{
    c->refs++;
    return c;
}

void colony__gw_config_unref(gw_config *c)
{
    if (c && --c->refs == 0) config_free(c);
}

const gw_upstream *colony__gw_config_upstream(const gw_config *c, const char *name)
{
    for (size_t i = 0; i < c->nupstreams; i++)
        if (strcmp(c->upstreams[i].name, name) == 0) return &c->upstreams[i];
    return NULL;
}
