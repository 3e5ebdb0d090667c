"""The reference server's plumbing: finding the binary, and configurations both servers read."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from bench.centrifugo import find_centrifugo
from bench.common import ServerUnavailable
from bench.peers.centrifugo import centrifugo_config

from rotary.config.load import load_config
from rotary.protocol.codes import CodeTransform
from tests.compat import configs


def test_a_missing_binary_is_reported_with_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-centrifugo"
    monkeypatch.setenv("ROTARY_CENTRIFUGO_BIN", str(missing))
    with pytest.raises(ServerUnavailable, match=str(missing)):
        find_centrifugo()


@pytest.mark.parametrize("name", configs.names())
def test_rotary_reads_every_differential_configuration_unchanged(name: str, tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(configs.config(name)))
    load_config(str(path), env={})  # raises ConfigError listing every problem


@pytest.mark.parametrize("public", [False, True])
def test_rotary_reads_the_centrifugo_bench_configuration(public: bool, tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(centrifugo_config(public_channels=public)))
    load_config(str(path), env={})  # raises ConfigError listing every problem


_DISCONNECT_GROUP = {
    "enabled": True,
    "transforms": [{"code": 103, "to": {"code": 4503, "reason": "file"}}],
}
_GROUP_VARS = "CENTRIFUGO_CLIENT_CONNECT_CODE_TO_UNIDIRECTIONAL_DISCONNECT"
_SSE_VARS = "CENTRIFUGO_UNI_SSE_CONNECT_CODE_TO_HTTP_RESPONSE"
_TO_4501 = '[{"code": 109, "to": {"code": 4501, "reason": "env"}}]'


@pytest.mark.parametrize(
    ("file_group", "env"),
    [
        (None, {f"{_GROUP_VARS}_ENABLED": "true", f"{_GROUP_VARS}_TRANSFORMS": _TO_4501}),
        (_DISCONNECT_GROUP, {f"{_GROUP_VARS}_TRANSFORMS": _TO_4501}),
        (_DISCONNECT_GROUP, {f"{_GROUP_VARS}_ENABLED": "false"}),
        (None, {f"{_GROUP_VARS}_TRANSFORMS": _TO_4501}),
        (
            None,
            {
                f"{_SSE_VARS}_ENABLED": "1",
                f"{_SSE_VARS}_TRANSFORMS": '[{"code": 109, "to": {"status_code": 401}}]',
            },
        ),
    ],
    ids=["both-variables", "transforms-over-file", "disabled-over-file", "transforms-only", "sse"],
)
def test_connect_code_groups_read_from_field_variables_as_centrifugo_reads_them(
    centrifugo_binary: Path, tmp_path: Path, file_group: Any, env: dict[str, str]
) -> None:
    group = {"connect_code_to_unidirectional_disconnect": file_group}
    doc = {"client": group} if file_group else {}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    printed = subprocess.run(
        [str(centrifugo_binary), "defaultconfig", "-b", str(path), "-d"],
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        check=True,
        timeout=30,
    )
    theirs = json.loads(printed.stdout)
    warnings: list[str] = []
    ours = load_config(str(path), env=env, warnings=warnings)
    assert warnings == []
    assert ours.client.connect_code_to_unidirectional_disconnect == _transforms(
        theirs["client"]["connect_code_to_unidirectional_disconnect"], "code", "reason"
    )
    assert ours.uni.sse_code_to_http == (
        _transforms(theirs["uni_sse"]["connect_code_to_http_response"], "status_code", "body")
        or None
    )


def _transforms(group: dict[str, Any], code: str, text: str) -> tuple[CodeTransform, ...]:
    """Centrifugo's printed group as Rotary's transforms (none when not enabled)."""
    if not group["enabled"]:
        return ()
    return tuple(
        CodeTransform(t["code"], t["to"][code], t["to"].get(text, "")) for t in group["transforms"]
    )
