/* Validation of service registrations and check definitions, with the
 * messages a client sees in a 400 answer. Field names follow Consul and are
 * matched case-insensitively, underscores ignored. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "colony/probe.h"
#include "registry/registry_internal.h"
#include "registry/parse.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(msg, msg_size, __VA_ARGS__);                                                      \
        goto fail;                                                                                 \
    } while (0)

/* A duration field: a Go duration string or a number of nanoseconds. */
static int duration_field(const json_t *obj, const char *name, uint64_t *out, char *msg,
                          size_t msg_size)
{
    json_t *v = colony__reg_field(obj, name);
    *out = 0;
    if (!v || json_is_null(v)) return 0;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)(json_integer_value(v) + 999999) / 1000000;
        return 0;
    }
    if (json_is_string(v) &&
        (json_string_length(v) == 0 || colony__reg_parse_duration(json_string_value(v), out) == 0))
        return 0;
    snprintf(msg, msg_size, "%s: invalid duration %s%s%s (use Go syntax like \"10s\" or \"1m30s\")",
             name, json_is_string(v) ? "\"" : "", json_is_string(v) ? json_string_value(v) : "",
             json_is_string(v) ? "\"" : "value");
    return COLONY_EINVAL;
}

static int string_field(const json_t *obj, const char *name, char **out, char *msg, size_t msg_size)
{
    json_t *v = colony__reg_field(obj, name);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) {
        snprintf(msg, msg_size, "%s must be a string", name);
        return COLONY_EINVAL;
    }
    *out = colony__strdup(json_string_value(v));
    if (!*out) {
        snprintf(msg, msg_size, "out of memory");
        return COLONY_ENOMEM;
    }
    return 0;
}

static int int_field(const json_t *obj, const char *name, int lo, int hi, int dflt, int *out,
                     char *msg, size_t msg_size)
{
    json_t *v = colony__reg_field(obj, name);
    *out = dflt;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        snprintf(msg, msg_size, "invalid %s: must be an integer between %d and %d", name, lo, hi);
        return COLONY_EINVAL;
    }
    *out = (int)json_integer_value(v);
    return 0;
}

static const char *const unsupported_types[] = {
    "Script", "Args", "ScriptArgs",   "GRPC",      "DockerContainerID",
    "H2PING", "UDP",  "AliasService", "AliasNode", "OSService"};

static int check_type(const json_t *def, int *type, char **target, char *msg, size_t msg_size)
{
    int found = 0;
    const char *names[] = {"TTL", "HTTP", "TCP"};
    for (int i = 0; i < 3; i++) {
        json_t *v = colony__reg_field(def, names[i]);
        if (!v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0)) continue;
        if (found) {
            snprintf(msg, msg_size,
                     "a check must have exactly one type; got more than one of "
                     "HTTP, TCP and TTL");
            return COLONY_EINVAL;
        }
        found = 1;
        *type = i == 0 ? REG_CHECK_TTL : i == 1 ? REG_CHECK_HTTP : REG_CHECK_TCP;
        if (i > 0) {
            if (!json_is_string(v)) {
                snprintf(msg, msg_size, "%s must be a string", names[i]);
                return COLONY_EINVAL;
            }
            *target = colony__strdup(json_string_value(v));
            if (!*target) return COLONY_ENOMEM;
        }
    }
    if (found) return 0;
    for (size_t i = 0; i < sizeof(unsupported_types) / sizeof(unsupported_types[0]); i++) {
        json_t *v = colony__reg_field(def, unsupported_types[i]);
        if (v && !json_is_null(v)) {
            snprintf(msg, msg_size, "unsupported check type %s: colony supports HTTP, TCP and TTL",
                     unsupported_types[i]);
            return COLONY_EINVAL;
        }
    }
    snprintf(msg, msg_size, "unknown check type: a check needs one of HTTP, TCP or TTL");
    return COLONY_EINVAL;
}

static int header_field(const json_t *def, json_t **out, char *msg, size_t msg_size)
{
    json_t *h = colony__reg_field(def, "Header");
    *out = NULL;
    if (!h || json_is_null(h)) return 0;
    const char *k;
    json_t *vals;
    if (!json_is_object(h)) goto bad;
    json_object_foreach(h, k, vals)
    {
        if (!json_is_array(vals)) goto bad;
        size_t i;
        json_t *s;
        json_array_foreach(vals, i, s)
        {
            if (!json_is_string(s)) goto bad;
        }
    }
    *out = json_deep_copy(h);
    return *out ? 0 : COLONY_ENOMEM;
bad:
    snprintf(msg, msg_size, "Header must be an object of string arrays, like {\"X-A\": [\"1\"]}");
    return COLONY_EINVAL;
}

/* An HTTP or TCP target is checked as the probe that will run it checks it
 * (http:// URL, host:port with a port 1..65535 of digits only), so a bad
 * one is a 400 at registration rather than a check that can never pass. */
static int check_target(const reg_check *c, char *msg, size_t msg_size)
{
    colony_probe_options o;
    colony_probe_options_init(&o);
    o.kind = c->type == REG_CHECK_HTTP ? COLONY_PROBE_HTTP : COLONY_PROBE_TCP;
    o.target = c->target;
    char why[400];
    /* The prober speaks https now (for the gateway), but the registry has no
     * TLSSkipVerify / TLSServerName / CA settings yet: still refused. */
    if (c->type == REG_CHECK_HTTP && c->target && strncasecmp(c->target, "https://", 8) == 0) {
        snprintf(msg, msg_size, "HTTP check: HTTPS checks are not supported yet: use http://");
        return COLONY_EINVAL;
    }
    if (!colony_probe_options_check(&o, why, sizeof(why))) return 0;
    snprintf(msg, msg_size, "%s check: %s", c->type == REG_CHECK_HTTP ? "HTTP" : "TCP", why);
    return COLONY_EINVAL;
}

reg_check *colony__reg_parse_check(const json_t *def, const char *service_id,
                                   const char *service_name, int ordinal, char *msg,
                                   size_t msg_size)
{
    reg_check *c = colony__calloc(1, sizeof(*c));
    if (!c) {
        snprintf(msg, msg_size, "out of memory");
        return NULL;
    }
    if (!json_is_object(def)) FAIL("a check definition must be a JSON object");
    if (string_field(def, "CheckID", &c->id, msg, msg_size)) goto fail;
    if (!c->id && string_field(def, "ID", &c->id, msg, msg_size)) goto fail;
    if (c->id && strlen(c->id) > REG_MAX_ID_LEN)
        FAIL("CheckID is %zu bytes long; the limit is %u (it must fit in the URL that updates "
             "or deregisters it)",
             strlen(c->id), REG_MAX_ID_LEN);
    if (c->id && !*c->id) {
        colony__free(c->id);
        c->id = NULL;
    }
    if (!c->id) {
        char buf[600];
        if (ordinal > 0)
            snprintf(buf, sizeof(buf), "service:%s:%d", service_id, ordinal);
        else
            snprintf(buf, sizeof(buf), "service:%s", service_id);
        c->id = colony__strdup(buf);
    }
    if (string_field(def, "Name", &c->name, msg, msg_size)) goto fail;
    if (!c->name || !*c->name) {
        char buf[600];
        colony__free(c->name);
        snprintf(buf, sizeof(buf), "Service '%s' check", service_name);
        c->name = colony__strdup(buf);
    }
    if (string_field(def, "Notes", &c->notes, msg, msg_size)) goto fail;
    if (check_type(def, &c->type, &c->target, msg, msg_size)) goto fail;
    if (duration_field(def, "Interval", &c->interval_ms, msg, msg_size)) goto fail;
    if (duration_field(def, "Timeout", &c->timeout_ms, msg, msg_size)) goto fail;
    if (duration_field(def, "TTL", &c->ttl_ms, msg, msg_size) && c->type == REG_CHECK_TTL)
        goto fail;
    if (duration_field(def, "DeregisterCriticalServiceAfter", &c->deregister_after_ms, msg,
                       msg_size))
        goto fail;
    if (c->type == REG_CHECK_TTL && c->ttl_ms == 0) FAIL("TTL must be > 0 for TTL checks");
    if (c->type != REG_CHECK_TTL && c->interval_ms == 0)
        FAIL("Interval must be > 0 for HTTP and TCP checks");
    if (c->timeout_ms == 0) c->timeout_ms = REG_DEFAULT_CHECK_TIMEOUT_MS;
    if (string_field(def, "Method", &c->method, msg, msg_size)) goto fail;
    if (string_field(def, "Body", &c->body, msg, msg_size)) goto fail;
    if (header_field(def, &c->header, msg, msg_size)) goto fail;
    if (int_field(def, "SuccessBeforePassing", 0, 1000000, 0, &c->success_before_passing, msg,
                  msg_size) ||
        int_field(def, "FailuresBeforeCritical", 0, 1000000, 0, &c->failures_before_critical, msg,
                  msg_size))
        goto fail;
    if (c->type != REG_CHECK_TTL && check_target(c, msg, msg_size)) goto fail;
    json_t *status = colony__reg_field(def, "Status");
    c->status = REG_CRITICAL;
    if (status && !json_is_null(status) &&
        !(json_is_string(status) && json_string_length(status) == 0)) {
        c->status = colony__reg_status_parse(json_string_value(status));
        if (c->status < 0) FAIL("invalid check Status: use passing, warning or critical");
    }
    c->service_id = service_id ? colony__strdup(service_id) : NULL;
    c->service_name = service_name ? colony__strdup(service_name) : NULL;
    c->output = colony__strdup("");
    c->definition = json_deep_copy(def);
    if (!c->id || !c->name || !c->output || !c->definition ||
        (service_id && (!c->service_id || !c->service_name)))
        FAIL("out of memory");
    json_object_set_new(c->definition, "CheckID", json_string(c->id));
    return c;
fail:
    colony__reg_check_free(c);
    return NULL;
}

static int strings_array(const json_t *v, const char *name, char *msg, size_t msg_size)
{
    size_t i;
    json_t *s;
    if (!json_is_array(v)) goto bad;
    json_array_foreach(v, i, s)
    {
        if (!json_is_string(s)) goto bad;
    }
    return 0;
bad:
    snprintf(msg, msg_size, "%s must be an array of strings", name);
    return COLONY_EINVAL;
}

static int meta_field(const json_t *v, char *msg, size_t msg_size)
{
    const char *k;
    json_t *s;
    if (!json_is_object(v)) goto bad;
    if (json_object_size(v) > 64) {
        snprintf(msg, msg_size, "Meta: at most 64 key/value pairs");
        return COLONY_EINVAL;
    }
    json_object_foreach((json_t *)v, k, s)
    {
        if (!json_is_string(s)) goto bad;
        if (strlen(k) == 0 || strlen(k) > 128 || json_string_length(s) > 512) {
            snprintf(msg, msg_size, "Meta: keys must be 1-128 characters and values at most 512");
            return COLONY_EINVAL;
        }
    }
    return 0;
bad:
    snprintf(msg, msg_size, "Meta must be an object of strings");
    return COLONY_EINVAL;
}

static void free_checks(reg_check **checks)
{
    if (!checks) return;
    for (size_t i = 0; checks[i]; i++)
        colony__reg_check_free(checks[i]);
    colony__free(checks);
}

int colony__reg_parse_service(const json_t *body, reg_service **svc_out, reg_check ***checks_out,
                              char *msg, size_t msg_size)
{
    reg_check **checks = NULL;
    reg_service *s = colony__calloc(1, sizeof(*s));
    if (!s) {
        snprintf(msg, msg_size, "out of memory");
        return COLONY_ENOMEM;
    }
    if (!json_is_object(body)) FAIL("request body must be a JSON object");
    if (string_field(body, "Name", &s->name, msg, msg_size)) goto fail;
    if (!s->name || !*s->name) FAIL("Missing service name");
    if (strlen(s->name) > REG_MAX_ID_LEN)
        FAIL("service Name is %zu bytes long; the limit is %u (it must fit in the URL that "
             "queries it)",
             strlen(s->name), REG_MAX_ID_LEN);
    if (string_field(body, "ID", &s->id, msg, msg_size)) goto fail;
    if (s->id && strlen(s->id) > REG_MAX_ID_LEN)
        FAIL("service ID is %zu bytes long; the limit is %u (it must fit in the URL that "
             "deregisters it)",
             strlen(s->id), REG_MAX_ID_LEN);
    if (!s->id || !*s->id) {
        colony__free(s->id);
        s->id = colony__strdup(s->name);
    }
    if (string_field(body, "Address", &s->address, msg, msg_size)) goto fail;
    if (!s->address) s->address = colony__strdup("");
    if (!s->id || !s->address) FAIL("out of memory");
    if (strchr(s->id, '/')) FAIL("service ID must not contain '/'");
    json_t *port = colony__reg_field(body, "Port");
    if (port && !json_is_null(port) &&
        (!json_is_integer(port) || json_integer_value(port) < 0 ||
         json_integer_value(port) > 65535))
        FAIL("Invalid Port: must be an integer between 0 and 65535");
    s->port = port && json_is_integer(port) ? (int)json_integer_value(port) : 0;
    json_t *tags = colony__reg_field(body, "Tags");
    if (tags && !json_is_null(tags) && strings_array(tags, "Tags", msg, msg_size)) goto fail;
    s->tags = tags && json_is_array(tags) ? json_deep_copy(tags) : json_array();
    json_t *meta = colony__reg_field(body, "Meta");
    if (meta && !json_is_null(meta) && meta_field(meta, msg, msg_size)) goto fail;
    s->meta = meta && json_is_object(meta) ? json_deep_copy(meta) : json_object();
    if (!s->tags || !s->meta) FAIL("out of memory");
    s->weight_passing = s->weight_warning = 1;
    json_t *w = colony__reg_field(body, "Weights");
    if (w && !json_is_null(w)) {
        if (!json_is_object(w)) FAIL("Weights must be an object {\"Passing\": N, \"Warning\": N}");
        if (int_field(w, "Passing", 1, 1 << 30, 1, &s->weight_passing, msg, msg_size) ||
            int_field(w, "Warning", 0, 1 << 30, 1, &s->weight_warning, msg, msg_size))
            goto fail;
    }
    json_t *eto = colony__reg_field(body, "EnableTagOverride");
    s->enable_tag_override = eto && json_is_true(eto);

    json_t *one = colony__reg_field(body, "Check");
    json_t *many = colony__reg_field(body, "Checks");
    if (one && json_is_object(one) && json_object_size(one) == 0) one = NULL;
    if (many && !json_is_null(many) && !json_is_array(many)) FAIL("Checks must be an array");
    size_t n =
        (one && !json_is_null(one) ? 1 : 0) + (json_is_array(many) ? json_array_size(many) : 0);
    checks = colony__calloc(n + 1, sizeof(*checks));
    if (!checks) FAIL("out of memory");
    size_t k = 0;
    if (one && !json_is_null(one)) {
        checks[k] = colony__reg_parse_check(one, s->id, s->name, 0, msg, msg_size);
        if (!checks[k++]) goto fail;
    }
    for (size_t i = 0; json_is_array(many) && i < json_array_size(many); i++) {
        checks[k] = colony__reg_parse_check(json_array_get(many, i), s->id, s->name, (int)i + 1,
                                            msg, msg_size);
        if (!checks[k++]) goto fail;
    }
    for (size_t i = 0; i < k; i++)
        for (size_t j = i + 1; j < k; j++)
            if (strcmp(checks[i]->id, checks[j]->id) == 0)
                FAIL("duplicate check ID \"%s\"", checks[i]->id);
    *svc_out = s;
    *checks_out = checks;
    return 0;
fail:
    free_checks(checks);
    colony__reg_service_free(s);
    return COLONY_EINVAL;
}
