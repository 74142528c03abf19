/* Shared between service_policy.c and service_call.c: how a call made on
 * behalf of a request finds its service's policy set. */
#ifndef COLONY_KIT_SERVICE_POLICY_H
#define COLONY_KIT_SERVICE_POLICY_H

#include "colony/policy.h"
#include "colony/service.h"

/* The policy set of the service that handles req, or NULL. */
colony_policy_set *colony__request_policy(const colony_request *req);

#endif
