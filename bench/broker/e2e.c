/* bench/broker/e2e.c: end-to-end latency of a RESP stream server (the colony
 * broker or redis-server) at a steady, open-loop publish rate.
 *
 * One connection publishes `XADD <stream> * t <scheduled ns> d <value>` on a
 * fixed schedule (message i is due at start + i / rate; a late send goes out
 * at once, the schedule does not slip: no coordinated omission). A thread
 * reads that connection's replies (in order, so reply i belongs to message i).
 * Another connection, the group consumer, loops on
 * `XREADGROUP GROUP <group> c COUNT <count> BLOCK 1000 STREAMS <stream> >` and
 * XACKs what it got in one XACK; when the XACK reply is in, each entry's
 * latency is that time minus its scheduled publish time.
 *
 * Prints one JSON object: counts, achieved rates, and p50/p99/p99.9/max of the
 * end-to-end latency and of the publish latency (XADD reply − schedule), ms.
 * The group must exist (the driver, bench/broker/e2e, creates it).
 *
 * Usage: e2e HOST PORT STREAM GROUP RATE SECONDS VALUE_BYTES [COUNT]
 * COUNT (default 800, at most 1000): under 1000 because a parked (durable)
 * XREADGROUP reply over 1 MB crashed the broker once; kept at 800 so runs
 * compare with the earlier ones.
 * A benchmark tool, not part of the product: it exits 1 on a setup error. */
#define _GNU_SOURCE
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DRAIN_NS (5LL * 1000000000LL) /* wait for stragglers after the last send */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct {
    redisContext *pub;
    const char *stream, *group, *value;
    long n;
    int64_t start, period;
    int64_t *pub_lat; /* per message: XADD reply − schedule, ns */
    long replies, errors;
    char first_error[200];
    int64_t last_send;
} B;

static int64_t sched_of(long i)
{
    return B.start + (int64_t)i * B.period;
}

/* Writes every message that is due, then sleeps until the next one is. */
static void *publisher(void *arg)
{
    (void)arg;
    long i = 0;
    char *buf = NULL;
    size_t cap = 0;
    while (i < B.n) {
        int64_t t = now_ns();
        if (t < sched_of(i)) {
            int64_t due = sched_of(i);
            struct timespec ts = {(time_t)(due / 1000000000LL), (long)(due % 1000000000LL)};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
            continue;
        }
        size_t len = 0;
        while (i < B.n && sched_of(i) <= t) {
            char tbuf[32], *cmd;
            snprintf(tbuf, sizeof tbuf, "%lld", (long long)sched_of(i));
            int clen = redisFormatCommand(&cmd, "XADD %s * t %s d %s", B.stream, tbuf, B.value);
            if (clen < 0) exit(1);
            if (len + (size_t)clen > cap) {
                cap = (len + (size_t)clen) * 2;
                buf = realloc(buf, cap);
                if (!buf) exit(1);
            }
            memcpy(buf + len, cmd, (size_t)clen);
            len += (size_t)clen;
            redisFreeCommand(cmd);
            i++;
        }
        for (size_t off = 0; off < len;) {
            ssize_t w = write(B.pub->fd, buf + off, len - off);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                fprintf(stderr, "e2e: publish write: %s\n", strerror(errno));
                exit(1);
            }
            off += (size_t)w;
        }
    }
    B.last_send = now_ns();
    free(buf);
    return NULL;
}

/* Reads the publisher connection's replies; reply i is message i's. */
static void *pub_replies(void *arg)
{
    (void)arg;
    redisReader *rd = B.pub->reader;
    char buf[65536];
    while (B.replies < B.n) {
        ssize_t r = read(B.pub->fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            fprintf(stderr, "e2e: publish connection closed after %ld replies\n", B.replies);
            return NULL;
        }
        int64_t t = now_ns();
        redisReaderFeed(rd, buf, (size_t)r);
        void *reply;
        while (redisReaderGetReply(rd, &reply) == REDIS_OK && reply) {
            redisReply *rp = reply;
            if (rp->type == REDIS_REPLY_ERROR) {
                if (!B.errors++) {
                    snprintf(B.first_error, sizeof B.first_error, "%s", rp->str);
                    for (char *c = B.first_error; *c; c++)
                        if (*c == '"' || *c == '\\' || (unsigned char)*c < 32) *c = '\'';
                }
            }
            B.pub_lat[B.replies] = t - sched_of(B.replies);
            __atomic_store_n(&B.replies, B.replies + 1, __ATOMIC_RELEASE);
            freeReplyObject(rp);
        }
    }
    return NULL;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Prints "name": {p50, p99, p99_9, max} in ms of v[0..n) (sorts v). */
static void print_pcts(const char *name, int64_t *v, long n)
{
    if (n == 0) {
        printf("\"%s\": null", name);
        return;
    }
    qsort(v, (size_t)n, sizeof *v, cmp64);
    double q[] = {0.50, 0.99, 0.999};
    const char *k[] = {"p50_ms", "p99_ms", "p99_9_ms"};
    printf("\"%s\": {", name);
    for (int j = 0; j < 3; j++) {
        long idx = (long)(q[j] * (double)n);
        if (idx >= n) idx = n - 1;
        printf("\"%s\": %.3f, ", k[j], (double)v[idx] / 1e6);
    }
    printf("\"max_ms\": %.3f}", (double)v[n - 1] / 1e6);
}

static redisContext *connect_to(const char *host, int port)
{
    redisContext *c = redisConnect(host, port);
    if (!c || c->err) {
        fprintf(stderr, "e2e: connect %s:%d: %s\n", host, port, c ? c->errstr : "no memory");
        exit(1);
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return c;
}

int main(int argc, char **argv)
{
    if (argc != 8 && argc != 9) {
        fprintf(stderr, "usage: e2e HOST PORT STREAM GROUP RATE SECONDS VALUE_BYTES [COUNT]\n");
        return 1;
    }
    int count = argc == 9 ? atoi(argv[8]) : 800;
    if (count < 1 || count > 1000) return 1;
    const char *host = argv[1];
    int port = atoi(argv[2]);
    double rate = atof(argv[5]), secs = atof(argv[6]);
    size_t vsize = (size_t)atol(argv[7]);
    B.stream = argv[3];
    B.group = argv[4];
    B.n = (long)(rate * secs);
    B.period = (int64_t)(1e9 / rate);
    char *value = malloc(vsize + 1);
    int64_t *e2e = calloc((size_t)B.n, sizeof *e2e);
    B.pub_lat = calloc((size_t)B.n, sizeof *B.pub_lat);
    if (!value || !e2e || !B.pub_lat || B.n <= 0) return 1;
    memset(value, 'v', vsize);
    value[vsize] = 0;
    B.value = value;
    B.pub = connect_to(host, port);
    redisContext *con = connect_to(host, port);

    B.start = now_ns() + 100000000LL; /* 100 ms from now */
    pthread_t tw, tr;
    pthread_create(&tr, NULL, pub_replies, NULL);
    pthread_create(&tw, NULL, publisher, NULL);

    long got = 0, reads = 0;
    int64_t last_ack = 0, end_by = sched_of(B.n) + DRAIN_NS;
    const char **ack_argv = malloc((3 + 1000) * sizeof *ack_argv);
    if (!ack_argv) return 1;
    while (got < B.n && now_ns() < end_by) {
        redisReply *r = redisCommand(con, "XREADGROUP GROUP %s c COUNT %d BLOCK 1000 STREAMS %s >",
                                     B.group, count, B.stream);
        if (!r) {
            fprintf(stderr, "e2e: consumer: %s\n", con->errstr);
            return 1;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "e2e: XREADGROUP: %s\n", r->str);
            return 1;
        }
        reads++;
        if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
            freeReplyObject(r);
            continue;
        }
        redisReply *entries = r->element[0]->element[1];
        int64_t sched[1000];
        size_t k = entries->elements;
        ack_argv[0] = "XACK";
        ack_argv[1] = B.stream;
        ack_argv[2] = B.group;
        for (size_t j = 0; j < k; j++) {
            redisReply *e = entries->element[j];
            ack_argv[3 + j] = e->element[0]->str;
            redisReply *f = e->element[1];
            sched[j] = 0;
            for (size_t m = 0; m + 1 < f->elements; m += 2)
                if (strcmp(f->element[m]->str, "t") == 0) sched[j] = atoll(f->element[m + 1]->str);
        }
        redisReply *a = redisCommandArgv(con, (int)(3 + k), ack_argv, NULL);
        int64_t t = now_ns();
        if (!a || a->type != REDIS_REPLY_INTEGER || (size_t)a->integer != k) {
            fprintf(stderr, "e2e: XACK: %s\n",
                    a ? (a->str ? a->str : "unexpected count") : con->errstr);
            return 1;
        }
        freeReplyObject(a);
        for (size_t j = 0; j < k && got < B.n; j++)
            e2e[got++] = t - sched[j];
        last_ack = t;
        freeReplyObject(r);
    }
    pthread_join(tw, NULL);
    /* The reply reader ends when all replies are in; give it the drain time. */
    while (__atomic_load_n(&B.replies, __ATOMIC_ACQUIRE) < B.n && now_ns() < end_by)
        usleep(10000);

    double send_span = (double)(B.last_send - B.start) / 1e9;
    double ack_span = (double)(last_ack - B.start) / 1e9;
    printf("{\"messages\": %ld, \"rate_target\": %.0f, \"seconds\": %.1f, \"value_bytes\": %zu, ",
           B.n, rate, secs, vsize);
    printf("\"published\": %ld, \"publish_errors\": %ld, \"first_error\": \"%s\", ", B.replies,
           B.errors, B.first_error);
    printf("\"acked\": %ld, \"xreadgroup_calls\": %ld, ", got, reads);
    printf("\"send_rate\": %.0f, \"ack_rate\": %.0f, ", send_span > 0 ? B.n / send_span : 0,
           ack_span > 0 ? got / ack_span : 0);
    print_pcts("e2e", e2e, got);
    printf(", ");
    print_pcts("publish", B.pub_lat, B.replies);
    printf("}\n");
    fflush(stdout);
    /* The reply thread may still block in read() if replies are missing. */
    _exit(got == B.n && B.replies == B.n ? 0 : 2);
}
