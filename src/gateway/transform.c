/* Header transforms (transform.h). Memory comes from the request arena. */
#include "gateway/transform.h"
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "colony/error.h"
#include "colony/resilience.h"

/* 1 if name (len bytes) is set or removed by ops: the original goes. */
static int replaced(const gw_header_ops *ops, const char *name, size_t len)
{
    for (size_t i = 0; i < ops->nset; i++)
        if (strlen(ops->set[2 * i]) == len && strncasecmp(ops->set[2 * i], name, len) == 0)
            return 1;
    for (size_t i = 0; i < ops->nremove; i++)
        if (strlen(ops->remove[i]) == len && strncasecmp(ops->remove[i], name, len) == 0) return 1;
    return 0;
}

int colony__gw_transform_request(gw_forward *f, const gw_route_conf *r, size_t *deadline_slot)
{
    const gw_header_ops *ops = &r->request_headers;
    size_t old = f->host_slot; /* the pairs before Host (always last) */
    const char **h = colony_arena_alloc(f->arena, (old + 2 * (ops->nset + ops->nadd) + 2 + 2 + 1) *
                                                      sizeof(char *));
    if (!h) return COLONY_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < old; i += 2) {
        const char *name = f->headers[i];
        size_t len = strlen(name);
        if ((ops->nset + ops->nremove && replaced(ops, name, len)) ||
            (len == sizeof(COLONY_DEADLINE_HEADER) - 1 &&
             strcasecmp(name, COLONY_DEADLINE_HEADER) == 0))
            continue;
        h[n++] = name;
        h[n++] = f->headers[i + 1];
    }
    for (size_t i = 0; i < ops->nset; i++) {
        h[n++] = ops->set[2 * i];
        h[n++] = ops->set[2 * i + 1];
    }
    for (size_t i = 0; i < ops->nadd; i++) {
        h[n++] = ops->add[2 * i];
        h[n++] = ops->add[2 * i + 1];
    }
    *deadline_slot = n;
    h[n++] = COLONY_DEADLINE_HEADER;
    h[n++] = "1";
    f->host_slot = n;
    h[n++] = "Host";
    h[n++] = NULL;
    h[n] = NULL;
    f->headers = h;
    return 0;
}

int colony__gw_transform_deadline(gw_forward *f, size_t deadline_slot, uint64_t left_ms)
{
    /* by hand: colony_arena_sprintf runs vsnprintf twice, per request */
    char digits[24], *d = digits + sizeof(digits);
    do
        *--d = (char)('0' + left_ms % 10);
    while ((left_ms /= 10) != 0);
    char *value = colony_arena_strndup(f->arena, d, (size_t)(digits + sizeof(digits) - d));
    if (!value) return COLONY_ENOMEM;
    f->headers[deadline_slot + 1] = value;
    return 0;
}

int colony__gw_transform_response(colony_request *req, const colony_client_response *res,
                                  const gw_route_conf *r)
{
    const gw_header_ops *ops = &r->response_headers;
    if (!ops->nset && !ops->nadd && !ops->nremove)
        return colony__gw_forward_response_head(req, res);
    colony_arena *a = colony_request_arena(req);
    colony_http_header *kept =
        colony_arena_alloc(a, (res->num_headers ? res->num_headers : 1) * sizeof(*kept));
    if (!kept) return COLONY_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < res->num_headers; i++)
        if (!replaced(ops, res->headers[i].name, res->headers[i].name_len))
            kept[n++] = res->headers[i];
    colony_client_response copy = *res;
    copy.headers = kept;
    copy.num_headers = n;
    int rc = colony__gw_forward_response_head(req, &copy);
    for (size_t i = 0; !rc && i < ops->nset; i++)
        rc = colony_response_header(req, ops->set[2 * i], ops->set[2 * i + 1]);
    for (size_t i = 0; !rc && i < ops->nadd; i++)
        rc = colony_response_header(req, ops->add[2 * i], ops->add[2 * i + 1]);
    return rc;
}
