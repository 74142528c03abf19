/* The gateway's routes file in unit tests (they reach its internals): build a
 * config from text, check that an edit of a good file is refused with its
 * line, key and reason, and fail every allocation of a build in turn. */
#ifndef COLONY_GATEWAY_CONFIG_FIXTURE_H
#define COLONY_GATEWAY_CONFIG_FIXTURE_H

#include <stdio.h>
#include <string.h>
#include "colony/colony.h"
#include "core/alloc.h"
#include "gateway/config.h"
#include "test_support.h"

/* Builds text as the file "routes.json". */
static inline int gw_test_build(const char *text, gw_config **out, colony_config_error *err)
{
    colony_json_doc *doc;
    int rc = colony_json_doc_parse("routes.json", text, strlen(text), &doc, err);
    if (rc) return rc;
    rc = colony__gw_config_build(doc, out, err);
    colony_json_doc_free(doc);
    return rc;
}

/* Replaces the first `from` in base with `to`, builds it and checks the
 * refusal: COLONY_EINVAL, no config, routes.json at `line`, `key`, and a
 * reason that contains `reason`. */
static inline void gw_test_refused_in(const char *base, const char *from, const char *to, int line,
                                      const char *key, const char *reason)
{
    const char *at = strstr(base, from);
    if (!at) fail_msg("test bug: %s not in the file", from);
    char text[4096];
    snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
    gw_config *cfg = (gw_config *)1;
    colony_config_error err;
    memset(&err, 0, sizeof(err));
    int rc = gw_test_build(text, &cfg, &err);
    if (rc == 0) colony__gw_config_unref(cfg);
    if (rc != COLONY_EINVAL) fail_msg("%s -> %s: expected a refusal, got %d", from, to, rc);
    assert_null(cfg);
    assert_string_equal(err.file, "routes.json");
    if (err.line != line || strcmp(err.key, key) != 0 || !strstr(err.reason, reason))
        fail_msg("%s -> %s: got %d %s: %s", from, to, err.line, err.key, err.reason);
}

/* Fails the n-th allocation of a build of text, for n = 0, 1, ... until a
 * build needs no failure: each failing build must answer COLONY_ENOMEM with
 * no config (LeakSanitizer checks nothing is left behind). Returns how many
 * failures were injected in all. */
static inline long gw_test_allocation_failures(const char *text)
{
    long injected = 0;
    for (long n = 0;; n++) {
        colony__alloc_fail_after(n);
        gw_config *cfg = NULL;
        colony_config_error err;
        int rc = gw_test_build(text, &cfg, &err);
        long failures = colony__alloc_failures();
        colony__alloc_fail_reset();
        injected += failures;
        if (rc == 0) {
            colony__gw_config_unref(cfg);
            if (failures == 0) break;
            continue;
        }
        if (rc != COLONY_ENOMEM) fail_msg("after %ld: %d %s: %s", n, rc, err.key, err.reason);
        assert_null(cfg);
    }
    return injected;
}

#endif
