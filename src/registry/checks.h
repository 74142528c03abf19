/* The registry's health-check runner (checks.c): TTL checks expire to
 * critical on a timer; HTTP and TCP checks are colony_probes on the
 * registry's prober (include/colony/probe.h), which caps probes in flight in
 * all and per target address and serves targets in turn, so a target that
 * hangs cannot delay the checks of the others; a reaper deregisters services
 * whose check stayed critical past DeregisterCriticalServiceAfter. Included
 * only by the files that start, arm or heartbeat checks. */
#ifndef COLONY_REGISTRY_CHECKS_H
#define COLONY_REGISTRY_CHECKS_H

#include "colony/config.h"
#include "colony/metrics.h"
#include "registry/registry_internal.h"

/* Defaults of checks.max-inflight and checks.max-per-target. */
#define REG_MAX_INFLIGHT_CHECKS   64u /* probes running at once, all targets */
#define REG_MAX_CHECKS_PER_TARGET 1u  /* probes running at once against one host:port */

/* At startup: creates the prober (caps from cfg's checks.max-inflight and
 * checks.max-per-target; the defaults below when cfg is NULL), arms every
 * loaded check (one that cannot be armed is marked critical with the reason,
 * and logged), starts the reaper and adds the gauges
 * colony_registry_checks_inflight and colony_registry_checks_due to m (may
 * be NULL). 0, or an error (the registry does not start). */
int colony__reg_checks_start(registry *reg, colony_metrics *m, colony_config *cfg);
/* Starts a check's timer (TTL) or probe (HTTP, TCP). 0, or an error with
 * nothing running: the caller refuses the registration and drops chk with
 * colony__reg_check_disarm() (it may hold a timer that must close first). */
int colony__reg_check_arm(registry *reg, reg_check *chk);
/* Stops a check; it is freed once its timer and probe are closed. */
void colony__reg_check_disarm(reg_check *chk);
/* At shutdown: disarms every check and closes the prober and the reaper. */
void colony__reg_checks_stop(registry *reg);
/* A TTL check's heartbeat: new status and note, TTL deadline pushed back
 * (a TTL check whose timer could not start is armed again here). 0, or an
 * error with the status kept. */
int colony__reg_check_ttl_update(registry *reg, reg_check *chk, int status, const char *note);

#endif
