"""connect, refresh, ping/pong and the life-cycle rules (docs/protocol.md "Pings", docs/protocol.md
"Connection life cycle", docs/tokens.md "Connection tokens")."""

from __future__ import annotations

from rotary.channels.options import ChannelOptions, ChannelSettings, Namespace
from rotary.config.model import ClientSettings
from rotary.node.auth import ConnectCredentials, ServerSubOptions, TokenProblem
from tests.node.conftest import MakeHarness
from tests.node.fakes import Harness, settle

NO_PING = ClientSettings(ping_interval=0)
OPEN = ChannelOptions(allow_subscribe_for_client=True, allow_publish_for_client=True)


async def test_connect_result_has_client_id_version_and_ping_fields(harness: Harness) -> None:
    harness.auth.connect["t"] = ConnectCredentials(user="42")
    conn = await harness.open()
    reply = await conn.request({"id": 1, "connect": {"token": "t"}})
    assert reply == {
        "id": 1,
        "connect": {"client": "client-1", "version": "5.4.9", "ping": 25, "pong": True},
    }


async def test_connect_with_expiring_token_reports_expires_and_ttl(harness: Harness) -> None:
    harness.auth.connect["t"] = ConnectCredentials(user="42", expire_at=harness.now + 3600)
    conn = await harness.open()
    reply = await conn.request({"id": 1, "connect": {"token": "t"}})
    assert reply["connect"]["expires"] is True
    assert reply["connect"]["ttl"] == 3600


async def test_connection_token_valid_for_two_years_expires_within_a_year(
    harness: Harness,
) -> None:
    two_years = 2 * 365 * 86400
    harness.auth.connect["t"] = ConnectCredentials(user="42", expire_at=harness.now + two_years)
    conn = await harness.open()
    reply = await conn.request({"id": 1, "connect": {"token": "t"}})
    assert reply["connect"]["ttl"] == 365 * 86400


async def test_refresh_to_two_years_is_capped_at_one_year(make_harness: MakeHarness) -> None:
    harness = await make_harness(settings=NO_PING)
    conn = await harness.connect(user="1", expire_at=harness.now + 60)
    far = harness.now + 2 * 365 * 86400
    harness.auth.connect["new"] = ConnectCredentials(user="1", expire_at=far)
    reply = await conn.request({"id": 2, "refresh": {"token": "new"}})
    assert reply["refresh"]["ttl"] == 365 * 86400


async def test_connect_without_token_and_anonymous_disabled_closes_3501(harness: Harness) -> None:
    conn = await harness.open()
    await conn.send({"id": 1, "connect": {}})
    assert conn.closed is not None and conn.closed.code == 3501


async def test_anonymous_connect_without_token_is_allowed_when_enabled(
    make_harness: MakeHarness,
) -> None:
    h = await make_harness(settings=ClientSettings(allow_anonymous_connect_without_token=True))
    conn = await h.connect()
    assert conn.session.user == ""


async def test_insecure_mode_connects_without_token(make_harness: MakeHarness) -> None:
    h = await make_harness(settings=ClientSettings(insecure=True))
    conn = await h.connect()
    assert conn.closed is None


async def test_invalid_connection_token_closes_3500(harness: Harness) -> None:
    conn = await harness.open()
    await conn.send({"id": 1, "connect": {"token": "bad"}})
    assert conn.closed is not None and conn.closed.code == 3500


async def test_expired_connection_token_gets_error_109_and_stops_reading(
    harness: Harness,
) -> None:
    harness.auth.connect["old"] = TokenProblem("expired")
    conn = await harness.open()
    reply = await conn.request({"id": 1, "connect": {"token": "old"}})
    assert reply == {"id": 1, "error": {"code": 109, "message": "token expired"}}
    await conn.send({"id": 2, "connect": {"token": "old"}})
    assert conn.messages() == []
    assert conn.closed is None


async def test_unknown_namespace_in_token_channels_gets_error_102(harness: Harness) -> None:
    harness.auth.connect["t"] = TokenProblem("unknown_channel")
    conn = await harness.open()
    reply = await conn.request({"id": 1, "connect": {"token": "t"}})
    assert reply["error"]["code"] == 102


async def test_anonymous_token_is_refused_with_3507_when_disallowed(
    make_harness: MakeHarness,
) -> None:
    h = await make_harness(settings=ClientSettings(disallow_anonymous_connection_tokens=True))
    h.auth.connect["anon"] = ConnectCredentials(user="")
    conn = await h.open()
    await conn.send({"id": 1, "connect": {"token": "anon"}})
    assert conn.closed is not None and conn.closed.code == 3507


async def test_expire_at_in_the_past_gets_error_110(harness: Harness) -> None:
    harness.auth.connect["t"] = ConnectCredentials(user="1", expire_at=harness.now - 5)
    conn = await harness.open()
    reply = await conn.request({"id": 1, "connect": {"token": "t"}})
    assert reply["error"] == {"code": 110, "message": "expired"}


async def test_second_connect_closes_3501(harness: Harness) -> None:
    conn = await harness.connect(user="1")
    await conn.send({"id": 2, "connect": {}})
    assert conn.closed is not None and conn.closed.code == 3501


async def test_command_before_connect_closes_3501(harness: Harness) -> None:
    conn = await harness.open()
    await conn.send({"id": 1, "subscribe": {"channel": "a"}})
    assert conn.closed is not None and conn.closed.code == 3501


async def test_pong_before_any_ping_closes_3501(harness: Harness) -> None:
    conn = await harness.connect(user="1")
    await conn.send(b"{}")
    assert conn.closed is not None and conn.closed.code == 3501


async def test_first_ping_comes_after_half_the_interval_and_a_missing_pong_closes_3012(
    harness: Harness,
) -> None:
    conn = await harness.connect(user="1")
    conn.messages()
    await harness.scheduler.advance(12.4)
    assert conn.messages() == []
    await harness.scheduler.advance(0.2)
    assert conn.messages() == [{}]
    await harness.scheduler.advance(8.1)
    assert conn.closed is not None and conn.closed.code == 3012


async def test_answered_pings_keep_the_connection(harness: Harness) -> None:
    conn = await harness.connect(user="1")
    await harness.scheduler.advance(12.5)
    for _ in range(3):
        await conn.send(b"{}")
        await harness.scheduler.advance(25)
    assert conn.closed is None


async def test_legacy_ping_command_closes_3501(harness: Harness) -> None:
    conn = await harness.connect(user="1")
    await conn.send({"id": 2, "ping": {}})
    assert conn.closed is not None and conn.closed.code == 3501


async def test_send_command_closes_3508(harness: Harness) -> None:
    conn = await harness.connect(user="1")
    await conn.send({"send": {"data": {"a": 1}}})
    assert conn.closed is not None and conn.closed.code == 3508


async def test_no_connect_within_stale_delay_closes_3502(harness: Harness) -> None:
    conn = await harness.open()
    await harness.scheduler.advance(10.5)
    assert conn.closed is not None and conn.closed.code == 3502


async def test_more_token_channels_than_the_limit_close_3505(make_harness: MakeHarness) -> None:
    h = await make_harness(settings=ClientSettings(channel_limit=2))
    h.auth.connect["t"] = ConnectCredentials(user="1", channels=("a", "b", "c"))
    conn = await h.open()
    await conn.send({"id": 1, "connect": {"token": "t"}})
    assert conn.closed is not None and conn.closed.code == 3505


async def test_user_connection_limit_closes_3504(make_harness: MakeHarness) -> None:
    h = await make_harness(settings=ClientSettings(user_connection_limit=1))
    await h.connect(token="t", user="1")
    conn = await h.open()
    await conn.send({"id": 1, "connect": {"token": "t"}})
    assert conn.closed is not None and conn.closed.code == 3504


async def test_token_channels_become_server_side_subscriptions(harness: Harness) -> None:
    harness.auth.connect["t"] = ConnectCredentials(
        user="1", subs={"news": ServerSubOptions(data=b'{"w":1}')}
    )
    conn = await harness.open()
    reply = await conn.request({"id": 1, "connect": {"token": "t"}})
    assert reply["connect"]["subs"] == {"news": {"data": {"w": 1}}}
    await harness.node.api_publish("news", b'{"x":1}')
    await settle()
    assert conn.messages() == [{"push": {"channel": "news", "pub": {"data": {"x": 1}}}}]


async def test_personal_channel_is_subscribed_at_connect(make_harness: MakeHarness) -> None:
    h = await make_harness(settings=ClientSettings(subscribe_to_personal=True))
    h.auth.connect["t"] = ConnectCredentials(user="42")
    conn = await h.open()
    reply = await conn.request({"id": 1, "connect": {"token": "t"}})
    assert list(reply["connect"]["subs"]) == ["#42"]


async def test_connect_request_subs_are_added_when_permitted(make_harness: MakeHarness) -> None:
    h = await make_harness(channels=ChannelSettings(without_namespace=OPEN))
    h.auth.connect["t"] = ConnectCredentials(user="1")
    conn = await h.open()
    subs = {"a": {"recover": True}, "$p": {}}
    reply = await conn.request({"id": 1, "connect": {"token": "t", "subs": subs}})
    assert list(reply["connect"]["subs"]) == ["a"]


async def test_connect_request_subs_with_unknown_namespace_close_3501(harness: Harness) -> None:
    harness.auth.connect["t"] = ConnectCredentials(user="1")
    conn = await harness.open()
    await conn.send({"id": 1, "connect": {"token": "t", "subs": {"nope:x": {}}}})
    assert conn.closed is not None and conn.closed.code == 3501


async def test_unrefreshed_connection_closes_3005_after_the_grace_delay(
    make_harness: MakeHarness,
) -> None:
    harness = await make_harness(settings=NO_PING)
    conn = await harness.connect(user="1", expire_at=harness.now + 60)
    await harness.scheduler.advance(84)
    assert conn.closed is None
    await harness.scheduler.advance(2)
    assert conn.closed is not None and conn.closed.code == 3005


async def test_refresh_with_valid_token_extends_the_connection(make_harness: MakeHarness) -> None:
    harness = await make_harness(settings=NO_PING)
    conn = await harness.connect(user="1", expire_at=harness.now + 60)
    harness.auth.connect["new"] = ConnectCredentials(user="1", expire_at=harness.now + 600)
    reply = await conn.request({"id": 2, "refresh": {"token": "new"}})
    assert reply["refresh"]["expires"] is True
    assert reply["refresh"]["ttl"] == 600
    await harness.scheduler.advance(200)
    assert conn.closed is None


async def test_refresh_without_expiry_cancels_the_expiry_quirk_fixed(
    make_harness: MakeHarness,
) -> None:
    harness = await make_harness(settings=NO_PING)
    conn = await harness.connect(user="1", expire_at=harness.now + 60)
    harness.auth.connect["forever"] = ConnectCredentials(user="1")
    reply = await conn.request({"id": 2, "refresh": {"token": "forever"}})
    assert reply == {"id": 2, "refresh": {"client": "client-1", "version": "5.4.9"}}
    await harness.scheduler.advance(200)
    assert conn.closed is None


async def test_refresh_for_another_user_closes_3500(harness: Harness) -> None:
    conn = await harness.connect(user="1", expire_at=harness.now + 60)
    harness.auth.connect["other"] = ConnectCredentials(user="2", expire_at=harness.now + 600)
    await conn.send({"id": 2, "refresh": {"token": "other"}})
    assert conn.closed is not None and conn.closed.code == 3500


async def test_refresh_with_expired_token_closes_3005(harness: Harness) -> None:
    conn = await harness.connect(user="1", expire_at=harness.now + 60)
    harness.auth.connect["old"] = TokenProblem("expired")
    await conn.send({"id": 2, "refresh": {"token": "old"}})
    assert conn.closed is not None and conn.closed.code == 3005


async def test_refresh_with_empty_token_closes_3501(harness: Harness) -> None:
    conn = await harness.connect(user="1")
    await conn.send({"id": 2, "refresh": {}})
    assert conn.closed is not None and conn.closed.code == 3501


async def test_refresh_changing_token_channels_closes_3010(harness: Harness) -> None:
    conn = await harness.connect(user="1", channels=("a",))
    harness.auth.connect["more"] = ConnectCredentials(user="1", channels=("a", "b"))
    await conn.send({"id": 2, "refresh": {"token": "more"}})
    assert conn.closed is not None and conn.closed.code == 3010


async def test_namespaced_personal_channel_needs_the_namespace(make_harness: MakeHarness) -> None:
    settings = ClientSettings(subscribe_to_personal=True, personal_channel_namespace="user")
    channels = ChannelSettings(namespaces=(Namespace("user"),))
    h = await make_harness(settings=settings, channels=channels)
    h.auth.connect["t"] = ConnectCredentials(user="7")
    conn = await h.open()
    reply = await conn.request({"id": 1, "connect": {"token": "t"}})
    assert list(reply["connect"]["subs"]) == ["user:#7"]


async def test_a_users_sessions_are_counted_and_found_as_they_come_and_go(
    harness: Harness,
) -> None:
    node = harness.node
    first = await harness.connect(token="a", user="7")
    other = await harness.connect(token="b", user="8")
    assert node.user_connections("7") == 1
    second = await harness.connect(token="a")
    third = await harness.connect(token="a")
    assert node.user_connections("7") == 3
    ids = {c.session.id for c in (first, second, third)}
    assert {s.id for s in node.sessions("7")} == ids
    assert [s.id for s in node.sessions("7", second.session.id)] == [second.session.id]
    for gone in (second, first):
        await gone.close()
        ids.discard(gone.session.id)
        assert {s.id for s in node.sessions("7")} == ids
        assert node.user_connections("7") == len(ids)
    await third.close()
    assert node.user_connections("7") == 0 and node.sessions("7") == []
    assert [s.id for s in node.sessions("8")] == [other.session.id]
    assert node.info()["num_users"] == 1
