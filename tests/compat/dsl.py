"""The scenario language of the differential suite: scenarios are data, run by one runner.

A `Scenario` names a configuration (Centrifugo v6 keys, given unchanged to both servers) and
a list of steps. Steps that observe something (`Cmd`, `Reply`, `Push`, `Closed`, `Api`,
`Open`) add one entry to the transcript; the suite compares Centrifugo's transcript with
Rotary's entry by entry. Commands may hold `Tok` placeholders, signed when the step runs so
that `exp_in` is relative to that moment.

Example::

    Scenario("connect_expired_token_gets_109", "base", (
        Open("a"),
        Cmd("a", {"connect": {"token": Tok(exp_in=-10)}}),
    ))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Api",
    "Batch",
    "Closed",
    "Cmd",
    "Open",
    "Push",
    "Raw",
    "Reply",
    "Scenario",
    "Send",
    "Sleep",
    "Step",
    "Tok",
    "Uni",
    "Var",
]


@dataclass(frozen=True)
class Tok:
    """A JWT made when the step runs.

    `claims` are the payload (``sub`` defaults to "42"); `exp_in` seconds from now sets
    ``exp`` (None leaves it out); `expire_at_in` sets ``expire_at`` relative to now.
    `alg` picks the key: HS* use the scenario secret (or `secret`), RS256 and ES256 the
    suite's generated keys (`wrong_key` signs with another key of the same type).
    `header` adds fields to an HS* token's JOSE header (``crit``, ``kid``). `raw` replaces
    the whole token with that text (malformed-token cases).
    """

    sub: str | None = "42"
    exp_in: float | None = 3600
    expire_at_in: float | None = None
    alg: str = "HS256"
    secret: str | None = None
    wrong_key: bool = False
    raw: str | None = None
    claims: dict[str, Any] = field(default_factory=dict)
    header: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Open:
    """Open WebSocket connection `conn`; observes the handshake status (101 on success)."""

    conn: str
    query: str = ""


@dataclass(frozen=True)
class Var:
    """The value a earlier `Cmd` saved under `name` (e.g. the epoch a server chose)."""

    name: str


@dataclass(frozen=True)
class Cmd:
    """Send `body` with the next command id on `conn` and observe its reply.

    Pushes read while waiting are kept for `Push`; a close instead of a reply is observed
    as ``{"closed": [code, reason]}``. `save` maps variable names to slash paths of the
    reply (``{"epoch": "subscribe/epoch"}``) for later `Var` placeholders.
    """

    conn: str
    body: dict[str, Any]
    save: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Batch:
    """Send several commands in one WebSocket frame on `conn`; observe every reply, in order."""

    conn: str
    bodies: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Send:
    """Send `body` with the next command id on `conn`, without waiting (see `Reply`)."""

    conn: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """Observe the reply to the last `Send` on `conn`."""

    conn: str


@dataclass(frozen=True)
class Raw:
    """Send `text` as one WebSocket text frame on `conn` (malformed input)."""

    conn: str
    text: str


@dataclass(frozen=True)
class Push:
    """Observe the next `count` pushes on `conn` (server pings are skipped).

    `unordered`: the pushes are observed as one list in a canonical order, for pushes whose
    relative order no server promises (a broadcast to several channels). `save`, as for
    `Cmd`, reads paths of the last push (a unidirectional connect push's epochs).
    """

    conn: str
    count: int = 1
    unordered: bool = False
    save: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Closed:
    """Observe the close of `conn`: code, reason, and any messages still unread before it."""

    conn: str
    wait: float = 15.0


@dataclass(frozen=True)
class Api:
    """Call the server HTTP API `method` with `params`; observe HTTP status and body.

    `keep` limits the observation to these dotted paths of the body (for `info`, where node
    names and uptimes legitimately differ). `key` overrides the API key ("" sends none).
    """

    method: str
    params: dict[str, Any] = field(default_factory=dict)
    keep: tuple[str, ...] = ()
    key: str | None = None


@dataclass(frozen=True)
class Uni:
    """Open unidirectional connection `conn` over `transport` (uni_http_stream, uni_sse or
    uni_websocket) with connect `request`; observes the HTTP status (200, or 101 for the
    WebSocket). Its messages, connect push and pings (``{}``) included, are then observed
    with `Push`, its end with `Closed`.
    """

    conn: str
    transport: str
    request: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sleep:
    """Wait `seconds` (expiry scenarios; both servers run concurrently)."""

    seconds: float


Step = Open | Cmd | Batch | Send | Reply | Raw | Push | Closed | Api | Sleep | Uni


@dataclass(frozen=True)
class Scenario:
    """One differential case: `steps` run against both servers started with `config`.

    `config` names an entry of `tests.compat.configs.CONFIGS`. `quick` scenarios also run
    in `make test` (the short form); all run in `make compat`.
    """

    id: str
    config: str
    steps: tuple[Step, ...]
    quick: bool = False
