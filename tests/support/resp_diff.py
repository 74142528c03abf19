#!/usr/bin/env python3
"""Differential RESP test: sends the same raw bytes to a real redis-server and
to `colony broker`, each case on a fresh connection, and compares the replies
byte for byte (after masking what differs by nature: connection ids, the
version string). Used by tests/integration/test_broker_resp.sh.

usage: resp_diff.py REDIS_PORT BROKER_PORT SUITE   (SUITE: open | auth)
Exit status 0 when every case matches; the mismatches are printed."""
import re
import socket
import sys
import time

END = b"*2\r\n$4\r\nPING\r\n$7\r\n__end__\r\n"
END_REPLY = b"$7\r\n__end__\r\n"


def exchange(port, data, mode, end=END):
    """Sends data; 'end' appends `end` (which ends with PING __end__) and
    reads to its reply, 'eof' reads until the server closes."""
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(5)
    s.sendall(data + (end if mode == "end" else b""))
    out = b""
    deadline = time.time() + 5
    try:
        while time.time() < deadline:
            if mode == "end" and out.endswith(END_REPLY):
                break
            chunk = s.recv(65536)
            if not chunk:
                out += b"<EOF>"
                break
            out += chunk
    except (socket.timeout, ConnectionResetError) as e:
        out += b"<" + type(e).__name__.encode() + b">"
    s.close()
    return out


def mask(b):
    b = re.sub(rb"(\$2\r\nid\r\n):\d+", rb"\1:ID", b)
    b = re.sub(rb"(\$7\r\nversion\r\n)\$\d+\r\n[0-9.]+\r\n", rb"\1VERSION", b)
    return b


def cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


OPEN = [
    # connection commands, inline and multibulk, any case
    ("end", cmd("PING")), ("end", b"ping\r\n"), ("end", b"PiNg hello\r\n"),
    ("end", cmd("ping", "a", "b")), ("end", cmd("ECHO", "x\r\ny\x00z")), ("end", b"echo\r\n"),
    ("end", b"ECHO a b\r\n"), ("end", cmd("SELECT", "0")),
    ("end", cmd("select", "16")), ("end", cmd("select", "-1")), ("end", cmd("select", "x")),
    ("end", cmd("select", "99999999999")), ("end", cmd("select")),
    ("end", b"hello\r\n"), ("end", b"hello 2\r\n"),
    ("end", b"hello 1\r\n"), ("end", b"hello 4\r\n"), ("end", b"hello x\r\n"),
    ("end", b"hello 99999999999999999999\r\n"), ("end", b"hello 2 foo\r\n"),
    ("end", b"hello 2 auth\r\n"), ("end", b"hello 2 auth default x\r\n"),
    ("end", b"hello 2 auth bob x\r\n"), ("end", b"hello 2 setname \"a b\"\r\n"),
    ("end", b"hello 2 setname x\r\nclient getname\r\n"), ("end", b"hello 2 setname\r\n"),
    ("end", b"auth x\r\n"), ("end", b"auth a b\r\n"), ("end", b"auth default x\r\n"),
    ("end", b"auth a b c\r\n"), ("end", b"auth\r\n"),
    ("end", b"client\r\n"), ("end", b"client foo\r\n"), ("end", b"CLIENT GETNAME\r\n"),
    ("end", b"client setname foo\r\nclient getname\r\n"), ("end", b"client setname a b\r\n"),
    ("end", b"client setname \"a b\"\r\n"), ("end", b"client setname \"\"\r\nclient getname\r\n"),
    ("end", cmd("client", "setname", "a\x01")), ("end", b"client getname x\r\n"),
    ("end", b"client id x\r\n"), ("end", b"command foo\r\n"), ("end", b"pubsub\r\n"),
    ("end", b"pubsub foo\r\n"), ("end", b"pubsub numpat\r\n"), ("end", b"pubsub channels\r\n"),
    ("end", b"pubsub numsub a b\r\n"), ("end", b"pubsub numsub\r\n"),
    # unknown commands: Redis's form, arguments cut at 128 bytes and at a NUL
    ("end", b"foo a b c\r\n"), ("end", cmd("foo")), ("end", cmd("")), ("end", b"$4\r\n"),
    ("end", b"foo " + b"x" * 200 + b"\r\n"), ("end", b"foo " + b" ".join([b"a"] * 200) + b"\r\n"),
    ("end", cmd("foo", "b\x00r", "c")), ("end", cmd("f\r\no", "x")), ("end", cmd("x" * 300)),
    # inline parsing: quotes, escapes, blanks, empty lines
    ("end", b"  ping   hi  \r\n"), ("end", b"\r\n\n\r\nping\r\n"), ("end", b"\"ping\"\r\n"),
    ("end", b"echo \"\\x41\\n\\t\\q\\\"\"\r\n"), ("end", b"echo \"\\xzz\"\r\n"),
    ("end", b"echo 'a\\'b'\r\n"), ("end", b"echo \"\"\r\n"), ("end", b"echo ''\r\n"),
    ("end", b"echo a\"b c\"\r\n"), ("end", b"ping a\\x\r\n"), ("end", b"ping\n"),
    # multibulk quirks: *0 and *-1 are skipped, the CRLF after a bulk is not checked
    ("end", b"*0\r\n*-1\r\n"), ("end", b"*1\r\n$4\r\nPINGxx"),
    ("end", b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"),
    # pipelines answered in order
    ("end", cmd("PING") * 50 + b"ping x\r\n" * 20 + cmd("ECHO", "y") * 30),
    # pub/sub in one connection
    ("end", b"publish a b\r\n"), ("end", b"publish a\r\n"), ("end", b"subscribe\r\n"),
    ("end", b"unsubscribe\r\n"), ("end", b"punsubscribe\r\n"), ("end", b"punsubscribe a b\r\n"),
    ("end", b"subscribe a\r\nping\r\n"), ("end", b"subscribe a\r\nping x\r\n"),
    ("end", b"subscribe a\r\nping a b\r\n"), ("end", b"subscribe a\r\necho x\r\n"),
    ("end", b"subscribe a\r\nfoo\r\n"), ("end", b"subscribe a\r\nhello 2\r\n"),
    ("end", b"subscribe a\r\nclient id\r\n"), ("end", b"subscribe a\r\nauth x\r\n"),
    ("end", b"subscribe a\r\nselect 0\r\n"), ("end", b"subscribe a\r\npubsub numpat\r\n"),
    ("end", b"subscribe a\r\npublish a b\r\n"), ("end", b"subscribe a\r\nreset\r\nping\r\n"),
    ("end", b"subscribe a a\r\nunsubscribe\r\nping\r\n"),
    ("end", b"subscribe a\r\nunsubscribe a a\r\n"),
    ("end", b"psubscribe a* b\r\npunsubscribe b c\r\npunsubscribe\r\nunsubscribe\r\n"),
    ("end", b"subscribe a\r\npsubscribe x\r\nunsubscribe a\r\npunsubscribe\r\nping\r\n"),
    ("end", cmd("subscribe", "bin\x00ch") + cmd("unsubscribe", "bin\x00ch")),
    ("end", b"subscribe a\r\npsubscribe a*\r\nunsubscribe\r\npunsubscribe\r\nping\r\n"),
    # these end the connection
    ("eof", b"quit\r\n"), ("eof", b"quit x\r\nping\r\n"), ("eof", b"subscribe a\r\nquit\r\n"),
    ("eof", b"ping\r\n*x\r\n"), ("eof", b"*1\r\nx\r\n"), ("eof", b"*1\r\n$-1\r\n"),
    ("eof", b"*1\r\n$x\r\n"), ("eof", b"*1\r\n$600000000\r\n"), ("eof", b"*1\r\n$+4\r\n"),
    ("eof", b"*01\r\n"), ("eof", b"*2\r\n$4\r\nECHO\r\n:1\r\n"),
    ("eof", b"PING \"a\r\n"), ("eof", b"PING 'a\r\n"), ("eof", b"PING \"a\"b\r\n"),
    ("eof", b"ping\r\nPING \"a\r\nping\r\n"), ("eof", b"x" * 70000),
    ("eof", b"*" + b"1" * 70000), ("eof", b"*1\r\n$" + b"1" * 70000),
]

# Where the broker differs on purpose: the reply it gives instead of Redis's.
DIFFERENT = [
    (cmd("select", "1"), b"-ERR DB index is out of range\r\n"),  # one database
    (b"hello 3\r\n", b"-NOPROTO unsupported protocol version\r\n"),  # RESP2 only
    (cmd("client", "setinfo", "lib-name", "x"), b"+OK\r\n"),  # Redis 7.2's, for node-redis
    (cmd("client", "setinfo", "lib-ver", "1.0"), b"+OK\r\n"),
    (cmd("client", "setinfo", "foo", "1"), b"-ERR Unrecognized option 'foo'\r\n"),
    (cmd("client", "setinfo", "lib-name", "a b"),
     b"-ERR lib-name cannot contain spaces, newlines or special characters.\r\n"),
]

AUTH = [  # requirepass sekret
    ("end", b""), ("end", b"foo\r\n"), ("end", b"echo x\r\n"), ("end", b"client id\r\n"),
    ("end", b"select 0\r\n"), ("end", b"subscribe a\r\n"), ("end", b"auth x\r\n"),
    ("end", b"auth sekret\r\nping\r\n"), ("end", b"auth default sekret\r\nping\r\n"),
    ("end", b"auth DEFAULT sekret\r\n"), ("end", b"auth bob sekret\r\n"),
    ("end", b"hello\r\n"), ("end", b"hello 2\r\n"),
    ("end", b"hello 2 auth default x\r\n"), ("end", b"hello 2 auth default sekret\r\n"),
    ("end", b"hello 2 auth default sekret setname foo\r\nclient getname\r\n"),
    ("end", b"hello 2 foo\r\n"), ("end", b"auth sekret\r\nreset\r\nping\r\n"),
    ("end", b"*10\r\n$4\r\nECHO\r\n" + b"$1\r\na\r\n" * 9),
    ("eof", b"quit\r\n"), ("eof", b"*11\r\n"), ("eof", b"*1\r\n$16385\r\n"),
    ("eof", b"*1\r\n$x\r\n"),
]


CHANNELS = [b"abc", b"a", b"b", b"ax", b"cx", b"bx", b"*", b"a\\", b"[", b"]", b"a]b", b"xyz",
            b"a-b", b"^", b"a^b", b"", b"abcabc", b"aXbYc", b"\x00z", b"\xffq", b"-", b"?"]
PATTERNS = [b"*", b"a*", b"*b", b"*c", b"a?c", b"?", b"??", b"[abc]*", b"[^a]*", b"[a-c]x",
            b"[c-a]x", b"\\*", b"a\\", b"a\\\\", b"[", b"[a", b"[\\]]", b"[]]", b"]", b"a[^]b",
            b"**a", b"*a*b*", b"a*b*c", b"[a-]*", b"[-a]", b"[^-]", b"\\[", b"x[yz]z", b"*[",
            b"[!a]*", b"[a-c][x]", b"a[]b", b"\\?", b"\\", b"\x00*", b"[\x00-\x01]z",
            b"[\xfe-\xff]q", b"?*?", b"a**", b"", b"**", b"[^", b"[^]", b"[a-", b"abc*abc"]


def read_reply(f):
    line = f.readline()
    if line[:1] == b"*":
        return [read_reply(f) for _ in range(int(line[1:]))]
    if line[:1] == b"$":
        n = int(line[1:])
        return None if n < 0 else f.read(n + 2)[:-2]
    return line


def glob_suite(redis_port, broker_port):
    """PUBSUB CHANNELS PATTERN, sorted, on both: the glob matcher compared."""
    failed = 0
    results = []
    for port in (redis_port, broker_port):
        sub = socket.create_connection(("127.0.0.1", port))
        sub.sendall(cmd(b"SUBSCRIBE", *CHANNELS))
        sf = sub.makefile("rb")
        for _ in CHANNELS:
            read_reply(sf)
        q = socket.create_connection(("127.0.0.1", port))
        qf = q.makefile("rb")
        got = []
        for p in PATTERNS:
            q.sendall(cmd(b"PUBSUB", b"CHANNELS", p))
            got.append(sorted(read_reply(qf)))
        results.append(got)
        sub.close()
        q.close()
    for p, want, got in zip(PATTERNS, results[0], results[1]):
        if want != got:
            failed += 1
            print("GLOB MISMATCH for %r\n  redis : %r\n  broker: %r" % (p, want, got))
    print("glob: %d patterns x %d channels, %d mismatches" % (len(PATTERNS), len(CHANNELS), failed))
    return 1 if failed else 0


def main():
    redis_port, broker_port, suite = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    if suite == "glob":
        return glob_suite(redis_port, broker_port)
    cases = OPEN if suite == "open" else AUTH
    # unauthenticated, PING is refused: authenticate before the end marker
    end = END if suite == "open" else b"auth sekret\r\n" + END
    failed = 0
    for mode, data in cases:
        want = mask(exchange(redis_port, data, mode, end))
        got = mask(exchange(broker_port, data, mode, end))
        if want != got:
            failed += 1
            print("MISMATCH for %r\n  redis : %r\n  broker: %r" % (data[:80], want[:400], got[:400]))
    if suite == "open":
        for data, reply in DIFFERENT:
            got = exchange(broker_port, data, "end")
            if got != reply + END_REPLY:
                failed += 1
                print("BROKER DIFFERS for %r\n  want: %r\n  got : %r" % (data, reply, got))
    print("%s: %d cases, %d mismatches" % (suite, len(cases), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
