"""`bench.common.CpuWatch` splits a process's CPU into user and system time, which
`bench latency` turns into the server's cost per delivery in its own code and in the kernel."""

from __future__ import annotations

import subprocess
import sys

from bench.common import CpuWatch

#: Spins in user space, then makes system calls (the parent reads both out of /proc).
_CHILD = """
import os, sys, time
end = time.process_time() + 0.4
while time.process_time() < end:
    pass
end = time.process_time() + 0.4
fd = os.open("/dev/zero", os.O_RDONLY)
while time.process_time() < end:
    os.read(fd, 1 << 20)
print("done", flush=True)
sys.stdin.readline()
"""


def test_cpu_watch_splits_a_process_cpu_into_user_and_system_time() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        watch = CpuWatch(child.pid)
        assert child.stdout is not None and child.stdout.readline() == "done\n"
        cpu = watch.stop()
    finally:
        child.communicate("\n", timeout=10)
    assert cpu["server_user_s"] >= 0.2, cpu
    assert cpu["server_sys_s"] >= 0.1, cpu
    assert abs(cpu["server_user_s"] + cpu["server_sys_s"] - cpu["server_cpu_s"]) < 0.005, cpu
