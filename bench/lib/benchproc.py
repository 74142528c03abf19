"""What the benchmarks share: starting and stopping servers in their own
process groups, a server's CPU time from /proc (the process and all its
descendants, all threads), wrk runs with the JSON report, durations from the
environment and the results file. Each benchmark sets NAME first (messages and
results are named after it). Not a test helper: benchmarks are not tests."""

import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from datetime import datetime, timezone

LIB = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(LIB))
RESULTS_DIR = os.path.join(REPO, "bench", "results")
STOP_TIMEOUT_S = 5.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

NAME = "bench"
started = []  # Popen objects of every server started (own process groups)
workdir = tempfile.mkdtemp(prefix="colony-bench-")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def env_duration(name, default):
    """Reads a wrk duration like '10s', '500ms', '1m' or a bare number of seconds."""
    value = os.environ.get(name, default).strip()
    if re.fullmatch(r"\d+", value):
        value += "s"
    if not re.fullmatch(r"\d+(ms|s|m)", value):
        sys.exit(f"{NAME}: {name}={value!r} is not a duration like 10s")
    return value


def env_int(name, default):
    value = os.environ.get(name, str(default)).strip()
    if not re.fullmatch(r"[1-9]\d*", value):
        sys.exit(f"{NAME}: {name}={value!r} is not a positive integer")
    return int(value)


def duration_seconds(value):
    number = int(re.match(r"\d+", value).group())
    if value.endswith("ms"):
        return number / 1000.0
    return number * (60 if value.endswith("m") else 1)


def free_port():
    """Asks the kernel for a free ephemeral port on 127.0.0.1 (tiny race: fine
    for a benchmark, the server fails loudly if someone took it meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, log_path, cpu=None, cwd=None, env=None):
    """Starts cmd in its own process group (pinned to cpu when given), output
    to log_path; remembers it for stop_all()."""
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu)] + cmd
    logf = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=cwd, env=env,
                            start_new_session=True)
    logf.close()
    started.append(proc)
    return proc


def stop_server(proc):
    """SIGTERM the server's process group, SIGKILL it if it lingers."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass
    # Workers of a server that died first can outlive it in the group.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        log(f"{NAME}: pid {proc.pid} did not exit after SIGKILL")
    if proc in started:
        started.remove(proc)


def cleanup():
    for proc in list(started):
        stop_server(proc)
    shutil.rmtree(workdir, ignore_errors=True)


def on_signal(signum, _frame):
    """Unwinds through the finally blocks, which stop every server."""
    raise SystemExit(128 + signum)


def read_stat(pid):
    """Returns (ppid, utime + stime in ticks) from /proc/<pid>/stat, or None.
    The comm field may contain spaces and parentheses, so split after the last
    ')'; the fields after it start at field 3 (state)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    ppid = int(rest[4 - 3])
    utime, stime = int(rest[14 - 3]), int(rest[15 - 3])
    return ppid, utime + stime


def tree_pids(root):
    """root and all its descendants."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = read_stat(int(entry))
            if st:
                stats[int(entry)] = st
    children = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    result, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in stats and pid not in result:
            result[pid] = stats[pid][1]
            todo.extend(children.get(pid, []))
    return result


def tree_cpu_ticks(root):
    """CPU ticks per pid for root and all its descendants. /proc/<pid>/stat of
    a process already sums all its threads."""
    return tree_pids(root)


def tree_rss_kb(root):
    """Resident memory of root and its descendants, in KiB."""
    total = 0
    for pid in tree_pids(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_delta_seconds(before, after):
    """CPU used between two snapshots; a process that appears later counts
    from zero. A process that exited in between loses its share."""
    ticks = sum(t - before.get(pid, 0) for pid, t in after.items())
    return ticks / CLK_TCK


def log_tail(path, lines=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def run_wrk(url, duration, threads, connections, cpu, script, headers=()):
    """Runs wrk with a report script printing 'BENCH_JSON {...}'; returns it parsed.
    headers: extra "Name: value" request headers."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}", "--latency", "-s",
           script]
    for h in headers:
        cmd += ["-H", h]
    cmd.append(url)
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu)] + cmd
    limit = duration_seconds(duration) + 60
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON "):])
    raise RuntimeError(f"wrk gave no report (exit {out.returncode}):\n"
                       f"{out.stdout}{out.stderr}")


def tool_version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        text = (out.stdout + out.stderr).strip().splitlines()
        return text[0] if text else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def machine_info():
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    commit = tool_version(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
    return {"cpus": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "git_commit": commit, "loadavg_at_start": list(os.getloadavg())}


def write_results(doc, stamp=None):
    """Writes bench/results/<NAME>-<stamp>.json and <NAME>-latest.json; returns the path."""
    stamp = stamp or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"{NAME}-{stamp}.json")
    text = json.dumps(doc, indent=2) + "\n"
    for p in (path, os.path.join(RESULTS_DIR, f"{NAME}-latest.json")):
        with open(p, "w") as f:
            f.write(text)
    return path
