"""``gc_gen0_threshold`` (v6 ``node.gc_gen0_threshold``) sets how often the server's cycle
collector walks its youngest generation: the trade between reconnect-storm CPU and the
length of each pause (docs/operations.md)."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rotary.config.load import ConfigError, load_config
from rotary.server import _tune_gc


@pytest.fixture
def collector_settings_restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_gc_gen0_threshold_defaults_to_50000_and_reads_both_layouts(tmp_path: Path) -> None:
    assert load_config(None, env={}).server.gc_gen0_threshold == 50_000
    nested = tmp_path / "config.json"
    nested.write_text(json.dumps({"node": {"gc_gen0_threshold": 10_000}}))
    assert load_config(str(nested), env={}).server.gc_gen0_threshold == 10_000
    flat = load_config(None, env={"ROTARY_GC_GEN0_THRESHOLD": "7000"})
    assert flat.server.gc_gen0_threshold == 7000


def test_a_gc_gen0_threshold_below_one_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"gc_gen0_threshold .*: must be a positive number"):
        load_config(None, env={}, overrides={"gc_gen0_threshold": 0})


@pytest.mark.usefixtures("collector_settings_restored")
def test_the_server_collects_gen0_at_the_configured_threshold() -> None:
    config = load_config(None, env={}, overrides={"gc_gen0_threshold": 12_345})
    _tune_gc(config.server.gc_gen0_threshold)
    assert gc.get_threshold() == (12_345, 50, 100)
    assert gc.get_freeze_count() > 0
