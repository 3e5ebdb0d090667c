"""Centrifugo v6.9.1 and Rotary, started with the same file, must show clients the same thing.

Each scenario of tests/compat/scenarios/ runs against both servers at once; the
normalised transcripts must be equal except where tests/compat/differences.toml lists a
deliberate difference (explained on the user page it names). The scenarios where the engine
matters run again with both servers on the Redis engine (each with a key prefix of
its own, deleted afterwards). `make test` runs the quick scenarios; `make compat`
(ROTARY_COMPAT=full) runs all of them. Every scenario also runs over Protobuf, and over
HTTP-streaming (JSON and Protobuf) and SSE with emulation; the scenarios of
tests/compat/scenarios/uni.py drive the unidirectional transports.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis as redis_client
from bench.centrifugo import start_centrifugo
from bench.common import REPO, ServerProcess, start_rotary

from tests.compat import configs
from tests.compat.compare import diff, listed_differences, normalise, unexplained
from tests.compat.dsl import Raw, Scenario, Uni
from tests.compat.runner import Transcript, run_scenario
from tests.compat.scenarios import SCENARIOS, by_id

_FULL = os.environ.get("ROTARY_COMPAT") == "full"
_SELECTED = [s for s in SCENARIOS if _FULL or s.quick]
# Where the engine matters (presence, history, recovery, the API): run again on Redis.
_REDIS_FAMILIES = ("presence", "history", "recovery", "api_", "cache_", "forced_position")
_ON_REDIS = [s for s in _SELECTED if s.id.startswith(_REDIS_FAMILIES)]


def _has(scenario: Scenario, kind: type) -> bool:
    return any(isinstance(step, kind) for step in scenario.steps)


# Raw steps send JSON text on purpose (malformed input): those scenarios stay JSON-only.
# Unidirectional scenarios name their transport and speak JSON: they run once.
_BIDIRECTIONAL = [s for s in _SELECTED if not _has(s, Raw) and not _has(s, Uni)]
_OVER_PROTOBUF = _BIDIRECTIONAL
# Over the streaming transports, all but the WebSocket-only limits (its message size).
# The short form runs a few fast ones there; `make compat` all.
_STREAM_QUICK = (
    "connect_without_token_closes_3501",
    "subscribe_private_channel_with_token",
    "api_publish_and_broadcast_reach_subscribers",
)
_OVER_STREAMS = [
    (scenario, transport, protobuf)
    for transport, protobuf in (("http_stream", False), ("http_stream", True), ("sse", False))
    for scenario in _BIDIRECTIONAL
    if scenario.config != "limits" and (_FULL or scenario.id in _STREAM_QUICK)
]
_DOC_PAGES = (REPO / "docs" / "differences.md",)


async def _both(
    scenario: Scenario, *, redis: bool = False, protobuf: bool = False, transport: str = "websocket"
) -> tuple[Transcript, Transcript]:
    cfg = configs.config(scenario.config)
    envs: tuple[dict[str, str], dict[str, str]] = ({}, {})
    prefix = f"compat-{uuid.uuid4().hex[:12]}"
    if redis:
        cfg = configs.on_redis(cfg)
        envs = (
            {"CENTRIFUGO_ENGINE_REDIS_PREFIX": f"{prefix}-c"},
            {"ROTARY_ENGINE_REDIS_PREFIX": f"{prefix}-r"},
        )
    started = await asyncio.gather(
        asyncio.to_thread(start_centrifugo, cfg, env=envs[0]),
        asyncio.to_thread(start_rotary, cfg, env=envs[1]),
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
            run_scenario(scenario, _base(centrifugo), protobuf=protobuf, transport=transport),
            run_scenario(scenario, _base(rotary), protobuf=protobuf, transport=transport),
        )
    finally:
        await asyncio.gather(asyncio.to_thread(centrifugo.stop), asyncio.to_thread(rotary.stop))
        if redis:
            await asyncio.to_thread(_forget, prefix)


def _forget(prefix: str) -> None:
    """Delete both servers' keys from the shared Redis (stream metas would live for weeks)."""
    client = redis_client.Redis(host="127.0.0.1", port=6379)
    try:
        keys = list(client.scan_iter(match=f"{prefix}-*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _base(server: ServerProcess) -> str:
    return server.url("", scheme="http")


def _show(entries: list[Any]) -> str:
    return "\n".join(f"  {i}: {json.dumps(e, sort_keys=True)}" for i, e in enumerate(entries))


@pytest.mark.compat
@pytest.mark.parametrize("scenario", _SELECTED, ids=[s.id for s in _SELECTED])
async def test_rotary_shows_what_centrifugo_shows(
    scenario: Scenario, centrifugo_binary: Path
) -> None:
    _compare(scenario.id, *await _both(scenario))


@pytest.mark.compat
@pytest.mark.redis
@pytest.mark.parametrize("scenario", _ON_REDIS, ids=[s.id for s in _ON_REDIS])
async def test_rotary_shows_what_centrifugo_shows_on_redis(
    scenario: Scenario, centrifugo_binary: Path
) -> None:
    """The engine-dependent scenarios again, both servers on the Redis engine (listed as
    ``<id>@redis`` in differences.toml)."""
    _compare(f"{scenario.id}@redis", *await _both(scenario, redis=True))


@pytest.mark.compat
@pytest.mark.parametrize("scenario", _OVER_PROTOBUF, ids=[s.id for s in _OVER_PROTOBUF])
async def test_rotary_shows_what_centrifugo_shows_over_protobuf(
    scenario: Scenario, centrifugo_binary: Path
) -> None:
    """Every scenario again with its connections speaking Protobuf (``cf_protocol=protobuf``),
    replies decoded with the official schema (listed as ``<id>@protobuf``)."""
    _compare(f"{scenario.id}@protobuf", *await _both(scenario, protobuf=True))


def _stream_id(case: tuple[Scenario, str, bool]) -> str:
    scenario, transport, protobuf = case
    return f"{scenario.id}@{transport}" + "+protobuf" * protobuf


@pytest.mark.compat
@pytest.mark.parametrize("case", _OVER_STREAMS, ids=[_stream_id(c) for c in _OVER_STREAMS])
async def test_rotary_shows_what_centrifugo_shows_over_streams(
    case: tuple[Scenario, str, bool], centrifugo_binary: Path
) -> None:
    """The bidirectional scenarios over HTTP-streaming (JSON, Protobuf) and SSE, later commands
    through /emulation (listed as ``<id>@http_stream``, ``<id>@http_stream+protobuf``,
    ``<id>@sse``)."""
    scenario, transport, protobuf = case
    found = await _both(scenario, protobuf=protobuf, transport=transport)
    # What differs on the WebSocket (and over its Protobuf) differs here too: those entries
    # apply; only what the transport itself changes is listed under this id.
    inherited = (scenario.id, f"{scenario.id}@protobuf") if protobuf else (scenario.id,)
    _compare(_stream_id(case), *found, inherited=inherited)


def _compare(
    scenario_id: str, centrifugo: Transcript, rotary: Transcript, inherited: tuple[str, ...] = ()
) -> None:
    """Fail on any difference not listed for `scenario_id` (or one of the `inherited` ids),
    and on an entry of `scenario_id` itself that no longer shows."""
    c_entries, r_entries = normalise(centrifugo), normalise(rotary)
    found = diff(c_entries, r_entries)
    listed = listed_differences()
    left, stale = unexplained(scenario_id, found, listed)
    for other in inherited:
        left, _ = unexplained(other, left, listed)
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
        assert entry.scenario.split("@")[0] in known, entry
        assert _heading_key(entry.doc) in headings, f"{entry.doc!r}: no such heading"
        assert entry.why.strip(), entry
