#!/usr/bin/env python3
"""Fails when a file in src/ imports, at any distance, a file that imports it.

The graph is file-level: each `use` tree and each `crate::`/`super::`/`self::`
path in code is resolved to the deepest file it names (a path to an item of
`kasa/mod.rs`, or a re-export there, is an edge to `kasa/mod.rs`). `mod x;`
declarations are not edges (a parent declaring a child does not use it), but
`pub use` re-exports are, and so is a child's use of its enclosing module (a
file in `a/` using `super::Item` of `a/mod.rs`): when `a/mod.rs` also uses
that child, the two files import each other. Such a module keeps what its
children share in a leaf file (`a/error.rs`, `a/model.rs`...) that `mod.rs`
re-exports. Inline `mod tests { use super::*; }` blocks resolve `super` to
their own file. Paths in `macro_rules!` bodies (`$crate::a::f`) count.
Comments and string literals are ignored.

Usage: python3 .ci/import_cycles.py [SRC_DIR]   (default: src)
Exit status 1 with every cycle listed, 0 when there is none.
"""

import os
import re
import sys

def module_path(rel):
    """src-relative file path -> tuple of module segments below `crate`."""
    parts = rel[:-3].split(os.sep)
    if parts[-1] == "mod":
        parts = parts[:-1]
    if parts == ["lib"]:
        return ()
    return tuple(parts)


def strip(text):
    """Blanks comments, strings and char literals, keeping offsets."""
    out = list(text)
    i, n = 0, len(text)

    def blank(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            end = text.find('"' + m.group(1), i + len(m.group(0)))
            j = n if end < 0 else end + 1 + len(m.group(1))
            blank(i, j)
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            blank(i, j + 1)
            i = j + 1
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            if m:  # a char literal; otherwise a lifetime
                blank(i, i + len(m.group(0)))
                i += len(m.group(0))
            else:
                i += 1
        else:
            i += 1
    return "".join(out)


def inline_modules(code, base):
    """[(start, end, module path)] of inline `mod x { ... }` blocks."""
    spans = []
    for m in re.finditer(r"\bmod\s+(\w+)\s*\{", code):
        depth, j = 1, m.end()
        while j < len(code) and depth:
            depth += {"{": 1, "}": -1}.get(code[j], 0)
            j += 1
        spans.append((m.start(), j, m.group(1)))
    result = []
    for start, end, name in spans:
        path = list(base)
        for s2, e2, n2 in spans:
            if s2 < start and end <= e2:
                path.append(n2)
        result.append((start, end, tuple(path) + (name,)))
    return result


def expand(tree):
    """`a::{b, c::{d, e}}` -> [[a, b], [a, c, d], [a, c, e]] (no renames)."""
    tree = re.sub(r"\s+as\s+\w+", "", tree)
    tree = re.sub(r"\s+", "", tree)

    def parse(s):
        depth, parts, cur = 0, [], ""
        for ch in s:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            parts.append(cur)
        out = []
        for p in parts:
            if "{" in p:
                head, rest = p.split("{", 1)
                head = [x for x in head.split("::") if x]
                for tail in parse(rest[: rest.rfind("}")]):
                    out.append(head + tail)
            else:
                out.append([x for x in p.split("::") if x])
        return out

    return parse(tree)


def resolve(segments, context, modules):
    """Module tuple of the deepest file a path names, or None (external)."""
    if not segments:
        return None
    path = list(context)
    first, rest = segments[0], segments[1:]
    if first == "crate":
        path = []
    elif first == "super":
        path = path[:-1]
        while rest and rest[0] == "super":
            path, rest = path[:-1], rest[1:]
    elif first == "self":
        pass
    elif tuple(context) + (first,) in modules:
        rest = segments  # a child module named without `self::`
    else:
        return None
    best = tuple(path) if tuple(path) in modules else None
    for seg in rest:
        if seg in ("*", "self"):
            break
        path.append(seg)
        if tuple(path) in modules:
            best = tuple(path)
    if best is None:
        # An inline module, or an item of the nearest enclosing file.
        p = list(path)
        while p and tuple(p) not in modules:
            p.pop()
        best = tuple(p)
    return best


def main():
    args = sys.argv[1:]
    src = args[0] if args else "src"
    files = {}
    for dirpath, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs"):
                rel = os.path.relpath(os.path.join(dirpath, name), src)
                if rel == "main.rs" or rel.startswith("bin" + os.sep):
                    continue
                files[module_path(rel)] = rel
    modules = set(files)
    graph = {m: set() for m in modules}
    for mod, rel in files.items():
        with open(os.path.join(src, rel), encoding="utf-8") as f:
            code = strip(f.read())
        spans = inline_modules(code, mod)

        def context_at(pos):
            best = mod
            for start, end, path in spans:
                if start <= pos < end and len(path) > len(best):
                    best = path
            return best

        used = []
        for m in re.finditer(r"\buse\s+([^;]+);", code):
            for segs in expand(m.group(1)):
                used.append((m.start(), segs))
        for m in re.finditer(r"(?<![\w:])(crate|super|self)((?:::\w+)+)", code):
            used.append((m.start(), [m.group(1)] + m.group(2).split("::")[1:]))
        for m in re.finditer(r"(?<![\w:])(\w+)((?:::\w+)+)", code):
            # `child::item` in code, where `child` is a module of this file's.
            segs = [m.group(1)] + m.group(2).split("::")[1:]
            if segs[0] not in ("crate", "super", "self"):
                used.append((m.start(), segs))
        for pos, segs in used:
            target = resolve(segs, context_at(pos), modules)
            if target is None or target == mod or target not in modules:
                continue
            graph[mod].add(target)

    # Strongly connected components (Tarjan), then one cycle per component.
    index, low, stack, on, sccs = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
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
            if len(comp) > 1:
                sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)

    def shortest_cycle(comp):
        members = set(comp)
        start = min(comp, key=lambda m: files[m])
        prev, queue = {start: None}, [start]
        while queue:
            v = queue.pop(0)
            for w in sorted(graph[v]):
                if w == start:
                    path = [v]
                    while prev[path[-1]] is not None:
                        path.append(prev[path[-1]])
                    return list(reversed(path)) + [start]
                if w in members and w not in prev:
                    prev[w] = v
                    queue.append(w)
        return [start]

    if not sccs:
        print(f"import_cycles: no import circle among {len(files)} files in {src}/")
        return 0
    print(f"import_cycles: {len(sccs)} import circle(s) in {src}/:", file=sys.stderr)
    for comp in sorted(sccs, key=lambda c: min(files[m] for m in c)):
        cycle = shortest_cycle(comp)
        print("  " + " -> ".join(files[m] for m in cycle), file=sys.stderr)
        others = sorted(files[m] for m in comp if m not in cycle)
        if others:
            print("    (same circle also through: " + ", ".join(others) + ")", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
