#!/usr/bin/env python3
"""Checks a Prometheus text exposition (format 0.0.4) line by line, for tests
that cannot count on promtool: names and label names, escaped label values,
numbers, one TYPE per family before its samples, samples belonging to their
family (a histogram's _bucket with le, _sum, _count), no series twice, and a
histogram's buckets cumulative with +Inf equal to _count.
Usage: prom_check.py FILE; exit 0 if valid, else 1 with the line that is not."""
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"'
SAMPLE = re.compile(r"^(" + NAME + r")(?:\{(.*)\})? (\S+)(?: (-?[0-9]+))?$")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def number(s):
    if s in ("+Inf", "-Inf", "NaN"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.match(r"^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$", s):
        raise ValueError(s)
    return float(s)


def labels(text):
    out, pos = [], 0
    while pos < len(text):
        m = re.compile(LABEL).match(text, pos)
        if not m:
            raise ValueError("bad labels: " + text)
        out.append((m.group(1), m.group(2)))
        pos = m.end()
        if pos < len(text):
            if text[pos] != ",":
                raise ValueError("bad labels: " + text)
            pos += 1
    names = [k for k, _ in out]
    if len(set(names)) != len(names):
        raise ValueError("label twice: " + text)
    return out


def family_of(name, types):
    if name in types:
        return name, ""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[: -len(suffix)]) in ("histogram", "summary"):
            return name[: -len(suffix)], suffix
    return None, None


def check(lines):
    types, seen, done = {}, set(), set()
    hist = {}  # (family, labels without le) -> [(le, value)], count
    current = None
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\n")
        try:
            if not line:
                continue
            if line.startswith("#"):
                parts = line.split(" ", 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    if not re.match("^" + NAME + "$", parts[2]):
                        raise ValueError("bad name")
                    if parts[1] == "TYPE":
                        if parts[2] in types or parts[2] in done:
                            raise ValueError("TYPE twice")
                        if len(parts) != 4 or parts[3] not in TYPES:
                            raise ValueError("bad type")
                        types[parts[2]] = parts[3]
                continue
            m = SAMPLE.match(line)
            if not m:
                raise ValueError("not a sample")
            name, ltext, value = m.group(1), m.group(2) or "", m.group(3)
            v = number(value)
            ls = labels(ltext)
            fam, suffix = family_of(name, types)
            if fam is None:
                fam, suffix = name, ""
                types.setdefault(name, "untyped")
            if current != fam:
                if fam in done:
                    raise ValueError("family's samples not together")
                if current:
                    done.add(current)
                current = fam
            key = (name, tuple(sorted(ls)))
            if key in seen:
                raise ValueError("series twice")
            seen.add(key)
            t = types[fam]
            if t == "counter" and (v < 0 or suffix):
                raise ValueError("bad counter sample")
            if t == "histogram":
                if not suffix:
                    raise ValueError("histogram sample without _bucket/_sum/_count")
                rest = tuple(sorted((k, x) for k, x in ls if k != "le"))
                h = hist.setdefault((fam, rest), {"b": [], "count": None})
                if suffix == "_bucket":
                    le = dict(ls).get("le")
                    if le is None:
                        raise ValueError("bucket without le")
                    h["b"].append((number(le), v))
                elif suffix == "_count":
                    h["count"] = v
        except ValueError as e:
            print("line %d: %s: %r" % (n, e, line))
            return 1
    for (fam, rest), h in hist.items():
        b = h["b"]
        if not b or b[-1][0] != float("inf"):
            print("%s%s: no +Inf bucket" % (fam, rest))
            return 1
        if any(x[0] >= y[0] or x[1] > y[1] for x, y in zip(b, b[1:])):
            print("%s%s: buckets not increasing / cumulative: %r" % (fam, rest, b))
            return 1
        if h["count"] != b[-1][1]:
            print("%s%s: +Inf bucket %r != _count %r" % (fam, rest, b[-1][1], h["count"]))
            return 1
    return 0


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        sys.exit(check(f.readlines()))
