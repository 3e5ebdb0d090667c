"""The results file names the machine it was measured on (docs/benchmarks.md)."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest
from bench.harness import cpu_model


def test_cpu_model_is_read_from_the_model_name_line(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: X\nmodel name\t: Example CPU 9000\n\n")
    assert cpu_model(cpuinfo) == "Example CPU 9000"


def test_cpu_model_falls_back_to_the_platform_when_cpuinfo_has_no_model_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platform, "processor", lambda: "fallback CPU")
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t:\n")
    assert cpu_model(cpuinfo) == "fallback CPU"
    assert cpu_model(tmp_path / "missing") == "fallback CPU"
