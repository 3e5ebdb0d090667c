"""One atheris run of one target (started by tests/fuzz/run.py): argv[1] is the target,
the rest goes to libFuzzer."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["rotary"]):
    from tests.fuzz.targets import TARGETS


def main() -> None:
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
