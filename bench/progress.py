"""One progress bar for the whole invocation (tqdm, on stderr).

Scenarios announce how many steps they plan with `expect` and call `step` after each; the
harness owns the bar (`open_bar` / `close_bar`). Without a bar, both are no-ops.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

__all__ = ["close_bar", "expect", "note", "open_bar", "step", "write"]

_bar: Any = None


def open_bar() -> None:
    global _bar
    _bar = tqdm(total=0, file=sys.stderr, unit="step", dynamic_ncols=True, leave=True)


def close_bar() -> None:
    global _bar
    if _bar is not None:
        _bar.close()
    _bar = None


def expect(steps: int) -> None:
    """Add `steps` to the planned total."""
    if _bar is not None:
        _bar.total += steps
        _bar.refresh()


def note(text: str) -> None:
    """Show what is running now."""
    if _bar is not None:
        _bar.set_description_str(text[:40])


def step(text: str | None = None) -> None:
    """One planned step finished; optionally show what comes next."""
    if _bar is not None:
        if text:
            _bar.set_description_str(text[:40])
        _bar.update(1)


def write(text: str) -> None:
    """Print a line without breaking the bar."""
    if _bar is not None:
        _bar.write(text, file=sys.stderr)
    else:
        print(text, file=sys.stderr)
