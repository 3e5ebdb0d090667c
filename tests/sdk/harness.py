"""Drive the official SDKs (centrifuge-js, centrifuge-python) through one interface.

Each SDK runs with the JSON protocol (``js``, ``python``) or the Protobuf one (``js-protobuf``,
``python-protobuf``). Both drivers, in both protocols, turn SDK callbacks into plain event
dicts with the same shape, so one test body checks every SDK and protocol:

- ``{"ev": "connecting" | "disconnected", "code", "reason"}``, ``{"ev": "connected", "client"}``,
  ``{"ev": "error", "code", "message"}`` — client events;
- ``{"ev": "sub_subscribing" | "sub_unsubscribed", "channel", "code", "reason"}``,
  ``{"ev": "sub_subscribed", "channel", "recovered", "was_recovering", "recoverable",
  "positioned", "offset", "epoch"}``, ``{"ev": "sub_error", "channel", "code", "message"}``,
  ``{"ev": "publication", "channel", "data", "offset"}`` — subscription events;
- ``{"ev": "token_request", "kind": "connection" | "subscription", "channel"}`` — a getToken
  callback ran; the token it got comes from the test's Python callable, signed at that moment;
- ``{"ev": "frame", "dir": "in" | "out", "data": str}`` — a raw WebSocket text frame, so tests
  can assert what crossed the wire and a failure shows the server's exact frames; a binary
  (Protobuf) frame has ``"binary"`` (base64) instead of ``"data"``, and `frames` decodes it
  with the official schema into the same dicts. Protobuf payloads (``data``, ``conn_info``,
  ``chan_info``) are reported as the JSON they hold.

Tokens are PyJWT HS256 tokens (the independent oracle), never made by the server under test.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import contextlib
import json
import logging
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import jwt

from tests.sdk.protobuf_oracle import decode_commands, decode_replies, plain_payload

__all__ = [
    "JS_DIR",
    "PROTOCOL_SDKS",
    "SDKS",
    "TRANSPORT_SDKS",
    "JsSdkDriver",
    "PythonSdkDriver",
    "SdkDriver",
    "TokenFactory",
    "exp_of",
    "frames",
    "open_driver",
    "replies_to",
]

JS_DIR = Path(__file__).parent / "js"
SDKS = ("js", "python")
#: Every SDK in both protocols: the matrix the SDK behaviour tests run.
PROTOCOL_SDKS = (*SDKS, "js-protobuf", "python-protobuf")
#: centrifuge-js over HTTP-streaming (JSON and Protobuf) and SSE with emulation
#: (docs/transports.md): the same behaviour tests, on servers with those transports on.
TRANSPORT_SDKS = ("js.http_stream", "js.sse", "js.http_stream-protobuf")
Event = dict[str, Any]
Predicate = Callable[[Event], bool]
ConnTokenSource = Callable[[], str]
SubTokenSource = Callable[[str], str]


class TokenFactory:
    """Signs connection and subscription tokens with HS256 for one secret."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def connection(self, user: str, *, ttl: float | None = 3600, **claims: Any) -> str:
        """A connection token for `user`; `ttl` seconds from now (None: no `exp`)."""
        return self._sign({"sub": user, **_exp(ttl), **claims})

    def subscription(
        self, user: str, channel: str, *, ttl: float | None = 3600, **claims: Any
    ) -> str:
        """A subscription token for `user` on `channel`; `ttl` may be negative (expired)."""
        return self._sign({"sub": user, "channel": channel, **_exp(ttl), **claims})

    def forged(self, token: str) -> str:
        """`token` with a signature made by another key (same header and claims)."""
        claims = jwt.decode(token, options={"verify_signature": False})
        return jwt.encode(claims, self._secret + "-not-the-server-key", algorithm="HS256")

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._secret, algorithm="HS256")


def _exp(ttl: float | None) -> dict[str, int]:
    # exp is whole seconds; a "2 s" token has between 1 and 2 s left.
    return {} if ttl is None else {"exp": int(time.time()) + int(ttl)}


def exp_of(token: str) -> int:
    """The `exp` claim of `token` (signature not checked: the token is our own)."""
    return int(jwt.decode(token, options={"verify_signature": False})["exp"])


def frames(events: Iterable[Event], direction: str) -> list[dict[str, Any]]:
    """Every message in the raw frames of `direction` ("in" or "out"), in order, as JSON dicts.

    A frame may pack several messages separated by newlines (docs/protocol.md "Framing"), or
    several varint-prefixed Protobuf messages; an empty object is a ping (in) or pong (out).
    """
    out: list[dict[str, Any]] = []
    for e in events:
        if e["ev"] != "frame" or e["dir"] != direction:
            continue
        if "binary" in e:
            decode = decode_replies if direction == "in" else decode_commands
            out.extend(decode(base64.b64decode(e["binary"])))
        else:
            out.extend(json.loads(line) for line in e["data"].split("\n") if line.strip())
    return out


def replies_to(events: Iterable[Event], method: str) -> list[tuple[dict[str, Any], Any]]:
    """(command, reply-or-None) pairs for every `method` command the SDK sent."""
    events = list(events)
    by_id = {m["id"]: m for m in frames(events, "in") if m.get("id")}
    sent = [c for c in frames(events, "out") if method in c]
    return [(c, by_id.get(c.get("id"))) for c in sent]


class SdkDriver(abc.ABC):
    """One SDK client under test: commands in, normalised events out."""

    sdk: str

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()

    def record(self, event: Event) -> None:
        """Append one event and wake waiters."""
        event.setdefault("t", time.monotonic())
        self.events.append(event)
        self._changed.set()

    def find(self, pred: Predicate, *, start: int = 0) -> list[Event]:
        """Events from index `start` matching `pred`."""
        return [e for e in self.events[start:] if pred(e)]

    async def wait_for(self, pred: Predicate, *, within: float = 10.0, start: int = 0) -> Event:
        """The first event from index `start` matching `pred`; AssertionError after `within` s."""
        deadline = time.monotonic() + within
        while True:
            found = self.find(pred, start=start)
            if found:
                return found[0]
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.sdk}: no matching event in {within}s\n{self.dump()}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    def dump(self) -> str:
        """The event log, one event per line, for failure messages."""
        return "\n".join(json.dumps(_without_time(e), default=str) for e in self.events)

    @abc.abstractmethod
    async def connect(
        self,
        url: str,
        *,
        token: str = "",
        get_token: ConnTokenSource | None = None,
        min_reconnect_delay: float = 0.5,
    ) -> None:
        """Start connecting (returns at once; wait for the `connected` event)."""

    @abc.abstractmethod
    async def subscribe(
        self,
        channel: str,
        *,
        token: str = "",
        get_token: SubTokenSource | None = None,
        recoverable: bool = False,
        min_resubscribe_delay: float = 0.2,
        delta: str = "",
    ) -> None:
        """Create a subscription and start subscribing (wait for `sub_subscribed`); `delta`
        "fossil" asks for delta compression."""

    @abc.abstractmethod
    async def presence(self, channel: str) -> dict[str, dict[str, Any]]:
        """The SDK's `presence()` of a subscription: client id → ClientInfo fields (snake)."""

    @abc.abstractmethod
    async def history(self, channel: str, limit: int) -> dict[str, Any]:
        """The SDK's `history()` of a subscription with `limit`: ``offset``, ``epoch`` and
        ``publications`` (each ``data`` and ``offset``)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Disconnect and release every resource (process, tasks)."""


def _without_time(e: Event) -> Event:
    return {k: v for k, v in e.items() if k != "t"}


class JsSdkDriver(SdkDriver):
    """centrifuge-js + ws in a `node` child process (tests/sdk/js/driver.mjs)."""

    sdk = "js"

    def __init__(
        self, hard_timeout: float, *, protobuf: bool = False, transport: str = "websocket"
    ) -> None:
        super().__init__()
        self._protobuf = protobuf
        #: "websocket", or "http_stream" / "sse": `connect` then goes through that
        #: transport with emulation, on the server of the WebSocket URL it is given.
        self._transport = transport
        self.sdk = "js" if transport == "websocket" else f"js.{transport}"
        if protobuf:
            self.sdk += "-protobuf"
        self._hard_timeout = hard_timeout
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._conn_tokens: ConnTokenSource | None = None
        self._sub_tokens: dict[str, SubTokenSource] = {}
        self._req = 0

    async def start(self) -> None:
        """Spawn node and wait for the driver's `ready` line."""
        node = shutil.which("node")
        if node is None or not (JS_DIR / "node_modules" / "centrifuge").is_dir():
            raise RuntimeError("centrifuge-js is not installed: run `make js-deps`")
        self._proc = await asyncio.create_subprocess_exec(
            node,
            str(JS_DIR / "driver.mjs"),
            str(int(self._hard_timeout * 1000)),
            cwd=str(JS_DIR),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read())
        await self.wait_for(lambda e: e["ev"] == "ready", within=10)

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for raw in self._proc.stdout:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                event = {"ev": "stderr", "line": line}
            if event.get("ev") == "token_request":
                self._answer_token(event)
            self.record(event)
        self.record({"ev": "exit", "status": await self._proc.wait()})

    def _answer_token(self, event: Event) -> None:
        try:
            if event["kind"] == "connection":
                assert self._conn_tokens is not None, "connection getToken not configured"
                token = self._conn_tokens()
            else:
                token = self._sub_tokens[event["channel"]](event["channel"])
            self._send({"op": "token", "seq": event["seq"], "token": token})
        except Exception as exc:  # reported to the SDK as a rejected getToken promise
            self._send({"op": "token", "seq": event["seq"], "error": repr(exc)})

    def _send(self, cmd: dict[str, Any]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write((json.dumps(cmd) + "\n").encode())

    async def connect(
        self,
        url: str,
        *,
        token: str = "",
        get_token: ConnTokenSource | None = None,
        min_reconnect_delay: float = 0.5,
    ) -> None:
        if self._transport != "websocket":
            base = url.replace("ws", "http", 1).split("/connection/", 1)[0]
            endpoint = {
                "transport": self._transport,
                "endpoint": f"{base}/connection/{self._transport}",
            }
            await self.connect_transports(
                [endpoint],
                emulation_endpoint=f"{base}/emulation",
                token=token,
                get_token=get_token,
                min_reconnect_delay=min_reconnect_delay,
            )
            return
        self._conn_tokens = get_token
        options = {"minReconnectDelay": int(min_reconnect_delay * 1000)}
        cmd = {"op": "connect", "url": url, "token": token, "options": options}
        if self._protobuf:
            cmd["protocol"] = "protobuf"
        self._send({**cmd, "use_get_token": get_token is not None})

    async def connect_transports(
        self,
        transports: list[dict[str, str]],
        *,
        emulation_endpoint: str,
        token: str = "",
        get_token: ConnTokenSource | None = None,
        min_reconnect_delay: float = 0.5,
    ) -> None:
        """Connect over the first of `transports` (``{"transport", "endpoint"}``) that works,
        sending emulated commands to `emulation_endpoint` (absolute: Node has no page URL)."""
        self._conn_tokens = get_token
        options = {
            "minReconnectDelay": int(min_reconnect_delay * 1000),
            "emulationEndpoint": emulation_endpoint,
        }
        cmd = {"op": "connect", "transports": transports, "token": token, "options": options}
        if self._protobuf:
            cmd["protocol"] = "protobuf"
        self._send({**cmd, "use_get_token": get_token is not None})

    async def history(self, channel: str, limit: int) -> dict[str, Any]:
        """The subscription's `history()` with `limit`."""
        result: dict[str, Any] = await self._call(
            {"op": "history", "channel": channel, "options": {"limit": limit}}
        )
        return result

    async def subscribe(
        self,
        channel: str,
        *,
        token: str = "",
        get_token: SubTokenSource | None = None,
        recoverable: bool = False,
        min_resubscribe_delay: float = 0.2,
        delta: str = "",
    ) -> None:
        if get_token is not None:
            self._sub_tokens[channel] = get_token
        options: dict[str, Any] = {"minResubscribeDelay": int(min_resubscribe_delay * 1000)}
        if recoverable:
            options["recoverable"] = True
        if delta:
            options["delta"] = delta
        cmd = {"op": "subscribe", "channel": channel, "token": token, "options": options}
        self._send({**cmd, "use_get_token": get_token is not None})

    async def _call(self, cmd: dict[str, Any]) -> Any:
        self._req += 1
        req = self._req
        self._send({**cmd, "req": req})
        reply = await self.wait_for(lambda e: e["ev"] == "reply" and e["req"] == req)
        if "error" in reply:
            raise AssertionError(f"js {cmd['op']} failed: {reply['error']}")
        return reply["result"]

    async def presence(self, channel: str) -> dict[str, dict[str, Any]]:
        result = await self._call({"op": "presence", "channel": channel})
        clients: dict[str, dict[str, Any]] = result["clients"]
        return clients

    async def close(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(OSError):
                self._send({"op": "exit"})
                assert proc.stdin is not None
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 3)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reader, 3)


class _FrameTap(logging.Handler):
    """Turns centrifuge-python's DEBUG logs of sent commands and received data into frames."""

    def __init__(self, driver: SdkDriver) -> None:
        super().__init__(logging.DEBUG)
        self._driver = driver

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "send commands: %s" and record.args:
            commands = record.args[0] if isinstance(record.args, tuple) else record.args
            # In Protobuf mode the SDK logs its commands before encoding, payloads as base64.
            lines = (json.dumps(c, default=_text) for c in commands)  # type: ignore[union-attr]
            self._driver.record({"ev": "frame", "dir": "out", "data": "\n".join(lines)})
        elif record.msg == "data received %s" and record.args:
            raw = record.args[0] if isinstance(record.args, tuple) else record.args
            if isinstance(raw, bytes):
                binary = base64.b64encode(raw).decode()
                self._driver.record({"ev": "frame", "dir": "in", "binary": binary})
            else:
                self._driver.record({"ev": "frame", "dir": "in", "data": str(raw)})


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _plain(value: Any) -> Any:
    """A payload as the JSON value it holds: Protobuf hands bytes, JSON the value itself."""
    return plain_payload(value) if isinstance(value, bytes) else value


class PythonSdkDriver(SdkDriver):
    """centrifuge-python running in the test's own event loop."""

    sdk = "python"

    def __init__(self, *, protobuf: bool = False) -> None:
        super().__init__()
        self._protobuf = protobuf
        if protobuf:
            self.sdk = "python-protobuf"
        self._client: Any = None
        self._subs: dict[str, Any] = {}
        self._tap = _FrameTap(self)
        self._logger = logging.getLogger("centrifuge")
        self._old_level = self._logger.level

    async def start(self) -> None:
        """Start tapping the SDK's frame logs."""
        self._logger.setLevel(logging.DEBUG)
        self._logger.addHandler(self._tap)

    async def connect(
        self,
        url: str,
        *,
        token: str = "",
        get_token: ConnTokenSource | None = None,
        min_reconnect_delay: float = 0.5,
    ) -> None:
        from centrifuge import Client

        tokens = None if get_token is None else self._conn_token_callback(get_token)
        self._client = Client(
            url,
            events=_client_events(self),
            token=token,
            get_token=tokens,
            min_reconnect_delay=min_reconnect_delay,
            proxy=None,
            use_protobuf=self._protobuf,
        )
        await self._client.connect()

    def _conn_token_callback(self, source: ConnTokenSource) -> Callable[[], Any]:
        async def get_token() -> str:
            self.record({"ev": "token_request", "kind": "connection", "channel": ""})
            return source()

        return get_token

    def _sub_token_callback(self, source: SubTokenSource) -> Callable[[str], Any]:
        async def get_token(channel: str) -> str:
            self.record({"ev": "token_request", "kind": "subscription", "channel": channel})
            return source(channel)

        return get_token

    async def subscribe(
        self,
        channel: str,
        *,
        token: str = "",
        get_token: SubTokenSource | None = None,
        recoverable: bool = False,
        min_resubscribe_delay: float = 0.2,
        delta: str = "",
    ) -> None:
        from centrifuge import DeltaType

        tokens = None if get_token is None else self._sub_token_callback(get_token)
        sub = self._client.new_subscription(
            channel,
            events=_subscription_events(self, channel),
            token=token,
            get_token=tokens,
            recoverable=recoverable,
            min_resubscribe_delay=min_resubscribe_delay,
            delta=DeltaType(delta) if delta else None,
        )
        self._subs[channel] = sub
        await sub.subscribe()

    async def presence(self, channel: str) -> dict[str, dict[str, Any]]:
        result = await self._subs[channel].presence()
        return {cid: _client_info(info) for cid, info in result.clients.items()}

    async def history(self, channel: str, limit: int) -> dict[str, Any]:
        result = await self._subs[channel].history(limit=limit)
        publications = [
            {"data": _plain(p.data), "offset": p.offset or 0} for p in result.publications
        ]
        return {"offset": result.offset, "epoch": result.epoch, "publications": publications}

    async def close(self) -> None:
        try:
            if self._client is not None:
                await self._client.disconnect()
                # Let the SDK's teardown tasks run before the loop goes away.
                await asyncio.sleep(0.05)
        finally:
            self._logger.removeHandler(self._tap)
            self._logger.setLevel(self._old_level)


def _client_info(info: Any) -> dict[str, Any]:
    return {
        "client": info.client,
        "user": info.user,
        "conn_info": _plain(info.conn_info),
        "chan_info": _plain(info.chan_info),
    }


def _error_fields(ctx: Any) -> dict[str, Any]:
    # A server error arrives as ReplyError(code, message); others carry an SDK-side code.
    error = ctx.error
    return {"code": int(getattr(error, "code", ctx.code)), "message": str(error)}


def _client_events(driver: SdkDriver) -> Any:
    from centrifuge import ClientEventHandler

    class Events(ClientEventHandler):  # type: ignore[misc]
        async def on_connecting(self, ctx: Any) -> None:
            driver.record({"ev": "connecting", "code": ctx.code, "reason": ctx.reason})

        async def on_connected(self, ctx: Any) -> None:
            driver.record({"ev": "connected", "client": ctx.client})

        async def on_disconnected(self, ctx: Any) -> None:
            driver.record({"ev": "disconnected", "code": ctx.code, "reason": ctx.reason})

        async def on_error(self, ctx: Any) -> None:
            driver.record({"ev": "error", **_error_fields(ctx)})

    return Events()


def _subscription_events(driver: SdkDriver, channel: str) -> Any:
    from centrifuge import SubscriptionEventHandler

    class Events(SubscriptionEventHandler):  # type: ignore[misc]
        async def on_subscribing(self, ctx: Any) -> None:
            ev = {"ev": "sub_subscribing", "channel": channel}
            driver.record({**ev, "code": ctx.code, "reason": ctx.reason})

        async def on_subscribed(self, ctx: Any) -> None:
            pos = ctx.stream_position
            driver.record(
                {
                    "ev": "sub_subscribed",
                    "channel": channel,
                    "recoverable": ctx.recoverable,
                    "positioned": ctx.positioned,
                    "was_recovering": ctx.was_recovering,
                    "recovered": ctx.recovered,
                    "offset": pos.offset if pos else None,
                    "epoch": pos.epoch if pos else None,
                }
            )

        async def on_unsubscribed(self, ctx: Any) -> None:
            ev = {"ev": "sub_unsubscribed", "channel": channel}
            driver.record({**ev, "code": ctx.code, "reason": ctx.reason})

        async def on_publication(self, ctx: Any) -> None:
            ev = {"ev": "publication", "channel": channel}
            driver.record({**ev, "data": _plain(ctx.pub.data), "offset": ctx.pub.offset or 0})

        async def on_error(self, ctx: Any) -> None:
            driver.record({"ev": "sub_error", "channel": channel, **_error_fields(ctx)})

    return Events()


@contextlib.asynccontextmanager
async def open_driver(sdk: str, *, hard_timeout: float = 40.0) -> AsyncIterator[SdkDriver]:
    """A started driver for `sdk` (one of `PROTOCOL_SDKS`), closed on exit.

    `hard_timeout` bounds the node process's life on its own, whatever the test does.
    """
    name, _, protocol = sdk.partition("-")
    name, _, transport = name.partition(".")
    protobuf = protocol == "protobuf"
    driver: JsSdkDriver | PythonSdkDriver
    if name == "js":
        driver = JsSdkDriver(hard_timeout, protobuf=protobuf, transport=transport or "websocket")
    else:
        driver = PythonSdkDriver(protobuf=protobuf)
    try:
        await driver.start()
        yield driver
    finally:
        await driver.close()
