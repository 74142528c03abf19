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
int colony__bdelivery_publish(colony__bdelivery *d, const char *stream, const colony__bpublish *m,
                              colony__bid *out)
{
    (void)d, (void)stream, (void)m, (void)out;
    return COLONY_ENOTSUP;
}
void colony__bstream_policy_default(colony__bstream_policy *p)
{
    *p = (colony__bstream_policy){0};
}
void colony__bgroup_policy_default(colony__bgroup_policy *p)
{
    *p = (colony__bgroup_policy){.visibility_ms = COLONY__BVISIBILITY_DEFAULT_MS,
                                 .max_deliveries = COLONY__BMAX_DELIVERIES_DEFAULT};
}
int colony__bdelivery_stream_policy_set(colony__bdelivery *d, const char *stream,
                                        const colony__bstream_policy *p)
{
    (void)d, (void)stream, (void)p;
    return COLONY_ENOTSUP;
}
int colony__bdelivery_stream_policy_get(colony__bdelivery *d, const char *stream,
                                        colony__bstream_policy *out)
{
    (void)d, (void)stream, (void)out;
    return COLONY_ENOTSUP;
}
int colony__bdelivery_group_policy_set(colony__bdelivery *d, const char *stream, const char *group,
                                       const colony__bgroup_policy *p)
{
    (void)d, (void)stream, (void)group, (void)p;
    return COLONY_ENOTSUP;
}
int colony__bdelivery_group_policy_get(colony__bdelivery *d, const char *stream, const char *group,
                                       colony__bgroup_policy *out)
{
    (void)d, (void)stream, (void)group, (void)out;
    return COLONY_ENOTSUP;
}
long colony__bdelivery_dead_list(colony__bdelivery *d, const char *dlq, colony__bid start,
                                 colony__bid end, size_t count, colony__bdead_cb cb, void *ud)
{
    (void)d, (void)dlq, (void)start, (void)end, (void)count, (void)cb, (void)ud;
    return COLONY_ENOTSUP;
}
long colony__bdelivery_dead_replay(colony__bdelivery *d, const char *dlq, colony__bid start,
                                   colony__bid end)
{
    (void)d, (void)dlq, (void)start, (void)end;
    return COLONY_ENOTSUP;
}
long colony__bdelivery_dead_purge(colony__bdelivery *d, const char *dlq, colony__bid upto)
{
    (void)d, (void)dlq, (void)upto;
    return COLONY_ENOTSUP;
}
int colony__btopics_bind(colony__btopics *t, const char *pattern, size_t pattern_len,
                         const char *stream)
{
    (void)t, (void)pattern, (void)pattern_len, (void)stream;
    return COLONY_ENOTSUP;
}
int colony__btopics_unbind(colony__btopics *t, const char *pattern, size_t pattern_len,
                           const char *stream)
{
    (void)t, (void)pattern, (void)pattern_len, (void)stream;
    return COLONY_ENOTSUP;
}
int colony__btopics_next(const colony__btopics *t, size_t *pos, const char **pattern,
                         size_t *pattern_len, const char **stream)
{
    (void)t, (void)pos, (void)pattern, (void)pattern_len, (void)stream;
    return COLONY_ENOENT;
}
long colony__btopics_publish(colony__btopics *t, colony__bdelivery *d, const char *topic,
                             size_t topic_len, const colony__bpublish *m,
                             colony__btopic_target *out, size_t max_out)
{
    (void)t, (void)d, (void)topic, (void)topic_len, (void)m, (void)out, (void)max_out;
    return COLONY_ENOTSUP;
}
