"""Map subscriptions: state and stream pages, live changes, and fossil delta per key.

Data are JSON strings, whose text is the same whether a server keeps the API's bytes or
re-encodes them, so the delta data strings compare as they are.
"""

from __future__ import annotations

from typing import Any

from tests.compat.dsl import Api, Cmd, Push, Scenario, Var
from tests.compat.scenarios._helpers import connect, sub

__all__ = ["MAPS"]

#: Long, similar values: the deltas between them are shorter than the data.
_V1, _V2, _V3 = ("x" * 80 + tail for tail in ("one", "two", "three"))


def _map_publish(channel: str, key: str, data: Any, **extra: Any) -> Api:
    return Api("map_publish", {"channel": channel, "key": key, "data": data, **extra})


MAPS = [
    Scenario(
        "map_fossil_delta_goes_per_key_and_only_when_asked",
        "maps",
        (
            *connect("a"),
            _map_publish("mapd:1", "a", _V1),
            sub("a", "mapd:1", type=1, phase=2, delta="fossil"),
            _map_publish("mapd:1", "a", _V2, delta=True),
            Push("a"),
            _map_publish("mapd:1", "b", _V1, delta=True),
            Push("a"),
            _map_publish("mapd:1", "a", _V3),
            Push("a"),
            Api("map_remove", {"channel": "mapd:1", "key": "b"}),
            Push("a"),
        ),
        quick=True,
    ),
    Scenario(
        "map_fossil_delta_recovery_starts_each_key_whole",
        "maps",
        (
            *connect("a"),
            _map_publish("mapd:2", "a", _V1, delta=True),
            Cmd(
                "a",
                {"subscribe": {"channel": "mapd:2", "type": 1, "phase": 2, "delta": "fossil"}},
                save={"epoch": "subscribe/epoch", "offset": "subscribe/offset"},
            ),
            Cmd("a", {"unsubscribe": {"channel": "mapd:2"}}),
            _map_publish("mapd:2", "a", _V2, delta=True),
            _map_publish("mapd:2", "b", _V1, delta=True),
            _map_publish("mapd:2", "a", _V3, delta=True),
            sub(
                "a",
                "mapd:2",
                type=1,
                phase=1,
                recover=True,
                delta="fossil",
                epoch=Var("epoch"),
                offset=Var("offset"),
            ),
            _map_publish("mapd:2", "b", _V2, delta=True),
            Push("a"),
        ),
    ),
    Scenario(
        "map_subscribe_walks_state_pages_then_goes_live",
        "maps",
        (
            *connect("a"),
            _map_publish("mapd:3", "a", "first"),
            _map_publish("mapd:3", "b", "second"),
            _map_publish("mapd:3", "c", "third"),
            Cmd(
                "a",
                {"subscribe": {"channel": "mapd:3", "type": 1, "phase": 2, "limit": 2}},
                save={
                    "epoch": "subscribe/epoch",
                    "offset": "subscribe/offset",
                    "cursor": "subscribe/cursor",
                },
            ),
            _map_publish("mapd:3", "a", "changed"),
            sub(
                "a",
                "mapd:3",
                type=1,
                phase=2,
                limit=2,
                cursor=Var("cursor"),
                epoch=Var("epoch"),
                offset=Var("offset"),
            ),
            Cmd("a", {"publish": {"channel": "mapd:3", "type": 1, "key": "d", "data": "mine"}}),
            Push("a"),
            Api("map_remove", {"channel": "mapd:3", "key": "d"}),
            Push("a"),
        ),
    ),
    Scenario(
        "map_publish_with_an_old_version_is_suppressed_and_not_pushed",
        "maps",
        (
            *connect("a"),
            # Offset 1 goes to a key removed again: Centrifugo adds the epoch to the entry
            # at offset 1 (docs/differences.md "Publications do not carry the epoch").
            _map_publish("mapd:4", "gone", "x"),
            Api("map_remove", {"channel": "mapd:4", "key": "gone"}),
            _map_publish("mapd:4", "k", "v5", version=5, version_epoch="x"),
            sub("a", "mapd:4", type=1, phase=2),
            _map_publish("mapd:4", "k", "v5 again", version=5, version_epoch="x"),
            _map_publish("mapd:4", "k", "v4", version=4),
            _map_publish("mapd:4", "k", "v1 of y", version=1, version_epoch="y"),
            Push("a"),
            _map_publish("mapd:4", "k", "plain"),
            Push("a"),
            _map_publish("mapd:4", "k", "v1 again", version=1, version_epoch="y"),
            _map_publish("mapd:4", "k", "scored", score=3, stream_data="ignored"),
            Push("a"),
            Api("map_read_state", {"channel": "mapd:4", "limit": -1, "asc": True}),
        ),
        quick=True,
    ),
]
