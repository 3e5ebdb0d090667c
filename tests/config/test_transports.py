"""Transport endpoint keys: Centrifugo v5 flat booleans and v6 sections give the same settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rotary.config import ConfigError, load_config
from rotary.config.model import EndpointSettings


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
