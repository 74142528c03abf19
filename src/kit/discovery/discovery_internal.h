/* Shared between discovery.c (registry handle, registration, heartbeats),
 * discovery_watch.c (blocking-query watches) and registration.c
 * (colony_service integration). */
#ifndef COLONY_KIT_DISCOVERY_INTERNAL_H
#define COLONY_KIT_DISCOVERY_INTERNAL_H

#include "colony/discovery.h"
#include "colony/http_client.h"
#include "core/closer.h"

typedef struct registry_heartbeat registry_heartbeat;

struct colony_registry_client {
    uv_loop_t *loop;
    colony_client *client;
    char *base_url; /* without a trailing slash */
    char *token;
    uint64_t wait_ms, retry_min_ms, retry_max_ms, timeout_ms;
    uint64_t random_state;
    registry_heartbeat *heartbeats;
    colony_discovery *watches;
    /* Children: the client, every heartbeat and watch not yet freed (stopped
     * ones too). Each holds it from creation and releases it once freed; the
     * registry is freed, and closed_cb runs, after close and the last one. */
    colony__closer closer;
    int closing;
    colony_registry_client_closed_cb closed_cb;
    void *closed_ud;
};

/* Sends method base_url+path with the token header and, if body, a JSON
 * content type. timeout_ms 0 uses the handle's default. */
int colony__registry_send(colony_registry_client *r, const char *method, const char *path,
                          const char *body, size_t body_len, uint64_t timeout_ms,
                          colony_client_done_cb cb, void *ud, colony_client_call **out);
/* Maps an HTTP status to 0 or a COLONY_E* code (see colony_registry_client_done_cb). */
int colony__registry_status_error(int status);
/* Appends the percent-encoded form of s (RFC 3986 unreserved kept) to out
 * (size bytes). Returns 0 or COLONY_E2BIG. */
int colony__registry_escape(char *out, size_t size, const char *s);
/* Backoff before retry number `failures` (1-based): exponential from
 * retry_min_ms to retry_max_ms with "equal jitter" (half fixed, half random). */
uint64_t colony__registry_backoff(colony_registry_client *r, unsigned failures);
/* Formats ms as a Go duration ("10s" or "1500ms") into out. */
void colony__registry_duration(char *out, size_t size, uint64_t ms);
/* Stops every watch of r (used by close). */
void colony__discovery_stop_all(colony_registry_client *r);

#endif
