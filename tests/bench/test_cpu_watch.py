"""`bench.common.CpuWatch` splits a process's CPU into user and system time, which
`bench latency` turns into the server's cost per delivery in its own code and in the kernel."""

from __future__ import annotations

import subprocess
import sys

from bench.common import CpuWatch

#: On each line from the parent: spin in Python ("user") or copy from /dev/zero ("system"),
#: then answer "done".
_CHILD = """
import os, sys
zero = os.open("/dev/zero", os.O_RDONLY)
for line in sys.stdin:
    if line.strip() == "user":
        total = 0
        for i in range(6_000_000):
            total += i
    else:
        for _ in range(3_000):
            os.read(zero, 1 << 20)
    print("done", flush=True)
"""


def _watched(child: subprocess.Popen[str], work: str) -> dict[str, float]:
    assert child.stdin is not None and child.stdout is not None
    watch = CpuWatch(child.pid)
    child.stdin.write(work + "\n")
    child.stdin.flush()
    assert child.stdout.readline() == "done\n"
    return watch.stop()


def test_cpu_watch_splits_a_process_cpu_into_user_and_system_time() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        user_work, system_work = _watched(child, "user"), _watched(child, "system")
    finally:
        child.communicate("", timeout=10)
    for cpu in (user_work, system_work):
        assert abs(cpu["server_user_s"] + cpu["server_sys_s"] - cpu["server_cpu_s"]) < 0.005, cpu
    assert user_work["server_user_s"] > 4 * user_work["server_sys_s"], user_work
    assert system_work["server_sys_s"] > 2 * system_work["server_user_s"], system_work


def test_cpu_watch_of_several_processes_sums_them() -> None:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    try:
        alone = _watched(children[0], "user")
        watch = CpuWatch(*(child.pid for child in children))
        for child in children:
            assert child.stdin is not None
            child.stdin.write("user\n")
            child.stdin.flush()
        for child in children:
            assert child.stdout is not None and child.stdout.readline() == "done\n"
        both = watch.stop()
    finally:
        for child in children:
            child.communicate("", timeout=10)
    # Two processes doing the same work as one: about twice its CPU (a shared machine).
    assert 1.4 * alone["server_cpu_s"] < both["server_cpu_s"] < 3 * alone["server_cpu_s"], (
        alone,
        both,
    )
