/* A service's per-origin policy set: calls made with colony_request_call()
 * on behalf of the service's requests go through it. */
#include "colony/error.h"
#include "kit/service/service_internal.h"
#include "kit/service/service_policy.h"

#define POLICY_KEY "colony.policy"

/* Read at request time, so the request sees the set the service has now. */
static void policy_middleware(colony_request *req, colony_chain *next, void *ud)
{
    colony_service *svc = ud;
    if (svc->policy) colony_request_set_data(req, POLICY_KEY, svc->policy);
    colony_next(next);
}

colony_policy_set *colony__request_policy(const colony_request *req)
{
    return req ? colony_request_get_data(req, POLICY_KEY) : NULL;
}

static void on_policy_closed(void *ud)
{
    colony_service *svc = ud;
    svc->policy = NULL;
}

/* A shutdown hook: cancels calls still in progress and frees the set. */
static void close_policy(colony_service *svc, void (*done)(colony_service *), void *ud)
{
    (void)ud;
    if (svc->policy) colony_policy_set_close(svc->policy, on_policy_closed, svc);
    done(svc);
}

int colony_service_set_policy(colony_service *svc, colony_policy_set *ps)
{
    if (!svc || !ps) return COLONY_EINVAL;
    if (svc->policy) return COLONY_EEXIST;
    int rc = colony_router_use(colony_service_router(svc), policy_middleware, svc);
    if (!rc) rc = colony_service_on_shutdown(svc, close_policy, NULL);
    if (!rc) svc->policy = ps;
    return rc;
}
