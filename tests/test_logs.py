"""Logging: plain and JSON lines, denial records, and that no token ever reaches a log."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rotary.errors import ConfigError
from rotary.logs import REDACTED, configure_logging, log_denial, redact


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


JWT = ".".join(
    [
        _b64(b'{"alg":"HS256","typ":"JWT"}'),
        _b64(b'{"sub":"42","exp":1900000000,"channel":"$x"}'),
        _b64(b"s" * 32),
    ]
)
# A token whose header does not start with '{"' (spaced JSON) is caught too.
ODD_JWT = ".".join([_b64(b'{ "alg": "HS256" }'), _b64(b'{ "sub": "42", "x": 1 }'), _b64(b"s" * 32)])


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def lines_of(path: Path) -> list[str]:
    for handler in logging.getLogger().handlers:
        handler.flush()
    return path.read_text(encoding="utf-8").splitlines()


def denial(logger: logging.Logger, **overrides: str) -> None:
    fields: dict[str, Any] = {
        "action": "subscribe",
        "reason": "signature",
        "user": "42",
        "client": "c-1",
        "channel": "$x",
        "outcome": "invalid",
    }
    fields.update(overrides)
    log_denial(logger, **fields)


def test_a_denial_is_one_plain_line_with_its_fields(tmp_path: Path) -> None:
    log = tmp_path / "rotary.log"
    configure_logging("info", json=False, file=str(log))

    denial(logging.getLogger("rotary.node"))

    [line] = lines_of(log)
    assert line.endswith(
        'INFO rotary.node: denied subscribe: reason=signature user="42" client="c-1" '
        'channel="$x" outcome=invalid'
    )


def test_a_denial_without_channel_leaves_the_channel_out_and_adds_detail(
    tmp_path: Path,
) -> None:
    log = tmp_path / "rotary.log"
    configure_logging("info", json=False, file=str(log))

    denial(logging.getLogger("rotary.node"), action="connect", channel="", detail="exp passed")

    [line] = lines_of(log)
    assert line.endswith(
        'denied connect: reason=signature user="42" client="c-1" outcome=invalid '
        'detail="exp passed"'
    )


def test_json_mode_writes_one_object_per_line_with_the_denial_fields(tmp_path: Path) -> None:
    log = tmp_path / "rotary.json"
    configure_logging("debug", json=True, file=str(log))

    denial(logging.getLogger("rotary.node"))
    logging.getLogger("rotary.other").debug("plain %s", "message", extra={"n": 3})

    first, second = (json.loads(line) for line in lines_of(log))
    assert first["level"] == "info"
    assert first["logger"] == "rotary.node"
    assert first["time"].endswith("Z")
    assert first["message"].startswith("denied subscribe: reason=signature")
    assert {k: first[k] for k in ("event", "action", "reason", "user", "client")} == {
        "event": "denial",
        "action": "subscribe",
        "reason": "signature",
        "user": "42",
        "client": "c-1",
    }
    assert (first["channel"], first["outcome"]) == ("$x", "invalid")
    assert (second["message"], second["n"], second["level"]) == ("plain message", 3, "debug")


@pytest.mark.parametrize("field", ["user", "client", "channel", "detail", "reason", "action"])
@pytest.mark.parametrize("json_mode", [False, True])
def test_a_jwt_in_any_denial_field_is_redacted(tmp_path: Path, field: str, json_mode: bool) -> None:
    log = tmp_path / "rotary.log"
    configure_logging("info", json=json_mode, file=str(log))

    denial(logging.getLogger("rotary.node"), **{field: f"Bearer {JWT}"})

    text = log.read_text(encoding="utf-8")
    assert JWT not in text
    assert JWT.split(".")[2] not in text
    assert REDACTED in text


@pytest.mark.parametrize("json_mode", [False, True])
def test_a_jwt_in_any_log_record_is_redacted_by_the_formatters(
    tmp_path: Path, json_mode: bool
) -> None:
    log = tmp_path / "rotary.log"
    configure_logging("info", json=json_mode, file=str(log))
    logger = logging.getLogger("rotary.elsewhere")

    logger.info("got %s", JWT, extra={"raw": {"token": ODD_JWT}})
    try:
        raise ValueError(f"bad token {JWT}")
    except ValueError:
        logger.exception("failed")

    text = log.read_text(encoding="utf-8")
    assert JWT not in text and ODD_JWT not in text
    # The plain format does not print `extra` fields; JSON does, redacted as well.
    assert text.count(REDACTED) == (3 if json_mode else 2)


def test_log_denial_has_no_way_to_pass_a_token() -> None:
    with pytest.raises(TypeError):
        log_denial(  # type: ignore[call-arg]
            logging.getLogger("rotary.node"),
            action="connect",
            reason="signature",
            user="42",
            client="c-1",
            outcome="invalid",
            token=JWT,
        )


def test_a_newline_in_a_client_value_cannot_forge_a_second_line(tmp_path: Path) -> None:
    log = tmp_path / "rotary.log"
    configure_logging("info", json=False, file=str(log))

    denial(logging.getLogger("rotary.node"), user='42"\nINFO forged', reason="a b")

    [line] = lines_of(log)
    assert 'user="42\\"\\nINFO forged"' in line
    assert 'reason="a b"' in line


def test_long_values_are_cut(tmp_path: Path) -> None:
    log = tmp_path / "rotary.json"
    configure_logging("info", json=True, file=str(log))

    denial(logging.getLogger("rotary.node"), channel="c" * 10_000)

    [line] = lines_of(log)
    assert len(json.loads(line)["channel"]) == 256


def test_configuring_again_replaces_only_the_handler_it_installed(tmp_path: Path) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    configure_logging("info", json=False, file=str(tmp_path / "a.log"))
    configure_logging("warn", json=True, file=str(tmp_path / "b.log"))

    added = [h for h in root.handlers if h not in before]
    assert len(added) == 1
    assert root.level == logging.WARNING
    logging.getLogger("rotary.x").warning("to b")
    assert lines_of(tmp_path / "a.log") == []
    assert json.loads(lines_of(tmp_path / "b.log")[0])["message"] == "to b"


def test_without_a_file_lines_go_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("error", json=False)

    logging.getLogger("rotary.x").warning("hidden")
    logging.getLogger("rotary.x").error("shown %s", JWT)

    err = capsys.readouterr().err
    assert "hidden" not in err
    assert f"ERROR rotary.x: shown {REDACTED}" in err


def test_an_unknown_level_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"log\.level"):
        configure_logging("verbose", json=False)


def test_redact_leaves_ordinary_text_alone() -> None:
    text = 'user "42" on channel news:sport at api.example.com, id eyJ-not-a-token'

    assert redact(text) == text
