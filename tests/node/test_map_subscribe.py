"""The map subscribe flow on a manual clock: stream pages, going live, timeouts, TTL removals."""

from __future__ import annotations

from dataclasses import replace

from rotary.channels.options import ChannelOptions, ChannelSettings, Namespace
from rotary.config.model import ClientSettings
from rotary.engines.maps import MapPublishOptions
from tests.node.conftest import MakeHarness
from tests.node.fakes import Conn, Harness, settle

MAP = ChannelOptions(
    allow_subscribe_for_client=True,
    subscription_type="map",
    map_mode="recoverable",
    map_key_ttl=30.0,
    map_min_page_size=1,
    map_default_page_size=2,
    map_subscribe_catch_up_timeout=5.0,
)
WRITABLE = replace(
    MAP,
    map_allow_publish_for_subscriber=True,
    map_allow_remove_for_subscriber=True,
    map_allow_publish_for_client=False,
)
OWN_KEY = replace(MAP, map_allow_publish_for_client=True, map_client_key="user_id")
CHANNELS = ChannelSettings(
    namespaces=(Namespace("mm", MAP), Namespace("ww", WRITABLE), Namespace("own", OWN_KEY))
)


async def _h(make_harness: MakeHarness) -> Harness:
    return await make_harness(settings=ClientSettings(ping_interval=0), channels=CHANNELS)


async def _write(h: Harness, channel: str, key: str, value: int) -> int:
    result = await h.node.maps.publish(channel, key, str(value).encode(), MapPublishOptions())
    return result.position.offset


async def _sub(conn: Conn, cmd_id: int, phase: int, **fields: object) -> dict[str, object]:
    body = {"channel": "mm:a", "type": 1, "phase": phase, **fields}
    return await conn.request({"id": cmd_id, "subscribe": body})


async def test_client_far_behind_pages_through_the_stream_before_going_live(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    for value in range(6):
        await _write(h, "mm:a", "k", value)
    epoch = (await h.node.maps.read_state("mm:a")).position.epoch
    conn = await h.connect(user="1")

    first = await _sub(conn, 2, 1, offset=0, epoch=epoch, recover=True, limit=2)
    page = first["subscribe"]
    assert isinstance(page, dict) and page["phase"] == 1 and page["offset"] == 2
    live = (await _sub(conn, 3, 1, offset=2, epoch=epoch, limit=2))["subscribe"]

    assert isinstance(live, dict) and "phase" not in live
    assert [p["offset"] for p in live["publications"]] == [3, 4, 5, 6]  # type: ignore[index]


async def test_a_page_after_the_catch_up_timeout_closes_3008(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    for key in "abc":
        await _write(h, "mm:a", key, 1)
    conn = await h.connect(user="1")
    first = (await _sub(conn, 2, 2, limit=1))["subscribe"]
    assert isinstance(first, dict) and first["cursor"] == "a"

    await h.scheduler.advance(6)
    await conn.send(
        {"id": 3, "subscribe": {"channel": "mm:a", "type": 1, "phase": 2, "cursor": "a"}}
    )

    assert conn.closed is not None and conn.closed.code == 3008


async def test_unsubscribe_abandons_a_flow_in_progress(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    for key in "abc":
        await _write(h, "mm:a", key, 1)
    conn = await h.connect(user="1")
    await _sub(conn, 2, 2, limit=1)
    await conn.request({"id": 3, "unsubscribe": {"channel": "mm:a"}})

    reply = await _sub(conn, 4, 2, limit=1, cursor="a")

    assert reply["error"] == {"code": 103, "message": "permission denied"}


async def test_an_expired_key_reaches_live_subscribers_as_a_removal(
    make_harness: MakeHarness,
) -> None:
    h = await _h(make_harness)
    await _write(h, "mm:a", "gone", 1)
    conn = await h.connect(user="1")
    await _sub(conn, 2, 2)

    await h.scheduler.advance(31)
    await settle()

    pushes = [m["push"] for m in conn.messages() if "push" in m]
    assert [(p["pub"]["key"], p["pub"].get("removed")) for p in pushes] == [("gone", True)]


def _map_publish(cmd_id: int, channel: str, key: str, **extra: object) -> dict[str, object]:
    return {"id": cmd_id, "publish": {"channel": channel, "type": 1, "key": key, **extra}}


async def test_client_map_write_without_permission_gets_103(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")

    reply = await conn.request(_map_publish(2, "mm:a", "k", data={"x": 1}))

    assert reply["error"] == {"code": 103, "message": "permission denied"}


async def test_subscriber_writes_and_removes_keys_of_its_map(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")
    before = await conn.request(_map_publish(2, "ww:a", "k", data={"x": 1}))
    await conn.request({"id": 3, "subscribe": {"channel": "ww:a", "type": 1, "phase": 2}})

    written = await conn.request(_map_publish(4, "ww:a", "k", data={"x": 1}))
    state = await h.node.maps.read_state("ww:a", limit=-1)
    removed = await conn.request(_map_publish(5, "ww:a", "k", removed=True))

    assert before["error"]["code"] == 103  # not yet a subscriber
    assert written == {"id": 4, "publish": {}} and removed == {"id": 5, "publish": {}}
    assert [(e.key, e.data, e.info and e.info.user) for e in state.entries] == [
        ("k", b'{"x":1}', "1")
    ]
    assert await h.node.maps.stats("ww:a") == 0


async def test_client_key_user_id_writes_under_the_users_id(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="alice")

    await conn.request(_map_publish(2, "own:a", "whatever", data=1))

    assert [e.key for e in (await h.node.maps.read_state("own:a", limit=-1)).entries] == ["alice"]


async def test_client_map_write_to_a_stream_channel_gets_107(make_harness: MakeHarness) -> None:
    h = await _h(make_harness)
    conn = await h.connect(user="1")

    reply = await conn.request(_map_publish(2, "plain", "k", data=1))

    assert reply["error"]["code"] == 107


PRESENCE_SETTINGS = ChannelSettings(
    namespaces=(
        Namespace(
            "chat",
            ChannelOptions(
                allow_subscribe_for_client=True,
                map_clients_presence_channel_prefix="pc:",
                map_users_presence_channel_prefix="pu:",
            ),
        ),
        Namespace("pc", replace(MAP, subscription_type="map_clients", map_mode="ephemeral")),
        Namespace("pu", replace(MAP, subscription_type="map_users", map_mode="ephemeral")),
    )
)


async def _presence_harness(make_harness: MakeHarness) -> Harness:
    return await make_harness(
        settings=ClientSettings(ping_interval=0, presence_update_interval=10.0),
        channels=PRESENCE_SETTINGS,
    )


async def test_subscribers_appear_in_the_client_and_user_presence_maps(
    make_harness: MakeHarness,
) -> None:
    h = await _presence_harness(make_harness)
    alice = await h.connect(user="alice")
    await alice.request({"id": 2, "subscribe": {"channel": "chat:room"}})
    await settle()
    watcher = await h.connect(user="bob")

    clients = await watcher.request(
        {"id": 2, "subscribe": {"channel": "pc:chat:room", "type": 2, "phase": 2}}
    )
    users = await watcher.request(
        {"id": 3, "subscribe": {"channel": "pu:chat:room", "type": 3, "phase": 2}}
    )

    [entry] = clients["subscribe"]["state"]
    assert entry["key"] == alice.session.id and entry["info"]["user"] == "alice"
    assert [e["key"] for e in users["subscribe"]["state"]] == ["alice"]


async def test_an_unsubscribed_client_leaves_the_client_presence_map(
    make_harness: MakeHarness,
) -> None:
    h = await _presence_harness(make_harness)
    watcher = await h.connect(user="bob")
    await watcher.request(
        {"id": 2, "subscribe": {"channel": "pc:chat:room", "type": 2, "phase": 2}}
    )
    alice = await h.connect(user="alice")
    await alice.request({"id": 2, "subscribe": {"channel": "chat:room"}})
    await settle()
    await alice.request({"id": 3, "unsubscribe": {"channel": "chat:room"}})
    await settle()

    pubs = [m["push"]["pub"] for m in watcher.messages() if "push" in m]
    assert [(p["key"], p.get("removed", False)) for p in pubs] == [
        (alice.session.id, False),
        (alice.session.id, True),
    ]


async def test_presence_keys_outlive_their_ttl_while_the_subscriber_stays(
    make_harness: MakeHarness,
) -> None:
    h = await _presence_harness(make_harness)
    alice = await h.connect(user="alice")
    await alice.request({"id": 2, "subscribe": {"channel": "chat:room"}})
    await settle()

    for _ in range(8):  # 80 s: past the 30 s key TTL, refreshed every 10 s
        await h.scheduler.advance(10)
        await settle()

    assert await h.node.maps.stats("pc:chat:room") == 1


async def test_remove_client_on_unsubscribe_drops_the_subscribers_own_key(
    make_harness: MakeHarness,
) -> None:
    own = replace(MAP, map_allow_publish_for_subscriber=True, map_client_key="client_id")
    own = replace(own, map_remove_client_on_unsubscribe=True)
    h = await make_harness(
        settings=ClientSettings(ping_interval=0),
        channels=ChannelSettings(namespaces=(Namespace("cursors", own),)),
    )
    conn = await h.connect(user="1")
    await conn.request({"id": 2, "subscribe": {"channel": "cursors:doc", "type": 1, "phase": 2}})
    await conn.request(_map_publish(3, "cursors:doc", "", data={"x": 4}))
    assert await h.node.maps.stats("cursors:doc") == 1

    await conn.request({"id": 4, "unsubscribe": {"channel": "cursors:doc"}})

    assert await h.node.maps.stats("cursors:doc") == 0
