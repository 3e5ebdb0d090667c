"""rotary.proxy.answers: request bodies and the reading of answers, without I/O."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from rotary.node.proxy import ProxyContext
from rotary.protocol.codes import CommandError, DisconnectError
from rotary.proxy.answers import (
    ProxyFailure,
    connect_result,
    map_publish_result,
    map_remove_result,
    payload_field,
    publish_result,
    refresh_result,
    request_body,
    rpc_result,
    subscribe_result,
)

CTX = ProxyContext("c1", "alice", b'{"plan":"pro"}', {"cookie": "s=1"})


def _json(value: Any) -> bytes:
    return orjson.dumps(value)


def test_request_carries_the_common_fields_and_raw_json_data() -> None:
    body = orjson.loads(request_body(CTX, {"channel": "a", "data": orjson.Fragment(b'{"x":1}')}))
    assert body == {
        "client": "c1",
        "transport": "websocket",
        "protocol": "json",
        "encoding": "json",
        "user": "alice",
        "channel": "a",
        "data": {"x": 1},
    }


def test_meta_is_sent_only_when_asked_and_connect_has_no_user() -> None:
    body = orjson.loads(request_body(CTX, {}, with_user=False, meta=True))
    assert body["meta"] == {"plan": "pro"}
    assert "user" not in body


def test_disconnect_wins_over_error_as_in_centrifugo() -> None:
    answer = {"disconnect": {"code": 4500, "reason": "bye"}, "error": {"code": 1000}}
    with pytest.raises(DisconnectError) as caught:
        connect_result(_json(answer))
    assert (caught.value.disconnect.code, caught.value.disconnect.reason) == (4500, "bye")


def test_error_keeps_code_message_and_temporary() -> None:
    answer = {"error": {"code": 1001, "message": "later", "temporary": True}}
    with pytest.raises(CommandError) as caught:
        subscribe_result(_json(answer), CTX, "a")
    error = caught.value.error
    assert (error.code, error.message, error.temporary) == (1001, "later", True)


@pytest.mark.parametrize(
    "answer",
    [
        b"not json",
        b"[]",
        _json({"result": []}),
        _json({"error": {"code": "100"}}),
        _json({"error": {"code": 0}}),
        _json({"disconnect": "no"}),
        _json({"result": {"user": 1}}),
        _json({"result": {"user": "a", "expire_at": "soon"}}),
        _json({"result": {"user": "a", "b64info": "%%%"}}),
        _json({"result": {"user": "a", "channels": "news"}}),
        _json({"result": {"user": "a", "subs": {"news": {"override": {"presence": True}}}}}),
    ],
)
def test_malformed_answers_are_failures_never_a_grant(answer: bytes) -> None:
    with pytest.raises(ProxyFailure):
        connect_result(answer)


def test_connect_result_reads_every_field() -> None:
    answer = {
        "result": {
            "user": "alice",
            "expire_at": 1_900_000_000,
            "b64info": base64.b64encode(b'{"a":1}').decode(),
            "data": {"hello": True},
            "channels": ["news"],
            "subs": {"chat:x": {"info": {"i": 1}, "override": {"presence": {"value": True}}}},
            "meta": {"m": 2},
        }
    }
    found = connect_result(_json(answer))
    assert found is not None
    creds, data = found
    assert (creds.user, creds.expire_at, creds.info, creds.meta) == (
        "alice", 1_900_000_000, b'{"a":1}', b'{"m":2}'
    )  # fmt: skip
    assert data == b'{"hello":true}'
    assert set(creds.server_channels()) == {"news", "chat:x"}
    override = creds.subs["chat:x"].override
    assert override is not None and override.presence is True


def test_connect_without_result_is_none() -> None:
    assert connect_result(b"{}") is None


def test_refresh_and_publish_and_rpc_results() -> None:
    refreshed = refresh_result(_json({"result": {"expire_at": 5, "info": {"x": 1}}}))
    assert (refreshed.expired, refreshed.expire_at, refreshed.info) == (False, 5, b'{"x":1}')
    assert refresh_result(_json({"result": {"expired": True}})).expired
    assert publish_result(b'{"result":{}}', b'{"a":1}') == b'{"a":1}'
    assert publish_result(_json({"result": {"data": {"b": 2}}}), b"{}") == b'{"b":2}'
    assert rpc_result(_json({"result": {"data": [1, 2]}})) == b"[1,2]"
    assert rpc_result(b'{"result":{}}') is None


def test_a_payload_that_is_not_json_goes_as_b64data_with_binary_encoding() -> None:
    fields = payload_field(b"\x00\xffraw")
    assert fields == {"b64data": base64.b64encode(b"\x00\xffraw").decode()}
    body = orjson.loads(request_body(ProxyContext("c1", protocol="protobuf"), fields))
    assert (body["protocol"], body["encoding"]) == ("protobuf", "binary")
    assert orjson.loads(request_body(CTX, payload_field(b'{"a":1}')))["data"] == {"a": 1}


def test_map_publish_answer_keeps_the_clients_key_and_data_unless_replaced() -> None:
    kept = map_publish_result(_json({"result": {}}), "k", b'{"n":1}')
    replaced = map_publish_result(
        _json({"result": {"key": "k2", "b64data": base64.b64encode(b"\x00").decode(),
                          "key_mode": "if_exists", "idempotency_key": "i", "delta": True,
                          "version": 3, "version_epoch": "e", "tags": {"a": "b"}}}),
        "k",
        b"{}",
    )  # fmt: skip

    assert (kept.key, kept.data, kept.tags, kept.key_mode) == ("k", b'{"n":1}', None, "")
    assert (replaced.key, replaced.data, replaced.key_mode) == ("k2", b"\x00", "if_exists")
    assert (replaced.idempotency_key, replaced.delta, replaced.version) == ("i", True, 3)
    assert (replaced.version_epoch, replaced.tags) == ("e", {"a": "b"})


@pytest.mark.parametrize(
    "result",
    [{"key_mode": "sometimes"}, {"delta": "yes"}, {"version": -1}, {"tags": {"a": 1}},
     {"tags": ["a"]}, {"key": 5}],
)  # fmt: skip
def test_malformed_map_publish_answers_are_failures(result: dict[str, Any]) -> None:
    with pytest.raises(ProxyFailure):
        map_publish_result(_json({"result": result}), "k", b"{}")


def test_map_remove_answer_may_replace_the_key_and_carry_tags_and_idempotency_key() -> None:
    kept = map_remove_result(_json({}), "k")
    changed = map_remove_result(
        _json({"result": {"key": "k2", "tags": {"a": "b"}, "idempotency_key": "i"}}), "k"
    )

    assert (kept.key, kept.tags, kept.idempotency_key) == ("k", None, "")
    assert (changed.key, changed.tags, changed.idempotency_key) == ("k2", {"a": "b"}, "i")


def test_map_remove_refusal_reaches_the_client() -> None:
    with pytest.raises(CommandError):
        map_remove_result(_json({"error": {"code": 4003, "message": "no"}}), "k")
