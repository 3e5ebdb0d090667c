"""Centrifugo v6.9.1 and Rotary, started with the same file, must show clients the same thing.

Each scenario of tests/compat/scenarios.py runs against both servers at once; the
normalised transcripts must be equal except where tests/compat/differences.toml lists a
deliberate difference (explained on the user page it names). `make test` runs the quick
scenarios; `make compat` (ROTARY_COMPAT=full) runs all of them.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from bench.centrifugo import start_centrifugo
from bench.common import REPO, ServerProcess, start_rotary

from tests.compat import configs
from tests.compat.compare import diff, listed_differences, normalise, unexplained
from tests.compat.dsl import Scenario
from tests.compat.runner import Transcript, run_scenario
from tests.compat.scenarios import SCENARIOS, by_id

_FULL = os.environ.get("ROTARY_COMPAT") == "full"
_SELECTED = [s for s in SCENARIOS if _FULL or s.quick]
_DOC_PAGES = (REPO / "docs" / "differences.md", REPO / "docs" / "differences-found.md")


async def _both(scenario: Scenario) -> tuple[Transcript, Transcript]:
    cfg = configs.config(scenario.config)
    started = await asyncio.gather(
        asyncio.to_thread(start_centrifugo, cfg),
        asyncio.to_thread(start_rotary, cfg),
        return_exceptions=True,
    )
    failed = [r for r in started if isinstance(r, BaseException)]
    if failed:  # stop the one that did start, then report why the other did not
        for server in started:
            if isinstance(server, ServerProcess):
                server.stop()
        raise failed[0]
    centrifugo, rotary = started
    assert isinstance(centrifugo, ServerProcess) and isinstance(rotary, ServerProcess)
    try:
        return await asyncio.gather(
            run_scenario(scenario, _base(centrifugo)), run_scenario(scenario, _base(rotary))
        )
    finally:
        await asyncio.gather(asyncio.to_thread(centrifugo.stop), asyncio.to_thread(rotary.stop))


def _base(server: ServerProcess) -> str:
    return server.url("", scheme="http")


def _show(entries: list[Any]) -> str:
    return "\n".join(f"  {i}: {json.dumps(e, sort_keys=True)}" for i, e in enumerate(entries))


@pytest.mark.compat
@pytest.mark.parametrize("scenario", _SELECTED, ids=[s.id for s in _SELECTED])
async def test_rotary_shows_what_centrifugo_shows(
    scenario: Scenario, centrifugo_binary: Path
) -> None:
    centrifugo, rotary = await _both(scenario)
    c_entries, r_entries = normalise(centrifugo), normalise(rotary)
    found = diff(c_entries, r_entries)
    left, stale = unexplained(scenario.id, found, listed_differences())
    report = (
        f"centrifugo:\n{_show(c_entries)}\nrotary:\n{_show(r_entries)}\n"
        f"unlisted differences:\n" + "\n".join(f"  {d}" for d in left)
    )
    assert not left, report
    # A step that saw nothing on Centrifugo either is a scenario that tests nothing.
    assert not [e for e in c_entries if isinstance(e, dict) and "timeout" in e], report
    assert not stale, f"listed but no longer seen: {stale}\n{report}"


# The list itself ---------------------------------------------------------------------------


def test_scenario_ids_are_unique_and_name_known_configs() -> None:
    ids = [s.id for s in SCENARIOS]
    assert len(ids) == len(set(ids))
    assert {s.config for s in SCENARIOS} <= set(configs.names())


def _heading_key(heading: str) -> str:
    """A heading without case, a leading article or a trailing parenthesis."""
    text = re.sub(r"\s*\(.*\)\s*$", "", heading.strip()).lower()
    return re.sub(r"^(the|a|an) ", "", text)


def test_every_listed_difference_names_a_scenario_and_a_documented_heading() -> None:
    headings = set()
    for page in _DOC_PAGES:
        if page.exists():
            found = re.findall(r"^## (.+?)\s*$", page.read_text(), re.MULTILINE)
            headings |= {_heading_key(h) for h in found}
    known = by_id()
    for entry in listed_differences():
        assert entry.scenario in known, entry
        assert _heading_key(entry.doc) in headings, f"{entry.doc!r}: no such heading"
        assert entry.why.strip(), entry
