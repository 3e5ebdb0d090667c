"""Command line: parse, call one function, print (docs/cli.md).

Every command prints to stdout. Every failure is one line on stdout and exit status 1,
never a traceback. ``rotary`` without a command runs the server.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib
import os
import platform
import secrets
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from rotary import __version__
from rotary.auth import TokenRejected, TokenVerifier
from rotary.channels import ChannelResolver
from rotary.clock import SystemClock
from rotary.config import DEFAULT_CONFIG_PATH, Config, format_duration, load_config
from rotary.config.doc import config_reference
from rotary.config.templates import dev_config, generated_config, write_new_config
from rotary.engines.revocation import TokenIdentity, revocation_store_for
from rotary.errors import ConfigError, RotaryError
from rotary.policy.tokens import REVOCATION_WORDS

__all__ = ["main"]

_WEEK = 604_800
_DEV_CONFIG_PATH = "config.dev.json"
_DEV_USER = "dev-user"
_DEV_TTL = 86_400
#: Where ``npm ci`` in web/ (run by ``make run``) puts centrifuge-js's browser build.
_DEMO_SDK = "web/node_modules/centrifuge/dist/centrifuge.js"
_ALG_NAMES = {
    "HS256": "HMAC SHA-256",
    "HS384": "HMAC SHA-384",
    "HS512": "HMAC SHA-512",
    "RS256": "RSA SHA-256",
    "RS384": "RSA SHA-384",
    "RS512": "RSA SHA-512",
    "ES256": "ECDSA SHA-256",
    "ES384": "ECDSA SHA-384",
    "ES512": "ECDSA SHA-512",
    "EdDSA": "EdDSA Ed25519",
}
#: Plain words for `TokenRejected.reason` values, printed by checktoken/checksubtoken.
_REASON_WORDS = {
    "signature": "the signature does not match the configured key",
    "expired": "the token's exp is in the past",
    "not_yet_valid": "the token's nbf is in the future",
    "audience": "the token's aud does not match the configured audience",
    "issuer": "the token's iss does not match the configured issuer",
    "algorithm": "the token's alg is not enabled by the configured keys",
    "malformed": "the token is not a well-formed JWT",
    "claims": "a claim has the wrong JSON type",
    "channel_claim": "a connection token must not carry a channel claim",
    "missing_channel": "a subscription token needs a channel claim",
    "unknown_key": "no key matches the token's kid",
    "unknown_channel": "a channel named by the token has no configured namespace",
    "jwks_unavailable": "the JWKS endpoint could not be fetched",
    "too_large": "the token is longer than token_max_size",
    "b64": "b64info or b64data is not valid standard base64",
    "channel_mismatch": "the token is for another channel",
    "user_mismatch": "the token is for another user",
    "client_mismatch": "the token is for another client",
}


class _Failure(Exception):
    """A command failed; `line` is printed as is and the exit status is 1."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _Failure(f"error: {message}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with `argv` (default: sys.argv[1:]); return the exit status."""
    try:
        args = _parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except _Failure as failure:
        _say(failure.line)
    except ConfigError as exc:
        _say(f"error: {'; '.join(exc.problems) or exc}")
    except (RotaryError, OSError) as exc:
        _say(f"error: {exc}")
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the promise is one line, never a traceback
        _say(f"error: unexpected {type(exc).__name__}: {exc}")
    return 1


def _say(line: str = "", *, end: str = "\n") -> None:
    sys.stdout.write(line + end)
    sys.stdout.flush()


# ---------------------------------------------------------------- argument parsing


def _parser() -> _Parser:
    config = _Parser(add_help=False)
    config.add_argument(
        "-c", "--config", default=argparse.SUPPRESS, help="config file (default config.json)"
    )
    root = _Parser(
        prog="rotary",
        description="Rotary: a real-time messaging server speaking Centrifugo's protocol.",
        parents=[config],
    )
    _add_server_flags(root)
    _add_worker_flags(root)
    root.set_defaults(handler=_cmd_serve)
    commands = root.add_subparsers(title="commands", metavar="COMMAND")
    serve = _add(commands, "serve", "run the server (the default)", _cmd_serve, config)
    # A subcommand's defaults overwrite what the root already parsed, so its copies of the
    # root's flags have none: `rotary --workers 2 serve` keeps the 2.
    _add_server_flags(serve, inherited=True)
    _add_worker_flags(serve, inherited=True)
    dev = _add(commands, "dev", "write a development config if missing and run", _cmd_dev)
    dev.add_argument("-c", "--config", default=_DEV_CONFIG_PATH, help="development config file")
    dev.add_argument(
        "--demo-sdk",
        default=_DEMO_SDK,
        help=f"centrifuge-js browser build for the demo page (default {_DEMO_SDK})",
    )
    _add_server_flags(dev, inherited=True)
    _add_token_commands(commands, config)
    _add(commands, "genconfig", "write a new config file", _cmd_genconfig, config)
    _add(commands, "checkconfig", "check a config file", _cmd_checkconfig, config)
    _add(commands, "configdoc", "print the configuration reference (Markdown)", _cmd_configdoc)
    _add(commands, "version", "print the version", _cmd_version)
    return root


def _add_server_flags(parser: argparse.ArgumentParser, *, inherited: bool = False) -> None:
    """`inherited`: `parser` is a subcommand repeating the root's flags; it sets no defaults
    (argparse lets a subcommand's defaults overwrite what the root parsed before it)."""
    unset = argparse.SUPPRESS if inherited else None
    parser.add_argument("--port", type=int, default=unset, help="port to listen on")
    parser.add_argument("--address", default=unset, help="address to listen on")
    parser.add_argument(
        "--log_level", default=unset, help="none, trace, debug, info, warn or error"
    )


def _add_worker_flags(parser: argparse.ArgumentParser, *, inherited: bool = False) -> None:
    """`inherited` as in `_add_server_flags`."""
    parser.add_argument(
        "--workers",
        type=int,
        default=argparse.SUPPRESS if inherited else 1,
        help="node processes sharing the port, one per core (Redis engine only; default 1)",
    )
    # Set by the supervisor on its workers: bind with SO_REUSEPORT.
    parser.add_argument(
        "--reuse-port",
        action="store_true",
        default=argparse.SUPPRESS if inherited else False,
        help=argparse.SUPPRESS,
    )


def _add(
    commands: Any,
    name: str,
    text: str,
    handler: Callable[[argparse.Namespace], int],
    *parents: argparse.ArgumentParser,
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=text, description=text, parents=list(parents)
    )
    parser.set_defaults(handler=handler)
    return parser


def _add_token_commands(commands: Any, config: argparse.ArgumentParser) -> None:
    for name, text, handler in (
        ("gentoken", "generate a connection token", _cmd_gentoken),
        ("gensubtoken", "generate a subscription token", _cmd_gensubtoken),
    ):
        parser = _add(commands, name, text, handler, config)
        parser.add_argument("-u", "--user", default="", help='user id (default "" = anonymous)')
        if name == "gensubtoken":
            parser.add_argument("-s", "--channel", default="", help="channel (required)")
        parser.add_argument(
            "-t", "--ttl", type=int, default=_WEEK, help="seconds; -1 = no expiration"
        )
        parser.add_argument("-q", "--quiet", action="store_true", help="print the token only")
        parser.add_argument("--alg", help="signing algorithm (default HS256, or by key type)")
        parser.add_argument("--private-key", help="PEM file of an RSA, ECDSA or Ed25519 key")
    for name, text, handler in (
        ("checktoken", "verify a connection token", _cmd_checktoken),
        ("checksubtoken", "verify a subscription token", _cmd_checksubtoken),
    ):
        parser = _add(commands, name, text, handler, config)
        parser.add_argument("token", nargs="*", help="the token")


def _config_path(args: argparse.Namespace) -> str:
    return str(getattr(args, "config", DEFAULT_CONFIG_PATH))


def _load(
    args: argparse.Namespace,
    overrides: dict[str, object] | None = None,
    warnings: list[str] | None = None,
) -> Config:
    """The configuration; its warnings go to `warnings`, or to stderr when that is None
    (stdout may be a token a script reads)."""
    found: list[str] = []
    config = load_config(_config_path(args), overrides=overrides, warnings=found)
    if warnings is None:
        for line in found:
            sys.stderr.write(f"warning: {line}\n")
    else:
        warnings += found
    return config


# ---------------------------------------------------------------- server commands


def _server_overrides(args: argparse.Namespace) -> dict[str, object]:
    flags = {"port": args.port, "address": args.address, "log_level": args.log_level}
    return {key: value for key, value in flags.items() if value is not None}


def _cmd_serve(args: argparse.Namespace) -> int:
    warnings: list[str] = []
    config = _load(args, _server_overrides(args), warnings)
    if args.workers > 1:
        return _supervise(args, config)
    if args.workers < 1:
        raise _Failure(f"error: --workers must be at least 1, not {args.workers}")
    return _run_server(config, warnings, reuse_port=args.reuse_port)


def _supervise(args: argparse.Namespace, config: Config) -> int:
    if config.engine.type != "redis":
        raise _Failure(
            f"error: --workers {args.workers} needs the Redis engine (engine: redis): with "
            f"the {config.engine.type} engine each worker would keep its own channels, "
            "presence and history, and clients on different workers would not see each "
            "other's publications"
        )
    from rotary.logs import configure_logging
    from rotary.workers import supervise

    configure_logging(config.log.level, json=config.log.json, file=config.log.file)
    return supervise(_without_workers(args.argv), args.workers)


def _without_workers(argv: list[str]) -> list[str]:
    """`argv` without its ``--workers N`` / ``--workers=N`` (a worker runs one node)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            kept.append(arg)
    return kept


def _run_server(
    config: Config,
    warnings: Sequence[str] = (),
    demo: Any = None,
    *,
    reuse_port: bool = False,
) -> int:
    try:
        # Imported late: the server wires every layer, which token and config commands
        # never need.
        server = importlib.import_module("rotary.server")
    except ImportError as exc:
        raise _Failure(f"error: the server is not available: {exc}") from None
    return int(server.run(config, warnings=warnings, demo=demo, reuse_port=reuse_port))


def _cmd_dev(args: argparse.Namespace) -> int:
    path = _config_path(args)
    if not Path(path).exists():
        content = dev_config(
            hmac_secret=secrets.token_hex(32),
            api_key=secrets.token_hex(16),
            admin_password=secrets.token_urlsafe(12),
            admin_secret=secrets.token_hex(32),
        )
        write_new_config(path, content)
        _say(f"created development config {path}")
    warnings: list[str] = []
    config = _load(args, _server_overrides(args), warnings)
    _say(f"using config {path}")
    token = _connection_token(config, _DEV_USER, _DEV_TTL, alg=None, private_key=None)
    _say(f"{token.header}:")
    _say(token.token)
    _say(f"WebSocket endpoint: {_websocket_url(config)}")
    _say(f"Demo chat: {_http_url(config)}/demo/")
    if config.admin.enabled:
        _say(f"Admin UI: {_http_url(config)}/ (password: admin_password in {path})")
    else:
        _say(f"Admin UI: off (set admin, admin_password and admin_secret in {path})")
    return _run_server(config, warnings, _demo_settings(config, args.demo_sdk))


def _demo_settings(config: Config, sdk: str) -> Any:
    from rotary.demo import DemoSettings

    return DemoSettings(
        sdk_path=Path(sdk).resolve(),
        hmac_secret=config.auth.connection.hmac_secret_key,
        websocket_path=config.websocket.handler_prefix,
    )


def _http_url(config: Config) -> str:
    return f"http://{_host_port(config)}"


def _websocket_url(config: Config) -> str:
    return f"ws://{_host_port(config)}{config.websocket.handler_prefix}"


def _host_port(config: Config) -> str:
    host = config.server.address or "localhost"
    if host in ("0.0.0.0", "::"):  # noqa: S104 - only shown, never bound
        host = "localhost"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{config.server.port}"


# ---------------------------------------------------------------- token generation


@dataclass(frozen=True, slots=True)
class _Generated:
    """A signed token and the header line that announces it (without the colon)."""

    header: str
    token: str


def _cmd_gentoken(args: argparse.Namespace) -> int:
    config = _load(args)
    generated = _connection_token(
        config, args.user, args.ttl, alg=args.alg, private_key=args.private_key
    )
    _print_generated(generated, quiet=args.quiet)
    return 0


def _cmd_gensubtoken(args: argparse.Namespace) -> int:
    config = _load(args)
    if not args.channel:
        raise _Failure("channel is required")
    settings = config.auth.subscription or config.auth.connection
    claims = _base_claims(args.user, args.ttl, settings.user_id_claim)
    claims["channel"] = args.channel
    alg, key = _signing_key(settings.hmac_secret_key, args.alg, args.private_key)
    who = f'user "{args.user}"' if args.user else "anonymous user"
    header = f'{_ALG_NAMES.get(alg, alg)} JWT for {who} and channel "{args.channel}" '
    header += _expiration_words(args.ttl)
    _print_generated(_Generated(header, _sign(claims, alg, key)), quiet=args.quiet)
    return 0


def _connection_token(
    config: Config, user: str, ttl: int, *, alg: str | None, private_key: str | None
) -> _Generated:
    settings = config.auth.connection
    claims = _base_claims(user, ttl, settings.user_id_claim)
    alg, key = _signing_key(settings.hmac_secret_key, alg, private_key)
    who = f'user "{user}"' if user else "anonymous user"
    header = f"{_ALG_NAMES.get(alg, alg)} JWT for {who} {_expiration_words(ttl)}"
    return _Generated(header, _sign(claims, alg, key))


def _base_claims(user: str, ttl: int, user_id_claim: str) -> dict[str, object]:
    now = int(SystemClock().now())
    claims: dict[str, object] = {}
    if user:
        claims["sub"] = user
        if user_id_claim:
            claims[user_id_claim] = user
    # Centrifugo's quirk kept on purpose (docs/cli.md): ttl 0 announces "0s" but sets no exp.
    if ttl > 0:
        claims["exp"] = now + ttl
    claims["iat"] = now
    return claims


def _expiration_words(ttl: int) -> str:
    if ttl < 0:
        return "without expiration"
    return f"with expiration TTL {format_duration(ttl)}"


def _signing_key(hmac_secret: str, alg: str | None, private_key: str | None) -> tuple[str, bytes]:
    """The algorithm and key bytes (HMAC secret or private key PEM) to sign with."""
    if private_key is not None:
        pem = Path(private_key).read_bytes()
        return alg or _alg_of_private_key(pem), pem
    if alg is not None and not alg.startswith("HS"):
        raise _Failure(f"error: --alg {alg} needs --private-key FILE")
    if not hmac_secret:
        raise _Failure("error: no HMAC secret key set")
    return alg or "HS256", hmac_secret.encode()


def _alg_of_private_key(pem: bytes) -> str:
    from rotary.auth.signing import alg_for_key

    try:
        alg = alg_for_key(pem)
    except ConfigError as exc:
        raise _Failure(f"error: cannot load private key: {exc}") from None
    if alg.startswith("HS"):
        raise _Failure("error: cannot load private key: the file is not a PEM")
    return alg


def _sign(claims: dict[str, object], alg: str, key: bytes) -> str:
    # The signing step of rotary.tokens: the CLI and backend code make tokens one way.
    from rotary.tokens import TokenError, sign_claims

    try:
        return sign_claims(claims, alg=alg, key=key)
    except TokenError as exc:
        raise _Failure(f"error: cannot sign token: {exc}") from None


def _print_generated(generated: _Generated, *, quiet: bool) -> None:
    if quiet:
        _say(generated.token, end="")
    else:
        _say(f"{generated.header}:")
        _say(generated.token)


# ---------------------------------------------------------------- token checks


def _cmd_checktoken(args: argparse.Namespace) -> int:
    return _check(args, "checktoken", subscription=False)


def _cmd_checksubtoken(args: argparse.Namespace) -> int:
    return _check(args, "checksubtoken", subscription=True)


def _check(args: argparse.Namespace, command: str, *, subscription: bool) -> int:
    if len(args.token) != 1:
        raise _Failure(f"error: provide token to check [rotary {command} <TOKEN>]")
    token = args.token[0]
    config = _load(args)
    try:
        line = asyncio.run(_verify(config, token, subscription=subscription))
    except TokenRejected as rejected:
        for out in _refusal_lines(rejected):
            _say(out)
        return 1
    except _Revoked as revoked:
        _say("error: token revoked")
        _say(f"reason: {revoked.reason} ({REVOCATION_WORDS.get(revoked.reason, revoked.reason)})")
        return 1
    _say(line)
    _say(f"payload: {_payload_text(token)}")
    return 0


async def _verify(config: Config, token: str, *, subscription: bool) -> str:
    known = ChannelResolver(config.channels).namespace_known
    verifier = TokenVerifier(config.auth, channel_known=known)
    now = SystemClock().now()
    try:
        if subscription:
            sub = await verifier.verify_subscription(token, now=now)
            await _check_revocation(config, TokenIdentity.of_subscription(sub), now)
            who = f'user "{sub.user}"' if sub.user else "anonymous user"
            return f'valid subscription token for {who} and channel "{sub.channel}"'
        conn = await verifier.verify_connection(token, now=now)
        await _check_revocation(config, TokenIdentity.of_connection(conn), now)
        return (
            f"valid token for user {conn.user}" if conn.user else "valid token for anonymous user"
        )
    finally:
        await verifier.close()


class _Revoked(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def _check_revocation(config: Config, identity: TokenIdentity, now: float) -> None:
    """Raise `_Revoked` when the Redis engine's revocation records refuse the token.

    With the memory engine the records live in the server's memory, out of the CLI's
    reach; Redis that cannot be reached is reported and the token not judged on it.
    """
    if config.engine.type != "redis":
        return
    store = revocation_store_for(config.engine, clock=SystemClock())
    try:
        await store.start()
        reason = store.is_revoked(identity, now=now)
    except RotaryError as exc:
        _say(f"warning: revocation not checked: {exc}")
        return
    finally:
        await store.close()
    if reason is not None:
        raise _Revoked(reason)


def _refusal_lines(rejected: Any) -> list[str]:
    """docs/cli.md's error line for a `TokenRejected`, then its machine reason in plain words."""
    reason, detail = str(rejected.reason), str(rejected.detail)
    explained = f"reason: {reason} ({_REASON_WORDS.get(reason, detail)})"
    if reason == "malformed" or (rejected.claims is None and reason != "too_large"):
        return ["error: token format is not valid", explained]
    if reason == "claims":
        return [f"error: {detail}", explained]
    claims = rejected.claims.decode(errors="replace") if rejected.claims else "null"
    outcome = str(rejected.outcome.value)
    if outcome == "expired":
        text = "token expired"
    elif outcome == "unknown_channel":
        text = "102: unknown channel"
    else:
        text = f"invalid token: {detail}"
    return [
        f"error: token with algorithm {rejected.alg} and claims {claims} has error: {text}",
        explained,
    ]


def _payload_text(token: str) -> str:
    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode(errors="replace")


# ---------------------------------------------------------------- config commands


def _cmd_genconfig(args: argparse.Namespace) -> int:
    path = _config_path(args)
    content = generated_config(
        hmac_secret=str(uuid.uuid4()),
        admin_password=str(uuid.uuid4()),
        admin_secret=str(uuid.uuid4()),
        api_key=str(uuid.uuid4()),
    )
    write_new_config(path, content)
    try:
        load_config(path, env={})
    except ConfigError:
        os.remove(path)
        raise
    return 0


def _cmd_checkconfig(args: argparse.Namespace) -> int:
    warnings: list[str] = []
    try:
        config = load_config(_config_path(args), warnings=warnings)
        # Keys (PEM text) and channel patterns are compiled only by their users: build them
        # so that a bad key is reported here rather than at the first connection.
        ChannelResolver(config.channels)
        TokenVerifier(config.auth)
    except ConfigError as exc:
        for problem in exc.problems or [str(exc)]:
            _say(f"error: {problem}")
        return 1
    finally:
        for line in warnings:
            _say(f"warning: {line}")
    return 0


def _cmd_configdoc(args: argparse.Namespace) -> int:
    _say(config_reference(), end="")
    return 0


def _cmd_version(args: argparse.Namespace) -> int:
    _say(
        f"Rotary v{__version__} (Centrifugo protocol compatible, "
        f"Python {platform.python_version()})"
    )
    return 0
