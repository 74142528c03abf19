/* libFuzzer target for the router. The input is "METHOD PATH": it is matched
 * against a fixed route table (public and internal matcher must agree, and
 * captured parameters must lie inside the path and decode or be rejected
 * cleanly). Then every line of the input is added as a pattern to a fresh
 * router, which may only answer 0, COLONY_EINVAL or COLONY_EEXIST, and the
 * path is matched against those patterns too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "colony/colony.h"
#include "http/router_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void noop_handler(colony_request *req, void *ud)
{
    (void)req;
    (void)ud;
}

static const char *const fixed_routes[][2] = {
    {"GET", "/"},
    {"GET", "/users"},
    {"POST", "/users"},
    {"GET", "/users/:id"},
    {"DELETE", "/users/:id"},
    {"GET", "/users/me"},
    {"GET", "/users/:id/orders/:orderId"},
    {"GET", "/a/:x/c"},
    {"GET", "/a/b/d"},
    {"GET", "/static/*"},
    {"PUT", "/files/:name/*"},
    {"*", "/any/:thing"},
    {"GET", "/*"},
    {"HEAD", "/h"},
    {"GET", "/t/"},
};

static colony_router *fixed_router(void)
{
    static colony_router *r;
    if (r) return r;
    r = colony_router_new();
    if (!r) abort();
    for (size_t i = 0; i < sizeof(fixed_routes) / sizeof(fixed_routes[0]); i++)
        if (colony_router_add(r, fixed_routes[i][0], fixed_routes[i][1], noop_handler, NULL) != 0)
            abort();
    return r;
}

/* Checks the internal and public matchers on one router. */
static void check_match(const colony_router *r, const char *method, const char *path,
                        size_t path_len)
{
    colony__route_match m;
    int status = colony__router_lookup(r, method, path, path_len, &m);
    if (status != 200 && status != 404 && status != 405) abort();
    if (status == 200) {
        if (!m.route || m.nparams != m.route->nparams) abort();
        for (size_t i = 0; i < m.nparams; i++) {
            const colony__span *sp = &m.params[i];
            if (sp->off > path_len || sp->len > path_len - sp->off) abort();
            char *out = malloc(sp->len + 1);
            if (!out) abort();
            size_t out_len;
            int rc = colony__percent_decode(path + sp->off, sp->len, 0, out, &out_len);
            if (rc != 0 && rc != COLONY_EINVAL) abort();
            if (rc == 0 && (out_len > sp->len || strlen(out) != out_len)) abort();
            free(out);
        }
    } else if (m.route || m.nparams) {
        abort();
    }
    if (status == 405 && m.nallow == 0) abort();
    char allow[64];
    size_t full = colony__router_format_allow(&m, allow, sizeof(allow));
    if (strlen(allow) != (full < sizeof(allow) ? full : sizeof(allow) - 1)) abort();
    /* The public wrapper agrees when the path has no '?' or NUL. */
    if (strlen(path) == path_len && !memchr(path, '?', path_len)) {
        char pub_allow[256];
        if (colony_router_match(r, method, path, pub_allow, sizeof(pub_allow)) != status) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *input = malloc(size + 1);
    if (!input) return 0;
    memcpy(input, data, size);
    input[size] = '\0';

    /* "METHOD PATH" up to the first newline. */
    size_t line_len = strcspn(input, "\n");
    char *line = strndup(input, line_len);
    char *space = line ? strchr(line, ' ') : NULL;
    const char *method = "GET";
    const char *path = line ? line : "";
    if (space) {
        *space = '\0';
        method = line;
        path = space + 1;
    }
    check_match(fixed_router(), method, path, strlen(path));

    /* Every line as a pattern (with the first word as a method when there is
     * one), on a fresh router. */
    colony_router *r = colony_router_new();
    if (r) {
        char *save = NULL;
        for (char *pat = strtok_r(input, "\n", &save); pat; pat = strtok_r(NULL, "\n", &save)) {
            char *sp = strchr(pat, ' ');
            const char *m = "GET";
            if (sp) {
                *sp = '\0';
                m = pat;
                pat = sp + 1;
            }
            int rc = colony_router_add(r, m, pat, noop_handler, NULL);
            if (rc != 0 && rc != COLONY_EINVAL && rc != COLONY_EEXIST) abort();
            if (rc == 0 && colony_router_add(r, m, pat, noop_handler, NULL) != COLONY_EEXIST)
                abort();
            /* A pattern without parameters matches itself. */
            if (rc == 0 && !strpbrk(pat, ":*") && colony_router_match(r, m, pat, NULL, 0) != 200 &&
                !strchr(pat, '?'))
                abort();
        }
        check_match(r, method, path, strlen(path));
        colony_router_free(r);
    }
    free(line);
    free(input);
    return 0;
}
