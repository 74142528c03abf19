/* CPU cost of the broker store's operations on the page cache (no fsync):
 * 100k appends of 1 KB entries, then 100k XREADGROUP ">" COUNT 1 reads (each
 * writes its delivery record to the group journal), then one full scan.
 * Prints microseconds per operation. A measurement, not a test.
 *
 *   bench/broker/run-store-choice builds and runs it after store_append. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "broker/store/store.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int count(void *ud, const colony__bentry *e)
{
    (void)e;
    ++*(long *)ud;
    return 0;
}

int main(int argc, char **argv)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/store-ops", argc > 1 ? argv[1] : ".");
    colony__bstore_options o = {0};
    o.dir = dir;
    colony__bstore *s;
    char msg[256];
    if (colony__bstore_open(&s, &o, msg, sizeof(msg))) {
        fprintf(stderr, "%s\n", msg);
        return 1;
    }
    colony__bstream *st;
    colony__bgroup *g;
    colony__bid zero = {0, 0}, max = {UINT64_MAX, UINT64_MAX}, out;
    if (colony__bstore_create(s, "bench", &st) || colony__bgroup_create(st, "g", zero, &g))
        return 1;
    char body[1024];
    memset(body, 'x', sizeof(body));
    colony__bstr f[2] = {{"body", 4}, {body, sizeof(body)}};
    const int n = 100000;
    double t0 = now();
    for (int i = 0; i < n; i++)
        if (colony__bstream_append(st, COLONY__BID_AUTO, zero, f, 2, &out)) return 1;
    double t1 = now();
    long read = 0, scanned = 0;
    for (int i = 0; i < n; i++)
        if (colony__bgroup_read_new(g, "c", 1, 0, count, &read) != 1) return 1;
    double t2 = now();
    colony__bstream_range(st, zero, max, 0, 0, count, &scanned);
    double t3 = now();
    printf("append %.1f us, XREADGROUP > COUNT 1 + delivery %.1f us, scan %.2f us per entry "
           "(%d entries of 1 KB)\n",
           (t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6, (t3 - t2) / (double)scanned * 1e6, n);
    colony__bstore_drop(s, "bench");
    colony__bstore_close(s);
    return 0;
}
