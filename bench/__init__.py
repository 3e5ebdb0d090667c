"""Rotary's benchmark suite: `python -m bench SCENARIO` (see docs/benchmarks.md).

Speed is measured here, never asserted in tests.
"""
