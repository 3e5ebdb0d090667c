"""docs/protocol.md conformance checks over a real server process and a raw WebSocket client."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import jwt

from tests.functional.conftest import API_KEY, SECRET, make_token

EXPIRED = {"code": 2501, "reason": "subscription expired"}
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def config(**extra: Any) -> dict[str, Any]:
    return {"token_hmac_secret_key": SECRET, "api_key": API_KEY, **extra}


async def _connected(rotary_server: Any, ws_connect: Any, cfg: dict[str, Any], **claims: Any):
    server = rotary_server(cfg)
    client = await ws_connect(server)
    reply = await client.request({"id": 1, "connect": {"token": make_token(**claims)}})
    assert "connect" in reply, reply
    return server, client


# 1 ------------------------------------------------------------------------------------------


async def test_valid_token_connects_with_client_id_expiry_and_ping(
    rotary_server: Any, ws_connect: Any
) -> None:
    client = await ws_connect(rotary_server(config()))
    reply = await client.request({"id": 1, "connect": {"token": make_token("42")}})
    result = reply["connect"]
    assert UUID4.match(result.pop("client"))
    assert 3590 <= result.pop("ttl") <= 3600
    assert result == {"version": "5.4.9", "expires": True, "ping": 25, "pong": True}


# 2 ------------------------------------------------------------------------------------------


async def test_expired_connection_token_gets_error_109_without_close(
    rotary_server: Any, ws_connect: Any
) -> None:
    client = await ws_connect(rotary_server(config()))
    reply = await client.request({"id": 1, "connect": {"token": make_token(exp_in=-10)}})
    assert reply == {"id": 1, "error": {"code": 109, "message": "token expired"}}
    assert not client.ws.closed


# 3 ------------------------------------------------------------------------------------------


def _unsigned(claims: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def _closes_with_invalid_token(rotary_server: Any, ws_connect: Any, token: str) -> None:
    client = await ws_connect(rotary_server(config()))
    await client.send({"id": 1, "connect": {"token": token}})
    assert await client.closed() == (3500, "invalid token")


async def test_bad_signature_closes_3500(rotary_server: Any, ws_connect: Any) -> None:
    token = jwt.encode({"sub": "1"}, "another-secret-of-sufficient-length!!", algorithm="HS256")
    await _closes_with_invalid_token(rotary_server, ws_connect, token)


async def test_alg_none_closes_3500(rotary_server: Any, ws_connect: Any) -> None:
    await _closes_with_invalid_token(rotary_server, ws_connect, _unsigned({"sub": "1"}))


async def test_rs256_without_rsa_key_closes_3500(rotary_server: Any, ws_connect: Any) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode({"sub": "1"}, key, algorithm="RS256")
    await _closes_with_invalid_token(rotary_server, ws_connect, token)


async def test_channel_claim_in_connection_token_closes_3500(
    rotary_server: Any, ws_connect: Any
) -> None:
    await _closes_with_invalid_token(rotary_server, ws_connect, make_token(channel="news"))


# 4 ------------------------------------------------------------------------------------------


async def test_no_token_without_anonymous_access_closes_3501(
    rotary_server: Any, ws_connect: Any
) -> None:
    client = await ws_connect(rotary_server(config()))
    await client.send({"id": 1, "connect": {}})
    assert await client.closed() == (3501, "bad request")


async def test_no_token_with_anonymous_access_connects_as_empty_user(
    rotary_server: Any, ws_connect: Any
) -> None:
    cfg = config(
        allow_anonymous_connect_without_token=True,
        presence=True,
        allow_subscribe_for_client=True,
        allow_subscribe_for_anonymous=True,
        allow_presence_for_anonymous=True,
        allow_presence_for_client=True,
    )
    client = await ws_connect(rotary_server(cfg))
    reply = await client.request({"id": 1, "connect": {}})
    client_id = reply["connect"]["client"]
    await client.request({"id": 2, "subscribe": {"channel": "room"}})
    presence = await client.request({"id": 3, "presence": {"channel": "room"}})
    assert presence["presence"]["presence"] == {client_id: {"user": "", "client": client_id}}


# 5 ------------------------------------------------------------------------------------------


async def test_pong_before_any_ping_closes_3501(rotary_server: Any, ws_connect: Any) -> None:
    _, client = await _connected(rotary_server, ws_connect, config())
    await client.send("{}")
    assert await client.closed() == (3501, "bad request")


async def test_missing_pong_closes_3012(rotary_server: Any, ws_connect: Any) -> None:
    cfg = config(ping_interval="1s", pong_timeout="500ms")
    _, client = await _connected(rotary_server, ws_connect, cfg)
    assert await client.closed() == (3012, "no pong")
    assert "{}" in client.frames


async def test_answered_pings_keep_the_connection_open(rotary_server: Any, ws_connect: Any) -> None:
    cfg = config(ping_interval="1s", pong_timeout="500ms")
    _, client = await _connected(rotary_server, ws_connect, cfg)
    for _ in range(3):
        assert await client.recv() == [{}]
        await client.send("{}")
    reply = await client.request({"id": 9, "rpc": {"method": "x"}})
    assert reply["error"]["code"] == 108


# 6 ------------------------------------------------------------------------------------------


def sub_token(channel: str, sub: str = "42", *, exp_in: float | None = 3600, **claims: Any) -> str:
    return make_token(sub, exp_in=exp_in, channel=channel, **claims)


async def test_private_channel_without_token_gets_103(rotary_server: Any, ws_connect: Any) -> None:
    _, client = await _connected(rotary_server, ws_connect, config())
    reply = await client.request({"id": 2, "subscribe": {"channel": "$secret"}})
    assert reply == {"id": 2, "error": {"code": 103, "message": "permission denied"}}


async def test_subscription_token_for_another_channel_closes_3500(
    rotary_server: Any, ws_connect: Any
) -> None:
    _, client = await _connected(rotary_server, ws_connect, config())
    token = sub_token("$other")
    await client.send({"id": 2, "subscribe": {"channel": "$secret", "token": token}})
    assert await client.closed() == (3500, "invalid token")


async def test_expired_subscription_token_gets_error_109(
    rotary_server: Any, ws_connect: Any
) -> None:
    _, client = await _connected(rotary_server, ws_connect, config())
    token = sub_token("$secret", exp_in=-5)
    reply = await client.request({"id": 2, "subscribe": {"channel": "$secret", "token": token}})
    assert reply["error"] == {"code": 109, "message": "token expired"}


async def test_subscription_token_of_another_user_closes_3500(
    rotary_server: Any, ws_connect: Any
) -> None:
    _, client = await _connected(rotary_server, ws_connect, config())
    token = sub_token("$secret", sub="43")
    await client.send({"id": 2, "subscribe": {"channel": "$secret", "token": token}})
    assert await client.closed() == (3500, "invalid token")


async def test_tampered_subscription_token_gets_103(rotary_server: Any, ws_connect: Any) -> None:
    _, client = await _connected(rotary_server, ws_connect, config())
    header, payload, signature = sub_token("$secret").split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    token = f"{header}.{payload}.{flipped}"
    reply = await client.request({"id": 2, "subscribe": {"channel": "$secret", "token": token}})
    assert reply["error"]["code"] == 103


async def test_valid_subscription_token_subscribes_with_data_and_ttl(
    rotary_server: Any, ws_connect: Any
) -> None:
    _, client = await _connected(rotary_server, ws_connect, config())
    token = sub_token("$secret", exp_in=60, data={"welcome": True})
    reply = await client.request({"id": 2, "subscribe": {"channel": "$secret", "token": token}})
    result = reply["subscribe"]
    assert result["expires"] is True and 50 <= result["ttl"] <= 60
    assert result["data"] == {"welcome": True}


# 7 ------------------------------------------------------------------------------------------


async def test_subscribe_checks_105_106_107_102(rotary_server: Any, ws_connect: Any) -> None:
    cfg = config(allow_subscribe_for_client=True, client_channel_limit=2)
    _, client = await _connected(rotary_server, ws_connect, cfg)
    assert "subscribe" in await client.request({"id": 2, "subscribe": {"channel": "a"}})
    dup = await client.request({"id": 3, "subscribe": {"channel": "a"}})
    assert dup["error"] == {"code": 105, "message": "already subscribed"}
    long = await client.request({"id": 4, "subscribe": {"channel": "x" * 256}})
    assert long["error"] == {"code": 107, "message": "bad request"}
    accented = await client.request({"id": 5, "subscribe": {"channel": "café"}})
    assert accented["error"]["code"] == 107
    unknown = await client.request({"id": 6, "subscribe": {"channel": "ns:x"}})
    assert unknown["error"] == {"code": 102, "message": "unknown channel"}
    await client.request({"id": 7, "subscribe": {"channel": "b"}})
    limit = await client.request({"id": 8, "subscribe": {"channel": "c"}})
    assert limit["error"] == {"code": 106, "message": "limit exceeded"}


# 8 ------------------------------------------------------------------------------------------


async def test_unrefreshed_subscription_ends_with_unsubscribe_push_2501(
    rotary_server: Any, ws_connect: Any
) -> None:
    cfg = config(client_presence_update_interval="300ms", client_expired_sub_close_delay="0s")
    _, client = await _connected(rotary_server, ws_connect, cfg)
    token = sub_token("$s", exp_in=1)
    await client.request({"id": 2, "subscribe": {"channel": "$s", "token": token}})
    push = await client.push()
    assert push == {
        "push": {"channel": "$s", "unsubscribe": {"code": 2501, "reason": "subscription expired"}}
    }


async def test_sub_refresh_with_expired_token_replies_and_ends_with_2501(
    rotary_server: Any, ws_connect: Any
) -> None:
    _, client = await _connected(rotary_server, ws_connect, config())
    token = sub_token("$s", exp_in=60)
    await client.request({"id": 2, "subscribe": {"channel": "$s", "token": token}})
    stale = sub_token("$s", exp_in=-1)
    await client.send({"id": 3, "sub_refresh": {"channel": "$s", "token": stale}})
    assert await client.recv() == [
        {"id": 3, "sub_refresh": {}},
        {
            "push": {
                "channel": "$s",
                "unsubscribe": {"code": 2501, "reason": "subscription expired"},
            }
        },
    ]


async def test_sub_refresh_with_valid_token_extends_the_subscription(
    rotary_server: Any, ws_connect: Any
) -> None:
    _, client = await _connected(rotary_server, ws_connect, config())
    token = sub_token("$s", exp_in=60)
    await client.request({"id": 2, "subscribe": {"channel": "$s", "token": token}})
    fresh = sub_token("$s", exp_in=600)
    reply = await client.request({"id": 3, "sub_refresh": {"channel": "$s", "token": fresh}})
    assert reply["sub_refresh"]["expires"] is True and reply["sub_refresh"]["ttl"] > 500


# 9 ------------------------------------------------------------------------------------------


async def test_unrefreshed_connection_closes_3005(rotary_server: Any, ws_connect: Any) -> None:
    cfg = config(client_expired_close_delay="0s")
    _, client = await _connected(rotary_server, ws_connect, cfg, exp_in=1)
    assert await client.closed() == (3005, "connection expired")


async def test_refresh_for_another_user_closes_3500(rotary_server: Any, ws_connect: Any) -> None:
    _, client = await _connected(rotary_server, ws_connect, config())
    await client.send({"id": 2, "refresh": {"token": make_token("43")}})
    assert await client.closed() == (3500, "invalid token")


async def test_refresh_with_expired_token_closes_3005(rotary_server: Any, ws_connect: Any) -> None:
    _, client = await _connected(rotary_server, ws_connect, config())
    await client.send({"id": 2, "refresh": {"token": make_token(exp_in=-5)}})
    assert await client.closed() == (3005, "connection expired")


async def test_refresh_with_valid_token_reports_new_ttl(
    rotary_server: Any, ws_connect: Any
) -> None:
    _, client = await _connected(rotary_server, ws_connect, config(), exp_in=60)
    reply = await client.request({"id": 2, "refresh": {"token": make_token(exp_in=7200)}})
    result = reply["refresh"]
    assert result["expires"] is True and 7100 < result["ttl"] <= 7200


# 10 -----------------------------------------------------------------------------------------


async def test_user_limited_channel_admits_only_its_user(
    rotary_server: Any, ws_connect: Any
) -> None:
    server = rotary_server(config(allow_user_limited_channels=True))
    owner = await ws_connect(server)
    await owner.request({"id": 1, "connect": {"token": make_token("42")}})
    other = await ws_connect(server)
    await other.request({"id": 1, "connect": {"token": make_token("43")}})
    assert "subscribe" in await owner.request({"id": 2, "subscribe": {"channel": "user#42"}})
    denied = await other.request({"id": 2, "subscribe": {"channel": "user#42"}})
    assert denied["error"]["code"] == 103


# 11 -----------------------------------------------------------------------------------------


async def test_recovery_returns_publications_after_the_given_offset(
    rotary_server: Any, ws_connect: Any
) -> None:
    cfg = config(
        namespaces=[
            {
                "name": "chat",
                "history_size": 10,
                "history_ttl": "300s",
                "force_recovery": True,
                "allow_subscribe_for_client": True,
            }
        ]
    )
    server, client = await _connected(rotary_server, ws_connect, cfg)
    for n in range(3):
        server.api("publish", {"channel": "chat:room", "data": {"n": n}})
    epoch = server.api("history", {"channel": "chat:room", "limit": 0})["result"]["epoch"]
    sub = {"channel": "chat:room", "recover": True, "offset": 1, "epoch": epoch}
    result = (await client.request({"id": 2, "subscribe": sub}))["subscribe"]
    assert result["recovered"] is True and result["was_recovering"] is True
    assert result["offset"] == 1 and result["epoch"] == epoch
    assert [p["data"] for p in result["publications"]] == [{"n": 1}, {"n": 2}]
    assert [p["offset"] for p in result["publications"]] == [2, 3]


# 13 -----------------------------------------------------------------------------------------


async def test_frames_split_into_json_objects_with_empty_results_and_client_info(
    rotary_server: Any, ws_connect: Any
) -> None:
    cfg = config(allow_subscribe_for_client=True, allow_publish_for_client=True)
    _, client = await _connected(rotary_server, ws_connect, cfg, info={"name": "Ann"})
    await client.send(
        {"id": 2, "subscribe": {"channel": "news"}},
        {"id": 3, "publish": {"channel": "news", "data": {"text": "hi"}}},
    )
    messages = []
    while not any(m.get("id") == 3 for m in messages):
        messages += await client.recv()
    assert {"id": 2, "subscribe": {}} in messages
    assert {"id": 3, "publish": {}} in messages
    pub = next(m for m in messages if "push" in m)["push"]
    assert pub["channel"] == "news"
    assert pub["pub"]["data"] == {"text": "hi"}
    assert pub["pub"]["info"]["user"] == "42"
    assert set(pub["pub"]["info"]) == {"user", "client", "conn_info"}
    for frame in client.frames:
        for line in frame.split("\n"):
            assert isinstance(json.loads(line), dict)
