"""Command line: parse, call one function, print. (Filled in by the CLI work.)"""

from __future__ import annotations

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    return 0
