"""The instruction counter behind `bench stormcount`, on a real process under real valgrind.

A small Python program waits for commands on stdin (waking every 50 ms, as a server's event
loop does) and runs a fixed loop of the size asked; the counter switches callgrind on,
zeroes, dumps and reads, exactly as the scenario drives a server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.stormcount import CallgrindCounter, callgrind_wrapper, read_total

pytestmark = pytest.mark.slow

_PROGRAM = """
import select, sys
def work(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total
print("ready", flush=True)
while True:
    ready, _, _ = select.select([sys.stdin], [], [], 0.05)
    if not ready:
        continue
    line = sys.stdin.readline().split()
    if not line or line[0] == "quit":
        break
    work(int(line[1]))
    print("done", flush=True)
"""


def _need_valgrind() -> None:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("valgrind is required under CI (bench stormcount counts with it)")
        pytest.skip("valgrind not installed")


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], CallgrindCounter]]:
    _need_valgrind()
    out = tmp_path / "worker.cg"
    argv = [*callgrind_wrapper(out), sys.executable, "-c", _PROGRAM]
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc, CallgrindCounter(proc.pid, out)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


def _count(proc: subprocess.Popen[str], counter: CallgrindCounter, size: int) -> int:
    assert proc.stdin is not None and proc.stdout is not None
    counter.zero()
    proc.stdin.write(f"work {size}\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "done"
    return counter.dump()


def test_the_same_work_counts_the_same_and_three_times_the_work_about_three_times(
    worker: tuple[subprocess.Popen[str], CallgrindCounter],
) -> None:
    proc, counter = worker
    counter.instrument()
    _count(proc, counter, 20_000)  # first run: the interpreter specialises the loop
    once = _count(proc, counter, 20_000)
    again = _count(proc, counter, 20_000)
    thrice = _count(proc, counter, 60_000)
    assert once > 1_000_000
    assert abs(again - once) / once < 0.02
    assert 2.7 < thrice / once < 3.3


def test_a_process_that_is_not_under_callgrind_is_an_error_not_a_zero_count(
    tmp_path: Path,
) -> None:
    _need_valgrind()
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as plain:
        try:
            with pytest.raises(RuntimeError, match="callgrind_control -z"):
                CallgrindCounter(plain.pid, tmp_path / "none.cg").zero()
        finally:
            plain.kill()


def test_a_file_without_a_summary_line_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-dump"
    bogus.write_text("events: Ir\nfn=main\n")
    with pytest.raises(ValueError, match="no summary line"):
        read_total(bogus)
    dump = tmp_path / "dump"
    dump.write_text("events: Ir\nsummary: 1234567\n")
    assert read_total(dump) == 1234567
