/* Stream and group policies as JSON (PUT bodies and GET answers), over the
 * delivery engine's structs. Durations are milliseconds or strings ("30s");
 * a PUT changes only the fields it names. */
#include <string.h>
#include "colony/config.h"
#include "colony/error.h"
#include "broker/http/http.h"

static int u64_field(colony_request *req, json_t *body, const char *name, uint64_t *out)
{
    json_t *v = json_object_get(body, name);
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        colony__bhttp_fail(req, 400, "bad_request", "\"%s\" is a non-negative integer", name);
        return COLONY_EINVAL;
    }
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int dur_field(colony_request *req, json_t *body, const char *name, uint64_t *out)
{
    int rc = colony__bhttp_duration_field(req, body, name, out);
    return rc < 0 ? rc : 0;
}

/* Fields of a stream's policy in body, over p. 0, or <0 after answering. */
int colony__bhttp_stream_policy_parse(colony_request *req, json_t *body, colony__bstream_policy *p)
{
    json_t *of = json_object_get(body, "overflow"), *wq = json_object_get(body, "work_queue");
    if (of) {
        const char *s = json_string_value(of);
        if (s && !strcmp(s, "reject"))
            p->overflow = COLONY__BOVERFLOW_REJECT;
        else if (s && !strcmp(s, "drop-oldest"))
            p->overflow = COLONY__BOVERFLOW_DROP_OLDEST;
        else {
            colony__bhttp_fail(req, 400, "bad_request",
                               "\"overflow\" is \"drop-oldest\" or \"reject\"");
            return COLONY_EINVAL;
        }
    }
    if (wq && !json_is_boolean(wq)) {
        colony__bhttp_fail(req, 400, "bad_request", "\"work_queue\" is a boolean");
        return COLONY_EINVAL;
    }
    if (wq) p->work_queue = json_is_true(wq);
    if (u64_field(req, body, "max_len", &p->max_len) || dur_field(req, body, "ttl", &p->ttl_ms) ||
        dur_field(req, body, "max_age", &p->max_age_ms) ||
        u64_field(req, body, "max_bytes", &p->max_bytes) ||
        u64_field(req, body, "max_entries", &p->max_entries))
        return COLONY_EINVAL;
    return 0;
}

json_t *colony__bhttp_stream_policy_json(const colony__bstream_policy *p)
{
    return json_pack("{s:I, s:s, s:I, s:I, s:I, s:I, s:b}", "max_len", (json_int_t)p->max_len,
                     "overflow", p->overflow == COLONY__BOVERFLOW_REJECT ? "reject" : "drop-oldest",
                     "ttl", (json_int_t)p->ttl_ms, "max_age", (json_int_t)p->max_age_ms,
                     "max_bytes", (json_int_t)p->max_bytes, "max_entries",
                     (json_int_t)p->max_entries, "work_queue", p->work_queue);
}

static const char *const BACKOFF_KINDS[] = {"fixed", "linear", "exponential"};

/* Fields of a group's policy in body, over p (dead_letter points into body). */
int colony__bhttp_group_policy_parse(colony_request *req, json_t *body, colony__bgroup_policy *p)
{
    if (dur_field(req, body, "visibility_timeout", &p->visibility_ms) ||
        u64_field(req, body, "max_deliveries", &p->max_deliveries))
        return COLONY_EINVAL;
    json_t *dl = json_object_get(body, "dead_letter");
    if (dl) {
        if (!json_is_string(dl) || json_string_length(dl) > COLONY__BHTTP_NAME_MAX) {
            colony__bhttp_fail(req, 400, "bad_request",
                               "\"dead_letter\" is a stream name (\"\": the default)");
            return COLONY_EINVAL;
        }
        p->dead_letter = json_string_value(dl);
    }
    json_t *b = json_object_get(body, "backoff");
    if (!b) return 0;
    if (!json_is_object(b)) {
        colony__bhttp_fail(req, 400, "bad_request", "\"backoff\" is an object");
        return COLONY_EINVAL;
    }
    json_t *kind = json_object_get(b, "kind");
    if (kind) {
        const char *s = json_string_value(kind);
        int k = -1;
        for (int i = 0; s && i < 3; i++)
            if (!strcmp(s, BACKOFF_KINDS[i])) k = i;
        if (k < 0) {
            colony__bhttp_fail(req, 400, "bad_request",
                               "backoff \"kind\" is fixed, linear or exponential");
            return COLONY_EINVAL;
        }
        p->backoff.kind = k;
    }
    uint64_t jitter = p->backoff.jitter_pct;
    if (dur_field(req, b, "delay", &p->backoff.delay_ms) ||
        dur_field(req, b, "cap", &p->backoff.cap_ms) || u64_field(req, b, "jitter", &jitter))
        return COLONY_EINVAL;
    if (jitter > 100) {
        colony__bhttp_fail(req, 400, "bad_request", "backoff \"jitter\" is 0 to 100 (percent)");
        return COLONY_EINVAL;
    }
    p->backoff.jitter_pct = (uint32_t)jitter;
    return 0;
}

json_t *colony__bhttp_group_policy_json(const colony__bgroup_policy *p)
{
    int k = p->backoff.kind >= 0 && p->backoff.kind < 3 ? p->backoff.kind : 0;
    return json_pack("{s:I, s:I, s:{s:s, s:I, s:I, s:I}, s:s}", "visibility_timeout",
                     (json_int_t)p->visibility_ms, "max_deliveries", (json_int_t)p->max_deliveries,
                     "backoff", "kind", BACKOFF_KINDS[k], "delay", (json_int_t)p->backoff.delay_ms,
                     "cap", (json_int_t)p->backoff.cap_ms, "jitter",
                     (json_int_t)p->backoff.jitter_pct, "dead_letter",
                     p->dead_letter ? p->dead_letter : "");
}
