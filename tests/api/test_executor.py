"""ApiExecutor against a recording node: validation, node calls, result shapes, errors."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import orjson
import pytest

from rotary.api.errors import ApiError, RequestDecodeError
from rotary.api.executor import ApiExecutor
from rotary.auth import SubscribeOverride
from rotary.engines.base import (
    ClientInfo,
    HistoryFilter,
    HistoryResult,
    Publication,
    StreamPosition,
    UnrecoverablePosition,
)
from rotary.protocol.codes import CommandError, Disconnect, DisconnectCode, ErrorCode
from tests.api.fakes import RecordingNode


@pytest.fixture
def node() -> RecordingNode:
    return RecordingNode()


@pytest.fixture
def executor(node: RecordingNode) -> ApiExecutor:
    return ApiExecutor(node)


def as_json(result: dict[str, Any]) -> Any:
    """The result as the API would send it (Fragments resolved)."""
    return orjson.loads(orjson.dumps(result))


async def error_of(executor: ApiExecutor, method: str, request: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await executor.call(method, request)
    return caught.value


# publish / broadcast


async def test_publish_passes_compact_json_data_and_options_to_the_node(
    executor: ApiExecutor, node: RecordingNode
) -> None:
    result = await executor.publish(
        {
            "channel": "news",
            "data": {"text": "hi", "n": [1, 2]},
            "tags": {"k": "v"},
            "skip_history": True,
            "idempotency_key": "once",
            "delta": True,
        }
    )
    assert result == {"offset": 3, "epoch": "abcd"}
    assert node.last("api_publish") == {
        "channel": "news",
        "data": b'{"text":"hi","n":[1,2]}',
        "tags": {"k": "v"},
        "skip_history": True,
        "idempotency_key": "once",
        "delta": True,
    }


async def test_publish_without_history_omits_offset_and_epoch(
    executor: ApiExecutor, node: RecordingNode
) -> None:
    node.position = StreamPosition(0, "")
    assert await executor.publish({"channel": "news", "data": 1}) == {}


async def test_publish_prefers_b64data_and_decodes_it(
    executor: ApiExecutor, node: RecordingNode
) -> None:
    b64 = base64.b64encode(b"\x00\xffbinary").decode()
    await executor.publish({"channel": "c", "data": {"x": 1}, "b64data": b64})
    assert node.last("api_publish")["data"] == b"\x00\xffbinary"


@pytest.mark.parametrize(
    "request_",
    [
        {"data": {}},
        {"channel": "", "data": {}},
        {"channel": "c"},
        {"channel": "c", "data": None},
        {"channel": "c", "b64data": "not base64!"},
    ],
)
async def test_publish_without_channel_or_data_or_with_bad_base64_gets_error_107(
    executor: ApiExecutor, node: RecordingNode, request_: dict[str, Any]
) -> None:
    err = await error_of(executor, "publish", request_)
    assert err.to_json() == {"code": 107, "message": "bad request"}
    assert node.calls == []


async def test_publish_with_a_wrongly_typed_field_is_a_decode_error(
    executor: ApiExecutor,
) -> None:
    err = await error_of(executor, "publish", {"channel": 5, "data": {}})
    assert isinstance(err, RequestDecodeError)
    assert err.code == 107


async def test_publish_with_non_string_tag_values_is_a_decode_error(
    executor: ApiExecutor,
) -> None:
    err = await error_of(executor, "publish", {"channel": "c", "data": 1, "tags": {"a": 1}})
    assert isinstance(err, RequestDecodeError)


async def test_node_unknown_channel_becomes_api_error_102(
    executor: ApiExecutor, node: RecordingNode
) -> None:
    node.failures["api_publish"] = CommandError(ErrorCode.UNKNOWN_CHANNEL)
    err = await error_of(executor, "publish", {"channel": "nope:x", "data": {}})
    assert err.to_json() == {"code": 102, "message": "unknown channel"}


async def test_unexpected_node_failure_becomes_error_100(
    executor: ApiExecutor, node: RecordingNode
) -> None:
    node.failures["api_publish"] = RuntimeError("boom")
    err = await error_of(executor, "publish", {"channel": "c", "data": {}})
    assert err.to_json() == {"code": 100, "message": "internal server error"}


async def test_broadcast_answers_each_channel_in_order_with_result_or_error(
    executor: ApiExecutor, node: RecordingNode
) -> None:
    node.failures["bad:one"] = CommandError(ErrorCode.UNKNOWN_CHANNEL)
    result = await executor.broadcast(
        {"channels": ["a", "bad:one", "", "b"], "data": {"m": 1}, "tags": {"t": "1"}}
    )
    assert result == {
        "responses": [
            {"result": {"offset": 3, "epoch": "abcd"}},
            {"error": {"code": 102, "message": "unknown channel"}},
            {"error": {"code": 107, "message": "bad request"}},
            {"result": {"offset": 3, "epoch": "abcd"}},
        ]
    }
    published = [args["channel"] for name, args in node.calls if name == "api_publish"]
    assert sorted(published) == ["a", "b", "bad:one"]
    assert node.last("api_publish")["tags"] == {"t": "1"}


@pytest.mark.parametrize(
    "request_", [{"data": {}}, {"channels": [], "data": {}}, {"channels": ["a"]}]
)
async def test_broadcast_without_channels_or_data_gets_error_107(
    executor: ApiExecutor, request_: dict[str, Any]
) -> None:
    assert (await error_of(executor, "broadcast", request_)).code == 107


# subscribe / unsubscribe / disconnect / refresh


async def test_subscribe_passes_every_field_to_the_node(
    executor: ApiExecutor, node: RecordingNode
) -> None:
    result = await executor.subscribe(
        {
            "user": "u1",
            "channel": "ns:room",
            "client": "c1",
            "session": "s1",
            "expire_at": 1_900_000_000,
            "info": {"role": "admin"},
            "b64data": base64.b64encode(b"bin").decode(),
            "recover_since": {"offset": 7, "epoch": "ep"},
            "override": {"presence": {"value": False}, "force_recovery": {"value": True}},
        }
    )
    assert result == {}
    assert node.last("api_subscribe") == {
        "user": "u1",
        "channel": "ns:room",
        "client": "c1",
        "session": "s1",
        "expire_at": 1_900_000_000,
        "info": b'{"role":"admin"}',
        "data": b"bin",
        "recover_since": StreamPosition(7, "ep"),
        "override": SubscribeOverride(presence=False, force_recovery=True),
    }


async def test_subscribe_with_b64info_uses_the_decoded_bytes(
    executor: ApiExecutor, node: RecordingNode
) -> None:
    await executor.subscribe({"user": "u", "channel": "c", "b64info": "AAE="})
    args = node.last("api_subscribe")
    assert (args["info"], args["data"], args["override"]) == (b"\x00\x01", None, None)


async def test_subscribe_without_channel_gets_error_107(executor: ApiExecutor) -> None:
    assert (await error_of(executor, "subscribe", {"user": "u"})).code == 107


async def test_subscribe_with_override_not_wrapped_in_value_is_a_decode_error(
    executor: ApiExecutor,
) -> None:
    request = {"user": "u", "channel": "c", "override": {"presence": True}}
    assert isinstance(await error_of(executor, "subscribe", request), RequestDecodeError)


async def test_unsubscribe_passes_user_channel_client_and_session(
    executor: ApiExecutor, node: RecordingNode
) -> None:
    req = {"user": "u", "channel": "c", "client": "cl", "session": "se"}
    assert await executor.unsubscribe(req) == {}
    assert node.last("api_unsubscribe") == req


async def test_disconnect_defaults_to_3503_force_disconnect(
    executor: ApiExecutor, node: RecordingNode
) -> None:
    assert await executor.disconnect({"user": "u"}) == {}
    assert node.last("api_disconnect") == {
        "user": "u",
        "client": "",
        "session": "",
        "whitelist": [],
        "disconnect": DisconnectCode.FORCE_NO_RECONNECT,
    }
    assert node.last("api_disconnect")["disconnect"] == Disconnect(3503, "force disconnect")


async def test_disconnect_passes_a_custom_code_and_the_whitelist(
    executor: ApiExecutor, node: RecordingNode
) -> None:
    await executor.disconnect(
        {
            "user": "u",
            "whitelist": ["keep"],
            "disconnect": {"code": 4000, "reason": "custom"},
        }
    )
    args = node.last("api_disconnect")
    assert (args["whitelist"], args["disconnect"]) == (["keep"], Disconnect(4000, "custom"))


@pytest.mark.parametrize(
    "disconnect", [{"code": 1000, "reason": "x"}, {"code": 4000, "reason": "r" * 124}]
)
async def test_disconnect_that_cannot_be_a_close_frame_gets_error_107(
    executor: ApiExecutor, node: RecordingNode, disconnect: dict[str, Any]
) -> None:
    err = await error_of(executor, "disconnect", {"user": "u", "disconnect": disconnect})
    assert err.code == 107
    assert node.calls == []


async def test_refresh_passes_expiry_fields_and_info(
    executor: ApiExecutor, node: RecordingNode
) -> None:
    req = {"user": "u", "client": "c", "expired": True, "expire_at": 5, "info": {"a": 1}}
    assert await executor.refresh(req) == {}
    assert node.last("api_refresh") == {
        "user": "u",
        "client": "c",
        "session": "",
        "expired": True,
        "expire_at": 5,
        "info": b'{"a":1}',
    }


# presence / history / channels / info / rpc


async def test_presence_embeds_raw_conn_and_chan_info(
    executor: ApiExecutor, node: RecordingNode
) -> None:
    node.presence_entries = {
        "c1": ClientInfo("u1", "c1", conn_info=b'{"name":"Ann"}', chan_info=b"[1]"),
        "c2": ClientInfo("u2", "c2"),
    }
    result = await executor.presence({"channel": "room"})
    assert as_json(result) == {
        "presence": {
            "c1": {"user": "u1", "client": "c1", "conn_info": {"name": "Ann"}, "chan_info": [1]},
            "c2": {"user": "u2", "client": "c2"},
        }
    }
    assert node.last("api_presence") == {"channel": "room"}


async def test_presence_when_the_node_says_not_available_gets_error_108(
    executor: ApiExecutor, node: RecordingNode
) -> None:
    node.failures["api_presence"] = CommandError(ErrorCode.NOT_AVAILABLE)
    err = await error_of(executor, "presence", {"channel": "room"})
    assert err.to_json() == {"code": 108, "message": "not available"}


async def test_presence_stats_returns_both_counts(executor: ApiExecutor) -> None:
    assert await executor.presence_stats({"channel": "room"}) == {
        "num_clients": 2,
        "num_users": 1,
    }


@pytest.mark.parametrize("method", ["presence", "presence_stats", "history", "history_remove"])
async def test_channel_methods_without_channel_get_error_107(
    executor: ApiExecutor, node: RecordingNode, method: str
) -> None:
    assert (await error_of(executor, method, {})).code == 107
    assert node.calls == []


async def test_history_passes_filter_and_shapes_publications(
    executor: ApiExecutor, node: RecordingNode
) -> None:
    node.history_result = HistoryResult(
        StreamPosition(9, "ep"),
        [
            Publication(b'{"a":1}', offset=8, tags={"t": "v"}),
            Publication(b'"s"', offset=9, info=ClientInfo("u", "c", conn_info=b"{}")),
        ],
    )
    result = await executor.history(
        {"channel": "c", "limit": 2, "since": {"offset": 7, "epoch": "ep"}, "reverse": True}
    )
    assert node.last("api_history")["flt"] == HistoryFilter(
        since=StreamPosition(7, "ep"), limit=2, reverse=True
    )
    assert as_json(result) == {
        "publications": [
            {"data": {"a": 1}, "offset": 8, "tags": {"t": "v"}},
            {"data": "s", "offset": 9, "info": {"user": "u", "client": "c", "conn_info": {}}},
        ],
        "epoch": "ep",
        "offset": 9,
    }


@pytest.mark.parametrize(("given", "passed"), [(None, 0), (0, 0), (-1, -1), (-5, -1), (5000, 5000)])
async def test_history_limit_is_uncapped_and_any_negative_means_all(
    executor: ApiExecutor, node: RecordingNode, given: int | None, passed: int
) -> None:
    await executor.history({"channel": "c", "limit": given})
    assert node.last("api_history")["flt"].limit == passed


@pytest.mark.parametrize(
    "failure", [CommandError(ErrorCode.UNRECOVERABLE_POSITION), UnrecoverablePosition()]
)
async def test_history_since_a_lost_epoch_gets_error_112(
    executor: ApiExecutor, node: RecordingNode, failure: Exception
) -> None:
    node.failures["api_history"] = failure
    err = await error_of(executor, "history", {"channel": "c", "since": {"epoch": "old"}})
    assert err.to_json() == {"code": 112, "message": "unrecoverable position"}


async def test_history_remove_calls_the_node(executor: ApiExecutor, node: RecordingNode) -> None:
    assert await executor.history_remove({"channel": "c"}) == {}
    assert node.names() == ["api_history_remove"]


async def test_channels_wraps_counts_and_passes_the_pattern(
    executor: ApiExecutor, node: RecordingNode
) -> None:
    node.channel_counts = {"a": 1, "b": 0}
    result = await executor.channels({"pattern": "a*"})
    assert result == {"channels": {"a": {"num_clients": 1}, "b": {"num_clients": 0}}}
    assert node.last("api_channels") == {"pattern": "a*"}


async def test_info_lists_the_nodes(executor: ApiExecutor, node: RecordingNode) -> None:
    node.nodes = [{"uid": "x", "name": "n", "num_clients": 1}]
    assert await executor.info({}) == {"nodes": node.nodes}


async def test_rpc_without_method_is_107_and_with_any_method_is_104(
    executor: ApiExecutor,
) -> None:
    assert (await error_of(executor, "rpc", {})).code == 107
    err = await error_of(executor, "rpc", {"method": "x", "params": {}})
    assert err.to_json() == {"code": 104, "message": "not found"}


async def test_unknown_method_is_104_not_found(executor: ApiExecutor) -> None:
    assert (await error_of(executor, "block_user", {"user": "x"})).code == 104


async def test_request_that_is_not_an_object_is_a_decode_error(executor: ApiExecutor) -> None:
    assert isinstance(await error_of(executor, "info", ["x"]), RequestDecodeError)


# batch


async def test_batch_replies_in_command_order_keyed_by_method(
    executor: ApiExecutor, node: RecordingNode
) -> None:
    node.failures["api_presence"] = CommandError(ErrorCode.NOT_AVAILABLE)
    result = await executor.batch(
        {
            "commands": [
                {"publish": {"channel": "a", "data": 1}},
                {"presence": {"channel": "p"}},
                {"publish": {"channel": ""}},
                {"nonsense": {}},
                {"info": {}},
            ]
        }
    )
    assert result == {
        "replies": [
            {"publish": {"offset": 3, "epoch": "abcd"}},
            {"error": {"code": 108, "message": "not available"}},
            {"error": {"code": 107, "message": "bad request"}},
            {"error": {"code": 104, "message": "not found"}},
            {"info": {"nodes": []}},
        ]
    }
    assert node.names() == ["api_publish", "api_presence", "api_info"]


async def test_batch_may_not_nest_a_batch(executor: ApiExecutor) -> None:
    result = await executor.batch({"commands": [{"batch": {"commands": []}}]})
    assert result == {"replies": [{"error": {"code": 104, "message": "not found"}}]}


class _SlowFirstNode(RecordingNode):
    """Publishing to channel "slow" waits until another publish has started."""

    def __init__(self) -> None:
        super().__init__()
        self.other_started = asyncio.Event()

    async def api_publish(self, channel: str, data: bytes, **kw: Any) -> StreamPosition:
        if channel == "slow":
            await self.other_started.wait()
        else:
            self.other_started.set()
        return StreamPosition(1 if channel == "slow" else 2, "e")


async def test_parallel_batch_runs_commands_concurrently_and_keeps_order() -> None:
    executor = ApiExecutor(_SlowFirstNode())
    commands = [{"publish": {"channel": ch, "data": 1}} for ch in ("slow", "fast")]
    result = await executor.batch({"commands": commands, "parallel": True})
    assert result == {
        "replies": [
            {"publish": {"offset": 1, "epoch": "e"}},
            {"publish": {"offset": 2, "epoch": "e"}},
        ]
    }


async def test_methods_lists_every_centrifugo_oss_method_token_revocation_and_maps(
    executor: ApiExecutor,
) -> None:
    assert executor.methods == {
        "publish",
        "broadcast",
        "subscribe",
        "unsubscribe",
        "disconnect",
        "refresh",
        "presence",
        "presence_stats",
        "history",
        "history_remove",
        "channels",
        "info",
        "rpc",
        "batch",
        "revoke_token",
        "invalidate_user_tokens",
        "map_publish",
        "map_remove",
        "map_read_state",
        "map_read_stream",
        "map_stats",
        "map_clear",
        "shared_poll_publish",
    }


def test_the_executor_imports_no_http_library() -> None:
    import subprocess
    import sys

    code = "import sys, rotary.api.executor; sys.exit('aiohttp' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
