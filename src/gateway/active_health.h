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
#include "gateway/config_health.h"

typedef struct gw_active gw_active;

/* Starts probing every endpoint of balancer now in its set (conf->path must
 * be set; conf, balancer, lock and pr must outlive the result). lock guards
 * the balancer's up/down flags. 0 or COLONY_ENOMEM / the errors of
 * colony_probe_start. name is the upstream's, for logs. */
int colony__gw_active_start(colony_prober *pr, colony_balancer *balancer, uv_mutex_t *lock,
                            const gw_active_health *conf, const char *name, gw_active **out);
/* Brings the probes in step with the balancer's set: probes for new
 * endpoints, none for those gone. Call after each set change. */
int colony__gw_active_sync(gw_active *a);
/* Stops every probe (no callback after this) and frees a. NULL is a no-op. */
void colony__gw_active_stop(gw_active *a);

#endif
