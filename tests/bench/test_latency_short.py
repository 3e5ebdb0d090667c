"""The short form of `bench latency` (make test): Rotary, Centrifugo and the bare picows
broadcast, received by the Go program of `bench.goreceivers` (and Rotary once more by the
Python clients on the load workers), each deliver every timed publication to every
subscriber, and the percentiles come out ordered; the histogram the receivers fill merges
and reads back within its bucket width. Without Go the Go cases skip, and fail under
CI=true, where Go is installed."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import bench.latency
import pytest
from bench.clients import OpenSpec
from bench.common import SECRET, free_port
from bench.gcwatch import pauses
from bench.goreceivers import GoMissingError, GoReceivers, built_binary
from bench.histogram import Histogram
from bench.latency import _open_loop, one_case, percentiles, receivers_for
from bench.servers import ROTARY_STANDARD, start_rotary_with, ws_path

from tests.functional.cluster_helpers import shared_redis_or_skip


@pytest.fixture
def go_receivers() -> None:
    """The Go receivers are built (a failed build fails the test; no Go skips it, but
    fails it under CI=true)."""
    try:
        built_binary()
    except GoMissingError as exc:
        if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail(f"{exc} (CI is set, so this is a failure, not a skip)")
        pytest.skip(str(exc))


def test_percentiles_are_nearest_rank_and_none_when_empty() -> None:
    assert percentiles([5.0, 1.0, 3.0, 2.0, 4.0], (0, 50, 100)) == [1.0, 3.0, 5.0]
    assert percentiles([], (50,)) == [None]


def test_merged_histograms_give_the_percentiles_of_all_samples_within_half_a_percent() -> None:
    samples_ms = [float(k) for k in range(1, 1001)]
    first, second = Histogram(), Histogram()
    for n, ms in enumerate(samples_ms):
        (first if n % 2 else second).add_ns(int(ms * 1e6))
    first.merge(second.buckets)
    exact = percentiles(samples_ms, (50, 99, 99.9))
    found = first.percentiles((50, 99, 99.9))
    assert first.count == 1000
    for want, got in zip(exact, found, strict=True):
        assert want is not None and got is not None
        assert abs(got * 1000 - want) <= want * 0.005, (want, got)
    assert Histogram().percentiles((50,)) == [None]


@pytest.mark.timeout(120)
@pytest.mark.usefixtures("go_receivers")
@pytest.mark.parametrize("target", ["rotary-memory", "centrifugo", "picows"])
def test_every_timed_publication_reaches_every_go_receiver(target: str) -> None:
    case = one_case(target, 20, 20, 1.0)
    assert case.receivers == "go", case
    assert case.note == "" and case.expected == 20 * 20, case
    assert case.lost == 0 and case.failed == [], case
    assert case.p50_ms is not None and case.p99_ms is not None and case.p999_ms is not None
    assert 0 < case.p50_ms <= case.p99_ms <= case.p999_ms < 2000
    # Rotary runs under bench.gcwatch, which files its collections; peers have none.
    assert (case.gc is not None) == (target == "rotary-memory"), case
    # The server's CPU per delivery, user and system, goes into the row.
    assert case.server_us is not None and min(case.server_us) >= 0, case
    assert f"{case.server_us[0]:.1f} + {case.server_us[1]:.1f}" in case.row(), case


@pytest.mark.timeout(120)
@pytest.mark.usefixtures("go_receivers")
def test_two_workers_deliver_every_timed_publication_and_their_cpu_is_summed() -> None:
    shared_redis_or_skip()
    case = one_case("rotary-2-workers", 20, 20, 1.0)
    assert case.note == "" and case.lost == 0 and case.failed == [], case
    assert case.p50_ms is not None and case.p99_ms is not None
    assert 0 < case.p50_ms <= case.p99_ms < 2000
    # Both workers' CPU, on every CPU of the machine; the receivers share those CPUs, so
    # the share taken by "other processes" is not given.
    assert case.server_us is not None and sum(case.server_us) > 0, case
    assert case.server_cpu is not None and case.server_cpu > 0, case
    assert case.foreign_cpu is None and case.gc is None, case


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("go_receivers")
def test_go_receivers_answer_pings_and_stay_subscribed_past_the_pong_timeout() -> None:
    config = {**ROTARY_STANDARD, "ping_interval": "1s", "pong_timeout": "500ms"}
    server = start_rotary_with(config)
    receivers = GoReceivers(1)
    try:
        url = server.url(ws_path("rotary"))
        spec = OpenSpec("rotary", url, 0, 5, ("lat",), SECRET, int(time.time()) + 3600)
        assert receivers.open(spec)["ready"] == 5
        time.sleep(3)  # three pings, each to be answered within 0.5 s
        assert receivers.broadcast({"op": "arm", "per_client": 0}) == [{"armed": 5}]
    finally:
        receivers.shutdown()
        server.stop()


@pytest.mark.usefixtures("go_receivers")
def test_go_receivers_count_every_client_that_could_not_connect_and_say_why() -> None:
    receivers = GoReceivers(1)
    try:
        url = f"ws://127.0.0.1:{free_port()}/ws"  # nothing listens there
        opened = receivers.open(OpenSpec("bare", url, 0, 8))
        assert opened["ready"] == 0 and len(opened["failures"]) == 8, opened
        assert "dial" in opened["failures"][0] and "refused" in opened["failures"][0], opened
    finally:
        receivers.shutdown()


@pytest.mark.timeout(120)
def test_every_timed_publication_reaches_every_python_receiver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BENCH_LATENCY_RECEIVERS", "python")
    case = one_case("rotary-memory", 40, 20, 2.0)
    assert case.receivers == "python", case
    assert case.note == "" and case.expected == 40 * 40, case
    assert case.lost == 0 and case.failed == [], case
    assert case.p50_ms is not None and case.p99_ms is not None and case.p999_ms is not None
    assert 0 < case.p50_ms <= case.p99_ms <= case.p999_ms


def test_socketio_and_a_missing_go_put_the_python_clients_on_and_say_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert receivers_for("socketio")[1] == "python"
    monkeypatch.setattr(bench.latency, "_go_problem", lambda: "Go is not installed")
    assert receivers_for("picows")[1] == "python (no Go receivers: Go is not installed)"
    monkeypatch.setenv("BENCH_LATENCY_RECEIVERS", "rust")
    with pytest.raises(ValueError, match="go or python"):
        receivers_for("picows")


def test_gc_pauses_counts_only_the_collections_that_ended_in_the_window(tmp_path: Path) -> None:
    log = tmp_path / "gc.log"
    log.write_text("9.5 0 20.0 12.0\n10.5 0 3.0 2.5\n11.0 2 9.0 8.0\n12.5 1 50.0 40.0\n")
    found = pauses(log, 10.0, 12.0)
    assert found["count"] == 2 and found["by_generation"] == {0: 1, 1: 0, 2: 1}
    assert found["max_cpu_ms"] == 8.0 and found["max_wall_ms"] == 9.0
    assert found["cpu_ms"] == 10.5


def test_the_open_loop_goes_on_past_a_failed_publication_and_says_why() -> None:
    calls: list[int] = []

    async def send() -> None:
        calls.append(len(calls))
        if len(calls) == 2:
            raise ConnectionResetError("server went away")

    failed = asyncio.run(_open_loop(send, 100, 0.05))
    assert len(calls) == 5
    assert failed == ["ConnectionResetError('server went away')"]
