/* Placeholder bodies so the tree builds against delivery.h while the engine
 * is written (replaced file by file). */
#include <stdlib.h>
#include "broker/delivery/delivery.h"
#include "colony/error.h"

int colony__bdelivery_open(colony__bdelivery **out, const colony__bdelivery_options *o)
{
    (void)o;
    *out = NULL;
    return COLONY_ENOTSUP;
}
void colony__bdelivery_close(colony__bdelivery *d)
{
    (void)d;
}
