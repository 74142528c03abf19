"""What bench/broker/e2e and bench/broker/backlog share: the servers they
start (colony broker with fsync always; redis-server with AOF on, everysec or
always; each data dir on the real disk), a readiness wait, and a tiny RESP
client for setup commands and the backlog's reads (one command, one reply).
Same command lines as bench/broker/run, so the numbers line up."""

import os
import socket
import subprocess
import time

import benchproc as bp

READY_TIMEOUT_S = 30.0


def colony_cmd(bin_dir, port, data):
    return [os.path.join(bin_dir, "colony"), "broker", "--listen", "127.0.0.1:0",
            "--resp-listen", f"127.0.0.1:{port}", "--data-dir", data, "--fsync", "always",
            "--log.level=warn"]


def redis_cmd(fsync):
    def build(_bin_dir, port, data):
        return ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "yes", "--appendfsync", fsync, "--dir", data,
                "--io-threads", "1"]
    return build


def colony_base_cmd(_bin_dir, port, data):
    """The broker of another build (BENCH_BASE_BIN: its bin dir, e.g. of the
    commit before a change), for an A/B in the same run on the same disk."""
    return colony_cmd(os.environ["BENCH_BASE_BIN"], port, data)


def base_available():
    base = os.environ.get("BENCH_BASE_BIN")
    return bool(base) and os.path.exists(os.path.join(base, "colony"))


SERVERS = {"colony": colony_cmd, "redis-everysec": redis_cmd("everysec"),
           "redis-always": redis_cmd("always"), "colony-base": colony_base_cmd}


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Resp:
    """A blocking RESP2 connection: call() sends one command, returns the reply
    (bytes, int, list, None; an error reply raises RuntimeError)."""

    def __init__(self, port, timeout=600):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise RuntimeError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise RuntimeError("connection closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RuntimeError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError(f"bad reply {line[:40]!r}")

    def call(self, *args):
        self.sock.sendall(encode(*args))
        return self._reply()


def wait_ready(port, proc, name, logfile):
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}\n{bp.log_tail(logfile)}")
        try:
            c = Resp(port, timeout=1)
            try:
                if c.call("PING") == b"PONG":
                    return
            finally:
                c.close()
        except (OSError, RuntimeError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{name} not ready\n{bp.log_tail(logfile)}")


def data_parent():
    """Parent of the servers' data dirs: BENCH_DATA_DIR or build/ (real disk)."""
    parent = os.environ.get("BENCH_DATA_DIR") or os.path.join(bp.REPO, "build",
                                                               "bench-broker-data")
    os.makedirs(parent, exist_ok=True)
    return parent


def fs_type(path):
    return subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True,
                          text=True).stdout.strip()


def rss_kb(pid):
    return bp.tree_rss_kb(pid)
