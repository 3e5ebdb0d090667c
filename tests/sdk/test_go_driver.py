"""The Go SDK program's build cache: rebuilt only on change, never skipped under CI."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from tests.sdk import go_driver


@pytest.fixture
def sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of tests/sdk/go and an empty bin directory, in place of the real ones."""
    copy = tmp_path / "go"
    shutil.copytree(go_driver.GO_DIR, copy)
    monkeypatch.setattr(go_driver, "GO_DIR", copy)
    monkeypatch.setattr(go_driver, "BIN_DIR", tmp_path / "bin")
    return copy


def test_source_digest_changes_when_a_go_file_or_go_sum_changes(sources: Path) -> None:
    before = go_driver.source_digest()
    (sources / "main.go").write_text((sources / "main.go").read_text() + "\n// changed\n")
    after_go = go_driver.source_digest()
    (sources / "go.sum").write_text((sources / "go.sum").read_text() + "\n")
    assert len({before, after_go, go_driver.source_digest()}) == 3


def test_source_digest_ignores_files_the_build_does_not_read(sources: Path) -> None:
    before = go_driver.source_digest()
    (sources / "notes.txt").write_text("not Go")
    assert go_driver.source_digest() == before


def test_a_built_binary_for_the_current_sources_is_used_without_go(
    sources: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(go_driver, "go_tool", lambda: None)
    cached = go_driver.BIN_DIR / f"rotary-gosdk-{go_driver.source_digest()}"
    cached.parent.mkdir()
    cached.write_bytes(b"")
    assert go_driver.built_binary() == cached


def test_missing_go_skips_outside_ci(sources: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(go_driver, "go_tool", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Go is not installed"):
        go_driver.go_sdk_or_skip()


def test_missing_go_fails_under_ci(sources: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(go_driver, "go_tool", lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        go_driver.go_sdk_or_skip()


def test_a_new_build_removes_builds_of_other_sources_once_they_are_a_day_old(
    sources: Path,
) -> None:
    go_driver.BIN_DIR.mkdir()
    current, old, recent = (go_driver.BIN_DIR / f"rotary-gosdk-{n}" for n in ("c", "o", "r"))
    for path in (current, old, recent):
        path.write_bytes(b"")
    day_ago = time.time() - go_driver.STALE_AFTER - 60
    os.utime(old, (day_ago, day_ago))
    go_driver._prune(current)
    assert sorted(p.name for p in go_driver.BIN_DIR.iterdir()) == [current.name, recent.name]
