/* Consuming over HTTP (long-poll, ack, nack, extend): joins with the
 * delivery engine. */
#include "broker/http/http.h"

void colony__bhttp_wake(colony__bhttp *h, const char *name)
{
    (void)h;
    (void)name;
}

void colony__bhttp_stopping(colony__bhttp *h)
{
    h->stopping = 1;
}

int colony__bhttp_routes_consume(colony__bhttp *h, colony_router *r)
{
    (void)h;
    (void)r;
    return 0;
}
