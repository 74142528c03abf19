/* Error codes: every fallible libcolony function returns 0 or one of these.
 * They are negative errno values (the same convention as libuv), so a libuv
 * status can be returned as is and colony_strerror() describes both. */
#ifndef COLONY_ERROR_H
#define COLONY_ERROR_H

#include <errno.h>
#include "export.h"

enum {
    COLONY_OK = 0,
    COLONY_ENOMEM = -ENOMEM,             /* allocation failed */
    COLONY_EINVAL = -EINVAL,             /* bad argument or malformed input */
    COLONY_ENOENT = -ENOENT,             /* no such file, key or entry */
    COLONY_EEXIST = -EEXIST,             /* already exists */
    COLONY_EAGAIN = -EAGAIN,             /* incomplete: call again with more input */
    COLONY_E2BIG = -E2BIG,               /* over a configured size limit */
    COLONY_ERANGE = -ERANGE,             /* number out of range */
    COLONY_EPROTO = -EPROTO,             /* protocol violation by the peer */
    COLONY_ETIMEDOUT = -ETIMEDOUT,       /* a deadline passed */
    COLONY_ECANCELED = -ECANCELED,       /* cancelled by the caller */
    COLONY_ECONNRESET = -ECONNRESET,     /* the peer closed or reset the connection */
    COLONY_ECONNREFUSED = -ECONNREFUSED, /* nothing listening */
    COLONY_EADDRINUSE = -EADDRINUSE,     /* address already in use */
    COLONY_EIO = -EIO,                   /* I/O error */
    COLONY_EBUSY = -EBUSY,               /* resource busy or at a limit (pool, queue) */
    COLONY_ENOTSUP = -ENOTSUP,           /* not supported */
    COLONY_ESHUTDOWN = -ESHUTDOWN,       /* the component is shutting down */
};

/* Describes a COLONY_E* code (or any negative errno / libuv status).
 * Returns a static string; never NULL. */
COLONY_API const char *colony_strerror(int err);

/* Short symbolic name of a code ("ETIMEDOUT"), for logs and JSON. Static; never NULL. */
COLONY_API const char *colony_errname(int err);

#endif
