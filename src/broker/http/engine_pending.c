/* Until the bindings' bodies land (branch delivery): the functions the HTTP
 * API calls that topic/stub.c does not define yet answer ENOTSUP. Removed
 * when they are merged. */
#include "colony/error.h"
#include "broker/delivery/delivery.h"
#include "broker/topic/topic.h"

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
