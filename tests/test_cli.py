"""The real `rotary` command line, run as `python -m rotary` in temporary directories
(docs/cli.md)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

SECRET = "cli-test-secret-0123456789-abcdefghijklmnop"
SUB_SECRET = "cli-test-subscription-secret-0123456789-xyz"
TOKEN_RE = r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+"


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m rotary ARGS` in `cwd` without any ROTARY_/CENTRIFUGO_ variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROTARY_", "CENTRIFUGO_"))}
    return subprocess.run(
        [sys.executable, "-m", "rotary", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def assert_one_error_line(result: subprocess.CompletedProcess[str], line: str) -> None:
    assert result.returncode == 1
    assert result.stdout == line + "\n"
    assert "Traceback" not in result.stderr


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    """A directory holding config.json with an HMAC secret and a `chat` namespace."""
    config = {"token_hmac_secret_key": SECRET, "namespaces": [{"name": "chat"}]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def write_config(cwd: Path, config: dict[str, Any], name: str = "config.json") -> None:
    (cwd / name).write_text(json.dumps(config))


def hs256(claims: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def decode(token: str, key: Any = SECRET, alg: str = "HS256") -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, key, algorithms=[alg], options={"verify_aud": False})
    return claims


# ---------------------------------------------------------------- gentoken


def test_gentoken_prints_centrifugos_header_and_a_token_pyjwt_accepts(cwd: Path) -> None:
    result = run(cwd, "gentoken", "-u", "123722")
    assert result.returncode == 0
    header, token, rest = result.stdout.split("\n")
    assert header == 'HMAC SHA-256 JWT for user "123722" with expiration TTL 168h0m0s:'
    assert re.fullmatch(TOKEN_RE, token) and rest == ""
    claims = decode(token)
    assert claims["sub"] == "123722"
    assert claims["exp"] - claims["iat"] == 604_800
    assert abs(claims["iat"] - time.time()) < 60
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}


def test_gentoken_for_anonymous_user_with_a_one_hour_ttl(cwd: Path) -> None:
    header, token, _ = run(cwd, "gentoken", "-t", "3600").stdout.split("\n")
    assert header == "HMAC SHA-256 JWT for anonymous user with expiration TTL 1h0m0s:"
    claims = decode(token)
    assert "sub" not in claims and claims["exp"] - claims["iat"] == 3600


def test_gentoken_with_negative_ttl_has_no_expiration(cwd: Path) -> None:
    header, token, _ = run(cwd, "gentoken", "-u", "1", "-t", "-1").stdout.split("\n")
    assert header == 'HMAC SHA-256 JWT for user "1" without expiration:'
    assert "exp" not in decode(token)


def test_gentoken_with_zero_ttl_keeps_centrifugos_quirk(cwd: Path) -> None:
    header, token, _ = run(cwd, "gentoken", "-u", "1", "-t", "0").stdout.split("\n")
    assert header == 'HMAC SHA-256 JWT for user "1" with expiration TTL 0s:'
    assert "exp" not in decode(token)


def test_gentoken_quiet_prints_only_the_token_without_newline(cwd: Path) -> None:
    result = run(cwd, "gentoken", "-u", "7", "-q", "-t", "600")
    assert re.fullmatch(TOKEN_RE, result.stdout)
    assert decode(result.stdout)["sub"] == "7"


def test_gentoken_without_secret_is_one_error_line(tmp_path: Path) -> None:
    assert_one_error_line(run(tmp_path, "gentoken", "-u", "1"), "error: no HMAC secret key set")


def test_gentoken_sets_the_custom_user_id_claim(cwd: Path) -> None:
    write_config(cwd, {"token_hmac_secret_key": SECRET, "token_user_id_claim": "user_id"})
    token = run(cwd, "gentoken", "-u", "42", "-q").stdout
    claims = decode(token)
    assert (claims["sub"], claims["user_id"]) == ("42", "42")


def test_gentoken_reads_a_v6_config_named_with_c(cwd: Path) -> None:
    write_config(cwd, {"client": {"token": {"hmac_secret_key": SUB_SECRET}}}, "v6.json")
    token = run(cwd, "gentoken", "-c", "v6.json", "-u", "1", "-q").stdout
    assert decode(token, SUB_SECRET)["sub"] == "1"


def _pem(private: Any) -> bytes:
    data: bytes = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return data


@pytest.mark.parametrize(
    ("make_key", "alg", "words"),
    [
        (lambda: rsa.generate_private_key(65537, 2048), "RS256", "RSA SHA-256"),
        (lambda: ec.generate_private_key(ec.SECP256R1()), "ES256", "ECDSA SHA-256"),
        (lambda: ec.generate_private_key(ec.SECP384R1()), "ES384", "ECDSA SHA-384"),
        (ed25519.Ed25519PrivateKey.generate, "EdDSA", "EdDSA Ed25519"),
    ],
)
def test_gentoken_signs_with_a_private_key(cwd: Path, make_key: Any, alg: str, words: str) -> None:
    private = make_key()
    (cwd / "key.pem").write_bytes(_pem(private))
    result = run(cwd, "gentoken", "-u", "9", "--private-key", "key.pem")
    header, token, _ = result.stdout.split("\n")
    assert header == f'{words} JWT for user "9" with expiration TTL 168h0m0s:'
    assert jwt.get_unverified_header(token)["alg"] == alg
    assert decode(token, private.public_key(), alg)["sub"] == "9"


def test_gentoken_alg_flag_picks_the_hash(cwd: Path) -> None:
    private = rsa.generate_private_key(65537, 2048)
    (cwd / "key.pem").write_bytes(_pem(private))
    result = run(cwd, "gentoken", "--alg", "RS512", "--private-key", "key.pem")
    header, token, _ = result.stdout.split("\n")
    assert header == "RSA SHA-512 JWT for anonymous user with expiration TTL 168h0m0s:"
    assert "iat" in decode(token, private.public_key(), "RS512")


# ---------------------------------------------------------------- gensubtoken


def test_gensubtoken_prints_centrifugos_header(cwd: Path) -> None:
    result = run(cwd, "gensubtoken", "-u", "123722", "-s", "channel")
    assert result.returncode == 0
    header, token, _ = result.stdout.split("\n")
    assert header == (
        'HMAC SHA-256 JWT for user "123722" and channel "channel" with expiration TTL 168h0m0s:'
    )
    claims = decode(token)
    assert (claims["sub"], claims["channel"]) == ("123722", "channel")
    assert claims["exp"] - claims["iat"] == 604_800


def test_gensubtoken_for_anonymous_user(cwd: Path) -> None:
    header, token, _ = run(cwd, "gensubtoken", "-s", "chat:x", "-t", "600").stdout.split("\n")
    assert (
        header
        == 'HMAC SHA-256 JWT for anonymous user and channel "chat:x" with expiration TTL 10m0s:'
    )
    assert "sub" not in decode(token)


def test_gensubtoken_requires_a_channel(cwd: Path) -> None:
    assert_one_error_line(run(cwd, "gensubtoken", "-u", "1"), "channel is required")


def test_gensubtoken_uses_the_separate_subscription_secret(cwd: Path) -> None:
    write_config(
        cwd,
        {
            "token_hmac_secret_key": SECRET,
            "separate_subscription_token_config": True,
            "subscription_token_hmac_secret_key": SUB_SECRET,
        },
    )
    token = run(cwd, "gensubtoken", "-u", "1", "-s", "ch", "-q").stdout
    assert decode(token, SUB_SECRET)["channel"] == "ch"


# ---------------------------------------------------------------- checktoken


def test_checktoken_accepts_a_generated_token(cwd: Path) -> None:
    token = run(cwd, "gentoken", "-u", "123722", "-q").stdout
    result = run(cwd, "checktoken", token)
    assert result.returncode == 0
    line, payload, rest = result.stdout.split("\n")
    assert line == "valid token for user 123722"
    assert json.loads(payload.removeprefix("payload: "))["sub"] == "123722"
    assert payload.startswith("payload: {") and rest == ""


def test_checktoken_prints_the_raw_payload(cwd: Path) -> None:
    token = hs256({"info": {"b": 1, "a": 2}, "exp": int(time.time()) + 60})
    result = run(cwd, "checktoken", token)
    lines = result.stdout.split("\n")
    assert lines[0] == "valid token for anonymous user"
    raw = jwt.api_jws.decode_complete(token, SECRET, algorithms=["HS256"])["payload"]
    assert lines[1] == f"payload: {raw.decode()}"


def test_checktoken_refuses_an_expired_token_with_reason(cwd: Path) -> None:
    token = hs256({"sub": "1", "exp": 1_000_000})
    result = run(cwd, "checktoken", token)
    assert result.returncode == 1
    assert result.stdout.split("\n") == [
        'error: token with algorithm HS256 and claims {"sub":"1","exp":1000000} '
        "has error: token expired",
        "reason: expired (the token's exp is in the past)",
        "",
    ]


def test_checktoken_refuses_a_bad_signature(cwd: Path) -> None:
    token = hs256({"sub": "1"}, secret=SUB_SECRET)
    result = run(cwd, "checktoken", token)
    assert result.returncode == 1
    first, second, _ = result.stdout.split("\n")
    assert first.startswith('error: token with algorithm HS256 and claims {"sub":"1"} has error: ')
    assert "invalid token: " in first and "signature" in first
    assert second.startswith("reason: signature (")


def test_checktoken_refuses_a_channel_claim(cwd: Path) -> None:
    result = run(cwd, "checktoken", hs256({"sub": "1", "channel": "x"}))
    assert result.returncode == 1
    assert result.stdout.split("\n")[0].endswith(
        "has error: invalid token: connection JWT can not contain channel claim, "
        "only subscription JWT can"
    )


def test_checktoken_refuses_an_unknown_namespace_with_102(cwd: Path) -> None:
    result = run(cwd, "checktoken", hs256({"sub": "1", "channels": ["nope:x"]}))
    assert result.returncode == 1
    assert result.stdout.split("\n")[0].endswith("has error: 102: unknown channel")
    assert result.stdout.split("\n")[1].startswith("reason: unknown_channel (")


def test_checktoken_refuses_a_disabled_algorithm(cwd: Path) -> None:
    private = rsa.generate_private_key(65537, 2048)
    token = jwt.encode({"sub": "1"}, private, algorithm="RS256")
    first = run(cwd, "checktoken", token).stdout.split("\n")[0]
    assert first.startswith("error: token with algorithm RS256 and claims")
    assert "invalid token: " in first and "RS256" in first


def test_checktoken_refuses_a_malformed_token(cwd: Path) -> None:
    result = run(cwd, "checktoken", "not-a-token")
    assert result.returncode == 1
    assert result.stdout.split("\n")[0] == "error: token format is not valid"
    assert result.stdout.split("\n")[1].startswith("reason: malformed (")


@pytest.mark.parametrize("command", ["checktoken", "checksubtoken"])
def test_check_commands_need_exactly_one_token(cwd: Path, command: str) -> None:
    expected = f"error: provide token to check [rotary {command} <TOKEN>]"
    assert_one_error_line(run(cwd, command), expected)
    assert_one_error_line(run(cwd, command, "a", "b"), expected)


def test_checksubtoken_accepts_a_generated_token_and_quotes_the_user(cwd: Path) -> None:
    token = run(cwd, "gensubtoken", "-u", "42", "-s", "chat:room", "-q").stdout
    result = run(cwd, "checksubtoken", token)
    assert result.returncode == 0
    line, payload, _ = result.stdout.split("\n")
    assert line == 'valid subscription token for user "42" and channel "chat:room"'
    assert json.loads(payload.removeprefix("payload: "))["channel"] == "chat:room"


def test_checksubtoken_for_anonymous_user(cwd: Path) -> None:
    result = run(cwd, "checksubtoken", hs256({"channel": "news"}))
    line = result.stdout.split("\n")[0]
    assert line == 'valid subscription token for anonymous user and channel "news"'


def test_checksubtoken_refuses_a_token_without_channel(cwd: Path) -> None:
    result = run(cwd, "checksubtoken", hs256({"sub": "1"}))
    assert result.returncode == 1
    first, second, _ = result.stdout.split("\n")
    assert first.startswith('error: token with algorithm HS256 and claims {"sub":"1"} has error:')
    assert second.startswith("reason: missing_channel (")


def test_checksubtoken_refuses_an_unknown_namespace(cwd: Path) -> None:
    result = run(cwd, "checksubtoken", hs256({"sub": "1", "channel": "nope:x"}))
    assert result.stdout.split("\n")[0].endswith("has error: 102: unknown channel")


# ---------------------------------------------------------------- config commands


@pytest.mark.parametrize("name", ["config.json", "c.yaml", "c.yml", "c.toml"])
def test_genconfig_writes_uuid_secrets_in_the_named_format(tmp_path: Path, name: str) -> None:
    result = run(tmp_path, "genconfig", "-c", name)
    assert (result.returncode, result.stdout) == (0, "")
    text = (tmp_path / name).read_text()
    doc = json.loads(text) if name.endswith("json") else _yaml_or_toml(name, text)
    keys = ["token_hmac_secret_key", "admin_password", "admin_secret", "api_key"]
    assert sorted(doc) == sorted([*keys, "allowed_origins"])
    for key in keys:
        assert uuid.UUID(doc[key]).version == 4
    assert doc["allowed_origins"] == []
    assert run(tmp_path, "checkconfig", "-c", name).returncode == 0


def _yaml_or_toml(name: str, text: str) -> dict[str, Any]:
    import tomllib

    loaded: dict[str, Any] = tomllib.loads(text) if name.endswith("toml") else yaml.safe_load(text)
    return loaded


def test_genconfig_refuses_to_overwrite(cwd: Path) -> None:
    before = (cwd / "config.json").read_text()
    assert_one_error_line(
        run(cwd, "genconfig"), "error: output config file already exists: config.json"
    )
    assert (cwd / "config.json").read_text() == before


def test_genconfig_refuses_unknown_extensions(tmp_path: Path) -> None:
    result = run(tmp_path, "genconfig", "-c", "config.ini")
    assert result.returncode == 1 and result.stdout.count("\n") == 1
    assert "json, yaml, yml, toml" in result.stdout
    assert not (tmp_path / "config.ini").exists()


def test_bad_config_is_one_line_without_traceback(cwd: Path) -> None:
    (cwd / "config.json").write_text('{"port": "x", "presense": true}')
    for command in (["gentoken"], ["checktoken", "x"], []):
        result = run(cwd, *command)
        assert result.returncode == 1
        assert result.stdout.count("\n") == 1 and result.stdout.startswith("error: ")
        assert 'presense: unknown key; did you mean "presence"?' in result.stdout
        assert 'port: expected an integer, got "x"' in result.stdout
        assert "Traceback" not in result.stdout + result.stderr


def test_unparsable_config_is_one_line(cwd: Path) -> None:
    (cwd / "config.json").write_text('{"port": ')
    result = run(cwd, "gentoken")
    assert result.returncode == 1 and result.stdout.count("\n") == 1
    assert result.stdout.startswith("error: config.json: cannot parse json")


def test_missing_named_config_is_one_line(tmp_path: Path) -> None:
    assert_one_error_line(
        run(tmp_path, "gentoken", "-c", "nope.json"), "error: nope.json: config file not found"
    )


def test_checkconfig_prints_nothing_for_a_good_config(cwd: Path) -> None:
    result = run(cwd, "checkconfig")
    assert (result.returncode, result.stdout) == (0, "")


def test_checkconfig_lists_every_problem(cwd: Path) -> None:
    (cwd / "config.json").write_text('{"port": "x", "engine": "mongo", "ping_interval": 5}')
    result = run(cwd, "checkconfig")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines)
    assert any(line.startswith("error: engine: unknown engine") for line in lines)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("ROTARY_", "CENTRIFUGO_"))}


def test_checkconfig_names_unknown_variables_even_when_the_config_fails(cwd: Path) -> None:
    (cwd / "config.json").write_text('{"port": "x"}')
    env = {**_clean_env(), "CENTRIFUGO_NO_SUCH_KEY": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "rotary", "checkconfig"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "warning: unknown environment variable CENTRIFUGO_NO_SUCH_KEY" in result.stdout


def test_gentoken_writes_unknown_variable_warnings_to_stderr_only(cwd: Path) -> None:
    env = {**_clean_env(), "ROTARY_NO_SUCH_KEY": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "rotary", "gentoken", "-u", "1", "-q"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0
    assert re.fullmatch(TOKEN_RE + "\n?", result.stdout)
    assert result.stderr == "warning: unknown environment variable ROTARY_NO_SUCH_KEY\n"


def test_version(tmp_path: Path) -> None:
    result = run(tmp_path, "version")
    assert result.returncode == 0
    expected = f"Rotary v0.1.0 (Centrifugo protocol compatible, Python {sys.version.split()[0]})"
    assert result.stdout == expected + "\n"


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["dev"],
        ["gentoken"],
        ["gensubtoken"],
        ["checktoken"],
        ["checksubtoken"],
        ["genconfig"],
        ["checkconfig"],
        ["version"],
    ],
)
def test_help_exits_zero(tmp_path: Path, command: list[str]) -> None:
    result = run(tmp_path, *command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: rotary")


def test_unknown_flags_are_one_error_line(tmp_path: Path) -> None:
    result = run(tmp_path, "gentoken", "--bogus")
    assert result.returncode == 1 and result.stdout.count("\n") == 1
    assert result.stdout.startswith("error: unrecognized arguments: --bogus")
    assert result.stderr == ""


def test_bad_flag_values_are_one_error_line(tmp_path: Path) -> None:
    result = run(tmp_path, "gentoken", "-t", "week")
    assert result.returncode == 1 and result.stdout.startswith("error: argument -t/--ttl")


# ---------------------------------------------------------------- dev


def test_dev_creates_a_config_prints_a_token_and_the_demo_and_admin_urls(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROTARY_", "CENTRIFUGO_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rotary", "dev", "--port", "0", "--address", "127.0.0.1"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().rstrip("\n") for _ in range(7)]
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    config = json.loads((tmp_path / "config.dev.json").read_text())
    assert lines[0] == "created development config config.dev.json"
    assert lines[1] == "using config config.dev.json"
    assert lines[2] == 'HMAC SHA-256 JWT for user "dev-user" with expiration TTL 24h0m0s:'
    claims = decode(lines[3], config["token_hmac_secret_key"])
    assert claims["sub"] == "dev-user" and claims["exp"] - claims["iat"] == 86_400
    assert lines[4] == "WebSocket endpoint: ws://127.0.0.1:0/connection/websocket"
    assert lines[5] == "Demo chat: http://127.0.0.1:0/demo/"
    assert lines[6] == "Admin UI: http://127.0.0.1:0/ (password: admin_password in config.dev.json)"
    assert config["admin"] is True and len(config["admin_password"]) >= 16
    assert config["admin_password"] not in "\n".join(lines)
    assert config["allowed_origins"] == ["*"]
    assert config["namespaces"][0]["name"] == "chat"
    assert config["force_recovery"] and config["history_ttl"] == "300s"


def test_dev_keeps_an_existing_config(tmp_path: Path) -> None:
    run(tmp_path, "genconfig", "-c", "config.dev.json")
    before = (tmp_path / "config.dev.json").read_text()
    result = run(tmp_path, "dev", "--port", "-5")
    assert "created development config" not in result.stdout
    assert (tmp_path / "config.dev.json").read_text() == before
    assert result.returncode == 1
    assert result.stdout.strip().splitlines()[-1].startswith("error: port")


def test_checkconfig_reports_a_public_key_that_does_not_load(cwd: Path) -> None:
    write_config(cwd, {"token_rsa_public_key": "not a PEM"})
    result = run(cwd, "checkconfig")
    assert result.returncode == 1
    assert result.stdout.startswith("error: token_rsa_public_key")
    assert "Traceback" not in result.stdout + result.stderr


# ---------------------------------------------------------------- serve flags


@pytest.mark.parametrize(
    "spelling",
    [
        ["--workers", "2"],
        ["serve", "--workers", "2"],
        ["--workers", "2", "serve"],
        ["--workers=2", "serve"],
    ],
)
def test_workers_flag_is_honoured_before_or_after_serve(cwd: Path, spelling: list[str]) -> None:
    # The memory engine refuses several workers, and says how many it was asked for: proof
    # that the flag reached the command, wherever it was written.
    result = run(cwd, *spelling)
    assert result.returncode == 1
    assert result.stdout.startswith("error: --workers 2 needs the Redis engine")


def test_server_flags_given_before_serve_are_kept() -> None:
    from rotary.cli import _parser

    args = _parser().parse_args(["--port", "9123", "--address", "127.0.0.2", "serve"])
    assert (args.port, args.address, args.workers) == (9123, "127.0.0.2", 1)
    args = _parser().parse_args(["serve"])
    assert (args.port, args.address, args.workers, args.reuse_port) == (None, None, 1, False)
