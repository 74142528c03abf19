/* libcolony: everything a Colony service is built from. */
#ifndef COLONY_H
#define COLONY_H

#include "export.h"
#include "error.h"
#include "buf.h"
#include "arena.h"
#include "log.h"
#include "config.h"
#include "http_parser.h"
#include "request.h"
#include "http_server.h"
#include "http_client.h"
#include "router.h"
#include "clock.h"
#include "resilience.h"
#include "ratelimit.h"
#include "balance.h"
#include "metrics.h"
#include "health.h"
#include "trace.h"
#include "service.h"
#include "discovery.h"
#include "policy.h"
#include "probe.h"
#include "broker_client.h"
#include "version.h"

#endif
