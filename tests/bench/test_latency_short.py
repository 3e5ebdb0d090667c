"""The short form of `bench latency` (make test): Rotary and Centrifugo, driven by the same
clients and HTTP API publisher, each deliver every timed publication to every subscriber,
and the percentiles come out ordered."""

from __future__ import annotations

import pytest
from bench.latency import _one_case, percentiles


def test_percentiles_are_nearest_rank_and_none_when_empty() -> None:
    assert percentiles([5.0, 1.0, 3.0, 2.0, 4.0], (0, 50, 100)) == [1.0, 3.0, 5.0]
    assert percentiles([], (50,)) == [None]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("target", ["rotary-memory", "centrifugo"])
def test_every_timed_publication_reaches_every_subscriber(target: str) -> None:
    p50, p99, p999, seen = _one_case(target, 40, 20, 2.0)
    assert seen == f"{40 * 40}/{40 * 40}", seen
    assert 0 < p50 <= p99 <= p999
