"""`make fuzz`: coverage-guided fuzzing of every target with atheris, one after another.

    python -m tests.fuzz.run [--seconds N] [TARGET ...]

Each target runs for N seconds (default 60) in a child process. Its seeds are read from
tests/fuzz/corpus/<target>/; the inputs libFuzzer finds interesting go to .fuzz/<target>/
(not kept); an input that crashes or hangs a target is written into
tests/fuzz/corpus/<target>/, where `make test` replays it from then on. A summary line per
target gives the inputs tried and the time spent. Without atheris (not Linux, or a Python
it has no wheel for) the Hypothesis properties run with the ``fuzz`` profile instead.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
_CORPUS = _ROOT / "tests" / "fuzz" / "corpus"
_WORK = _ROOT / ".fuzz"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("targets", nargs="*")
    args = parser.parse_args(argv)
    from tests.fuzz.targets import TARGETS

    names = args.targets or sorted(TARGETS)
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("atheris is not installed: running the Hypothesis properties (fuzz profile)")
        return _hypothesis_fallback()
    failed = [name for name in names if not _fuzz(name, args.seconds)]
    if failed:
        print(f"targets with findings (kept in {_CORPUS}): {', '.join(failed)}")
    return 1 if failed else 0


def _fuzz(name: str, seconds: int) -> bool:
    work = _WORK / name
    work.mkdir(parents=True, exist_ok=True)
    seeds = _CORPUS / name
    argv = [sys.executable, "-m", "tests.fuzz.child", name, str(work), str(seeds)]
    argv += [f"-max_total_time={seconds}", f"-artifact_prefix={seeds}/", "-timeout=10"]
    argv += ["-rss_limit_mb=1024", "-print_final_stats=1"]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=_ROOT, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", done.stderr)
    tried = int(runs[-1]) if runs else 0
    print(f"{name}: {tried} inputs in {elapsed:.0f} s, exit {done.returncode}")
    if done.returncode != 0:
        print(done.stderr[-3000:])
    return done.returncode == 0


def _hypothesis_fallback() -> int:
    env = {**os.environ, "ROTARY_HYPOTHESIS_PROFILE": "fuzz"}
    argv = [sys.executable, "-m", "pytest", "-q", "-n", "0", "--timeout", "3600"]
    return subprocess.run([*argv, "tests/fuzz/test_properties.py"], env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
