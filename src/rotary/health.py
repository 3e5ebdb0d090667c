"""What ``GET /health`` reports: the problems that keep this node from delivering.

A component (an engine's broker or presence manager) takes part by offering a method
``health_problems() -> list[str]``; one without it is always healthy (the memory engine).
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["HealthReporting", "health_problems"]


class HealthReporting(Protocol):
    """A component that knows when it cannot do its job."""

    def health_problems(self) -> list[str]:
        """One short sentence per current problem; empty when healthy. Must not block."""


def health_problems(*components: object) -> list[str]:
    """Every problem reported by the `components` that report any, in order."""
    problems: list[str] = []
    for component in components:
        # getattr, not isinstance: a metered engine wrapper passes the method through its
        # __getattr__, which a runtime protocol check (getattr_static, Python 3.12+) skips.
        report = getattr(component, "health_problems", None)
        if callable(report):
            problems.extend(report())
    return problems
