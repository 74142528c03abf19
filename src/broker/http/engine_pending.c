/* Until the delivery engine's bodies land (branch delivery): the functions
 * the HTTP API calls that its stub does not define yet answer ENOTSUP.
 * Removed when the engine is merged. */
#include "colony/error.h"
#include "broker/delivery/delivery.h"
#include "broker/topic/topic.h"

uint64_t colony__bdelivery_now(const colony__bdelivery *d)
{
    (void)d;
    return 0;
}
long colony__bdelivery_next(colony__bdelivery *d, const char *stream, const char *group,
                            const char *consumer, size_t count, colony__bdelivered_cb cb, void *ud)
{
    (void)d, (void)stream, (void)group, (void)consumer, (void)count, (void)cb, (void)ud;
    return COLONY_ENOTSUP;
}
long colony__bdelivery_ack(colony__bdelivery *d, const char *stream, const char *group,
                           const colony__bid *ids, size_t n)
{
    (void)d, (void)stream, (void)group, (void)ids, (void)n;
    return COLONY_ENOTSUP;
}
int colony__bdelivery_nack(colony__bdelivery *d, const char *stream, const char *group,
                           colony__bid id, uint64_t delay_ms, const char *error, size_t error_len,
                           int dead_letter)
{
    (void)d, (void)stream, (void)group, (void)id, (void)delay_ms, (void)error, (void)error_len,
        (void)dead_letter;
    return COLONY_ENOTSUP;
}
int colony__bdelivery_extend(colony__bdelivery *d, const char *stream, const char *group,
                             colony__bid id, uint64_t ms)
{
    (void)d, (void)stream, (void)group, (void)id, (void)ms;
    return COLONY_ENOTSUP;
}
uint64_t colony__bdelivery_next_due(colony__bdelivery *d, const char *stream, const char *group)
{
    (void)d, (void)stream, (void)group;
    return UINT64_MAX;
}
colony__bstream *colony__bdelivery_touched(const colony__bdelivery *d, size_t i)
{
    (void)d, (void)i;
    return NULL;
}
