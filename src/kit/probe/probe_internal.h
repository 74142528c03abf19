/* Internals of the probe part (include/colony/probe.h): the prober and its
 * scheduler (probe.c), target parsing (probe_target.c), and one run of an
 * HTTP (probe_http.c) or TCP (probe_tcp.c) probe. */
#ifndef COLONY_KIT_PROBE_INTERNAL_H
#define COLONY_KIT_PROBE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "colony/http_client.h"
#include "colony/probe.h"
#include "core/closer.h"
#include "core/list.h"
#include "core/map.h"

#define PROBE_HOST_MAX 256

/* All probes of one host:port: the ones due wait here in turn, and at most
 * max_per_target of them run at once. */
typedef struct probe_target {
    colony__list due;        /* colony_probe.due_link, first due first */
    colony__list ready_link; /* on prober->ready: has due probes and room to run one */
    unsigned inflight;       /* runs in progress against it */
    unsigned users;          /* open probes of this target; freed at 0 */
    char *key;               /* "host:port", as in prober->targets */
} probe_target;

struct colony_prober {
    uv_loop_t *loop;
    colony_prober_options opts;
    colony_client *client; /* HTTP probes */
    colony__map targets;   /* "host:port" -> probe_target */
    colony__list ready;    /* targets served in turn (round robin) */
    colony__list probes;   /* every open or closing probe */
    unsigned nprobes, inflight, due;
    uint64_t runs, rng;
    int pumping, closing;
    colony_prober_closed_cb closed_cb;
    void *closed_ud;
};

typedef struct probe_run probe_run;

struct colony_probe {
    colony_prober *pr;
    probe_target *target;
    colony_probe_kind kind;
    char *url;                 /* the target as given */
    char *method;              /* HTTP */
    char *body;                /* HTTP, or NULL */
    char **headers;            /* HTTP: NULL-terminated name, value, ... (owned), or NULL */
    char *tls[4];              /* https: ca_file, server_name, cert_file, key_file, or NULL */
    char host[PROBE_HOST_MAX]; /* TCP: without brackets */
    int port;
    uint64_t interval_ms, timeout_ms;
    unsigned success_before_passing, failures_before_critical;
    unsigned ok_streak, fail_streak;
    colony_probe_status status;
    colony_probe_cb on_result, on_change;
    void *ud;
    uv_timer_t timer; /* next run */
    int timer_open, closing;
    colony__list due_link; /* on target->due while waiting to run */
    colony__list all_link; /* on prober->probes */
    probe_run *run;        /* in flight, or NULL */
    colony_probe_closed_cb closed_cb;
    void *closed_ud;
};

/* One run of one probe; freed after its handles are closed. */
struct probe_run {
    colony_probe *probe;
    colony__closer closer; /* TCP handles */
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect;
    uv_getaddrinfo_t gai;
    int tcp_open, timer_open; /* TCP handles initialised */
    colony_client_call *call; /* HTTP */
    int finished, err, http_status, head_seen, truncated;
    colony_probe_status run_status;
    char why[200]; /* TCP: what happened */
    size_t body_len;
    char body[]; /* max_output + 1 bytes of the response body */
};

/* Starts a run; 0, or an error with nothing started (the caller reports it).
 * A started run ends with colony__probe_run_done(), always from the loop. */
int colony__probe_http_start(probe_run *run);
int colony__probe_tcp_start(probe_run *run);
/* Cancels a run in flight (the probe is closing); it still ends with
 * colony__probe_run_done(). */
void colony__probe_http_cancel(probe_run *run);
void colony__probe_tcp_cancel(probe_run *run);
/* The run is over: applies its result (output may be NULL: out of memory),
 * frees the run, and lets the next due probe run. */
void colony__probe_run_done(probe_run *run, const char *output);

/* Runs due probes while there is room (see probe.c). */
void colony__probe_pump(colony_prober *pr);

/* Splits "host:port" / "[v6]:port" (n bytes of s) into host (brackets
 * removed) and a port 1..65535 written as digits only. 0 or COLONY_EINVAL
 * with msg saying why. */
int colony__probe_parse_hostport(const char *s, size_t n, char *host, size_t host_size, int *port,
                                 char *msg, size_t msg_size);
/* The scheduling key of a probe target: "host:port" of the address or URL
 * (port 80 when a URL has none). 0, or the errors of options_check. */
int colony__probe_target_key(colony_probe_kind kind, const char *target, char *host,
                             size_t host_size, int *port, char *msg, size_t msg_size);

#endif
