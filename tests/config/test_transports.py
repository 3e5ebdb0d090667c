"""Transport endpoint keys: Centrifugo v5 flat booleans and v6 sections give the same settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rotary.config import ConfigError, load_config
from rotary.config.model import EndpointSettings
from rotary.protocol.codes import CodeTransform


def _load(tmp_path: Path, doc: dict[str, Any], env: dict[str, str] | None = None) -> Any:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    return load_config(str(path), env=env or {})


def test_every_transport_is_off_by_default_with_centrifugos_paths(tmp_path: Path) -> None:
    config = _load(tmp_path, {})
    assert config.http_stream == EndpointSettings(False, "/connection/http_stream", 65536)
    assert config.sse == EndpointSettings(False, "/connection/sse", 65536)
    assert config.emulation.handler_prefix == "/emulation"
    assert config.uni_websocket.handler_prefix == "/connection/uni_websocket"
    assert config.uni_sse.handler_prefix == "/connection/uni_sse"
    assert config.uni_http_stream.handler_prefix == "/connection/uni_http_stream"


def test_v5_booleans_and_v6_sections_turn_the_same_transports_on(tmp_path: Path) -> None:
    v5 = {
        "http_stream": True,
        "sse": True,
        "uni_websocket": True,
        "uni_sse": True,
        "uni_http_stream": True,
        "sse_max_request_body_size": 1000,
        "uni_websocket_message_size_limit": 2000,
        "emulation_handler_prefix": "/emu",
    }
    v6 = {
        "http_stream": {"enabled": True},
        "sse": {"enabled": True, "max_request_body_size": 1000},
        "uni_websocket": {"enabled": True, "message_size_limit": 2000},
        "uni_sse": {"enabled": True},
        "uni_http_stream": {"enabled": True},
        "emulation": {"handler_prefix": "/emu"},
    }
    assert _load(tmp_path, v5) == _load(tmp_path, v6)
    config = _load(tmp_path, v6)
    assert config.sse.size_limit == 1000
    assert config.uni_websocket.size_limit == 2000
    assert config.emulation.handler_prefix == "/emu"


def test_environment_turns_a_transport_on_in_either_spelling(tmp_path: Path) -> None:
    assert _load(tmp_path, {}, {"CENTRIFUGO_UNI_SSE": "true"}).uni_sse.enabled
    assert _load(tmp_path, {}, {"CENTRIFUGO_HTTP_STREAM_ENABLED": "true"}).http_stream.enabled


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ({"sse": {"handler_prefix": "sse"}}, "sse.handler_prefix: must start with /"),
        ({"uni_http_stream_max_request_body_size": 0}, "must be a positive number of bytes"),
    ],
)
def test_bad_transport_settings_are_refused_with_their_key(
    tmp_path: Path, doc: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, doc)
    assert problem in str(caught.value)


_TRANSFORMS = {"enabled": True, "transforms": [{"code": 109, "to": {"status_code": 401}}]}
_UNI_DISCONNECTS = {
    "enabled": True,
    "transforms": [{"code": 103, "to": {"code": 4503, "reason": "forbidden"}}],
}


def test_unidirectional_options_load_the_same_from_v5_and_v6_keys(tmp_path: Path) -> None:
    v5 = {
        "uni_websocket_join_push_messages": True,
        "uni_websocket_disable_disconnect_push": True,
        "uni_websocket_disable_closing_handshake": True,
        "uni_websocket_write_timeout": "3s",
        "uni_sse_connect_code_to_http_response": _TRANSFORMS,
        "client_connect_code_to_unidirectional_disconnect": _UNI_DISCONNECTS,
    }
    v6 = {
        "uni_websocket": {
            "join_push_messages": True,
            "disable_disconnect_push": True,
            "disable_closing_handshake": True,
            "write_timeout": "3s",
        },
        "uni_sse": {"connect_code_to_http_response": _TRANSFORMS},
        "client": {"connect_code_to_unidirectional_disconnect": _UNI_DISCONNECTS},
    }
    config = _load(tmp_path, v6)
    assert _load(tmp_path, v5) == config
    assert config.uni.websocket_join_push_messages and config.uni.websocket_write_timeout == 3
    assert config.uni.sse_code_to_http == (CodeTransform(109, 401, ""),)
    assert config.uni.http_stream_code_to_http is None
    disconnects = config.client.connect_code_to_unidirectional_disconnect
    assert disconnects == (CodeTransform(103, 4503, "forbidden"),)


def test_transforms_that_are_not_enabled_are_not_applied(tmp_path: Path) -> None:
    off = {**_TRANSFORMS, "enabled": False}
    config = _load(tmp_path, {"uni_http_stream": {"connect_code_to_http_response": off}})
    assert config.uni.http_stream_code_to_http is None
    enabled_empty = {"uni_http_stream": {"connect_code_to_http_response": {"enabled": True}}}
    assert _load(tmp_path, enabled_empty).uni.http_stream_code_to_http == ()


def test_transforms_come_from_the_environment_as_json(tmp_path: Path) -> None:
    env = {"CENTRIFUGO_UNI_SSE_CONNECT_CODE_TO_HTTP_RESPONSE": json.dumps(_TRANSFORMS)}
    assert _load(tmp_path, {}, env).uni.sse_code_to_http == (CodeTransform(109, 401, ""),)


@pytest.mark.parametrize(
    ("group", "message"),
    [
        ({"enabled": True, "transforms": [{}]}, r"transforms\[0\]: expected"),
        (
            {"enabled": True, "transforms": [{"code": 0, "to": {"status_code": 401}}]},
            r"transforms\[0\]\.code: expected a positive integer",
        ),
        (
            {"enabled": True, "transforms": [{"code": 109, "to": {"status_code": 42}}]},
            r"transforms\[0\]\.to\.status_code: expected an HTTP status",
        ),
        ({"enabled": "yes"}, r"enabled: expected true or false"),
        ({"enabled": True, "transform": []}, r"unknown field 'transform'"),
    ],
    ids=["no-code", "zero-code", "bad-status", "enabled-not-bool", "misspelt-field"],
)
def test_malformed_http_transforms_are_refused_naming_the_item(
    tmp_path: Path, group: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=r"uni_sse\.connect_code_to_http_response: " + message):
        _load(tmp_path, {"uni_sse": {"connect_code_to_http_response": group}})


def test_a_disconnect_transform_needs_a_disconnect_code_and_an_ascii_reason(
    tmp_path: Path,
) -> None:
    for to, message in (
        ({"code": 1000}, r"to\.code: expected a disconnect code from 3000 to 4999"),
        ({"code": 4000, "reason": "é"}, r"to\.reason: expected an ASCII string"),
    ):
        group = {"enabled": True, "transforms": [{"code": 103, "to": to}]}
        with pytest.raises(ConfigError, match=message):
            _load(tmp_path, {"client": {"connect_code_to_unidirectional_disconnect": group}})


def test_a_websocket_buffer_key_loads_with_a_warning_only_when_set(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    config = {
        "websocket": {"write_buffer_size": 8192, "use_write_buffer_pool": False},
        "uni_websocket": {"read_buffer_size": 4096, "write_buffer_size": 0},
    }
    path.write_text(json.dumps(config))
    warnings: list[str] = []
    load_config(str(path), env={}, warnings=warnings)
    assert sorted(warnings) == [
        "uni_websocket.read_buffer_size: accepted and ignored, it has no effect in Rotary",
        "websocket.write_buffer_size: accepted and ignored, it has no effect in Rotary",
    ]


def test_compression_keys_of_both_websockets_load_in_v5_and_v6_form(tmp_path: Path) -> None:
    v6 = _load(
        tmp_path,
        {
            "websocket": {"compression": True, "compression_min_size": 128},
            "uni_websocket": {"compression": True, "decompressed_message_size_limit": 9000},
        },
    )
    v5 = _load(tmp_path, {"websocket_compression": True, "websocket_compression_level": 9})
    assert (v6.websocket.compression, v6.websocket.compression_min_size) == (True, 128)
    assert v6.websocket.compression_level == 1
    assert (v6.uni.websocket_compression, v6.uni.websocket_decompressed_message_size_limit) == (
        True,
        9000,
    )
    assert (v5.websocket.compression, v5.websocket.compression_level) == (True, 9)


@pytest.mark.parametrize("section", ["websocket", "uni_websocket"])
def test_a_compression_level_outside_go_flates_range_is_refused(
    tmp_path: Path, section: str
) -> None:
    with pytest.raises(ConfigError, match=rf"{section}\.compression_level: must be from -2 to 9"):
        _load(tmp_path, {section: {"compression": True, "compression_level": 10}})


def test_an_unreadable_group_field_variable_is_refused_naming_it(tmp_path: Path) -> None:
    var = "CENTRIFUGO_UNI_HTTP_STREAM_CONNECT_CODE_TO_HTTP_RESPONSE_TRANSFORMS"
    with pytest.raises(ConfigError, match=rf"{var}: expected a JSON list of transforms"):
        _load(tmp_path, {}, env={var: "[{"})
    with pytest.raises(ConfigError, match=r"_ENABLED: expected true, false, 1 or 0"):
        _load(tmp_path, {}, env={var.replace("TRANSFORMS", "ENABLED"): "yes"})


def test_a_group_field_variable_applies_to_the_whole_group_variable(tmp_path: Path) -> None:
    var = "ROTARY_CLIENT_CONNECT_CODE_TO_UNIDIRECTIONAL_DISCONNECT"
    group = {"enabled": False, "transforms": [{"code": 109, "to": {"code": 4501}}]}
    config = _load(tmp_path, {}, env={var: json.dumps(group), f"{var}_ENABLED": "true"})
    assert config.client.connect_code_to_unidirectional_disconnect == (
        CodeTransform(109, 4501, ""),
    )
