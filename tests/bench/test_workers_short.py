"""The short form of `bench workers` (make test): one process on Redis and ``rotary
--workers 2`` each take a storm and a fan-out in full, the kernel spreads the storm's clients
over both workers, and the figures and ratios the scenario reports are there. (The memory
engine's reference setup is the same code path with another config: left out for time.)"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.cluster import _start_redis
from bench.common import ServerProcess
from bench.worker import LoadPool
from bench.workers import SETUPS, _kill_started_with, measure_round, summarize

from tests.functional.cluster_helpers import skip_or_fail

_CLIENTS, _PUBLICATIONS = 40, 5
_SETUPS = tuple(s for s in SETUPS if s.engine == "redis")


@pytest.fixture(scope="module")
def outcomes() -> Iterator[dict[str, dict[str, object]]]:
    redis = _start_redis()
    if not isinstance(redis, ServerProcess):
        skip_or_fail(f"bench workers needs redis-server: {redis}")
    try:
        with LoadPool(1) as pool:
            yield measure_round(pool, _SETUPS, redis=redis, n=_CLIENTS, m=_PUBLICATIONS, notes=[])
    finally:
        redis.stop()


@pytest.mark.timeout(180)
def test_every_setup_completes_its_storm_and_its_fan_out(
    outcomes: dict[str, dict[str, object]],
) -> None:
    assert set(outcomes) == {"redis_1", "redis_2"}
    for name, found in outcomes.items():
        storm, fanout = found["storm"], found["fanout"]
        assert isinstance(storm, dict) and isinstance(fanout, dict), name
        assert storm["ready"] == _CLIENTS and storm["complete"], name
        assert storm["seconds"] > 0 and storm["server_cpu_s"] > 0, name
        assert fanout["complete"] and fanout["deliveries"] == _CLIENTS * _PUBLICATIONS, name
        # A fan-out this small may use less CPU than one clock tick (10 ms): zero is honest.
        assert fanout["deliveries_per_s"] > 0 and fanout["server_cpu_s"] >= 0, name
    assert outcomes["redis_1"]["fanout"]["redis_cpu_s"] is not None  # type: ignore[index]


@pytest.mark.timeout(180)
def test_two_workers_each_hold_some_of_the_storm(
    outcomes: dict[str, dict[str, object]],
) -> None:
    held = outcomes["redis_2"]["storm"]["clients_per_worker"]  # type: ignore[index]
    assert len(held) == 2
    assert all(n > 0 for n in held) and sum(held) >= _CLIENTS
    assert all(kb > 0 for kb in outcomes["redis_2"]["idle_rss_kb"])  # type: ignore[attr-defined]


@pytest.mark.timeout(180)
def test_the_summary_reports_both_worker_counts_and_their_ratios(
    outcomes: dict[str, dict[str, object]],
) -> None:
    runs = {name: [found] for name, found in outcomes.items()}
    result = summarize(_CLIENTS, _PUBLICATIONS, runs, [])  # type: ignore[arg-type]
    for name in ("redis_1", "redis_2"):
        assert result["figures"][f"workers_{name}_fanout_deliveries_per_s"] > 0
        assert result["figures"][f"workers_{name}_storm_s"] > 0
    for key in ("fanout_2_over_1", "storm_2_over_1"):
        assert result["ratios"][f"workers_{key}"] > 0
    assert len(result["table"]) == 2


def test_a_worker_left_by_a_failed_start_is_killed_by_its_config_path(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    # The child prints once it runs its own command line: before its exec the process still
    # shows pytest's, and a kill aimed at the config path would rightly miss it.
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; print(flush=True); time.sleep(60)", str(cfg)],
        stdout=subprocess.PIPE,
    )
    try:
        assert orphan.stdout is not None
        orphan.stdout.readline()
        _kill_started_with(str(cfg))
        assert orphan.wait(10) == -signal.SIGKILL
    finally:
        orphan.kill()
        orphan.communicate()
