"""Fuzz targets: every parser that takes bytes from outside, with the errors it may raise.

A target takes arbitrary bytes and returns normally, whether the input was accepted or
refused with one of the parser's documented errors; anything else it raises is a bug.
The same targets are driven by Hypothesis (tests/fuzz/test_properties.py), replayed from
the kept corpus (tests/fuzz/test_corpus.py) and fuzzed by atheris (`make fuzz`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import tempfile
import time
from collections.abc import Callable

import orjson

from rotary.api.errors import ApiError
from rotary.api.executor import ApiExecutor
from rotary.api.http import _split_commands
from rotary.auth import TokenRejected, TokenVerifier
from rotary.auth.settings import AuthSettings, TokenSettings
from rotary.errors import ConfigError
from rotary.protocol import protobuf
from rotary.protocol.codec import ProtocolViolation, decode_frame
from tests.api.fakes import RecordingNode

__all__ = ["TARGETS"]

_SECRET = "fuzz-secret-0123456789abcdef"
_VERIFIER = TokenVerifier(AuthSettings(connection=TokenSettings(hmac_secret_key=_SECRET)))
_NOW = time.time()
_LOOP = asyncio.new_event_loop()
_EXECUTOR = ApiExecutor(RecordingNode())
#: The API methods the recording node can serve (revocation has no fake: left out).
_METHODS = sorted(_EXECUTOR.methods - {"revoke_token", "invalidate_user_tokens"})
_CONFIG_DIR = tempfile.mkdtemp(prefix="rotary-fuzz-")


def command_frame(data: bytes) -> None:
    """One WebSocket text frame: one command, or several separated by newlines."""
    with contextlib.suppress(ProtocolViolation):
        decode_frame(data)


def protobuf_frame(data: bytes) -> None:
    """One binary WebSocket frame of the Protobuf protocol: length-prefixed Commands."""
    with contextlib.suppress(ProtocolViolation):
        protobuf.decode_frame(data)


def token(data: bytes) -> None:
    """A connection or subscription token as a client sends it (signature unchecked yet)."""
    text = data.decode("utf-8", "replace")
    for verify in (_VERIFIER.verify_connection_sync, _VERIFIER.verify_subscription_sync):
        with contextlib.suppress(TokenRejected):
            verify(text, now=_NOW)


def signed_claims(data: bytes) -> None:
    """A token whose signature is valid and whose payload is `data`: the claims parser."""
    header = _b64url(b'{"alg":"HS256","typ":"JWT"}')
    signing_input = header + b"." + _b64url(data)
    signature = hmac.digest(_SECRET.encode(), signing_input, hashlib.sha256)
    token(signing_input + b"." + _b64url(signature))


def api_body(data: bytes) -> None:
    """An HTTP API request body: the legacy multi-command form, and every method's params."""
    try:
        commands = _split_commands(data)
    except (ValueError, UnicodeDecodeError):
        commands = []
    try:
        params = orjson.loads(data)
    except orjson.JSONDecodeError:
        params = None
    if isinstance(params, dict):
        commands.append({"params": params})
    for command in commands[:4]:
        _run_methods(command.get("params") or command)


def _run_methods(params: dict[str, object]) -> None:
    for method in _METHODS:
        try:
            _LOOP.run_until_complete(_EXECUTOR.call(method, params))
        except ApiError as exc:
            # The recording node never fails: an internal error here is the executor's own
            # exception turned into 100, i.e. a bug the fuzzer found.
            if exc.code == 100:
                raise AssertionError(f"{method} failed on {params!r}") from exc.__cause__


def config_file(data: bytes) -> None:
    """A configuration file, read as JSON, YAML and TOML."""
    from rotary.config.load import load_config

    for suffix in (".json", ".yaml", ".toml"):
        path = os.path.join(_CONFIG_DIR, "config" + suffix)
        with open(path, "wb") as file:
            file.write(data)
        with contextlib.suppress(ConfigError):
            load_config(path, env={})


def _b64url(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


#: Target name → target; the name is also the corpus folder's.
TARGETS: dict[str, Callable[[bytes], None]] = {
    "command_frame": command_frame,
    "protobuf_frame": protobuf_frame,
    "token": token,
    "signed_claims": signed_claims,
    "api_body": api_body,
    "config_file": config_file,
}
