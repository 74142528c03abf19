/* Stream ids as RESP arguments, parsed the way redis-server 7 parses them
 * (t_stream.c streamGenericParseIDOrReply): "ms-seq", "ms" (seq defaults as
 * the command says), "-" and "+", "ms-*" for XADD, "(" for an exclusive
 * bound. Pure functions: no I/O, no allocation (unit-tested in
 * tests/unit/broker/test_broker_stream_id.c). */
#ifndef COLONY_BROKER_STREAM_ID_H
#define COLONY_BROKER_STREAM_ID_H

#include <stddef.h>
#include <stdint.h>
#include "broker/store/store.h"

#define COLONY__XID_MAX_TEXT 44 /* "18446744073709551615-18446744073709551615" + NUL */

/* Parses s[0..len) into *id. missing_seq: the seq when only "ms" is given.
 * strict: "-" and "+" are refused. seq_auto (may be NULL: "ms-*" refused):
 * set to 1 for "ms-*" (id->seq is then 0). 0, or COLONY_EINVAL for what
 * Redis calls "Invalid stream ID specified as stream command argument". */
int colony__xid_parse(const char *s, size_t len, uint64_t missing_seq, int strict, int *seq_auto,
                      colony__bid *id);
/* An XRANGE bound: "(" before an id makes it exclusive (then strict), and
 * the bound is moved by one: *exclusive says so. COLONY_EINVAL: invalid id;
 * COLONY_ERANGE: an exclusive bound past the last (or before the first)
 * possible id ("invalid start/end ID for the interval"). */
int colony__xid_parse_bound(const char *s, size_t len, uint64_t missing_seq, int end,
                            colony__bid *id);
/* The id after / before id; COLONY_ERANGE at the ends. */
int colony__xid_incr(colony__bid *id);
int colony__xid_decr(colony__bid *id);
/* "ms-seq" into out (COLONY__XID_MAX_TEXT bytes); returns its length. */
size_t colony__xid_format(colony__bid id, char *out);

#endif
