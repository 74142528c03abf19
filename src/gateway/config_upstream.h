/* The "upstreams" object of the routes file (config.h), parsed into
 * cfg->upstreams with every mistake named by file, line, key and reason. */
#ifndef COLONY_GATEWAY_CONFIG_UPSTREAM_H
#define COLONY_GATEWAY_CONFIG_UPSTREAM_H

#include "gateway/config.h"
#include "gateway/parse.h"

/* Fills cfg->upstreams from obj (at p's path + "upstreams"). 0, COLONY_EINVAL
 * or COLONY_ENOMEM with p's error filled; what was parsed stays in cfg for
 * the caller to free. */
int colony__gw_parse_upstreams(gw_parse *p, const json_t *obj, gw_config *cfg);
/* Reads an upstream's "tls" object into u (config_tls.c): verification,
 * client certificate (checked now) and which instances speak TLS. */
int colony__gw_parse_upstream_tls(gw_parse *p, const json_t *tls, gw_upstream *u);
/* Frees what an upstream owns. */
void colony__gw_upstream_clear(gw_upstream *u);

#endif
