"""Where a callgrind dump's instructions went, by shared object and by C function.

`python -m bench.cgroups DUMP [DUMP…] [--per N]` prints each dump's own (exclusive)
instructions grouped as Rotary's profile in docs/benchmarks.md groups them: the Python
interpreter (every line of Python, Rotary's, asyncio's and aiohttp's alike, runs in it), its
memory allocator and garbage collector, orjson, the signature math (cryptography's Rust
module and OpenSSL), aiohttp's C parts (HTTP parser, WebSocket reader), asyncio's C part,
and libc. ``--per N`` divides by N (clients or deliveries). Dumps come from
`bench.stormcount` (``BENCH_CALLGRIND_DIR``) or `bench.nodecount` (``--keep``).

Callgrind cannot see Python functions (they are all `_PyEval_EvalFrameDefault`), so the
Python-level split comes from cProfile (`bench.nodecount --profile`), not from here.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

__all__ = ["GROUPS", "group_of", "self_costs"]

#: (group, fragments of the object's path, fragments of the function name); first match wins.
GROUPS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("orjson", ("orjson",), ()),
    ("signature math", ("_rust", "libcrypto", "libssl", "_cffi"), ()),
    ("aiohttp C (HTTP parser, WebSocket reader)", ("aiohttp", "_http_parser", "_websocket"), ()),
    ("aiohttp helpers (multidict, yarl, propcache)", ("multidict", "yarl", "propcache"), ()),
    ("asyncio C", ("_asyncio",), ()),
    (
        "allocator and garbage collector",
        ("python3", "libpython"),
        ("alloc", "Malloc", "Free", "_free", "dealloc", "gc_collect", "visit", "subtract_refs"),
    ),
    ("interpreter: bytecode loop", ("python3", "libpython"), ("_PyEval_EvalFrameDefault",)),
    ("interpreter: other", ("python3", "libpython"), ()),
    ("libc", ("libc.", "libc-", "ld-linux"), ()),
)


def group_of(obj: str, fn: str) -> str:
    """The group of function `fn` of shared object `obj` (paths as callgrind writes them)."""
    for name, objects, functions in GROUPS:
        if any(o in obj for o in objects) and (not functions or any(f in fn for f in functions)):
            return name
    return "other"


def self_costs(path: Path) -> collections.Counter[tuple[str, str]]:
    """Exclusive instructions per (object, function) of one callgrind dump.

    Reads the compressed names (``fn=(12) name`` once, ``fn=(12)`` after) and skips the
    inclusive cost line that follows each ``calls=`` line.
    """
    names: dict[str, dict[str, str]] = {"ob": {}, "fn": {}}
    costs: collections.Counter[tuple[str, str]] = collections.Counter()
    obj = fn = ""
    skip = False
    for line in path.read_text(errors="replace").splitlines():
        key, eq, value = line.partition("=")
        if eq and key in ("ob", "fn", "cob", "cfn", "cob"):
            resolved = _name(names["fn" if key.endswith("fn") else "ob"], value)
            if key == "ob":
                obj = resolved
            elif key == "fn":
                fn = resolved
            continue
        if key == "calls" and eq:
            skip = True
            continue
        if not line or not (line[0].isdigit() or line[0] in "+-*"):
            continue
        if skip:
            skip = False
            continue
        parts = line.split()
        if len(parts) >= 2:
            costs[(obj, fn)] += int(parts[-1])
    return costs


def _name(table: dict[str, str], value: str) -> str:
    ident, _, name = value.partition(" ")
    if not ident.startswith("("):
        return value
    if name:
        table[ident] = name
    return table.get(ident, ident)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cgroups")
    parser.add_argument("dumps", type=Path, nargs="+")
    parser.add_argument("--per", type=int, default=1, help="divide by this (clients…)")
    parser.add_argument("--top", type=int, default=12, help="C functions listed")
    args = parser.parse_args(argv)
    for dump in args.dumps:
        costs = self_costs(dump)
        total = sum(costs.values()) or 1
        groups: collections.Counter[str] = collections.Counter()
        for (obj, fn), cost in costs.items():
            groups[group_of(obj, fn)] += cost
        print(f"{dump}: {total / args.per / 1000:.1f} k instructions per unit")
        for name, cost in groups.most_common():
            print(f"  {100 * cost / total:5.1f}%  {cost / args.per / 1000:8.1f} k  {name}")
        for (obj, fn), cost in costs.most_common(args.top):
            print(f"  {100 * cost / total:5.1f}%  {fn}  [{Path(obj).name}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
