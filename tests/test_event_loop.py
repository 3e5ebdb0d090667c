"""`rotary.server.event_loop_factory`: which loop the ``event_loop`` setting picks."""

from __future__ import annotations

import asyncio
import builtins
from typing import Any

import pytest
import uvloop

from rotary.config import ConfigError, load_config
from rotary.server import event_loop_factory


def _hide_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "uvloop":
            raise ImportError("no uvloop here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_auto_and_uvloop_pick_uvloop_when_it_is_installed() -> None:
    for choice in ("auto", "uvloop"):
        factory = event_loop_factory(choice)
        assert factory is not None
        loop = factory()
        try:
            assert isinstance(loop, uvloop.Loop)
        finally:
            loop.close()


def test_asyncio_choice_keeps_the_standard_loop() -> None:
    assert event_loop_factory("asyncio") is None


def test_auto_falls_back_to_asyncio_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide_uvloop(monkeypatch)
    assert event_loop_factory("auto") is None


def test_asking_for_uvloop_without_it_raises_import_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _hide_uvloop(monkeypatch)
    with pytest.raises(ImportError):
        event_loop_factory("uvloop")


def test_unknown_event_loop_is_a_config_problem_under_its_key() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, env={}, overrides={"event_loop": "tokio"})
    assert any("event_loop" in p and "auto, uvloop, asyncio" in p for p in caught.value.problems)


def test_event_loop_is_read_from_the_v6_node_section_and_the_environment() -> None:
    v6 = load_config(None, env={}, overrides={"node.event_loop": "uvloop"})
    assert v6.server.event_loop == "uvloop"
    assert load_config(None, env={"ROTARY_EVENT_LOOP": "asyncio"}).server.event_loop == "asyncio"
    assert load_config(None, env={}).server.event_loop == "auto"


def test_uvloop_loop_runs_a_coroutine() -> None:
    factory = event_loop_factory("uvloop")
    with asyncio.Runner(loop_factory=factory) as runner:
        assert runner.run(asyncio.sleep(0, result=7)) == 7
