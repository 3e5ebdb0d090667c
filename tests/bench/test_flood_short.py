"""The short form of `bench flood` (make test): on a node with the rate limit and the error
budget on, flooders that stay away once cut and flooders that come back are both measured;
every healthy subscriber gets every publication meanwhile, and the figures are there."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from bench.common import ServerProcess
from bench.flood import LIMITS, measure_node, summarize
from bench.servers import ROTARY_STANDARD, start_rotary_with

_HEALTHY, _RATE, _SECONDS = 20, 20, 0.5
_PLAN = ((0, False), (2, False), (2, True))


@pytest.fixture(scope="module")
def windows() -> Iterator[list[dict[str, Any]]]:
    server: ServerProcess = start_rotary_with(
        {**ROTARY_STANDARD, "allow_publish_for_client": True, **LIMITS}
    )
    try:
        yield measure_node(
            server, clients=_HEALTHY, rate=_RATE, seconds=_SECONDS, plan=_PLAN, drain=0.5
        )
    finally:
        server.stop()


@pytest.mark.timeout(120)
def test_healthy_subscribers_get_every_publication_in_every_window(
    windows: list[dict[str, Any]],
) -> None:
    assert [(w["flooders"], w["reconnecting"]) for w in windows] == list(_PLAN)
    for w in windows:
        assert w["expected"] == _HEALTHY * int(_RATE * _SECONDS)
        assert w["seen"] == w["expected"]
        assert 0 < w["p50_ms"] <= w["p99_ms"]


@pytest.mark.timeout(120)
def test_flooders_get_111_then_3509_and_only_the_hostile_ones_come_back(
    windows: list[dict[str, Any]],
) -> None:
    quiet, buggy, hostile = (w["flood"] for w in windows)
    assert quiet["sent"] == 0 and quiet["connects"] == 0
    assert buggy["errors_111"] > 0 and buggy["cut_3509"] == 2 and buggy["connects"] == 2
    assert hostile["cut_3509"] >= 2 and hostile["connects"] > 2


@pytest.mark.timeout(120)
def test_the_summary_gives_each_window_over_the_baseline(
    windows: list[dict[str, Any]],
) -> None:
    result = summarize(_HEALTHY, _RATE, _SECONDS, {"limited": windows}, [])
    assert result["figures"]["flood_limited_0_p99_ms"] > 0
    for key in ("2", "2_reconnecting"):
        for point in ("p50", "p99"):
            assert result["ratios"][f"flood_limited_{key}_over_0_{point}"] > 0
