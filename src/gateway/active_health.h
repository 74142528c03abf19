/* Active health checks of one upstream (docs/gateway.md, "Active health
 * checks"): an HTTP probe per instance of the upstream's balancer, kept in
 * step with the set as instances come and go. An instance whose probe turns
 * critical (unhealthy_threshold failures in a row) is marked down in the
 * balancer and never picked; it is marked up again after healthy_threshold
 * passes in a row. New instances start up (in rotation) until their probe
 * says otherwise. Probes run on the main loop; up/down is written under the
 * upstream's lock, since the workers pick from the same balancer. */
#ifndef COLONY_GATEWAY_ACTIVE_HEALTH_H
#define COLONY_GATEWAY_ACTIVE_HEALTH_H

#include <uv.h>
#include "colony/balance.h"
#include "colony/probe.h"
#include "gateway/config.h"

typedef struct gw_active gw_active;

/* Starts probing every endpoint of balancer now in its set (up->active.path
 * must be set; up, balancer, lock and pr must outlive the result). lock
 * guards the balancer's up/down flags. An https instance (every instance of
 * an https upstream, or one the registry marks) is probed over TLS with the
 * upstream's CA file, server name and client certificate, as the proxy
 * reaches it. 0 or COLONY_ENOMEM / the errors of colony_probe_start. */
int colony__gw_active_start(colony_prober *pr, colony_balancer *balancer, uv_mutex_t *lock,
                            const gw_upstream *up, gw_active **out);
/* Why ep is out of rotation: the output of the probe run that took it out
 * ("HTTP GET https://...: TLS failed: certificate verify failed (...)"), or
 * NULL while it passes (a NULL a: none). Valid until the next probe run;
 * main loop only. */
const char *colony__gw_active_reason(gw_active *a, colony_endpoint *ep);
/* Brings the probes in step with the balancer's set: probes for new
 * endpoints, none for those gone. Call after each set change. */
int colony__gw_active_sync(gw_active *a);
/* Stops every probe (no callback after this) and frees a. NULL is a no-op. */
void colony__gw_active_stop(gw_active *a);

#endif
