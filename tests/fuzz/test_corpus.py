"""Every input kept in tests/fuzz/corpus/<target>/ (seeds, and whatever fuzzing found)
still passes through its target without an undocumented error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.targets import TARGETS

_CORPUS = Path(__file__).parent / "corpus"
_INPUTS = sorted(p for p in _CORPUS.glob("*/*") if p.is_file())


def test_every_corpus_folder_names_a_target() -> None:
    folders = {p.name for p in _CORPUS.iterdir() if p.is_dir()}
    assert folders == set(TARGETS)


@pytest.mark.parametrize("path", _INPUTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_kept_input_passes_its_target(path: Path) -> None:
    TARGETS[path.parent.name](path.read_bytes())
