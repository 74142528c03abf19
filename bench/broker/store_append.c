/* The broker store's own durable append rate: 1 KB entries appended through
 * colony__bstream_append and acknowledged by colony__bcommit (fsync: always,
 * group-committed on libuv's thread pool), with 1, 32 or 256 appends in
 * flight (what one client, or many clients, or pipelining give the daemon).
 * Prints acked appends/s and fsync'd batches/s. A measurement, not a test.
 *
 *   bench/broker/run-store-choice builds and runs it after store_choice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>
#include "broker/store/store.h"
#include "kit/durable/durable.h"

typedef struct run {
    uv_loop_t *loop;
    colony__bstream *st;
    colony__bcommit *commit;
    int in_flight, window;
    long acked;
    double until;
    char body[1024];
} run;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fill(run *r);

static void on_ack(void *ud, int err)
{
    run *r = ud;
    if (err) {
        fprintf(stderr, "commit failed: %d\n", err);
        exit(1);
    }
    r->in_flight--;
    r->acked++;
    if (now() < r->until) fill(r);
}

static void fill(run *r)
{
    colony__bstr f[2] = {{"body", 4}, {r->body, sizeof(r->body)}};
    colony__bid id = {0, 0}, out;
    while (r->in_flight < r->window) {
        if (colony__bstream_append(r->st, COLONY__BID_AUTO, id, f, 2, &out) ||
            colony__bcommit_wait(r->commit, r->st, on_ack, r)) {
            fprintf(stderr, "append failed\n");
            exit(1);
        }
        r->in_flight++;
    }
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    double secs = argc > 2 ? atof(argv[2]) : 3.0;
    int windows[] = {1, 32, 256};
    printf("%-8s %6s %14s\n", "store", "window", "acked/s");
    for (size_t w = 0; w < sizeof(windows) / sizeof(windows[0]); w++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/store-%d", dir, windows[w]);
        colony__bstore_options o = {0};
        o.dir = path;
        colony__bstore *s;
        char msg[256];
        if (colony__bstore_open(&s, &o, msg, sizeof(msg))) {
            fprintf(stderr, "%s\n", msg);
            return 1;
        }
        run r = {0};
        memset(r.body, 'x', sizeof(r.body));
        r.loop = uv_default_loop();
        r.window = windows[w];
        colony__bstore_create(s, "bench", &r.st);
        colony__bcommit_new(&r.commit, r.loop, COLONY__BSYNC_ALWAYS, 0);
        double t0 = now();
        r.until = t0 + secs;
        fill(&r);
        uv_run(r.loop, UV_RUN_DEFAULT);
        double el = now() - t0;
        printf("%-8s %6d %14.0f\n", "bstore", windows[w], (double)r.acked / el);
        colony__bcommit_close(r.commit);
        uv_run(r.loop, UV_RUN_DEFAULT);
        colony__bstore_drop(s, "bench");
        colony__bstore_close(s);
    }
    return 0;
}
