/* Writing JSON text into a colony_buf without building a jansson tree: for
 * hot paths (error bodies, span export) where a tree would cost allocations. */
#ifndef COLONY_CORE_JSON_WRITE_H
#define COLONY_CORE_JSON_WRITE_H

#include "colony/buf.h"

/* Appends s as a quoted JSON string (RFC 8259 escaping; NULL is written as
 * null). Returns 0 or the colony_buf error. */
int colony__json_append_string(colony_buf *b, const char *s);

#endif
