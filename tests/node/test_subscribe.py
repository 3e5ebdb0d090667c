"""subscribe, unsubscribe, sub_refresh, expiry and overrides (docs/protocol.md "Commands",
docs/tokens.md "Subscription tokens", docs/protocol.md "History and recovery")."""

from __future__ import annotations

from dataclasses import dataclass

from rotary.channels.options import ChannelOptions, ChannelSettings, Namespace
from rotary.config.model import ClientSettings
from rotary.engines.base import HistoryFilter, Publication, StreamPosition
from rotary.node.auth import ConnectCredentials, SubscribeCredentials, TokenProblem
from tests.node.conftest import MakeHarness
from tests.node.fakes import Conn, Harness, settle

OPEN = ChannelOptions(allow_subscribe_for_client=True)
HISTORY = ChannelOptions(
    allow_subscribe_for_client=True, history_size=10, history_ttl=300.0, force_recovery=True
)
PRESENCE = ChannelOptions(
    allow_subscribe_for_client=True,
    presence=True,
    join_leave=True,
    allow_presence_for_subscriber=True,
)
CHANNELS = ChannelSettings(
    without_namespace=OPEN,
    namespaces=(
        Namespace("hh", HISTORY),
        Namespace("pp", PRESENCE),
        Namespace("closed"),
        Namespace("ul", ChannelOptions(allow_user_limited_channels=True)),
        Namespace(
            "anon",
            ChannelOptions(allow_subscribe_for_client=True, allow_subscribe_for_anonymous=True),
        ),
        Namespace("ascii", ChannelOptions(allow_subscribe_for_client=True)),
    ),
)
EXPIRED_PUSH = {"code": 2501, "reason": "subscription expired"}
NO_PING = ClientSettings(ping_interval=0, presence_update_interval=1.0, expired_sub_close_delay=2.0)


@dataclass(frozen=True)
class Ov:
    presence: bool | None = None
    join_leave: bool | None = None
    force_push_join_leave: bool | None = None
    force_recovery: bool | None = None
    force_positioning: bool | None = None


async def _h(make_harness: MakeHarness, **settings: object) -> Harness:
    return await make_harness(
        settings=ClientSettings(**{"ping_interval": 0, **settings}),  # type: ignore[arg-type]
        channels=CHANNELS,
    )


async def _sub(conn: Conn, channel: str, cmd_id: int = 2, **extra: object) -> dict[str, object]:
    return await conn.request({"id": cmd_id, "subscribe": {"channel": channel, **extra}})


def _code(reply: dict[str, object]) -> int:
    error = reply["error"]
    assert isinstance(error, dict)
    return int(error["code"])


async def test_plain_subscribe_replies_with_an_empty_result(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    assert await _sub(conn, "news") == {"id": 2, "subscribe": {}}


async def test_empty_channel_closes_3501(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    await conn.send({"id": 2, "subscribe": {"channel": ""}})
    assert conn.closed is not None and conn.closed.code == 3501


async def test_unknown_delta_closes_3501(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    await conn.send({"id": 2, "subscribe": {"channel": "a", "delta": "zip"}})
    assert conn.closed is not None and conn.closed.code == 3501


async def test_too_long_channel_gets_107(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    assert _code(await _sub(conn, "x" * 256)) == 107


async def test_subscribing_twice_gets_105(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    await _sub(conn, "a")
    assert _code(await _sub(conn, "a", 3)) == 105


async def test_channel_over_the_limit_gets_106(make_harness: MakeHarness) -> None:
    h = await _h(make_harness, channel_limit=2)
    conn = await h.connect(user="1")
    await _sub(conn, "a", 2)
    await _sub(conn, "b", 3)
    assert _code(await _sub(conn, "c", 4)) == 106


async def test_unknown_namespace_gets_102(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    assert _code(await _sub(conn, "nope:x")) == 102


async def test_non_ascii_name_gets_107(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    assert _code(await _sub(conn, "ascii:café")) == 107


async def test_private_channel_without_token_gets_103(make_harness: MakeHarness) -> None:
    h = await _h(make_harness, insecure=True)
    conn = await h.connect(user="1")
    assert _code(await _sub(conn, "$secret")) == 103


async def test_namespace_without_permission_gets_103(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    assert _code(await _sub(conn, "closed:x")) == 103


async def test_insecure_mode_allows_any_public_channel(make_harness: MakeHarness) -> None:
    h = await _h(make_harness, insecure=True)
    conn = await h.connect(user="1")
    assert "subscribe" in await _sub(conn, "closed:x")


async def test_anonymous_needs_allow_subscribe_for_anonymous(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="")
    assert _code(await _sub(conn, "news", 2)) == 103
    assert "subscribe" in await _sub(conn, "anon:x", 3)


async def test_user_limited_channel_admits_only_listed_users(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    listed = await h.connect(user="42")
    other = await h.connect(user="43")
    assert "subscribe" in await _sub(listed, "ul:user#42")
    assert _code(await _sub(other, "ul:user#42")) == 103


async def test_subscription_token_outcomes_map_to_codes(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    h.auth.subscribe.update(
        expired=TokenProblem("expired"),
        invalid=TokenProblem("invalid"),
        unknown=TokenProblem("unknown_channel"),
    )
    conn = await h.connect(user="1")
    assert _code(await _sub(conn, "$a", 2, token="expired")) == 109
    assert _code(await _sub(conn, "$a", 3, token="invalid")) == 103
    assert _code(await _sub(conn, "$a", 4, token="unknown")) == 102


async def test_token_for_another_channel_closes_3500(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    h.auth.subscribe["t"] = SubscribeCredentials(user="1", channel="$other")
    conn = await h.connect(user="1")
    await conn.send({"id": 2, "subscribe": {"channel": "$a", "token": "t"}})
    assert conn.closed is not None and conn.closed.code == 3500


async def test_token_with_expire_at_in_the_past_gets_110(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    h.auth.subscribe["t"] = SubscribeCredentials("1", "$a", expire_at=h.now - 1)
    conn = await h.connect(user="1")
    assert _code(await _sub(conn, "$a", token="t")) == 110


async def test_token_expiry_and_data_appear_in_the_result(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    h.auth.subscribe["t"] = SubscribeCredentials("1", "$a", expire_at=h.now + 60, data=b'{"d":1}')
    conn = await h.connect(user="1")
    reply = await _sub(conn, "$a", token="t")
    assert reply["subscribe"] == {"expires": True, "ttl": 60, "data": {"d": 1}}


async def test_token_info_is_the_chan_info_in_presence(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    h.auth.subscribe["t"] = SubscribeCredentials("1", "pp:a", info=b'{"role":"x"}')
    conn = await h.connect(user="1")
    await _sub(conn, "pp:a", token="t")
    presence = await conn.request({"id": 3, "presence": {"channel": "pp:a"}})
    assert presence["presence"]["presence"]["client-1"] == {
        "user": "1",
        "client": "client-1",
        "chan_info": {"role": "x"},
    }


async def test_override_presence_false_keeps_the_subscriber_out_of_presence(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    h.auth.subscribe["t"] = SubscribeCredentials("1", "pp:a", override=Ov(presence=False))
    conn = await h.connect(user="1")
    await _sub(conn, "pp:a", token="t")
    stats = await conn.request({"id": 3, "presence_stats": {"channel": "pp:a"}})
    assert stats["presence_stats"] == {"num_clients": 0, "num_users": 0}


async def test_override_force_push_join_leave_delivers_joins(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    h.auth.subscribe["t"] = SubscribeCredentials(
        "1", "pp:a", override=Ov(force_push_join_leave=True)
    )
    watcher = await h.connect(user="1")
    await _sub(watcher, "pp:a", token="t")
    joiner = await h.connect(user="2")
    await _sub(joiner, "pp:a")
    await settle()
    joins = [m for m in watcher.messages() if "join" in m.get("push", {})]
    assert [j["push"]["join"]["info"]["user"] for j in joins] == ["2"]


async def test_override_join_leave_false_emits_no_join(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    h.auth.subscribe["t"] = SubscribeCredentials("2", "pp:a", override=Ov(join_leave=False))
    watcher = await h.connect(user="1")
    await _sub(watcher, "pp:a", join_leave=True)
    watcher.messages()
    joiner = await h.connect(user="2")
    await _sub(joiner, "pp:a", token="t")
    await settle()
    assert watcher.messages() == []


async def test_join_leave_request_delivers_joins_and_leaves(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    watcher = await h.connect(user="1")
    await _sub(watcher, "pp:a", join_leave=True)
    joiner = await h.connect(user="2")
    await _sub(joiner, "pp:a")
    await joiner.request({"id": 3, "unsubscribe": {"channel": "pp:a"}})
    await settle()
    kinds = [k for m in watcher.messages() for k in m.get("push", {}) if k in ("join", "leave")]
    assert kinds == ["join", "leave"]


async def test_override_force_positioning_positions_the_subscription(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    h.auth.subscribe["t"] = SubscribeCredentials("1", "$a", override=Ov(force_positioning=True))
    conn = await h.connect(user="1")
    result = (await _sub(conn, "$a", token="t"))["subscribe"]
    assert result["positioned"] is True and "recoverable" not in result


async def test_positioned_subscribe_to_an_empty_stream_leaves_the_zero_offset_out(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    h.auth.subscribe["t"] = SubscribeCredentials("1", "$a", override=Ov(force_positioning=True))
    conn = await h.connect(user="1")
    result = (await _sub(conn, "$a", token="t"))["subscribe"]
    assert result["positioned"] is True and result["epoch"]
    assert "offset" not in result


async def test_override_force_recovery_makes_it_recoverable(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    h.auth.subscribe["t"] = SubscribeCredentials("1", "$a", override=Ov(force_recovery=True))
    conn = await h.connect(user="1")
    result = (await _sub(conn, "$a", token="t"))["subscribe"]
    assert result["recoverable"] is True and result["positioned"] is True


async def test_recovery_returns_missed_publications(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    for i in range(3):
        await h.node.api_publish("hh:a", b'{"n":%d}' % i)
    epoch = (await h.node.broker.history("hh:a", HistoryFilter())).position.epoch
    conn = await h.connect(user="1")
    reply = await _sub(conn, "hh:a", recover=True, offset=1, epoch=epoch)
    result = reply["subscribe"]
    assert result["recovered"] is True and result["was_recovering"] is True
    assert result["offset"] == 1
    assert [p["offset"] for p in result["publications"]] == [2, 3]


async def test_recovery_with_another_epoch_is_not_recovered(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    await h.node.api_publish("hh:a", b"{}")
    conn = await h.connect(user="1")
    result = (await _sub(conn, "hh:a", recover=True, offset=1, epoch="zzzz"))["subscribe"]
    assert "recovered" not in result and result["offset"] == 1 and "publications" not in result


async def test_subscribe_reply_comes_before_publications(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    await _sub(conn, "hh:a")
    await h.node.api_publish("hh:a", b'{"x":1}')
    await settle()
    assert conn.messages()[0]["push"]["pub"]["offset"] == 1


async def test_position_gap_unsubscribes_with_2500(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    await _sub(conn, "hh:a")
    h.node.handle_publication("hh:a", Publication(b"{}", offset=5), StreamPosition(5, "x"))
    await settle()
    assert conn.messages() == [
        {"push": {"channel": "hh:a", "unsubscribe": {"code": 2500, "reason": "insufficient state"}}}
    ]


async def test_position_gap_in_server_side_subscription_closes_3010(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1", channels=("hh:a",))
    h.node.handle_publication("hh:a", Publication(b"{}", offset=5), StreamPosition(5, "x"))
    await settle()
    assert conn.closed is not None and conn.closed.code == 3010


async def test_broker_resubscription_makes_positioned_subscribers_recover(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    await _sub(conn, "hh:a")
    await _sub(conn, "news", 3)
    h.node.handle_resubscribed(0)
    await settle()
    assert [m["push"]["channel"] for m in conn.messages()] == ["hh:a"]


async def test_expired_subscription_ends_with_2501(make_harness: MakeHarness) -> None:
    h = await make_harness(settings=NO_PING, channels=CHANNELS)
    h.auth.subscribe["t"] = SubscribeCredentials("1", "$a", expire_at=h.now + 5)
    conn = await h.connect(user="1")
    await _sub(conn, "$a", token="t")
    await h.scheduler.advance(6)
    assert conn.messages() == []
    await h.scheduler.advance(2)
    assert conn.messages() == [
        {"push": {"channel": "$a", "unsubscribe": {"code": 2501, "reason": "subscription expired"}}}
    ]


async def test_expired_server_side_subscription_closes_3006(make_harness: MakeHarness) -> None:
    h = await make_harness(settings=NO_PING, channels=CHANNELS)
    conn = await h.connect(user="1")
    await h.node.api_subscribe("1", "news", expire_at=h.now + 2)
    await settle()
    await h.scheduler.advance(6)
    assert conn.closed is not None and conn.closed.code == 3006


async def test_sub_refresh_extends_the_subscription(make_harness: MakeHarness) -> None:
    h = await make_harness(settings=NO_PING, channels=CHANNELS)
    h.auth.subscribe["t"] = SubscribeCredentials("1", "$a", expire_at=h.now + 5)
    h.auth.subscribe["t2"] = SubscribeCredentials("1", "$a", expire_at=h.now + 100)
    conn = await h.connect(user="1")
    await _sub(conn, "$a", token="t")
    reply = await conn.request({"id": 3, "sub_refresh": {"channel": "$a", "token": "t2"}})
    assert reply["sub_refresh"] == {"expires": True, "ttl": 100}
    await h.scheduler.advance(20)
    assert conn.messages() == []


async def test_sub_refresh_to_two_years_is_capped_at_one_year(make_harness: MakeHarness) -> None:
    h = await make_harness(settings=NO_PING, channels=CHANNELS)
    h.auth.subscribe["t"] = SubscribeCredentials("1", "$a", expire_at=h.now + 5)
    far = h.now + 2 * 365 * 86400
    h.auth.subscribe["t2"] = SubscribeCredentials("1", "$a", expire_at=far)
    conn = await h.connect(user="1")
    await _sub(conn, "$a", token="t")
    reply = await conn.request({"id": 3, "sub_refresh": {"channel": "$a", "token": "t2"}})
    assert reply["sub_refresh"] == {"expires": True, "ttl": 365 * 86400}


async def test_sub_refresh_with_expired_token_replies_and_unsubscribes_2501(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    h.auth.subscribe["t"] = SubscribeCredentials("1", "$a", expire_at=h.now + 5)
    h.auth.subscribe["old"] = TokenProblem("expired")
    conn = await h.connect(user="1")
    await _sub(conn, "$a", token="t")
    await conn.send({"id": 3, "sub_refresh": {"channel": "$a", "token": "old"}})
    assert conn.messages() == [
        {"id": 3, "sub_refresh": {}},
        {
            "push": {
                "channel": "$a",
                "unsubscribe": {"code": 2501, "reason": "subscription expired"},
            }
        },
    ]
    assert "$a" not in conn.session.subs


async def test_sub_refresh_with_invalid_token_closes_3500(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    h.auth.subscribe["t"] = SubscribeCredentials("1", "$a")
    conn = await h.connect(user="1")
    await _sub(conn, "$a", token="t")
    await conn.send({"id": 3, "sub_refresh": {"channel": "$a", "token": "bad"}})
    assert conn.closed is not None and conn.closed.code == 3500


async def test_sub_refresh_errors_for_unsubscribed_or_tokenless(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    assert (
        _code(await conn.request({"id": 2, "sub_refresh": {"channel": "x", "token": "t"}})) == 103
    )
    await _sub(conn, "news", 3)
    assert _code(await conn.request({"id": 4, "sub_refresh": {"channel": "news"}})) == 107


async def test_unsubscribe_of_an_unknown_channel_succeeds(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    assert await conn.request({"id": 2, "unsubscribe": {"channel": "x"}}) == {
        "id": 2,
        "unsubscribe": {},
    }


async def test_unsubscribed_client_gets_no_more_publications(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    await _sub(conn, "news")
    await conn.request({"id": 3, "unsubscribe": {"channel": "news"}})
    await h.node.api_publish("news", b"{}")
    await settle()
    assert conn.messages() == []
    assert h.node.info()["num_channels"] == 0


async def test_token_subscription_override_uses_presence_for_its_connection_token_subs(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    from rotary.node.auth import ServerSubOptions

    h.auth.connect["t"] = ConnectCredentials(
        user="1", subs={"pp:a": ServerSubOptions(info=b'{"i":1}', override=Ov(presence=False))}
    )
    await h.connect(token="t")
    assert (await h.node.api_presence_stats("pp:a")).num_clients == 0


async def test_binary_token_info_closes_3506_for_a_json_client(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    h.auth.subscribe["t"] = SubscribeCredentials("1", "$a", info=b"\x00\x01binary")
    conn = await h.connect(user="1")
    await conn.send({"id": 2, "subscribe": {"channel": "$a", "token": "t"}})
    assert conn.closed is not None and conn.closed.code == 3506


async def test_publications_carry_the_publishers_chan_info(make_harness: MakeHarness) -> None:
    channels = ChannelSettings(
        without_namespace=ChannelOptions(
            allow_subscribe_for_client=True, allow_publish_for_subscriber=True
        )
    )
    h = await make_harness(settings=NO_PING, channels=channels)
    h.auth.subscribe["t"] = SubscribeCredentials("1", "$a", info=b'{"seat":3}')
    conn = await h.connect(user="1")
    await _sub(conn, "$a", token="t")
    await conn.send({"id": 3, "publish": {"channel": "$a", "data": {}}})
    pub = conn.messages()[0]["push"]["pub"]
    assert pub["info"] == {"user": "1", "client": "client-1", "chan_info": {"seat": 3}}


async def test_publication_arriving_while_subscribing_follows_the_reply(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    await h.node.api_publish("hh:a", b'{"n":1}')
    real_history = h.node.broker.history
    injected = []

    async def history_with_a_publication_in_flight(*args: object, **kwargs: object) -> object:
        result = await real_history(*args, **kwargs)  # type: ignore[arg-type]
        if not injected:
            injected.append(await h.node.api_publish("hh:a", b'{"n":2}'))
        return result

    h.node.broker.history = history_with_a_publication_in_flight  # type: ignore[method-assign]
    conn = await h.connect(user="1")
    await conn.send({"id": 2, "subscribe": {"channel": "hh:a"}})
    messages = conn.messages()
    assert messages[0]["id"] == 2 and messages[0]["subscribe"]["offset"] == 1
    assert messages[1] == {"push": {"channel": "hh:a", "pub": {"data": {"n": 2}, "offset": 2}}}


async def test_resubscription_of_one_shard_spares_other_shards(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    h.node.broker.shard_of = lambda channel: 0 if channel == "hh:a" else 1  # type: ignore[attr-defined]
    conn = await h.connect(user="1")
    await _sub(conn, "hh:a", 2)
    await _sub(conn, "hh:b", 3)
    h.node.handle_resubscribed(1)
    await settle()
    assert [m["push"]["channel"] for m in conn.messages()] == ["hh:b"]


async def test_shared_poll_type_in_a_stream_namespace_gets_108(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    assert _code(await _sub(conn, "news", type=4)) == 108
    assert await _sub(conn, "news", 3) == {"id": 3, "subscribe": {}}


async def test_map_types_get_103_in_a_stream_namespace(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    codes = [_code(await _sub(conn, "news", 2 + t, type=t)) for t in (1, 2, 3)]
    assert codes == [103, 103, 103]
    assert "news" not in h.node.hub.channels()


async def test_map_type_of_an_unknown_namespace_still_gets_102(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    assert _code(await _sub(conn, "nope:x", type=1)) == 102


async def test_unrecoverable_position_with_reject_flag_gets_112(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    await h.node.api_publish("hh:a", b"{}")
    conn = await h.connect(user="1")
    reply = await _sub(conn, "hh:a", recover=True, offset=1, epoch="zzzz", flag=3)
    assert reply["error"] == {"code": 112, "message": "unrecoverable position"}
    assert "hh:a" not in h.node.hub.channels()
    assert "recovered" not in (await _sub(conn, "hh:a", 3, recover=True, epoch="z"))["subscribe"]


async def test_recoverable_position_with_reject_flag_recovers(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    await h.node.api_publish("hh:a", b"{}")
    epoch = (await h.node.broker.history("hh:a", HistoryFilter())).position.epoch
    conn = await h.connect(user="1")
    result = (await _sub(conn, "hh:a", recover=True, offset=0, epoch=epoch, flag=2))["subscribe"]
    assert result["recovered"] is True and len(result["publications"]) == 1


async def test_reject_flag_without_recover_subscribes(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    result = (await _sub(conn, "hh:a", flag=2))["subscribe"]
    assert result["positioned"] is True and "was_recovering" not in result
