"""rotary.node flows one way: every import in the package goes down the documented levels.

The levels are read from the package docstring (src/rotary/node/__init__.py), so the text a
reader sees and the rule this test holds are the same list. Imports are read with `ast`:
top-level, inside functions and under ``TYPE_CHECKING`` alike, since a type-only import
upward is still a circle in the design.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import rotary.node

PACKAGE = Path(rotary.node.__file__).parent
PREFIX = "rotary.node"


def documented_levels() -> dict[str, int]:
    """Module name → level, from the numbered list of the package docstring."""
    doc = rotary.node.__doc__ or ""
    levels: dict[str, int] = {}
    for match in re.finditer(r"^\s+(\d+)\. ([a-z_]+(?:, [a-z_]+)*)$", doc, re.MULTILINE):
        for name in match.group(2).split(", "):
            assert name not in levels, f"{name} is listed twice"
            levels[name] = int(match.group(1))
    return levels


def node_modules() -> set[str]:
    return {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}


def imported_modules(tree: ast.AST) -> set[str]:
    """The sibling modules of the package that `tree` imports, wherever the import sits."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(_sibling(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = PREFIX if node.level else (node.module or "")
            if node.level and node.module:
                base = f"{PREFIX}.{node.module}"
            if base == PREFIX:  # from rotary.node import x, y
                found.update(alias.name for alias in node.names)
            else:
                found.add(_sibling(base))
    found.discard("")
    return found


def _sibling(dotted: str) -> str:
    """`rotary.node.x[.y]` → `x`; anything outside the package → ``""``."""
    if not dotted.startswith(PREFIX + "."):
        return ""
    return dotted[len(PREFIX) + 1 :].split(".")[0]


def import_pairs() -> set[tuple[str, str]]:
    """Every (importer, imported) pair of sibling modules in the package."""
    pairs: set[tuple[str, str]] = set()
    for name in node_modules():
        tree = ast.parse((PACKAGE / f"{name}.py").read_text(encoding="utf-8"))
        pairs.update((name, target) for target in imported_modules(tree) if target != name)
    return pairs


def upward_imports() -> set[tuple[str, str]]:
    """The pairs whose imported module is not of a lower level than its importer."""
    levels = documented_levels()
    return {(a, b) for a, b in import_pairs() if levels[b] >= levels[a]}


def test_every_module_of_the_package_has_exactly_one_documented_level() -> None:
    assert set(documented_levels()) == node_modules()


def test_no_module_imports_one_of_its_own_level_or_above() -> None:
    upward = upward_imports()
    assert not upward, f"imports against the documented levels: {sorted(upward)}"


def test_the_package_does_import_downward_so_the_check_has_something_to_hold() -> None:
    pairs, levels = import_pairs(), documented_levels()
    assert ("client", "subscribe") in pairs
    assert ("node", "client") in pairs
    assert levels["client"] > levels["subscribe"]


def test_the_import_reader_sees_function_level_and_type_checking_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from rotary.node import hub, state\n"
        "if TYPE_CHECKING:\n"
        "    from rotary.node.client import ClientSession\n"
        "def f() -> None:\n"
        "    import rotary.node.node\n"
        "    from .outbox import Outbox\n"
        "    from rotary.protocol import codec\n"
    )
    found = imported_modules(ast.parse(source))
    assert found == {"hub", "state", "client", "node", "outbox"}
