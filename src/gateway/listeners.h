/* The routes file's "listeners": extra proxy listeners besides the `listen`
 * setting, each plain or TLS with its certificates (chosen by SNI). The
 * certificates are loaded while the file is validated, so a file that does
 * not load is refused with file, line, key and reason like any other mistake.
 * On reload the listeners cannot move (a restart applies a new address), but
 * a TLS listener's certificates are replaced for new connections. */
#ifndef COLONY_GATEWAY_LISTENERS_H
#define COLONY_GATEWAY_LISTENERS_H

#include <stddef.h>
#include "colony/colony.h"
#include "gateway/parse.h"

typedef struct gw_listener_conf {
    char *listen;        /* "0.0.0.0:8443" */
    colony_tls_ctx *tls; /* NULL: plain HTTP */
} gw_listener_conf;

typedef struct gw_listeners {
    gw_listener_conf *list;
    size_t count;
} gw_listeners;

/* Parses obj (the "listeners" array, at p's path + "listeners") into out,
 * loading every certificate. 0, or COLONY_EINVAL / COLONY_ENOMEM with p's
 * error filled; what was parsed stays in out for the caller to free. */
int colony__gw_parse_listeners(gw_parse *p, const json_t *obj, gw_listeners *out);
void colony__gw_listeners_free(gw_listeners *l);

/* Starts listening on each of l's addresses (TLS where configured). 0 or the
 * first error (logged with the address). */
int colony__gw_listeners_start(const gw_listeners *l, colony_server *srv);
/* Reload: a TLS listener of running whose address is also in fresh takes
 * fresh's certificates for new connections. Listeners added, removed or
 * changed between plain and TLS are logged as needing a restart. Returns the
 * number of listeners whose certificates were replaced. */
size_t colony__gw_listeners_update(const gw_listeners *running, const gw_listeners *fresh);

#endif
