"""The shared poll commands on a node with a manual clock: subscribe of type 4, track and
untrack refusals, the per-connection key limit, and keys dropped once their signature expired.

Signatures are made here with the stdlib (as an app backend would); the backend is the
scripted one of test_shared_poll.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from rotary.auth.track_signature import TrackSecrets
from rotary.channels.options import ChannelOptions, ChannelSettings, Namespace
from rotary.node.poll_commands import expire_tracked
from rotary.node.shared_poll import TRACKERS, SharedPollManager
from tests.node.conftest import MakeHarness
from tests.node.fakes import Conn, Harness
from tests.node.test_shared_poll import ScriptedBackend

SECRET = "poll-secret"
CHANNEL = "poll:room"


def sign(now: int, keys: list[str], *, ttl: int = 60, user: str = "1") -> str:
    keys_hash = hashlib.sha256("\x00".join(keys).encode()).hexdigest()
    payload = f"{now}\x00{now + ttl}\x00{user}\x00{CHANNEL}\x00{keys_hash}".encode()
    return f"{now}:{now + ttl}:{hmac.new(SECRET.encode(), payload, hashlib.sha256).hexdigest()}"


async def _harness(make_harness: MakeHarness, **poll: Any) -> Harness:
    options = ChannelOptions(
        subscription_type="shared_poll",
        allow_subscribe_for_client=True,
        shared_poll_proxy_name="p",
        shared_poll_refresh_interval=3600.0,
        **poll,
    )
    channels = ChannelSettings(namespaces=(Namespace("poll", options),))
    h = await make_harness(channels=channels)
    h.node.shared_poll = SharedPollManager(ScriptedBackend(), make_epoch=lambda: "EPOCHxyz")
    h.node.track_secrets = TrackSecrets(SECRET)
    return h


async def _subscribed(h: Harness) -> Conn:
    conn = await h.connect(user="1")
    reply = await conn.request({"id": 2, "subscribe": {"channel": CHANNEL, "type": 4}})
    assert reply == {"id": 2, "subscribe": {"epoch": "EPOCHxyz", "type": 4}}
    return conn


def _track(cmd_id: int, signature: str, keys: list[str], **extra: Any) -> dict[str, Any]:
    batch = {"signature": signature, "items": [{"key": k} for k in keys]}
    return {"id": cmd_id, "sub_refresh": {"channel": CHANNEL, "type": 1, "track": [batch], **extra}}


def _code(reply: dict[str, Any]) -> int:
    code: int = reply["error"]["code"]
    return code


async def test_track_reply_carries_the_signature_ttl(make_harness: MakeHarness) -> None:
    h = await _harness(make_harness)
    conn = await _subscribed(h)

    reply = await conn.request(_track(3, sign(h.now, ["a", "b"]), ["a", "b"]))

    assert reply == {"id": 3, "sub_refresh": {"expires": True, "ttl": 60}}
    assert set(TRACKERS[conn.session][CHANNEL].keys) == {"a", "b"}


async def test_empty_track_and_untrack_get_107(make_harness: MakeHarness) -> None:
    h = await _harness(make_harness)
    conn = await _subscribed(h)
    empty_track = {"id": 3, "sub_refresh": {"channel": CHANNEL, "type": 1, "track": []}}
    empty_untrack = {"id": 4, "sub_refresh": {"channel": CHANNEL, "type": 2}}

    assert _code(await conn.request(empty_track)) == 107
    assert _code(await conn.request(empty_untrack)) == 107


async def test_more_keys_than_the_connection_limit_get_106(make_harness: MakeHarness) -> None:
    h = await _harness(make_harness, shared_poll_max_keys_per_connection=2)
    conn = await _subscribed(h)
    assert "sub_refresh" in await conn.request(_track(3, sign(h.now, ["a", "b"]), ["a", "b"]))

    assert _code(await conn.request(_track(4, sign(h.now, ["c"]), ["c"]))) == 106
    # untracking one in the same request makes room
    reply = await conn.request(_track(5, sign(h.now, ["c"]), ["c"], untrack=["a"]))
    assert "sub_refresh" in reply
    assert set(TRACKERS[conn.session][CHANNEL].keys) == {"b", "c"}


async def test_other_types_in_a_shared_poll_namespace_get_107_before_other_checks(
    make_harness: MakeHarness,
) -> None:
    h = await _harness(make_harness)
    conn = await h.connect(user="1")

    for cmd_id, sub_type in enumerate((0, 1, 2), start=2):
        subscribe = {"channel": CHANNEL, "type": sub_type, "token": "not-checked"}
        assert _code(await conn.request({"id": cmd_id, "subscribe": subscribe})) == 107


async def test_keys_are_dropped_once_their_signature_expired_beyond_the_extra_delay(
    make_harness: MakeHarness,
) -> None:
    h = await _harness(make_harness, shared_poll_track_expired_extra_delay=10.0)
    conn = await _subscribed(h)
    await conn.request(_track(3, sign(h.now, ["short"], ttl=5), ["short"]))
    await conn.request(_track(4, sign(h.now, ["long"], ttl=600), ["long"]))

    h.clock.advance(15)
    expire_tracked(conn.session)
    assert set(TRACKERS[conn.session][CHANNEL].keys) == {"short", "long"}

    h.clock.advance(1)
    expire_tracked(conn.session)
    assert set(TRACKERS[conn.session][CHANNEL].keys) == {"long"}


async def test_unsubscribe_releases_every_tracked_key(make_harness: MakeHarness) -> None:
    h = await _harness(make_harness)
    conn = await _subscribed(h)
    await conn.request(_track(3, sign(h.now, ["a"]), ["a"]))

    await conn.request({"id": 4, "unsubscribe": {"channel": CHANNEL}})

    assert CHANNEL not in TRACKERS.get(conn.session, {})
    again = await conn.request(_track(5, sign(h.now, ["a"]), ["a"]))
    assert _code(again) == 103
