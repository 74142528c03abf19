/* One run of a TCP probe: connect to host:port (a name is resolved on the
 * thread pool first) within the timeout; an accepted connection is passing
 * and is closed at once. Its handles (socket, timer) close through a closer,
 * and the run ends from the closer's callback. */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "kit/probe/probe_internal.h"

static void run_closed(void *ud)
{
    probe_run *run = ud;
    char out[PROBE_HOST_MAX + sizeof(run->why) + 40];
    snprintf(out, sizeof(out), "TCP connect %s: %s", run->probe->url, run->why);
    colony__probe_run_done(run, out);
}

/* Ends the run once: records the verdict and closes what is open. */
static void finish(probe_run *run, colony_probe_status status, int err, const char *why)
{
    if (run->finished) return;
    run->finished = 1;
    run->run_status = status;
    run->err = err;
    snprintf(run->why, sizeof(run->why), "%s", why);
    if (run->gai.data) uv_cancel((uv_req_t *)&run->gai); /* its callback releases the closer */
    if (run->tcp_open) colony__closer_close(&run->closer, (uv_handle_t *)&run->tcp);
    if (run->timer_open) colony__closer_close(&run->closer, (uv_handle_t *)&run->timer);
    colony__closer_finish(&run->closer, run->probe->pr->loop);
}

static void on_connect(uv_connect_t *c, int status)
{
    probe_run *run = c->data;
    if (status == 0)
        finish(run, COLONY_PROBE_PASSING, 0, "Success");
    else
        finish(run, COLONY_PROBE_CRITICAL, status, uv_strerror(status));
}

static void on_timeout(uv_timer_t *t)
{
    finish(t->data, COLONY_PROBE_CRITICAL, COLONY_ETIMEDOUT, "timeout");
}

static void connect_to(probe_run *run, const struct sockaddr *addr)
{
    run->connect.data = run;
    int rc = uv_tcp_connect(&run->connect, &run->tcp, addr, on_connect);
    if (rc) finish(run, COLONY_PROBE_CRITICAL, rc, uv_strerror(rc));
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    probe_run *run = g->data;
    g->data = NULL;
    if (!run->finished) {
        if (status || !res)
            finish(run, COLONY_PROBE_CRITICAL, status ? status : COLONY_ENOENT,
                   status ? uv_strerror(status) : "no address");
        else
            connect_to(run, res->ai_addr);
    }
    uv_freeaddrinfo(res);
    colony__closer_release(&run->closer);
}

/* Fails (with nothing open) only when the socket cannot be set up; once a
 * handle is open the run always ends through finish() and the closer. */
int colony__probe_tcp_start(probe_run *run)
{
    colony_probe *p = run->probe;
    uv_loop_t *loop = p->pr->loop;
    colony__closer_init(&run->closer, run_closed, run);
    int rc = uv_tcp_init(loop, &run->tcp);
    if (rc) return rc;
    run->tcp_open = 1;
    run->tcp.data = run;
    rc = uv_timer_init(loop, &run->timer);
    if (!rc) {
        run->timer_open = 1;
        run->timer.data = run;
        rc = uv_timer_start(&run->timer, on_timeout, p->timeout_ms, 0);
    }
    if (rc) {
        char why[120];
        snprintf(why, sizeof(why), "cannot start the timeout timer: %s", uv_strerror(rc));
        finish(run, COLONY_PROBE_CRITICAL, rc, why);
        return 0;
    }
    char port[8];
    snprintf(port, sizeof(port), "%d", p->port);
    struct sockaddr_storage ss;
    if (uv_ip4_addr(p->host, p->port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(p->host, p->port, (struct sockaddr_in6 *)&ss) == 0) {
        connect_to(run, (const struct sockaddr *)&ss);
        return 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    run->gai.data = run;
    colony__closer_hold(&run->closer);
    rc = uv_getaddrinfo(loop, &run->gai, on_resolved, p->host, port, &hints);
    if (rc) {
        run->gai.data = NULL;
        colony__closer_release(&run->closer);
        finish(run, COLONY_PROBE_CRITICAL, rc, "cannot resolve host");
    }
    return 0;
}

void colony__probe_tcp_cancel(probe_run *run)
{
    finish(run, COLONY_PROBE_CRITICAL, COLONY_ECANCELED, "cancelled");
}
