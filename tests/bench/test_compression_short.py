"""The short form of `bench compression` (make test): both rounds of both sizes run, every
client got every publication intact (the scenario checks it), and the figures are there."""

from __future__ import annotations

import pytest
from bench.compression import run


@pytest.mark.timeout(120)
def test_the_quick_compression_run_reports_each_round_and_a_ratio_per_size() -> None:
    result = run(quick=True)
    assert sorted(result["json"]["rounds"]) == [
        "deflate_100b",
        "deflate_1kb",
        "plain_100b",
        "plain_1kb",
    ]
    assert set(result["ratios"]) == {
        "compression_server_cpu_per_delivery_100b",
        "compression_server_cpu_per_delivery_1kb",
    }
    assert all(r["deliveries"] == 400 for r in result["json"]["rounds"].values())
