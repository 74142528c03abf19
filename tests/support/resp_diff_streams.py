#!/usr/bin/env python3
"""Differential test of the stream commands: the same bytes to redis-server 7
and to `colony broker`, each case on a fresh connection starting from no
stream, replies compared byte for byte. Ids are explicit in every case (ids
from '*' differ between servers by nature; the `auto` suite checks them for
form and order on the broker alone).

usage: resp_diff_streams.py REDIS_PORT BROKER_PORT diff|block
       resp_diff_streams.py - BROKER_PORT auto
Exit status 0 when every case matches; the mismatches are printed."""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp_diff import END, END_REPLY, cmd, exchange  # noqa: E402


def seq(*cmds):
    return b"".join(cmd(*c) for c in cmds)


def fill(key, n, start=1):
    return [("XADD", key, "%d-1" % i, "f", "v%d" % i) for i in range(start, start + n)]


RESET = [("DEL", "s", "t", "u", "new")]
CASES = [
    # XADD: explicit ids, ms only, ms-*, NOMKSTREAM, errors in Redis's order
    [("XADD", "s", "1-1", "a", "1"), ("XADD", "s", "1-2", "b", "2", "c", "3"), ("XLEN", "s")],
    [("XADD", "s", "5", "a", "1"), ("XADD", "s", "5-*", "a", "1"), ("XADD", "s", "6-*", "a", "1"),
     ("XADD", "s", "6-*", "a", "1"), ("XRANGE", "s", "-", "+")],
    [("XADD", "s", "2-2", "a", "1"), ("XADD", "s", "2-2", "a", "1"), ("XADD", "s", "1-9", "a", "1"),
     ("XADD", "s", "2-1", "a", "1"), ("XADD", "s", "2-*", "a", "1"), ("XADD", "s", "1-*", "a", "1")],
    [("XADD", "s", "0-0", "a", "1"), ("XADD", "s", "0", "a", "1"), ("XADD", "s", "0-*", "a", "1"),
     ("XADD", "s", "0-1", "a", "1"), ("XLEN", "s")],
    [("XADD", "s", "NOMKSTREAM", "1-1", "a", "1"), ("EXISTS", "s"), ("XADD", "s", "1-1", "a", "1"),
     ("XADD", "s", "nomkstream", "1-2", "a", "1"), ("XLEN", "s")],
    [("XADD", "s", "1-1", "a"), ("XADD", "s", "1-1"), ("XADD", "s", "1-1", "a", "b", "c"),
     ("XADD", "s"), ("XADD", "s", "x"), ("EXISTS", "s")],
    [("XADD", "s", "abc", "a", "1"), ("XADD", "s", "1-x", "a", "1"), ("XADD", "s", "-1", "a", "1"),
     ("XADD", "s", "-", "a", "1"), ("XADD", "s", "+", "a", "1"), ("XADD", "s", "1-2-3", "a", "1"),
     ("XADD", "s", "18446744073709551616-1", "a", "1"), ("XADD", "s", "*-1", "a", "1"),
     ("XADD", "s", "1-**", "a", "1"), ("XADD", "s", "", "a", "1"), ("EXISTS", "s")],
    [("XADD", "s", "007-+5", "a", "1"), ("XADD", "s", "18446744073709551615-18446744073709551615",
                                          "a", "1"),
     ("XADD", "s", "18446744073709551615-*", "a", "1"), ("XRANGE", "s", "-", "+")],
    [("XADD", "s", "18446744073709551615-18446744073709551614", "a", "1"),
     ("XADD", "s", "18446744073709551615-*", "a", "1"),
     ("XADD", "s", "18446744073709551615-*", "a", "1")],
    # MAXLEN / MINID, = and ~, LIMIT, and their errors
    fill("s", 5) + [("XADD", "s", "MAXLEN", "3", "6-1", "f", "v"), ("XRANGE", "s", "-", "+")],
    fill("s", 5) + [("XADD", "s", "MAXLEN", "=", "2", "6-1", "f", "v"), ("XLEN", "s"),
                    ("XADD", "s", "maxlen", "~", "2", "7-1", "f", "v"), ("XLEN", "s"),
                    ("XADD", "s", "MAXLEN", "0", "8-1", "f", "v"), ("XLEN", "s"),
                    ("XRANGE", "s", "-", "+")],
    fill("s", 5) + [("XADD", "s", "MINID", "3", "6-1", "f", "v"), ("XRANGE", "s", "-", "+"),
                    ("XADD", "s", "MINID", "=", "5-1", "7-1", "f", "v"), ("XLEN", "s"),
                    ("XADD", "s", "MINID", "~", "7", "8-1", "f", "v"), ("XLEN", "s")],
    fill("s", 3) + [("XADD", "s", "MAXLEN", "~", "1", "LIMIT", "10", "9-1", "f", "v"),
                    ("XLEN", "s"), ("XADD", "s", "MAXLEN", "1", "LIMIT", "10", "9-2", "f", "v"),
                    ("XADD", "s", "LIMIT", "10", "9-3", "f", "v"),
                    ("XADD", "s", "LIMIT", "0", "9-4", "f", "v"),
                    ("XADD", "s", "MAXLEN", "1", "MINID", "1", "9-5", "f", "v"),
                    ("XADD", "s", "MAXLEN", "-1", "9-6", "f", "v"),
                    ("XADD", "s", "MAXLEN", "x", "9-7", "f", "v"),
                    ("XADD", "s", "MAXLEN", "~", "-1", "9-7", "f", "v"),
                    ("XADD", "s", "MINID", "x", "9-8", "f", "v"),
                    ("XADD", "s", "MINID", "-", "9-8", "f", "v"),
                    ("XADD", "s", "MAXLEN", "~", "1", "LIMIT", "-1", "9-9", "f", "v"),
                    ("XADD", "s", "MAXLEN", "~", "1", "LIMIT", "x", "9-9", "f", "v"),
                    ("XADD", "s", "MAXLEN"), ("XADD", "s", "MAXLEN", "1"),
                    ("XADD", "s", "MAXLEN", "1", "*"), ("XLEN", "s")],
    [("XADD", "new", "NOMKSTREAM", "MAXLEN", "1", "1-1", "f", "v"), ("TYPE", "new")],
    # XRANGE / XREVRANGE: -, +, ms only, exclusive (, COUNT and errors
    fill("s", 6) + [("XRANGE", "s", "2", "4"), ("XRANGE", "s", "(2-1", "(5-1"),
                    ("XRANGE", "s", "(2", "+"), ("XRANGE", "s", "-", "(3"),
                    ("XREVRANGE", "s", "+", "-"), ("XREVRANGE", "s", "(5-1", "(1-1"),
                    ("XREVRANGE", "s", "4", "2", "COUNT", "2"),
                    ("XRANGE", "s", "-", "+", "COUNT", "2"), ("XRANGE", "s", "-", "+", "count", "0"),
                    ("XRANGE", "s", "-", "+", "COUNT", "-5"), ("XRANGE", "s", "5", "2"),
                    ("XRANGE", "s", "-", "+", "COUNT", "1", "COUNT", "3")],
    fill("s", 2) + [("XRANGE", "s", "x", "+"), ("XRANGE", "s", "-", "y"),
                    ("XRANGE", "s", "(-", "+"), ("XRANGE", "s", "-", "(+"),
                    ("XRANGE", "s", "(", "+"), ("XRANGE", "s", "(18446744073709551615-18446744073709551615", "+"),
                    ("XRANGE", "s", "-", "(0-0"), ("XRANGE", "s", "-", "+", "COUNT"),
                    ("XRANGE", "s", "-", "+", "COUNT", "x"), ("XRANGE", "s", "-", "+", "FOO", "1"),
                    ("XRANGE", "s", "-"), ("XREVRANGE", "s", "+"), ("XRANGE", "nokey", "-", "+"),
                    ("XRANGE", "nokey", "x", "+"), ("XRANGE", "nokey", "-", "+", "COUNT", "0"),
                    ("XREVRANGE", "nokey", "+", "-")],
    # XDEL, XLEN after it, XADD below the deleted top
    fill("s", 4) + [("XDEL", "s", "2-1", "3-1", "9-9", "2-1"), ("XLEN", "s"),
                    ("XRANGE", "s", "-", "+"), ("XDEL", "s", "4-1"), ("XADD", "s", "4-1", "f", "v"),
                    ("XADD", "s", "4-2", "f", "v"), ("XDEL", "s", "x"), ("XDEL", "s", "1-1", "x"),
                    ("XLEN", "s"), ("XDEL", "s", "1"), ("XLEN", "s"), ("XDEL", "nokey", "1-1"),
                    ("XDEL", "nokey", "x"), ("XDEL", "s"), ("XDEL", "s", "-"), ("XLEN", "nokey"),
                    ("XLEN", "s", "x")],
    # XTRIM
    fill("s", 6) + [("XTRIM", "s", "MAXLEN", "4"), ("XTRIM", "s", "MAXLEN", "=", "3"),
                    ("XTRIM", "s", "MAXLEN", "~", "1"), ("XTRIM", "s", "MINID", "5"),
                    ("XRANGE", "s", "-", "+"), ("XTRIM", "s", "MINID", "~", "9"), ("XLEN", "s"),
                    ("XTRIM", "s", "MAXLEN", "~", "0", "LIMIT", "5"), ("XTRIM", "s", "MAXLEN", "0"),
                    ("XLEN", "s"), ("EXISTS", "s"), ("TYPE", "s")],
    fill("s", 2) + [("XTRIM", "s", "FOO", "1"), ("XTRIM", "s", "MAXLEN", "1", "FOO"),
                    ("XTRIM", "s", "MAXLEN", "1", "LIMIT", "2"), ("XTRIM", "s", "LIMIT", "2"),
                    ("XTRIM", "s", "MAXLEN", "x"), ("XTRIM", "s", "MAXLEN", "-1"),
                    ("XTRIM", "s", "MINID", "x"), ("XTRIM", "s", "MAXLEN"),
                    ("XTRIM", "s", "MAXLEN", "1", "MINID", "1"), ("XTRIM", "nokey", "MAXLEN", "1"),
                    ("XTRIM", "nokey", "FOO", "1"), ("XTRIM", "s", "NOMKSTREAM", "MAXLEN", "1"),
                    ("XLEN", "s")],
    # DEL, EXISTS, TYPE
    [("XADD", "s", "1-1", "f", "v"), ("XADD", "t", "1-1", "f", "v"), ("EXISTS", "s", "t", "u", "s"),
     ("TYPE", "s"), ("TYPE", "u"), ("DEL", "s", "u", "s"), ("EXISTS", "s", "t"), ("DEL", "t"),
     ("DEL", "t"), ("TYPE", "t"), ("DEL",), ("EXISTS",), ("TYPE",), ("TYPE", "a", "b"),
     ("XLEN", "s"), ("XRANGE", "s", "-", "+")],
    # XREAD: COUNT, $, several streams, errors
    fill("s", 3) + fill("t", 2) + [
        ("XREAD", "STREAMS", "s", "0"), ("XREAD", "COUNT", "2", "STREAMS", "s", "t", "0", "1-1"),
        ("XREAD", "STREAMS", "s", "t", "3-1", "2-1"), ("XREAD", "STREAMS", "s", "$"),
        ("XREAD", "STREAMS", "nokey", "$"), ("XREAD", "STREAMS", "s", "nokey", "2", "0"),
        ("XREAD", "COUNT", "0", "STREAMS", "s", "0-0"), ("XREAD", "COUNT", "-1", "STREAMS", "s", "2-1"),
        ("XREAD", "count", "1", "streams", "s", "0"),
        ("XREAD", "STREAMS", "s"), ("XREAD", "STREAMS", "s", "t", "0"), ("XREAD", "STREAMS", "s", "x"),
        ("XREAD", "STREAMS", "s", ">"), ("XREAD", "STREAMS", "s", "-"), ("XREAD", "STREAMS", "s", "+"),
        ("XREAD", "COUNT", "x", "STREAMS", "s", "0"), ("XREAD", "FOO", "STREAMS", "s", "0"),
        ("XREAD", "COUNT", "1", "s", "0"), ("XREAD", "GROUP", "g", "c", "STREAMS", "s", ">"),
        ("XREAD", "NOACK", "STREAMS", "s", "0"), ("XREAD", "BLOCK", "x", "STREAMS", "s", "0"),
        ("XREAD", "BLOCK", "-1", "STREAMS", "s", "0"), ("XREAD", "BLOCK", "0", "STREAMS", "s", "0"),
        ("XREAD", "STREAMS"), ("XREAD", "COUNT", "1", "STREAMS"),
        ("XREAD", "BLOCK", "50", "STREAMS", "nokey", "$"), ("XREAD", "BLOCK", "50", "STREAMS", "s", "$")],
    [("XADD", "s", "1-1", "f", "v"), ("XDEL", "s", "1-1"), ("XREAD", "STREAMS", "s", "0"),
     ("XREAD", "STREAMS", "s", "$"), ("XLEN", "s"), ("XADD", "s", "1-1", "f", "v")],
    # binary-safe fields and values, many fields
    [("XADD", "s", "1-1", "f\r\n\x00", "", "", "v" * 300), ("XRANGE", "s", "-", "+"),
     ("XADD", "s", "2-1", *["k%d" % i for i in range(40)]), ("XREVRANGE", "s", "+", "-", "COUNT", "1")],
    # pipelined writes and reads: replies in order
    [("XADD", "s", "%d-1" % i, "f", "v") for i in range(1, 101)] + [("XLEN", "s"), ("PING",)] +
    [("XDEL", "s", "%d-1" % i) for i in range(1, 51)] + [("XTRIM", "s", "MAXLEN", "10"), ("XLEN", "s")],
]


def blocked_run(port, blocking, writes):
    """One client sends `blocking` (XREAD BLOCK ... then PING __end__); once it
    waits, a second sends `writes`. Returns both clients' replies and the
    seconds the first waited."""
    import socket
    exchange(port, seq(*RESET), "end")
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
    return out, w, time.time() - t0


BLOCKED = [
    # woken by an XADD on its stream; the PING after it waits its turn
    ([("XREAD", "BLOCK", "3000", "STREAMS", "s", "$"), ("PING",)], [("XADD", "s", "1-1", "f", "v")]),
    # several streams, woken by the second, COUNT applies
    ([("XADD", "s", "1-1", "f", "v"), ("XREAD", "COUNT", "1", "BLOCK", "3000", "STREAMS", "s", "t",
                                       "$", "0")],
     [("XADD", "t", "1-1", "a", "1", "b", "2"), ("XADD", "t", "2-1", "c", "3")]),
    # an XADD to another stream does not wake it; the timeout ends it
    ([("XREAD", "BLOCK", "400", "STREAMS", "s", "$")], [("XADD", "u", "1-1", "f", "v")]),
    # an id given explicitly: an XADD below it does not wake it
    ([("XADD", "s", "1-1", "f", "v"), ("XREAD", "BLOCK", "400", "STREAMS", "s", "5-0")],
     [("XADD", "s", "2-1", "f", "v")]),
    # BLOCK with data there answers at once
    ([("XADD", "s", "1-1", "f", "v"), ("XREAD", "BLOCK", "3000", "STREAMS", "s", "0")], []),
]


def block(redis_port, broker_port):
    failed = 0
    for blocking, writes in BLOCKED:
        want = blocked_run(redis_port, blocking, writes)
        got = blocked_run(broker_port, blocking, writes)
        if want[:2] != got[:2]:
            failed += 1
            print("MISMATCH for %r\n  redis : %r\n  broker: %r" % (blocking, want[:2], got[:2]))
        if abs(want[2] - got[2]) > 0.3:
            failed += 1
            print("WAITED %.2fs (redis %.2fs) for %r" % (got[2], want[2], blocking))
    exchange(redis_port, seq(*RESET), "end")
    exchange(broker_port, seq(*RESET), "end")
    print("streams block: %d cases, %d mismatches" % (len(BLOCKED), failed))
    return 1 if failed else 0


def diff(redis_port, broker_port):
    failed = 0
    for case in CASES:
        data = seq(*(RESET + case))
        want = exchange(redis_port, data, "end")
        got = exchange(broker_port, data, "end")
        if want != got:
            failed += 1
            print("MISMATCH for %r\n  redis : %r\n  broker: %r" % (case[:6], want[:1500], got[:1500]))
    exchange(redis_port, seq(*RESET), "end")
    exchange(broker_port, seq(*RESET), "end")
    print("streams diff: %d cases, %d mismatches" % (len(CASES), failed))
    return 1 if failed else 0


def auto(broker_port):
    """'*' ids: ms-seq, increasing, ms near the wall clock; ms-* follows."""
    n = 300
    before = int(time.time() * 1000)
    data = seq(*([("DEL", "auto")] + [("XADD", "auto", "*", "f", str(i)) for i in range(n)]))
    out = exchange(broker_port, data, "end")
    after = int(time.time() * 1000)
    ids = re.findall(rb"\$\d+\r\n(\d+)-(\d+)\r\n", out)
    assert len(ids) == n, out[:300]
    ids = [(int(a), int(b)) for a, b in ids]
    assert all(x < y for x, y in zip(ids, ids[1:])), "ids not increasing"
    assert before - 5 <= ids[0][0] <= after + 5 and ids[-1][0] <= after + 5, (before, ids[0], after)
    last = ids[-1]
    out = exchange(broker_port, seq(("XADD", "auto", "%d-*" % last[0], "f", "v")), "end")
    assert out.startswith(b"$") and b"%d-%d" % (last[0], last[1] + 1) in out, out
    out = exchange(broker_port, seq(("XLEN", "auto"), ("DEL", "auto")), "end")
    assert out.startswith(b":%d\r\n" % (n + 1)), out
    print("auto ids: %d increasing, %d..%d" % (n, ids[0][0], ids[-1][0]))
    return 0


if __name__ == "__main__":
    suite = sys.argv[3]
    if suite == "block":
        sys.exit(block(int(sys.argv[1]), int(sys.argv[2])))
    if suite == "diff":
        sys.exit(diff(int(sys.argv[1]), int(sys.argv[2])))
    sys.exit(auto(int(sys.argv[2])))
