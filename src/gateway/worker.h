/* Which worker thread runs the calling code (docs/gateway.md, "Threads").
 * Each worker is a loop of the proxy server on its own thread; state kept
 * per worker (keep-alive pools, the verified-JWT caches, coalesced cache
 * misses) is indexed by this number, so it is touched by one thread only. */
#ifndef COLONY_GATEWAY_WORKER_H
#define COLONY_GATEWAY_WORKER_H

#define GW_MAX_WORKERS 64 /* the "workers" setting's maximum */

/* 0 on the main loop; 1..GW_MAX_WORKERS-1 on the others, set by the proxy
 * before it runs anything of a request on that thread. */
extern _Thread_local unsigned colony__gw_worker;

#endif
