"""Run a scenario's steps against one server and return its transcript.

A transcript is a list of observations, one per observing step, as decoded JSON. The
runner does not normalise anything (that is `tests.compat.compare`'s job); it only records
which client id each connection got, so the comparison can name clients by connection.

A scenario's connections travel over one transport: the WebSocket, or HTTP-streaming or
SSE with later commands through ``/emulation`` (`tests.compat.streams`). On the streaming
transports a disconnect push followed by the end of the stream is observed as a WebSocket
close with that code and reason, so one scenario reads the same over every transport.
`Uni` connections always use the unidirectional transport they name.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt

from tests.compat import configs, streams, wire
from tests.compat.dsl import (
    Api,
    Batch,
    Closed,
    Cmd,
    Open,
    Push,
    Raw,
    Reply,
    Scenario,
    Send,
    Sleep,
    Tok,
    Uni,
    Var,
)

__all__ = ["TRANSPORTS", "Transcript", "run_scenario", "sign"]

# Where a scenario's bidirectional connections can travel.
TRANSPORTS = ("websocket", "http_stream", "sse")

_WAIT = 10.0


@dataclass
class Transcript:
    """What one server showed: `entries[i]` is observation i; `clients` maps conn → id."""

    entries: list[Any] = field(default_factory=list)
    clients: dict[str, str] = field(default_factory=dict)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(tok: Tok, secret: str = configs.SECRET) -> str:
    """The token `tok` describes, signed now."""
    if tok.raw is not None:
        return tok.raw
    now = int(time.time())
    payload: dict[str, Any] = {} if tok.sub is None else {"sub": tok.sub}
    if tok.exp_in is not None:
        payload["exp"] = now + int(tok.exp_in)
    if tok.expire_at_in is not None:
        payload["expire_at"] = now + int(tok.expire_at_in)
    payload.update(tok.claims)
    if tok.alg.startswith("HS"):
        return _sign_hmac(payload, tok.secret or secret, tok.alg, tok.header)
    key = configs.private_key(tok.alg, wrong=tok.wrong_key)
    return str(jwt.encode(payload, key, algorithm=tok.alg))


def _sign_hmac(payload: dict[str, Any], secret: str, alg: str, extra: dict[str, Any]) -> str:
    # Signed by hand so that a payload PyJWT would refuse (a numeric sub) can be sent too.
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    header = _b64(json.dumps({"alg": alg, "typ": "JWT", **extra}).encode())
    body = _b64(json.dumps(payload).encode())
    mac = hmac.new(secret.encode(), f"{header}.{body}".encode(), digest).digest()
    return f"{header}.{body}.{_b64(mac)}"


def _resolve(value: Any, saved: dict[str, Any]) -> Any:
    """`value` with every `Tok` signed now and every `Var` replaced by its saved value."""
    if isinstance(value, Tok):
        return sign(value)
    if isinstance(value, Var):
        return saved[value.name]
    if isinstance(value, dict):
        return {k: _resolve(v, saved) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, saved) for v in value]
    return value


class _Conn:
    """One raw protocol connection: command ids, and pushes read while waiting for replies."""

    def __init__(
        self,
        ws: aiohttp.ClientWebSocketResponse | streams.Stream,
        saved: dict[str, Any],
        *,
        protobuf: bool,
        pings: bool = False,
    ) -> None:
        self.ws = ws
        self.saved = saved
        self.pings = pings  # observe server pings ({}) as pushes: unidirectional clients
        self.protobuf = protobuf
        self.next_id = 0
        self.pending: list[dict[str, Any]] = []
        self.close: tuple[int, str] | None = None

    async def send(self, *bodies: dict[str, Any]) -> list[int]:
        """Send `bodies` in one frame with the next command ids; return those ids."""
        commands, ids = [], []
        for body in bodies:
            self.next_id += 1
            ids.append(self.next_id)
            commands.append({"id": self.next_id, **_resolve(body, self.saved)})
        frame = wire.encode(commands, protobuf=self.protobuf)
        if isinstance(self.ws, streams.Stream):
            await self.ws.send(frame)
        elif isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)
        return ids

    async def _read(self) -> bool:
        """Read one frame into `pending`; False once the connection is closed."""
        if self.close is not None:
            return False
        if isinstance(self.ws, streams.Stream):
            messages = await self.ws.receive(wait=_WAIT)
            if messages is None:
                self.close = self.ws.close
                return False
            self.pending.extend(m for m in messages if m or self.pings)
            return True
        msg = await self.ws.receive(timeout=_WAIT)
        if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            self.pending.extend(m for m in wire.decode(msg.data) if m)  # {} is a server ping
            return True
        self.close = (int(self.ws.close_code or 0), str(msg.extra or ""))
        return False

    async def reply(self, cmd_id: int) -> Any:
        while True:
            for i, message in enumerate(self.pending):
                if message.get("id") == cmd_id:
                    del self.pending[i]
                    return {k: v for k, v in message.items() if k != "id"}
            if not await self._read_or_timeout():
                return self._ended()

    async def push(self) -> Any:
        while True:
            for i, message in enumerate(self.pending):
                if "id" not in message:
                    return self.pending.pop(i)
            if not await self._read_or_timeout():
                return self._ended()

    async def _read_or_timeout(self) -> bool:
        try:
            return await self._read()
        except TimeoutError:
            return False

    def _ended(self) -> Any:
        if self.close is None:
            return {"timeout": f"nothing within {_WAIT:.0f} s"}
        return {"closed": list(self.close)}

    async def closed(self, wait: float) -> Any:
        deadline = time.monotonic() + wait
        while self.close is None and time.monotonic() < deadline:
            try:
                await self._read()
            except TimeoutError:
                continue
        unread, self.pending = self.pending, []
        return {"close": list(self.close) if self.close else None, "unread": unread}


class _Run:
    def __init__(
        self, session: aiohttp.ClientSession, base: str, *, protobuf: bool, transport: str
    ) -> None:
        self.session = session
        self.protobuf = protobuf
        self.transport = transport
        self.base = base  # http://127.0.0.1:PORT
        self.conns: dict[str, _Conn] = {}
        self.last_sent: dict[str, int] = {}
        self.saved: dict[str, Any] = {}
        self.out = Transcript()

    async def step(self, step: Any) -> None:
        match step:
            case Open():
                await self._open(step)
            case Cmd():
                conn = self.conns[step.conn]
                (cmd_id,) = await conn.send(step.body)
                result = await conn.reply(cmd_id)
                self._note_client(step.conn, result)
                self._save(step.save, result)
                self.out.entries.append(result)
            case Batch():
                conn = self.conns[step.conn]
                ids = await conn.send(*step.bodies)
                self.out.entries.append([await conn.reply(i) for i in ids])
            case Send():
                (self.last_sent[step.conn],) = await self.conns[step.conn].send(step.body)
            case Reply():
                result = await self.conns[step.conn].reply(self.last_sent[step.conn])
                self._note_client(step.conn, result)
                self.out.entries.append(result)
            case Raw():
                ws = self.conns[step.conn].ws
                assert isinstance(ws, aiohttp.ClientWebSocketResponse), "Raw is WebSocket-only"
                await ws.send_str(step.text)
            case Uni():
                await self._open_uni(step)
            case Push():
                pushes = [await self.conns[step.conn].push() for _ in range(step.count)]
                for push in pushes:  # a unidirectional connect push names the client
                    self._note_client(step.conn, push)
                if step.save:
                    self._save(step.save, pushes[-1])
                if step.unordered:
                    pushes = [sorted(pushes, key=lambda p: json.dumps(p, sort_keys=True))]
                self.out.entries.extend(pushes)
            case Closed():
                self.out.entries.append(await self.conns[step.conn].closed(step.wait))
            case Api():
                self.out.entries.append(await self._api(step))
            case Sleep():
                await asyncio.sleep(step.seconds)
            case _:
                raise TypeError(f"unknown step {step!r}")

    def _save(self, wanted: dict[str, str], result: Any) -> None:
        for name, path in wanted.items():
            self.saved[name] = _dig(result, path.replace("/", "."))

    def _note_client(self, conn: str, result: Any) -> None:
        client = result.get("connect", {}).get("client") if isinstance(result, dict) else None
        if client:
            self.out.clients[conn] = client

    async def _open(self, step: Open) -> None:
        if self.transport != "websocket":
            # The stream opens with the first commands (the connect), in `streams.Stream.send`.
            stream = streams.Stream(self.session, self.base, self.transport, self.protobuf)
            self.conns[step.conn] = _Conn(stream, self.saved, protobuf=self.protobuf)
            self.out.entries.append({"open": 101})
            return
        url = self.base.replace("http", "ws", 1) + "/connection/websocket"
        query = "&".join(q for q in (step.query, "cf_protocol=protobuf" * self.protobuf) if q)
        url += f"?{query}" if query else ""
        try:
            ws = await self.session.ws_connect(url, autoclose=False, autoping=True)
        except aiohttp.WSServerHandshakeError as exc:
            self.out.entries.append({"open": exc.status})
            return
        self.conns[step.conn] = _Conn(ws, self.saved, protobuf=self.protobuf)
        self.out.entries.append({"open": 101})

    async def _open_uni(self, step: Uni) -> None:
        request = _resolve(step.request, self.saved)
        uni = streams.UniStream(self.session, self.base, step.transport)
        status = await uni.open(request)
        self.out.entries.append({"open": status})
        if uni.opened:
            self.conns[step.conn] = _Conn(uni, self.saved, protobuf=False, pings=True)

    async def _api(self, step: Api) -> Any:
        key = configs.API_KEY if step.key is None else step.key
        headers = {"X-API-Key": key} if key else {}
        url = f"{self.base}/api/{step.method}"
        async with self.session.post(
            url, json=_resolve(step.params, self.saved), headers=headers
        ) as resp:
            text = await resp.text()
        try:
            body = json.loads(text) if text.strip() else None
        except ValueError:
            body = "<not JSON>"
        if step.keep and isinstance(body, dict):
            body = {path: _dig(body, path) for path in step.keep}
        return {"status": resp.status, "body": body}

    async def close_all(self) -> None:
        for conn in self.conns.values():
            if isinstance(conn.ws, streams.Stream):
                await conn.ws.end()
            else:
                await conn.ws.close()


def _dig(value: Any, path: str) -> Any:
    """The value at dotted `path` ("<absent>" if none); a last part ``len`` counts a list."""
    for part in path.split("."):
        if isinstance(value, list) and part == "len":
            value = len(value)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return "<absent>"
    return value


async def run_scenario(
    scenario: Scenario, base_url: str, *, protobuf: bool = False, transport: str = "websocket"
) -> Transcript:
    """Run `scenario` against the server at `base_url` (http://host:port), its connections
    travelling over `transport` (one of `TRANSPORTS`) and speaking JSON or (`protobuf`) the
    Protobuf protocol."""
    if transport not in TRANSPORTS:
        raise ValueError(f"unknown transport {transport!r}")
    async with aiohttp.ClientSession() as session:
        run = _Run(session, base_url, protobuf=protobuf, transport=transport)
        try:
            for step in scenario.steps:
                await run.step(step)
        finally:
            await run.close_all()
        return run.out
