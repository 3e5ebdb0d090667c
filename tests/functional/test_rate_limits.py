"""Opt-in per-connection limits: a client flooding commands gets 111, then 3509, while
another client on the same node is served as usual."""

from __future__ import annotations

from typing import Any

from tests.functional.conftest import default_config, make_token

_LIMITS = {
    "client_command_rate_limit": 5,
    "client_command_rate_burst": 5,
    "client_error_limit": 20,
    "client_error_limit_interval": "60s",
    "presence": True,
    "allow_presence_for_client": True,
}


def _stats(first_id: int, count: int) -> list[dict[str, Any]]:
    return [
        {"id": i, "presence_stats": {"channel": "room"}} for i in range(first_id, first_id + count)
    ]


async def _replies(client: Any, ids: range) -> list[dict[str, Any]]:
    """The replies to commands `ids`, in id order, however the server framed them."""
    found: dict[int, dict[str, Any]] = {}
    while len(found) < len(ids):
        for message in await client.recv():
            if message.get("id") in ids:
                found[message["id"]] = message
    return [found[i] for i in ids]


async def test_flooding_client_gets_111_then_3509_and_a_calm_client_is_unaffected(
    rotary_server: Any, ws_connect: Any
) -> None:
    server = rotary_server({**default_config(), **_LIMITS})
    flooder, calm = await ws_connect(server), await ws_connect(server)
    for client, user in ((flooder, "flood"), (calm, "calm")):
        assert "connect" in await client.request({"id": 1, "connect": {"token": make_token(user)}})
    # connect took one token of the burst of five: four commands run, six are refused.
    await flooder.send(*_stats(2, 10))
    replies = await _replies(flooder, range(2, 12))
    assert ["error" in r for r in replies] == [False] * 4 + [True] * 6
    assert {r["error"]["code"] for r in replies[4:]} == {111}
    assert "presence_stats" in await calm.request(_stats(2, 1)[0])
    # 6 errors spent of 20: the next burst spends the rest and the connection is cut.
    await flooder.send(*_stats(12, 30))
    assert await flooder.closed() == (3509, "too many errors")
    assert "presence_stats" in await calm.request(_stats(3, 1)[0])
