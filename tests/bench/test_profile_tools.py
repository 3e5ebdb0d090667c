"""The tools of docs/benchmarks.md "Where the CPU goes, beside Centrifugo": how Centrifugo is
run beside Rotary, the report's Centrifugo table, the callgrind grouping and nodecount."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from bench.centrifugo import find_centrifugo
from bench.cgroups import group_of, self_costs
from bench.common import ServerUnavailable, server_cpus
from bench.nodecount import count, profile
from bench.peers.centrifugo import cores_label, start_centrifugo_peer
from bench.report import markdown


def _centrifugo_or_skip() -> None:
    try:
        find_centrifugo()
    except ServerUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{exc} (CI must run the benchmark peers)")
        pytest.skip(f"needs Centrifugo: {exc}")


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().partition("=")[::2] for item in raw if item)


def test_centrifugo_runs_on_one_pinned_core_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    _centrifugo_or_skip()
    monkeypatch.delenv("BENCH_CENTRIFUGO_GOMAXPROCS", raising=False)
    server = start_centrifugo_peer(public_channels=True)
    try:
        assert _environ(server.pid)["GOMAXPROCS"] == "1"
        assert os.sched_getaffinity(server.pid) == server_cpus()
    finally:
        server.stop()
    assert cores_label() == "GOMAXPROCS=1"


def test_centrifugo_gomaxprocs_0_runs_on_every_core_unpinned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _centrifugo_or_skip()
    monkeypatch.setenv("BENCH_CENTRIFUGO_GOMAXPROCS", "0")
    monkeypatch.delenv("GOMAXPROCS", raising=False)
    server = start_centrifugo_peer(public_channels=True)
    try:
        assert "GOMAXPROCS" not in _environ(server.pid)
        assert os.sched_getaffinity(server.pid) == os.sched_getaffinity(0) | server_cpus()
    finally:
        server.stop()
    assert cores_label() == "all cores"


def test_report_gives_the_centrifugo_ratios_a_table_headed_with_its_cores() -> None:
    doc = {
        "meta": {"centrifugo_cores": "all cores"},
        "ratios": {"storm_rotary_over_centrifugo_cpu": 1.5, "storm_checked_over_insecure": 1.2},
    }
    text = markdown(doc)
    beside = text.split("### beside Centrifugo (all cores)")[1].split("###")[0]
    assert "| storm_rotary_over_centrifugo_cpu | 1.500 |" in beside
    assert "checked_over_insecure" not in beside


_DUMP = """events: Ir
ob=(1) /usr/lib/libpython3.11.so.1.0
fn=(1) _PyEval_EvalFrameDefault
10 700
cob=(2) /site-packages/orjson/orjson.cpython-311.so
cfn=(2) dumps
calls=3 0
11 5000
fn=(3) _PyObject_Malloc
20 50
ob=(2)
fn=(2)
5 120
"""


def test_callgrind_costs_are_own_costs_by_object_and_function(tmp_path: Path) -> None:
    dump = tmp_path / "x.cg"
    dump.write_text(_DUMP)
    costs = self_costs(dump)
    # The 5,000 after ``calls=`` is dumps' inclusive cost as seen by its caller: not own.
    assert costs == {
        ("/usr/lib/libpython3.11.so.1.0", "_PyEval_EvalFrameDefault"): 700,
        ("/usr/lib/libpython3.11.so.1.0", "_PyObject_Malloc"): 50,
        ("/site-packages/orjson/orjson.cpython-311.so", "dumps"): 120,
    }
    groups = {group_of(obj, fn) for obj, fn in costs}
    assert groups == {"interpreter: bytecode loop", "allocator and garbage collector", "orjson"}


@pytest.mark.slow
@pytest.mark.timeout(240)  # the interpreter starts under valgrind: 20 s alone, more when busy
def test_nodecount_counts_every_phase_of_the_node_under_callgrind() -> None:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("valgrind is required under CI (bench nodecount counts with it)")
        pytest.skip("valgrind not installed")
    started = time.monotonic()
    figures = count(5, codecs=("json", "protobuf"))
    phases = {"insecure", "checked", "warm", "fanout"}
    assert set(figures) == phases | {f"{p}_protobuf" for p in phases}
    # A client's connect and two subscribes run thousands of instructions, a delivery fewer.
    assert all(v > 1000 for v in figures.values()), figures
    assert figures["checked"] > figures["warm"], figures
    assert figures["checked_protobuf"] > figures["warm_protobuf"], figures
    assert time.monotonic() - started < 300


def test_nodecount_profiles_the_protobuf_storm_with_its_codec_in_a_group_of_its_own() -> None:
    phases = profile(3, codecs=("protobuf",))
    assert set(phases) == {
        "insecure_protobuf",
        "checked_protobuf",
        "warm_protobuf",
        "fanout_protobuf",
    }
    checked = phases["checked_protobuf"]["calls_per_unit_by_group"]
    assert checked["Protobuf"] > 0 and checked["token verify"] > 0, checked
    assert checked.get("JSON", 0) < checked["Protobuf"], "the commands went through Protobuf"
