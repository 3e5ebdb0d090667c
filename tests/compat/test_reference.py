"""The reference server's plumbing: finding the binary, and configurations both servers read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.centrifugo import find_centrifugo
from bench.common import ServerUnavailable
from bench.peers.centrifugo import centrifugo_config

from rotary.config.load import load_config
from tests.compat import configs


def test_a_missing_binary_is_reported_with_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-centrifugo"
    monkeypatch.setenv("ROTARY_CENTRIFUGO_BIN", str(missing))
    with pytest.raises(ServerUnavailable, match=str(missing)):
        find_centrifugo()


@pytest.mark.parametrize("name", configs.names())
def test_rotary_reads_every_differential_configuration_unchanged(name: str, tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(configs.config(name)))
    load_config(str(path), env={})  # raises ConfigError listing every problem


@pytest.mark.parametrize("public", [False, True])
def test_rotary_reads_the_centrifugo_bench_configuration(public: bool, tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(centrifugo_config(public_channels=public)))
    load_config(str(path), env={})  # raises ConfigError listing every problem
