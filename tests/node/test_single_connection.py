"""``user_personal_single_connection``: a user's newest connection closes the others (3504)."""

from __future__ import annotations

import pytest

from rotary.channels.options import ChannelOptions, ChannelSettings
from rotary.config.model import ClientSettings
from tests.node.conftest import MakeHarness
from tests.node.fakes import Harness, settle

CHANNELS = ChannelSettings(without_namespace=ChannelOptions(presence=True))


async def _h(make_harness: MakeHarness, *, single: bool = True, **extra: object) -> Harness:
    settings = ClientSettings(
        ping_interval=0,
        subscribe_to_personal=True,
        personal_single_connection=single,
        **extra,  # type: ignore[arg-type]
    )
    return await make_harness(settings=settings, channels=CHANNELS)


async def test_second_connection_of_a_user_closes_the_first_with_3504(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    first = await h.connect(user="7")
    second = await h.connect(user="7")
    await settle()
    assert first.closed is not None
    assert (first.closed.code, first.closed.reason) == (3504, "connection limit")
    assert second.closed is None


async def test_every_older_connection_is_closed_and_other_users_stay(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    older = [await h.connect(user="7") for _ in range(2)]
    other = await h.connect(user="8")
    newest = await h.connect(user="7")
    await settle()
    assert [c.closed.code if c.closed else None for c in older] == [3504, 3504]
    assert other.closed is None and newest.closed is None


async def test_without_the_option_a_user_keeps_several_connections(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness, single=False)
    first = await h.connect(user="7")
    second = await h.connect(user="7")
    await settle()
    assert first.closed is None and second.closed is None


async def test_option_needs_personal_channel_subscription(make_harness: MakeHarness) -> None:
    settings = ClientSettings(ping_interval=0, personal_single_connection=True)
    h = await make_harness(settings=settings, channels=CHANNELS)
    first = await h.connect(user="7")
    await h.connect(user="7")
    assert first.closed is None


async def test_anonymous_connections_are_not_limited(make_harness: MakeHarness) -> None:
    h = await _h(make_harness, allow_anonymous_connect_without_token=True)
    first = await h.connect()
    second = await h.connect()
    await settle()
    assert first.closed is None and second.closed is None


async def test_new_connection_is_closed_3004_when_the_others_cannot_be_reached(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = await _h(make_harness)
    first = await h.connect(user="7")

    async def broken(data: bytes) -> None:
        raise ConnectionError("broker away")

    monkeypatch.setattr(h.node.broker, "publish_control", broken)
    second = await h.connect(user="7")
    await settle()
    assert second.closed is not None and second.closed.code == 3004
    assert first.closed is None
