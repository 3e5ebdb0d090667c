"""Unidirectional transports: connect push, publications, pings, disconnect push, refusals.

Each case runs over uni_http_stream, uni_sse and uni_websocket (ids end with the transport).
The client sends only its connect request; what it observes is the connect push, then the
pushes without the bidirectional ``{"push": …}`` wrapper, pings as ``{}``, and a disconnect
push before the end (a uni_websocket also closes with that code).
"""

from __future__ import annotations

from tests.compat.dsl import Api, Closed, Push, Scenario, Tok, Uni
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


UNI: list[Scenario] = [
    *_cases("uni_http_stream"),
    *_cases("uni_sse"),
    *_cases("uni_websocket"),
]
