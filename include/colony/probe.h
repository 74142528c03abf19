/* Health probes: an HTTP URL or a TCP address probed every interval with a
 * timeout, judged passing / warning / critical, with Consul's thresholds
 * (SuccessBeforePassing, FailuresBeforeCritical) and the output captured (at
 * most max_output bytes; a longer body is cut and judged by its status code).
 * Probes belong to a prober, which runs them on one loop with a global cap on
 * probes in flight and a cap per target address, serving the targets that
 * have due probes in turn: a target that hangs holds only its own probes
 * back. A prober and its probes belong to one loop and are used only from
 * that loop's thread. The registry's checks, the gateway's active checks and
 * the supervisor's readiness are built on it. Behaviour: docs/probe.md. */
#ifndef COLONY_PROBE_H
#define COLONY_PROBE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "export.h"

typedef struct colony_prober colony_prober; /* runs probes on one loop */
typedef struct colony_probe colony_probe;   /* one target probed on an interval */

typedef enum colony_probe_status {
    COLONY_PROBE_PASSING = 0,  /* 2xx, or the TCP connection was accepted */
    COLONY_PROBE_WARNING = 1,  /* 429 Too Many Requests */
    COLONY_PROBE_CRITICAL = 2, /* anything else: other codes, errors, timeouts */
} colony_probe_status;

typedef enum colony_probe_kind {
    COLONY_PROBE_HTTP = 1, /* target: http[s]://host[:port]/path */
    COLONY_PROBE_TCP = 2,  /* target: host:port or [v6]:port, port 1..65535 */
} colony_probe_kind;

/* ------------------------------------------------------------------ prober */

typedef struct colony_prober_options {
    unsigned max_inflight;   /* 64: probes running at once, all targets together */
    unsigned max_per_target; /* 1: probes running at once against one host:port */
    size_t max_output;       /* 4096: longest output text, in bytes */
} colony_prober_options;

/* Fills the defaults above. */
COLONY_API void colony_prober_options_init(colony_prober_options *o);
/* Creates a prober on loop (opts NULL = defaults). 0, COLONY_EINVAL or
 * COLONY_ENOMEM; *out is freed by colony_prober_close(). */
COLONY_API int colony_prober_new(uv_loop_t *loop, const colony_prober_options *opts,
                                 colony_prober **out);
/* Closes every probe still open (their callbacks stop at once; their handles
 * are invalid from here on), then frees the prober; cb (may be NULL) runs
 * after that, never before this returns. */
typedef void (*colony_prober_closed_cb)(void *ud);
COLONY_API void colony_prober_close(colony_prober *pr, colony_prober_closed_cb cb, void *ud);

typedef struct colony_prober_stats {
    unsigned probes;   /* open probes */
    unsigned inflight; /* runs in progress */
    unsigned due;      /* runs waiting for room (global or per target) */
    uint64_t runs;     /* runs finished so far */
} colony_prober_stats;
COLONY_API void colony_prober_get_stats(const colony_prober *pr, colony_prober_stats *out);

/* ------------------------------------------------------------------- probe */

/* One run's result. Strings are valid during the callback only. */
typedef struct colony_probe_result {
    colony_probe_status status;     /* the probe's status after thresholds */
    colony_probe_status run_status; /* this run's own verdict; != status while a
                                       threshold holds the change back */
    int changed;                    /* status changed with this run */
    const char *output; /* "HTTP GET url: 200 Output: body" / "TCP connect a:p: Success" */
    int http_status;    /* 0 for TCP or when no response head arrived */
    int err;            /* 0, or why the run failed (COLONY_ETIMEDOUT, ...) */
} colony_probe_result;

typedef void (*colony_probe_cb)(colony_probe *p, const colony_probe_result *r, void *ud);

typedef struct colony_probe_options {
    colony_probe_kind kind;            /* required */
    const char *target;                /* required; copied */
    const char *method;                /* HTTP: NULL = "GET"; copied */
    const char *const *headers;        /* HTTP: NULL-terminated name, value, ...; copied */
    const char *body;                  /* HTTP request body or NULL; copied */
    uint64_t interval_ms;              /* 10000: from the end of one run to the start of the next */
    uint64_t timeout_ms;               /* 10000: one run (connect, request, response) */
    int64_t first_run_ms;              /* -1: at a random point of the first interval, so probes
                                          started together spread out; 0 = at once */
    unsigned success_before_passing;   /* 1: passing runs in a row to become passing */
    unsigned failures_before_critical; /* 1: failing runs in a row to leave passing */
    colony_probe_status initial_status; /* CRITICAL, as Consul */
    colony_probe_cb on_result;          /* every run (may be NULL) */
    colony_probe_cb on_change;          /* after on_result, when status changed (may be NULL) */
    void *ud;
    /* https targets, all optional and copied (colony_client_request's): verify
     * against tls_ca_file instead of the system store, send and verify
     * tls_server_name instead of the URL's host, and present tls_cert_file /
     * tls_key_file when the server asks for a client certificate. A failed
     * handshake is a critical run whose output says why. */
    const char *tls_ca_file;
    const char *tls_server_name;
    const char *tls_cert_file;
    const char *tls_key_file;
} colony_probe_options;

/* Fills the defaults above (kind and target are left empty). */
COLONY_API void colony_probe_options_init(colony_probe_options *o);
/* Checks o without starting anything: 0 or COLONY_EINVAL (bad URL or
 * address, port not 1..65535, zero interval); msg (may be NULL) says what is
 * wrong. */
COLONY_API int colony_probe_options_check(const colony_probe_options *o, char *msg,
                                          size_t msg_size);
/* Starts probing: the first run follows first_run_ms. 0, the errors of
 * colony_probe_options_check(), COLONY_ESHUTDOWN (prober closing) or
 * COLONY_ENOMEM; a start that fails never calls back. *out lives until
 * colony_probe_close() (or colony_prober_close()). */
COLONY_API int colony_probe_start(colony_prober *pr, const colony_probe_options *o,
                                  colony_probe **out);
/* Stops probing: no callback runs after this returns; a run in flight is
 * cancelled. cb (may be NULL) runs once the probe is freed, never before this
 * returns. Safe from inside the probe's own callbacks. */
typedef void (*colony_probe_closed_cb)(void *ud);
COLONY_API void colony_probe_close(colony_probe *p, colony_probe_closed_cb cb, void *ud);
/* The probe's status after thresholds. */
COLONY_API colony_probe_status colony_probe_get_status(const colony_probe *p);
/* Names: "passing", "warning", "critical". */
COLONY_API const char *colony_probe_status_name(colony_probe_status s);

#endif
