"""Tags filters: the ``tf`` of a subscribe request (docs/channels.md "Tags filters").

A subscriber may send a tree of conditions on publication tags; it then receives only the
publications whose tags satisfy the tree. Sans-I/O and pure: the
subscribe handler checks it with `problem`, and delivery asks `matches`. The codecs build
trees from the wire.

Semantics follow Centrifugo's: a leaf compares the value of `key` in the tags (a missing
key reads as absent, or as "" for ``in``/``nin``); ``and``/``or`` over one child or more,
``not`` over exactly one. Numeric comparisons read both sides as plain decimals
(``-12.5``; no exponent, at most 19 digits after the point) and are false when either side
is not one.

Decoders stop descending at `MAX_DEPTH` and put `TOO_DEEP` there instead, so a hostile
frame cannot exhaust the stack; `problem` then refuses the filter like any malformed one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["MAX_DEPTH", "MAX_NODES", "TOO_DEEP", "TagsFilter", "matches", "problem"]

#: Deepest tree accepted (the root is at depth 1), and most nodes in one tree. Both bound
#: the work one publication costs per distinct filter.
MAX_DEPTH = 32
MAX_NODES = 256


@dataclass(frozen=True, slots=True)
class TagsFilter:
    """One node: a leaf when `op` is "" (`key`, `cmp`, `val` or `vals`), else ``and``,
    ``or`` or ``not`` over `nodes`. Hashable: equal filters share their evaluation."""

    op: str = ""
    key: str = ""
    cmp: str = ""
    val: str = ""
    vals: tuple[str, ...] = ()
    nodes: tuple[TagsFilter, ...] = ()


#: Stands for a subtree below `MAX_DEPTH`: an op no filter has, so `problem` refuses it.
TOO_DEEP = TagsFilter(op="(too deep)")

_BRANCHES = ("and", "or")
_ONE_VALUE = frozenset(("eq", "neq", "sw", "ew", "ct", "gt", "gte", "lt", "lte"))
_MANY_VALUES = frozenset(("in", "nin"))
_NO_VALUE = frozenset(("ex", "nex"))
_NUMERIC = frozenset(("gt", "gte", "lt", "lte"))

#: What Centrifugo's decimal parser accepts: a sign, digits, at most 19 decimals.
_DECIMAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]{1,19})?")
_DECIMAL_MAX_LEN = 200


# ---------------------------------------------------------------------------- validation


def problem(f: TagsFilter) -> str | None:
    """Why `f` cannot be used (the subscribe is refused with 107), or None when it is sound."""
    count = [0]
    return _problem(f, count)


def _problem(f: TagsFilter, count: list[int]) -> str | None:
    count[0] += 1
    if count[0] > MAX_NODES:
        return f"more than {MAX_NODES} nodes"
    if f.op == "":
        return _leaf_problem(f)
    if f.op in _BRANCHES and not f.nodes:
        return f"{f.op} needs at least one node"
    if f.op == "not" and len(f.nodes) != 1:
        return "not needs exactly one node"
    if f.op not in _BRANCHES and f.op != "not":
        return f"unknown op {f.op!r}"
    for node in f.nodes:
        found = _problem(node, count)
        if found is not None:
            return found
    return None


def _leaf_problem(f: TagsFilter) -> str | None:
    if f.cmp in _ONE_VALUE and (not f.val or f.vals):
        return f"{f.cmp} needs val and no vals"
    if f.cmp in _MANY_VALUES and (f.val or not f.vals):
        return f"{f.cmp} needs vals and no val"
    if f.cmp in _NO_VALUE and (f.val or f.vals):
        return f"{f.cmp} takes neither val nor vals"
    if f.cmp not in _ONE_VALUE | _MANY_VALUES | _NO_VALUE:
        return f"unknown cmp {f.cmp!r}"
    if not f.key and f.cmp not in _NO_VALUE:
        return f"{f.cmp} needs a key"
    return None


# ---------------------------------------------------------------------------- matching


def matches(f: TagsFilter, tags: Mapping[str, str] | None) -> bool:
    """Whether a publication with `tags` passes `f` (which `problem` found sound)."""
    op = f.op
    if op == "":
        return _leaf(f, tags or _NO_TAGS)
    if op == "and":
        return all(matches(n, tags) for n in f.nodes)
    if op == "or":
        return any(matches(n, tags) for n in f.nodes)
    return len(f.nodes) == 1 and not matches(f.nodes[0], tags)


_NO_TAGS: Mapping[str, str] = {}


def _leaf(f: TagsFilter, tags: Mapping[str, str]) -> bool:
    cmp, value = f.cmp, tags.get(f.key)
    if cmp == "eq":
        return value == f.val
    if cmp == "neq":
        return value != f.val
    if cmp in _MANY_VALUES:
        # A missing key compares as "" (as in Centrifugo): `in` with "" among vals matches.
        return ((value or "") in f.vals) == (cmp == "in")
    if cmp in _NO_VALUE:
        return (value is not None) == (cmp == "ex")
    if value is None:
        return False
    if cmp in _NUMERIC:
        return _compare(cmp, value, f.val)
    if cmp == "sw":
        return value.startswith(f.val)
    if cmp == "ew":
        return value.endswith(f.val)
    return cmp == "ct" and f.val in value


def _compare(cmp: str, left: str, right: str) -> bool:
    a, b = _decimal(left), _decimal(right)
    if a is None or b is None:
        return False
    if cmp == "gt":
        return a > b
    if cmp == "gte":
        return a >= b
    if cmp == "lt":
        return a < b
    return a <= b


def _decimal(text: str) -> Decimal | None:
    if len(text) > _DECIMAL_MAX_LEN or not _DECIMAL.fullmatch(text):
        return None
    return Decimal(text)
