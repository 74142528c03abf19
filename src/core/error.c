/* Error codes are negative errno values; describe them via libuv, which knows
 * every errno plus its own UV_E* codes. */
#include <uv.h>
#include "colony/error.h"

const char *colony_strerror(int err)
{
    if (err == 0) return "success";
    if (err > 0) return "not an error code";
    return uv_strerror(err);
}

const char *colony_errname(int err)
{
    if (err == 0) return "OK";
    if (err > 0) return "EUNKNOWN";
    return uv_err_name(err);
}
