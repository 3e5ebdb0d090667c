"""Unidirectional transports: connect push, publications, pings, disconnect push, refusals.

Each case runs over uni_http_stream, uni_sse and uni_websocket (ids end with the transport).
The client sends only its connect request; what it observes is the connect push, then the
pushes without the bidirectional ``{"push": …}`` wrapper, pings as ``{}``, and a disconnect
push before the end (a uni_websocket also closes with that code).
"""

from __future__ import annotations

from tests.compat.dsl import Api, Closed, Cmd, Open, Push, Scenario, Tok, Uni, Var
from tests.compat.scenarios._helpers import UNSIGNED

__all__ = ["UNI"]

_NEWS = {"subs": {"news": {}}}


def _cases(transport: str) -> list[Scenario]:
    short = transport.removeprefix("uni_")
    return [
        Scenario(
            f"uni_{short}_connect_push_then_publication",
            "base",
            (
                Uni("a", transport, {"token": Tok(claims=_NEWS)}),
                Push("a"),
                Api("publish", {"channel": "news", "data": {"text": "hi"}}),
                Push("a"),
            ),
            quick=transport == "uni_sse",
        ),
        Scenario(
            f"uni_{short}_server_subscribe_and_disconnect",
            "base",
            (
                Uni("a", transport, {"token": Tok()}),
                Push("a"),
                Api("subscribe", {"user": "42", "channel": "extra"}),
                Push("a"),
                Api("disconnect", {"user": "42"}),
                Push("a"),
                Closed("a"),
            ),
            quick=transport == "uni_websocket",
        ),
        Scenario(
            f"uni_{short}_pings_without_pongs",
            "fast_ping",
            (Uni("a", transport, {"token": Tok()}), Push("a", count=3)),
        ),
        Scenario(
            f"uni_{short}_expired_token_refused_3005",
            "base",
            (Uni("a", transport, {"token": Tok(exp_in=-10)}), Push("a"), Closed("a")),
            quick=transport == "uni_http_stream",
        ),
        Scenario(
            f"uni_{short}_unsigned_token_refused",
            "base",
            (Uni("a", transport, {"token": Tok(raw=UNSIGNED)}), Push("a"), Closed("a")),
        ),
        Scenario(
            f"uni_{short}_without_token_refused",
            "base",
            (Uni("a", transport, {}), Push("a"), Closed("a")),
        ),
    ]


_REC = {"subs": {"chat:urec": {}}}


def _recovery_cases(transport: str) -> list[Scenario]:
    """A server-side subscription (token ``subs``) recovered by a new connection that names
    the position it reached: the missed publications come in the connect push."""
    short = transport.removeprefix("uni_")

    def reconnect(conn: str, offset: int, epoch: object) -> Uni:
        position = {"recover": True, "offset": offset, "epoch": epoch}
        return Uni(conn, transport, {"token": Tok(claims=_REC), "subs": {"chat:urec": position}})

    def publish(n: int) -> Api:
        return Api("publish", {"channel": "chat:urec", "data": {"n": n}})

    return [
        Scenario(
            f"uni_{short}_recovery_returns_missed_publications",
            "base",
            (
                # Offset 1 is published first: Centrifugo v6 puts the epoch into that one.
                publish(0),
                Uni("a", transport, {"token": Tok(claims=_REC)}),
                Push("a", save={"e": "connect/subs/chat:urec/epoch"}),
                publish(1),
                Push("a"),
                Api("disconnect", {"user": "42"}),
                Push("a"),
                Closed("a"),
                publish(2),
                publish(3),
                reconnect("b", 2, Var("e")),
                Push("b"),
                reconnect("c", 2, "wrong-epoch"),
                Push("c"),
                reconnect("d", 4, Var("e")),
                Push("d"),
            ),
            quick=transport == "uni_websocket",
        ),
    ]


_LONG = {"text": "compressible " * 40}

# permessage-deflate: the suite's clients offer it, and read the same messages either way.
_DEFLATE = [
    Scenario(
        "uni_websocket_with_compression_delivers_small_and_large_pushes",
        "deflate",
        (
            Uni("a", "uni_websocket", {"token": Tok(claims=_NEWS)}),
            Push("a"),
            Api("publish", {"channel": "news", "data": {"n": 1}}),
            Api("publish", {"channel": "news", "data": _LONG}),
            Push("a", count=2),
        ),
        quick=True,
    ),
    Scenario(
        "websocket_with_compression_delivers_small_and_large_messages",
        "deflate",
        (
            Open("a"),
            Cmd("a", {"connect": {"token": Tok()}}),
            Cmd("a", {"subscribe": {"channel": "news"}}),
            Api("publish", {"channel": "news", "data": {"n": 1}}),
            Api("publish", {"channel": "news", "data": _LONG}),
            Push("a", count=2),
            Cmd("a", {"publish": {"channel": "news", "data": _LONG}}),
        ),
    ),
]


def _code_cases(transport: str) -> list[Scenario]:
    """Connect errors as HTTP answers (uni_http_stream, uni_sse: the status is observed)."""
    short = transport.removeprefix("uni_")
    return [
        Scenario(
            f"uni_{short}_expired_token_answered_with_its_http_status",
            "uni_codes",
            (Uni("a", transport, {"token": Tok(exp_in=-10)}),),
            quick=transport == "uni_sse",
        ),
        Scenario(
            f"uni_{short}_unsigned_token_answered_with_its_http_status",
            "uni_codes",
            (Uni("a", transport, {"token": Tok(raw=UNSIGNED)}),),
        ),
        Scenario(
            f"uni_{short}_unlisted_code_answered_500",
            "uni_codes",
            (Uni("a", transport, {}),),
        ),
        Scenario(
            f"uni_{short}_good_token_streams_despite_http_answers",
            "uni_codes",
            (
                Uni("a", transport, {"token": Tok(claims=_NEWS)}),
                Push("a"),
                Api("publish", {"channel": "news", "data": {"text": "hi"}}),
                Push("a"),
            ),
        ),
    ]


# A uni_websocket without the disconnect push, and a connect error as a chosen disconnect.
_WEBSOCKET_OPTIONS = [
    Scenario(
        "uni_websocket_expired_token_becomes_the_configured_disconnect",
        "uni_codes",
        (Uni("a", "uni_websocket", {"token": Tok(exp_in=-10)}), Closed("a")),
        quick=True,
    ),
    Scenario(
        "uni_websocket_server_disconnect_without_disconnect_push",
        "uni_codes",
        (
            Uni("a", "uni_websocket", {"token": Tok()}),
            Push("a"),
            Api("disconnect", {"user": "42"}),
            Closed("a"),
        ),
    ),
]


UNI: list[Scenario] = [
    *_cases("uni_http_stream"),
    *_cases("uni_sse"),
    *_cases("uni_websocket"),
    *_recovery_cases("uni_http_stream"),
    *_recovery_cases("uni_sse"),
    *_recovery_cases("uni_websocket"),
    *_code_cases("uni_http_stream"),
    *_code_cases("uni_sse"),
    *_WEBSOCKET_OPTIONS,
    *_DEFLATE,
]
