#!/usr/bin/env python3
"""Which room of src/ uses which, and where rooms lean on each other in a circle.

A room is a top-level module of the crate: src/<name>.rs or src/<name>/. The script reads
every `crate::<room>` path in src/ (use lines and inline paths; comments and strings are
skipped roughly) and prints the room graph, then every circle (strongly connected set of
rooms) with the file and names that make each arrow. Exit 1 when there is a circle.

  python3 scripts/rooms.py            # from the repository root (scripts/test runs it)
  python3 scripts/rooms.py --src console/src   # another crate of the workspace
"""
import argparse
import collections
import os
import re
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--src", default="src")
ap.add_argument("--quiet", action="store_true", help="print circles only")
args = ap.parse_args()
src = args.src
if not os.path.isdir(src):
    print(f"no {src}/ here; run from the repository root")
    sys.exit(2)

ROOT_FILES = {"lib.rs", "main.rs"}


def room_of(path):
    rel = os.path.relpath(path, src)
    first = rel.split(os.sep)[0]
    if first in ROOT_FILES:
        return first[:-3]
    return first[:-3] if first.endswith(".rs") else first


# One left-to-right pass, so that `//` inside a string ("mqtt://...") is not taken for a
# comment and a quote inside a comment or a char literal ('"') does not open a string. (The
# shared tool strips comments first and can lose the rest of a line after a URL.)
TOKENS = re.compile(
    r'//[^\n]*|/\*.*?\*/|r(#*)".*?"\1|b?"(?:\\.|[^"\\])*"|b?\'(?:\\.|[^\'\\])\'', re.S
)


def strip(code):
    return TOKENS.sub(lambda m: '""' if m.group(0).endswith(('"', "#")) else " ", code)


rooms = set()
for dp, _, fs in os.walk(src):
    for f in fs:
        if f.endswith(".rs"):
            rooms.add(room_of(os.path.join(dp, f)))
edges = collections.defaultdict(lambda: collections.defaultdict(set))  # a -> b -> {(file, name)}
use_re = re.compile(r"\buse\s+crate::\{?([^;]*);", re.S)
path_re = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)((?:::[A-Za-z_][A-Za-z0-9_]*)?)")
for dp, _, fs in os.walk(src):
    for f in fs:
        if not f.endswith(".rs"):
            continue
        p = os.path.join(dp, f)
        a = room_of(p)
        code = strip(open(p, encoding="utf-8", errors="replace").read())
        found = []
        for m in use_re.finditer(code):
            body = m.group(1)
            # `use crate::{a::X, b::{Y, Z}}` or `use crate::a::X`
            for part in re.split(r",(?![^{]*\})", body):
                part = part.strip().lstrip("{").strip()
                mm = re.match(r"([a-z_][a-z0-9_]*)(?:::(.*))?", part)
                if mm:
                    found.append((mm.group(1), (mm.group(2) or "").strip("{} ")[:40]))
        for m in path_re.finditer(code):
            found.append((m.group(1), m.group(2).strip(":")))
        for b, name in found:
            if b in rooms and b != a:
                edges[a][b].add((os.path.relpath(p), name or "*"))

# Strongly connected components (Tarjan).
index, low, stack, on, comps, i = {}, {}, [], set(), [], [0]


def visit(v):
    index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v:
                break
        comps.append(comp)


sys.setrecursionlimit(10000)
for v in sorted(rooms):
    if v not in index:
        visit(v)
if not args.quiet:
    print(f"rooms of {src}/:")
    for a in sorted(rooms):
        outs = sorted(edges[a])
        print(f"  {a:12} -> {', '.join(outs) if outs else '(nothing)'}")
circles = [sorted(c) for c in comps if len(c) > 1]
if not circles:
    print("no circles between rooms")
    sys.exit(0)
for c in circles:
    print(f"circle: {' <-> '.join(c)}")
    for a in c:
        for b in sorted(edges[a]):
            if b in c:
                uses = sorted(edges[a][b])
                shown = "; ".join(f"{f} ({n})" for f, n in uses[:4])
                more = f" and {len(uses) - 4} more" if len(uses) > 4 else ""
                print(f"  {a} -> {b}: {shown}{more}")
sys.exit(1)
