/* The gateway process's malloc settings (glibc). Each keep-alive request
 * takes and frees a 16 KiB read buffer and the output buffers (the server
 * frees them while a connection is idle, for idle memory). With glibc's
 * defaults (trim at 128 KiB of free heap top, a moving mmap threshold), those
 * frees can leave the heap's top free past the trim threshold and the next
 * request grows it again: a brk and fresh pages to fault in, again and again.
 * Measured at 50 connections: 0.01-0.07 minor faults per request and
 * 2-4 µs of system time more per request (docs/benchmarks.md). Keeping up to
 * a few MiB of free heap top ends the cycle, as nginx's pools do. */
#include "gateway/proxy.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#define GW_TRIM_THRESHOLD (4 << 20) /* free heap top kept before returning it */
#define GW_TOP_PAD        (1 << 20) /* extra taken when the heap grows */
#define GW_MMAP_THRESHOLD (1 << 20) /* larger blocks are mmapped (fixed, not moving) */

int colony__gw_malloc_tune(void)
{
#if defined(__GLIBC__)
    /* mallopt returns 1 on success; a sanitizer's allocator returns 0 */
    return mallopt(M_TRIM_THRESHOLD, GW_TRIM_THRESHOLD) == 1 &&
           mallopt(M_TOP_PAD, GW_TOP_PAD) == 1 && mallopt(M_MMAP_THRESHOLD, GW_MMAP_THRESHOLD) == 1;
#else
    return 0;
#endif
}
