#!/usr/bin/env python3
"""Differential test of the consumer-group commands (XGROUP, XREADGROUP,
XACK, XPENDING, XCLAIM, XAUTOCLAIM, XINFO): the same bytes to redis-server 7
and to `colony broker`, each case on a fresh connection from no stream,
replies compared byte for byte after one mask for what depends on the clock
or on Redis's memory layout:
- idle times (XPENDING's, XINFO CONSUMERS's) are compared in whole seconds
  (cases that need a long idle set it with XCLAIM IDLE n500 so the second
  is not at a boundary);
- absolute times (XINFO STREAM FULL's delivery and seen times) are compared
  as "a time within 10 s of now";
- radix-tree-keys and radix-tree-nodes (Redis's rax) are not compared.

usage: resp_diff_groups.py REDIS_PORT BROKER_PORT diff|block
       resp_diff_groups.py - BROKER_PORT durable-write|durable-check
Exit status 0 when every case matches; the mismatches are printed."""
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp_diff import END, END_REPLY, cmd, exchange  # noqa: E402


def seq(*cmds):
    return b"".join(cmd(*c) for c in cmds)


def fill(key, n, start=1):
    return [("XADD", key, "%d-1" % i, "f", "v%d" % i) for i in range(start, start + n)]


def mask(b):
    now = time.time() * 1000

    def num(m):
        v = int(m.group(2))
        if v > 10 ** 12:  # an absolute time
            return m.group(1) + (b":NOW" if abs(v - now) < 10000 else b":%d" % v)
        return m.group(1) + b":%ds" % (v // 1000)

    b = re.sub(rb"(\$15\r\nradix-tree-(?:keys|nodes)\r\n|\$16\r\nradix-tree-nodes\r\n):\d+",
               rb"\1:N", b)
    # XPENDING entries [id, consumer, idle, count] and FULL's [id, consumer, time, count]
    b = re.sub(rb"(\*4\r\n\$\d+\r\n\d+-\d+\r\n\$\d+\r\n[^\r]*\r\n):(\d+)", num, b)
    # FULL's consumer pending [id, time, count]
    b = re.sub(rb"(\*3\r\n\$\d+\r\n\d+-\d+\r\n):(\d+)(?=\r\n:\d+\r\n)", num, b)
    b = re.sub(rb"(\$4\r\nidle\r\n|\$9\r\nseen-time\r\n):(\d+)", num, b)
    return b


RESET = [("DEL", "s", "t", "nokey")]
G0 = [("XGROUP", "CREATE", "s", "g", "0")]
CASES = [
    # XGROUP CREATE and its errors, HELP, unknown subcommands, arity
    [("XGROUP", "CREATE", "s", "g", "$"), ("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"),
     ("XGROUP", "CREATE", "s", "g", "$"), ("XGROUP", "CREATE", "s", "g2", "0", "ENTRIESREAD", "5"),
     ("XGROUP", "CREATE", "s", "g3", "-"), ("XGROUP", "CREATE", "s", "g3", "x"),
     ("XGROUP", "CREATE", "s", "g4", "0", "ENTRIESREAD", "-2"),
     ("XGROUP", "CREATE", "s", "g4", "0", "ENTRIESREAD", "x"),
     ("XGROUP", "CREATE", "s", "g4", "0", "ENTRIESREAD"),
     ("XGROUP", "CREATE", "s", "g5", "0", "FOO"),
     ("XGROUP", "CREATE", "s", "g5", "0", "MKSTREAM", "ENTRIESREAD", "1", "FOO"),
     ("XGROUP", "CREATE", "s", "g6", "0", "mkstream", "entriesread", "-1"),
     ("XGROUP", "CREATE", "s"), ("XGROUP", "FOO", "s"), ("XGROUP",), ("XGROUP", "HELP"),
     ("xgroup", "help"), ("XGROUP", "HELP", "x"), ("XINFO", "GROUPS", "s"),
     ("XGROUP", "CREATE", "t", "g", "1-1", "MKSTREAM"), ("XINFO", "GROUPS", "t"), ("TYPE", "t"),
     ("XLEN", "t")],
    # SETID, CREATECONSUMER, DELCONSUMER, DESTROY
    fill("s", 5) + G0 + [
        ("XGROUP", "SETID", "s", "g", "3"), ("XGROUP", "SETID", "s", "nog", "3"),
        ("XGROUP", "SETID", "s", "g", "$"), ("XINFO", "GROUPS", "s"),
        ("XGROUP", "SETID", "s", "g", "-"), ("XGROUP", "SETID", "s", "g", "x"),
        ("XGROUP", "SETID", "s", "g", "2", "ENTRIESREAD", "2"), ("XINFO", "GROUPS", "s"),
        ("XGROUP", "SETID", "s", "g", "2", "ENTRIESREAD"),
        ("XGROUP", "SETID", "s", "g", "2", "MKSTREAM"), ("XGROUP", "SETID", "nokey", "g", "1"),
        ("XGROUP", "SETID", "s", "g"),
        ("XGROUP", "CREATECONSUMER", "s", "g", "c1"), ("XGROUP", "CREATECONSUMER", "s", "g", "c1"),
        ("XGROUP", "CREATECONSUMER", "s", "nog", "c"), ("XGROUP", "CREATECONSUMER", "nokey", "g", "c"),
        ("XGROUP", "CREATECONSUMER", "s", "g"), ("XINFO", "CONSUMERS", "s", "g"),
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"),
        ("XGROUP", "DELCONSUMER", "s", "g", "c1"), ("XGROUP", "DELCONSUMER", "s", "g", "nobody"),
        ("XGROUP", "DELCONSUMER", "s", "nog", "c1"), ("XPENDING", "s", "g"),
        ("XGROUP", "DESTROY", "s", "g"), ("XGROUP", "DESTROY", "s", "g"),
        ("XGROUP", "DESTROY", "nokey", "g"), ("XGROUP", "DESTROY", "s"), ("XINFO", "GROUPS", "s")],
    # XREADGROUP: new entries, COUNT, history, XACK, XPENDING
    fill("s", 5) + G0 + [
        ("XREADGROUP", "GROUP", "g", "c1", "COUNT", "2", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0"),
        ("XREADGROUP", "GROUP", "g", "c1", "COUNT", "1", "STREAMS", "s", "1-1"),
        ("XREADGROUP", "GROUP", "g", "c3", "STREAMS", "s", "0"),
        ("XPENDING", "s", "g"), ("XPENDING", "s", "g", "-", "+", "10"),
        ("XPENDING", "s", "g", "-", "+", "10", "c1"), ("XPENDING", "s", "g", "(1-1", "4", "2"),
        ("XACK", "s", "g", "1-1", "9-9", "2-1", "1-1"), ("XACK", "s", "g", "x"),
        ("XACK", "s", "g", "3-1", "x"), ("XACK", "s", "nog", "3-1"), ("XACK", "nokey", "g", "x"),
        ("XACK", "s", "g"), ("XPENDING", "s", "g"), ("XINFO", "GROUPS", "s"),
        ("XINFO", "CONSUMERS", "s", "g"),
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0"),
        ("XADD", "s", "6-1", "f", "v6"), ("XINFO", "GROUPS", "s"),
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"), ("XINFO", "GROUPS", "s")],
    # XREADGROUP errors and their order
    fill("s", 2) + G0 + [
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "$"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "nokey", ">"),
        ("XREADGROUP", "GROUP", "nog", "c", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "nokey", ">", "$"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "t", ">"),
        ("XREADGROUP", "STREAMS", "s", ">"), ("XREADGROUP", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "x"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "-"),
        ("XREADGROUP", "GROUP", "g", "c", "NOACK", "FOO", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "c", "COUNT", "x", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "c", "BLOCK", "-1", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "s", ">"),
        ("XREAD", "GROUP", "g", "c", "STREAMS", "s", ">"),
        ("XINFO", "CONSUMERS", "s", "g"),
        ("XREADGROUP", "GROUP", "g", "c", "count", "-3", "streams", "s", ">")],
    # NOACK: the cursor moves, nothing pending; entries-read and lag
    fill("s", 4) + G0 + [
        ("XREADGROUP", "GROUP", "g", "c", "NOACK", "COUNT", "3", "STREAMS", "s", ">"),
        ("XPENDING", "s", "g"), ("XINFO", "GROUPS", "s"), ("XINFO", "CONSUMERS", "s", "g"),
        ("XREADGROUP", "GROUP", "g", "c", "NOACK", "STREAMS", "s", ">"), ("XINFO", "GROUPS", "s")],
    # Redis 7 counters: entries-added, max-deleted-entry-id, entries-read, lag across XDEL/XTRIM
    fill("s", 6) + G0 + [
        ("XGROUP", "CREATE", "s", "late", "$"), ("XGROUP", "CREATE", "s", "mid", "3-1"),
        ("XINFO", "GROUPS", "s"),
        ("XREADGROUP", "GROUP", "g", "c", "COUNT", "2", "STREAMS", "s", ">"),
        ("XDEL", "s", "4-1"), ("XINFO", "GROUPS", "s"), ("XINFO", "STREAM", "s"),
        ("XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s", ">"), ("XINFO", "GROUPS", "s"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"), ("XINFO", "GROUPS", "s"),
        ("XTRIM", "s", "MAXLEN", "2"), ("XINFO", "STREAM", "s"), ("XINFO", "GROUPS", "s"),
        ("XADD", "s", "9-1", "f", "v"), ("XINFO", "GROUPS", "s"),
        ("XDEL", "s", "9-1", "6-1", "5-1"), ("XINFO", "STREAM", "s"), ("XINFO", "GROUPS", "s"),
        ("XGROUP", "SETID", "s", "g", "0", "ENTRIESREAD", "0"), ("XINFO", "GROUPS", "s")],
    # a deleted entry stays pending: history gives nil fields; XCLAIM drops it
    fill("s", 3) + G0 + [
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"), ("XDEL", "s", "2-1"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "0"), ("XPENDING", "s", "g"),
        ("XCLAIM", "s", "g", "c2", "0", "2-1", "1-1"), ("XPENDING", "s", "g"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "0")],
    # XCLAIM: idle, JUSTID, RETRYCOUNT, IDLE, FORCE, LASTID; errors
    fill("s", 3) + G0 + [
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"),
        ("XCLAIM", "s", "g", "c2", "0", "1-1"), ("XCLAIM", "s", "g", "c2", "0", "1-1", "JUSTID"),
        ("XCLAIM", "s", "g", "c2", "3600000", "2-1"),
        ("XCLAIM", "s", "g", "c2", "0", "3-1", "RETRYCOUNT", "7", "IDLE", "100500"),
        ("XPENDING", "s", "g", "-", "+", "10"), ("XPENDING", "s", "g", "IDLE", "50000", "-", "+", "10"),
        ("XCLAIM", "s", "g", "c3", "50000", "1-1", "2-1", "3-1", "JUSTID"),
        ("XCLAIM", "s", "g", "c2", "0", "9-9", "FORCE"), ("XADD", "s", "4-1", "f", "v4"),
        ("XCLAIM", "s", "g", "c3", "0", "4-1", "FORCE"),
        ("XCLAIM", "s", "g", "c3", "0", "4-1", "FORCE", "JUSTID"),
        ("XCLAIM", "s", "g", "c3", "0", "4-1", "TIME", "1"), ("XPENDING", "s", "g"),
        ("XPENDING", "s", "g", "-", "+", "10", "c3"),
        ("XCLAIM", "s", "nog", "c", "0", "1-1"), ("XCLAIM", "nokey", "g", "c", "x", "1-1"),
        ("XCLAIM", "s", "g", "c", "x", "1-1"), ("XCLAIM", "s", "g", "c", "0", "1-1", "FOO"),
        ("XCLAIM", "s", "g", "c", "0", "1-1", "IDLE", "x"),
        ("XCLAIM", "s", "g", "c", "0", "1-1", "TIME", "x"),
        ("XCLAIM", "s", "g", "c", "0", "1-1", "RETRYCOUNT", "x"),
        ("XCLAIM", "s", "g", "c", "0", "1-1", "LASTID", "x"), ("XCLAIM", "s", "g", "c", "0", "x"),
        ("XCLAIM", "s", "g", "c", "0", "1-1", "IDLE"), ("XCLAIM", "s", "g", "c", "0"),
        ("XCLAIM", "s", "g", "c", "-5", "1-1", "JUSTID", "LASTID", "7-1"),
        ("XINFO", "GROUPS", "s"), ("XINFO", "CONSUMERS", "s", "g")],
    # XAUTOCLAIM: cursor, COUNT, JUSTID, deleted ids; errors
    fill("s", 5) + G0 + [
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"), ("XDEL", "s", "2-1"),
        ("XAUTOCLAIM", "s", "g", "c2", "0", "0", "COUNT", "2"),
        ("XAUTOCLAIM", "s", "g", "c2", "0", "(1-1", "COUNT", "1"),
        ("XAUTOCLAIM", "s", "g", "c2", "0", "0"), ("XAUTOCLAIM", "s", "g", "c3", "0", "0", "JUSTID"),
        ("XAUTOCLAIM", "s", "g", "c2", "3600000", "0"), ("XPENDING", "s", "g"),
        ("XAUTOCLAIM", "s", "g", "c", "0", "0", "COUNT", "0"),
        ("XAUTOCLAIM", "s", "g", "c", "0", "0", "COUNT", "x"),
        ("XAUTOCLAIM", "s", "g", "c", "0", "0", "COUNT"), ("XAUTOCLAIM", "s", "g", "c", "0", "0", "FOO"),
        ("XAUTOCLAIM", "s", "g", "c", "x", "0"), ("XAUTOCLAIM", "s", "g", "c", "0", "x"),
        ("XAUTOCLAIM", "s", "g", "c", "0", "(18446744073709551615-18446744073709551615"),
        ("XAUTOCLAIM", "nokey", "g", "c", "0", "0"), ("XAUTOCLAIM", "s", "nog", "c", "0", "0"),
        ("XAUTOCLAIM", "s", "g", "c", "0"), ("XINFO", "CONSUMERS", "s", "g")],
    # XPENDING forms and errors
    fill("s", 3) + G0 + [
        ("XREADGROUP", "GROUP", "g", "b", "COUNT", "1", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"),
        ("XPENDING", "s", "g"), ("XPENDING", "s", "g", "-", "+"),
        ("XPENDING", "s", "g", "IDLE", "10", "-", "+"), ("XPENDING", "s", "g", "IDLE", "x", "-", "+", "10"),
        ("XPENDING", "s", "g", "-", "+", "x"), ("XPENDING", "s", "g", "x", "+", "10"),
        ("XPENDING", "s", "g", "-", "x", "10"), ("XPENDING", "s", "g", "(-", "+", "10"),
        ("XPENDING", "s", "g", "-", "+", "10", "nobody"), ("XPENDING", "s", "g", "-", "+", "-1"),
        ("XPENDING", "s", "g", "-", "+", "0"), ("XPENDING", "s", "g", "-", "+", "1"),
        ("XPENDING", "s", "g", "IDLE", "3600000", "-", "+", "10"),
        ("XPENDING", "s", "g", "2", "2", "10"), ("XPENDING", "nokey", "g"),
        ("XPENDING", "s", "nog", "-", "+", "10"), ("XPENDING", "s"),
        ("XPENDING", "s", "g", "-", "+", "10", "a", "x"),
        ("XPENDING", "s", "g", "-", "+", "10", "a", "x", "y", "z")],
    # XINFO
    fill("s", 3) + G0 + [
        ("XGROUP", "CREATE", "s", "a", "$"),
        ("XREADGROUP", "GROUP", "g", "z", "COUNT", "2", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "y", "STREAMS", "s", ">"),
        ("XINFO", "HELP"), ("XINFO", "help", "x"), ("XINFO", "STREAM", "nokey"), ("XINFO", "STREAM", "s"),
        ("XINFO", "STREAM", "s", "FULL"), ("XINFO", "STREAM", "s", "FULL", "COUNT", "1"),
        ("XINFO", "STREAM", "s", "FULL", "COUNT", "0"), ("XINFO", "STREAM", "s", "full", "count", "-1"),
        ("XINFO", "STREAM", "s", "FULL", "COUNT", "x"), ("XINFO", "STREAM", "s", "FULL", "COUNT"),
        ("XINFO", "STREAM", "s", "FOO"), ("XINFO", "STREAM", "s", "FULL", "FOO", "1"),
        ("XINFO", "GROUPS", "nokey"), ("XINFO", "CONSUMERS", "s", "nog"),
        ("XINFO", "CONSUMERS", "nokey", "g"), ("XINFO", "CONSUMERS", "s", "g"), ("XINFO", "FOO", "s"),
        ("XINFO",), ("XINFO", "GROUPS"), ("XINFO", "STREAM")],
    # DEL drops the groups; MKSTREAM's empty stream
    fill("s", 2) + G0 + [
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"), ("DEL", "s"),
        ("XADD", "s", "1-1", "f", "v"), ("XINFO", "GROUPS", "s"), ("XPENDING", "s", "g"), ("DEL", "s"),
        ("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"), ("XINFO", "STREAM", "s"),
        ("XINFO", "STREAM", "s", "FULL"), ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "0"), ("XINFO", "CONSUMERS", "s", "g"),
        ("EXISTS", "s"), ("XLEN", "s")],
    # several streams; SETID back gives pending entries to a new reader
    fill("s", 3) + fill("t", 2) + G0 + [
        ("XGROUP", "CREATE", "t", "g", "0"),
        ("XREADGROUP", "GROUP", "g", "c1", "COUNT", "2", "STREAMS", "s", "t", ">", ">"),
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "t", "0", ">"),
        ("XGROUP", "SETID", "s", "g", "0"),
        ("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"), ("XPENDING", "s", "g"),
        ("XPENDING", "s", "g", "-", "+", "10"), ("XINFO", "GROUPS", "s"), ("XINFO", "GROUPS", "t")],
    # many streams in one XREADGROUP; many ids in one XCLAIM and XACK
    [("XGROUP", "CREATE", "k%d" % i, "g", "0", "MKSTREAM") for i in range(10)] +
    [("XADD", "k%d" % i, "1-%d" % i, "f", "v") for i in range(0, 10, 2)] +
    [("XREADGROUP", "GROUP", "g", "c", "STREAMS") + tuple("k%d" % i for i in range(10)) +
     (">",) * 10,
     ("XREADGROUP", "GROUP", "g", "c", "STREAMS") + tuple("k%d" % i for i in range(10)) +
     ("0",) * 10, ("DEL",) + tuple("k%d" % i for i in range(10))],
    fill("s", 30) + G0 + [("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"),
                          ("XCLAIM", "s", "g", "d", "0") + tuple("%d-1" % i for i in range(1, 21)) +
                          ("JUSTID",),
                          ("XACK", "s", "g") + tuple("%d-1" % i for i in range(5, 30)),
                          ("XPENDING", "s", "g")],
    # pipelined: many reads and acks in one write, replies in order
    fill("s", 50) + G0 +
    [("XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s", ">") for _ in range(20)] +
    [("XACK", "s", "g", "%d-1" % i) for i in range(1, 21)] + [("XPENDING", "s", "g")],
]


def diff(redis_port, broker_port):
    failed = 0
    for case in CASES:
        data = seq(*(RESET + case))
        want = mask(exchange(redis_port, data, "end"))
        got = mask(exchange(broker_port, data, "end"))
        if want != got:
            failed += 1
            # the first reply that differs
            print("MISMATCH in case starting %r" % (case[:3],))
            i = next(i for i in range(min(len(want), len(got)) + 1)
                     if i >= min(len(want), len(got)) or want[i] != got[i])
            print("  redis : %r\n  broker: %r" % (want[max(0, i - 300):i + 300],
                                                 got[max(0, i - 300):i + 300]))
    exchange(redis_port, seq(*RESET), "end")
    exchange(broker_port, seq(*RESET), "end")
    print("groups diff: %d cases, %d mismatches" % (len(CASES), failed))
    return 1 if failed else 0


def blocked_run(port, setup, blocking, writes, after):
    """setup, then one client sends `blocking` (an XREADGROUP BLOCK, then
    PING __end__); once it waits, a second sends `writes`; once the first has
    its replies, `after` runs. Returns the replies and the seconds waited."""
    exchange(port, seq(*(RESET + setup)), "end")
    a = socket.create_connection(("127.0.0.1", port))
    a.settimeout(5)
    t0 = time.time()
    a.sendall(seq(*blocking) + END)
    time.sleep(0.15)
    w = exchange(port, seq(*writes), "end") if writes else b""
    out = b""
    while not out.endswith(END_REPLY):
        chunk = a.recv(65536)
        if not chunk:
            break
        out += chunk
    waited = time.time() - t0
    z = exchange(port, seq(*after), "end") if after else b""
    return mask(out), mask(w), mask(z), waited


RG = ("XREADGROUP", "GROUP", "g", "c")
BLOCKED = [
    # woken by an XADD; the entry is pending for the reader after it
    ([("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")],
     [RG + ("BLOCK", "3000", "STREAMS", "s", ">"), ("PING",)], [("XADD", "s", "1-1", "f", "v")],
     [("XPENDING", "s", "g"), ("XINFO", "GROUPS", "s")]),
    # COUNT, NOACK, two streams woken by the second
    ([("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"), ("XGROUP", "CREATE", "t", "g", "$", "MKSTREAM")],
     [RG + ("COUNT", "1", "NOACK", "BLOCK", "3000", "STREAMS", "s", "t", ">", ">")],
     [("XADD", "t", "1-1", "a", "1"), ("XADD", "t", "2-1", "b", "2")],
     [("XPENDING", "t", "g"), ("XINFO", "GROUPS", "t")]),
    # XGROUP DESTROY ends it with NOGROUP
    ([("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")],
     [RG + ("BLOCK", "3000", "STREAMS", "s", ">"), ("PING",)], [("XGROUP", "DESTROY", "s", "g")],
     []),
    # DEL, then an XADD makes a stream without the group: NOGROUP
    ([("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")],
     [RG + ("BLOCK", "3000", "STREAMS", "s", ">")], [("DEL", "s"), ("XADD", "s", "1-1", "f", "v")],
     [("XINFO", "GROUPS", "s")]),
    # the timeout; another group's reader is not woken by a read of this one
    ([("XADD", "s", "1-1", "f", "v"), ("XGROUP", "CREATE", "s", "g", "$"),
      ("XGROUP", "CREATE", "s", "h", "0")],
     [RG + ("BLOCK", "400", "STREAMS", "s", ">")],
     [("XREADGROUP", "GROUP", "h", "x", "STREAMS", "s", ">")], []),
    # history (an id, not >) answers at once even with BLOCK
    ([("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")],
     [RG + ("BLOCK", "3000", "STREAMS", "s", "0")], [], []),
]


def block(redis_port, broker_port):
    failed = 0
    for setup, blocking, writes, after in BLOCKED:
        want = blocked_run(redis_port, setup, blocking, writes, after)
        got = blocked_run(broker_port, setup, blocking, writes, after)
        if want[:3] != got[:3]:
            failed += 1
            print("MISMATCH for %r\n  redis : %r\n  broker: %r" % (blocking, want[:3], got[:3]))
        if abs(want[3] - got[3]) > 0.3:
            failed += 1
            print("WAITED %.2fs (redis %.2fs) for %r" % (got[3], want[3], blocking))
    exchange(redis_port, seq(*RESET), "end")
    exchange(broker_port, seq(*RESET), "end")
    print("groups block: %d cases, %d mismatches" % (len(BLOCKED), failed))
    return 1 if failed else 0


DURABLE = fill("d", 6) + [
    ("XGROUP", "CREATE", "d", "g", "0"), ("XGROUP", "CREATE", "d", "h", "$"),
    ("XREADGROUP", "GROUP", "g", "c1", "COUNT", "3", "STREAMS", "d", ">"),
    ("XREADGROUP", "GROUP", "g", "c2", "COUNT", "2", "STREAMS", "d", ">"),
    ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "d", "0"),
    ("XCLAIM", "d", "g", "c2", "0", "1-1", "RETRYCOUNT", "5", "JUSTID"),
    ("XACK", "d", "g", "2-1"), ("XDEL", "d", "6-1"), ("XGROUP", "CREATECONSUMER", "d", "h", "idle"),
]
CHECK = [("XPENDING", "d", "g"), ("XPENDING", "d", "g", "-", "+", "10"), ("XINFO", "GROUPS", "d"),
         ("XINFO", "STREAM", "d"), ("XINFO", "CONSUMERS", "d", "h")]


def durable(broker_port, step, state):
    """durable-write: the DURABLE commands, then CHECK's replies saved to
    state (the broker is then killed -9); durable-check: CHECK again after
    the restart, equal once the idle times are set aside."""
    def strip(b):
        b = mask(b)
        return re.sub(rb":\d+s\r\n", b":IDLE\r\n", b)  # a restart takes seconds: no idle compare
    if step == "durable-write":
        exchange(broker_port, seq(*DURABLE), "end")
        open(state, "wb").write(exchange(broker_port, seq(*CHECK), "end"))
        return 0
    want = strip(open(state, "rb").read())
    got = strip(exchange(broker_port, seq(*CHECK), "end"))
    if want != got:
        print("AFTER RESTART\n  before: %r\n  after : %r" % (want, got))
        return 1
    print("groups durable: pending, delivery counts, cursors and counters as before")
    return 0


if __name__ == "__main__":
    suite = sys.argv[3]
    if suite == "block":
        sys.exit(block(int(sys.argv[1]), int(sys.argv[2])))
    if suite.startswith("durable"):
        sys.exit(durable(int(sys.argv[2]), suite, sys.argv[4]))
    sys.exit(diff(int(sys.argv[1]), int(sys.argv[2])))
