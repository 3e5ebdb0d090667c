"""Shorthands the scenario modules share (conventions in `tests.compat.scenarios`)."""

from __future__ import annotations

from typing import Any

from tests.compat.dsl import Api, Closed, Cmd, Open, Scenario, Tok

__all__ = [
    "BAD_SECRET",
    "UNSIGNED",
    "connect",
    "connect_only",
    "connect_then_close",
    "publish",
    "sub",
    "subtok",
]

BAD_SECRET = "not-the-compat-secret-0123456789abcdef0123"
UNSIGNED = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiI0MiJ9."


def connect(conn: str = "a", tok: Tok | None = None) -> tuple[Open, Cmd]:
    return Open(conn), Cmd(conn, {"connect": {"token": tok or Tok()}})


def sub(conn: str, channel: str, **extra: Any) -> Cmd:
    return Cmd(conn, {"subscribe": {"channel": channel, **extra}})


def subtok(channel: str, sub: str = "42", **kw: Any) -> Tok:
    claims = {"channel": channel, **kw.pop("claims", {})}
    return Tok(sub=sub, claims=claims, **kw)


def publish(channel: str, data: Any) -> Api:
    return Api("publish", {"channel": channel, "data": data})


def connect_only(sid: str, tok: Tok, config: str = "base", quick: bool = False) -> Scenario:
    return Scenario(sid, config, connect("a", tok), quick=quick)


def connect_then_close(sid: str, tok: Tok, config: str = "base") -> Scenario:
    return Scenario(sid, config, (*connect("a", tok), Closed("a")))
