#!/usr/bin/env python3
"""Module import graph of a Rust crate, its cycles, upward imports, and function lengths.

Usage: python3 tools/modgraph.py [SRC_DIR]

Reads every `crate::a::b` path in the non-test code of each file (comments, string literals
and `#[cfg(test)]` items are skipped; grouped imports `use crate::{a, b::c}` count each
member), resolves it to the longest module that exists, and draws an edge between the
top-level modules of the importer and the imported. Prints the edges, the strongly
connected components (import cycles), the imports that point up in the layering below,
and the distribution of function lengths (lines from `fn` to its closing brace, test code
excluded).

Improvements over the first version (/work/tools/modgraph.py): test modules no longer add
edges, grouped imports and `crate::` paths split over lines are read, `//` inside string
literals no longer cuts a line, and upward imports are listed against LAYERS.
"""
import os
import re
import sys

# Bottom (0) to top. A module may import modules of its own layer or below; an import of
# a higher layer is "upward". Modules not listed are reported as unplaced.
LAYERS = [
    ["pyc", "layout", "verdict", "stat", "timefmt", "messages", "exit"],
    ["read", "signals", "escape", "progress"],
    ["facts", "walk", "report", "memo", "store"],
    ["interpreters", "worker", "launch"],
    ["scan", "prove", "actions", "inspect"],
    ["why", "doctor", "watch", "procs"],
    ["output"],
    ["cli"],
    ["settings"],
    ["commands"],
    ["crate"],
]
# The modules of the first version's layout, ranked the same way, for a "before" reading.
LEGACY = {"check": 4, "deep": 4, "config": 7, "app": 8}


def rank(module):
    for i, layer in enumerate(LAYERS):
        if module in layer:
            return i
    return LEGACY.get(module)


def strip_code(text):
    """Remove comments and string/char literals, keeping line structure."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            seg = text[i : (n if j < 0 else j + 2)]
            out.append("\n" * seg.count("\n"))
            i = n if j < 0 else j + 2
            continue
        m = re.match(r'r(#*)"', text[i:]) if c == "r" and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")) else None
        if m:
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            seg = text[i : (n if j < 0 else j + len(end))]
            out.append('""' + "\n" * seg.count("\n"))
            i = n if j < 0 else j + len(end)
            continue
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            seg = text[i : j + 1]
            out.append('""' + "\n" * seg.count("\n"))
            i = j + 1
            continue
        if c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            if m:
                out.append("' '")
                i += len(m.group(0))
                continue
        out.append(c)
        i += 1
    return "".join(out)


def drop_test_items(code):
    """Blank out every item annotated `#[cfg(test)]` (brace-matched)."""
    while True:
        m = re.search(r"#\[cfg\(test\)\]", code)
        if not m:
            return code
        j = code.find("{", m.end())
        semi = code.find(";", m.end())
        if j < 0 or (0 <= semi < j):
            end = semi + 1
        else:
            depth, k = 0, j
            while k < len(code):
                if code[k] == "{":
                    depth += 1
                elif code[k] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                k += 1
            end = k + 1
        seg = code[m.start() : end]
        code = code[: m.start()] + "\n" * seg.count("\n") + code[end:]


def crate_paths(code):
    """Every `crate::…` path, grouped imports expanded."""
    paths = []
    for m in re.finditer(r"crate::((?:[A-Za-z_][A-Za-z0-9_]*::)*)(\{|[A-Za-z_][A-Za-z0-9_]*)", code):
        prefix, last = m.group(1), m.group(2)
        if last == "{":
            depth, k = 1, m.end()
            while k < len(code) and depth:
                depth += {"{": 1, "}": -1}.get(code[k], 0)
                k += 1
            inner = code[m.end() : k - 1]
            for part in crate_paths_group(inner):
                paths.append(prefix + part)
        else:
            paths.append(prefix + last)
    return paths


def crate_paths_group(inner):
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        p = re.sub(r"\s+", "", p)
        if not p:
            continue
        if "{" in p:
            head, rest = p.split("{", 1)
            for q in crate_paths_group(rest[:-1]):
                out.append(head + q)
        else:
            out.append(p.split(" as ")[0])
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "src"
    mods = {}
    for dp, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            p = os.path.join(dp, f)
            parts = os.path.relpath(p, root)[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            mods["::".join(parts) or "crate"] = p

    def top(m):
        return m.split("::")[0] if m else "crate"

    edges = {}
    code_of = {}
    for m, p in mods.items():
        code = drop_test_items(strip_code(open(p).read()))
        if m.split("::")[-1] == "tests":
            code = ""  # a `#[cfg(test)] mod tests;` file: test code
        code_of[m] = code
        for u in crate_paths(code):
            segs = u.split("::")
            best = None
            for i in range(len(segs), 0, -1):
                cand = "::".join(segs[:i])
                if cand in mods:
                    best = cand
                    break
            if best and top(best) != top(m):
                edges.setdefault((top(m), top(best)), set()).add(m)
    nodes = sorted({a for a, _ in edges} | {b for _, b in edges} | {top(m) for m in mods})
    adj = {n: sorted(b for a, b in edges if a == n) for n in nodes}
    print("top-level modules:", len(nodes), "edges:", len(edges))
    for n in nodes:
        print(f"  {n} -> {', '.join(adj[n])}")

    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in adj.get(v, []):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            strong(v)
    cyc = [s for s in sccs if len(s) > 1]
    print("strongly connected components with a cycle:", len(cyc))
    for s in cyc:
        print("  ", sorted(s))
    two = sorted((a, b) for a, b in edges if (b, a) in edges and a < b)
    print("modules importing each other:", len(two), ", ".join(f"{a}<->{b}" for a, b in two))

    unplaced = [n for n in nodes if rank(n) is None]
    up = sorted(
        (a, b, sorted(edges[(a, b)]))
        for a, b in edges
        if rank(a) is not None and rank(b) is not None and rank(b) > rank(a)
    )
    print("upward imports:", len(up))
    for a, b, where in up:
        print(f"   {a} -> {b}  (from {', '.join(where)})")
    if unplaced:
        print("modules not in LAYERS:", ", ".join(unplaced))

    lens = []
    for m, p in mods.items():
        lines = code_of[m].split("\n")
        i = 0
        while i < len(lines):
            mm = re.match(r"(\s*)(pub(\([^)]*\))? )?(const )?(async )?(unsafe )?fn ([a-z_0-9]+)", lines[i])
            if mm:
                ind = len(mm.group(1))
                j = i
                while j < len(lines) and "{" not in lines[j] and not lines[j].rstrip().endswith(";"):
                    j += 1
                if j < len(lines) and lines[j].rstrip().endswith(";") and "{" not in lines[j]:
                    i = j + 1
                    continue
                k = j + 1
                if lines[j].rstrip().endswith("}") and lines[j].count("{") == lines[j].count("}"):
                    k = j
                else:
                    while k < len(lines) and not (
                        lines[k].startswith(" " * ind + "}") and len(lines[k]) - len(lines[k].lstrip()) == ind
                    ):
                        k += 1
                lens.append((k - i + 1, m, mm.group(7)))
                i = k + 1
                continue
            i += 1
    lens.sort(reverse=True)
    buckets = [(0, 20), (21, 40), (41, 60), (61, 100), (101, 10**9)]
    dist = ", ".join(
        f"{lo}-{hi if hi < 10**9 else ''}: {sum(1 for l in lens if lo <= l[0] <= hi)}" for lo, hi in buckets
    )
    print("functions:", len(lens), "over 60 lines:", sum(1 for l in lens if l[0] > 60),
          "over 100:", sum(1 for l in lens if l[0] > 100))
    print("  lengths:", dist)
    for l in lens[:15]:
        print("  ", l)


if __name__ == "__main__":
    main()
