"""The server API executor: one method per API method, free of any transport.

Each method takes the decoded request object (a JSON object as a Python mapping), validates
it as Centrifugo does (docs/api.md "Methods"), calls the node through the `NodeApi` protocol and
returns
the result object, or raises `ApiError`. Node failures (`CommandError`) become API errors with
the API's wording; any other exception is logged and becomes 100 "internal server error".

Results may embed raw JSON (publication data, client info) as `orjson.Fragment`: encode them
with orjson.

Adding a method is one registry entry: an ``async def`` on `ApiExecutor` decorated with
``@api_method("name")``; the HTTP binding, batch and the legacy endpoint pick it up.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import orjson

from rotary.api import _fields as f
from rotary.api.errors import ApiError, RequestDecodeError, api_error
from rotary.auth import SubscribeOverride
from rotary.engines.base import (
    ClientInfo,
    HistoryFilter,
    HistoryResult,
    PresenceStats,
    Publication,
    StreamPosition,
    UnrecoverablePosition,
)
from rotary.protocol.codes import CommandError, Disconnect

__all__ = ["ApiExecutor", "NodeApi", "Request", "Result", "api_method"]

_log = logging.getLogger("rotary.api")

Request = Mapping[str, Any]
Result = dict[str, Any]
_Method = Callable[["ApiExecutor", Request], Awaitable[Result]]

#: Every API method by name; filled by `api_method`.
_METHODS: dict[str, _Method] = {}
#: Methods a batch may not contain (Centrifugo's batch knows only the single commands).
_NOT_IN_BATCH = frozenset({"batch"})
#: At most this many publishes (broadcast) or commands (parallel batch) run at once.
_MAX_CONCURRENCY = 1024


class NodeApi(Protocol):
    """What the executor needs from the node (agreed in notes/nodeapi.md).

    Failures are raised as `CommandError` (102 unknown channel, 107, 108 not available,
    112 unrecoverable position, …); user-targeted calls succeed when no connection matches.
    Rotary has no sessions (no unidirectional transports): a non-empty `session` in
    subscribe, unsubscribe, disconnect or refresh matches no connection, so those calls
    succeed and change nothing.
    """

    async def api_publish(
        self,
        channel: str,
        data: bytes,
        *,
        tags: Mapping[str, str] | None = None,
        skip_history: bool = False,
        idempotency_key: str = "",
        delta: bool = False,
    ) -> StreamPosition:
        """Publish `data`; the position after it, StreamPosition(0, "") without history.
        `delta` allows delta compression of this publication."""

    async def api_presence(self, channel: str) -> dict[str, ClientInfo]:
        """Presence by client id; 108 when the channel has no presence."""

    async def api_presence_stats(self, channel: str) -> PresenceStats:
        """Presence counts; 108 when the channel has no presence."""

    async def api_history(self, channel: str, flt: HistoryFilter) -> HistoryResult:
        """History (limit uncapped); 108 without history, 112 on an epoch mismatch."""

    async def api_history_remove(self, channel: str) -> None:
        """Forget the channel's publications; 108 without history."""

    async def api_subscribe(
        self,
        user: str,
        channel: str,
        *,
        client: str = "",
        session: str = "",
        expire_at: int = 0,
        info: bytes | None = None,
        data: bytes | None = None,
        recover_since: StreamPosition | None = None,
        override: SubscribeOverride | None = None,
    ) -> None:
        """Subscribe the user's connections (or one client/session) to `channel`."""

    async def api_unsubscribe(
        self, user: str, channel: str, *, client: str = "", session: str = ""
    ) -> None:
        """Unsubscribe the user's connections from `channel` ("" = every channel)."""

    async def api_disconnect(
        self,
        user: str,
        *,
        client: str = "",
        session: str = "",
        whitelist: Sequence[str] = (),
        disconnect: Disconnect | None = None,
    ) -> None:
        """Disconnect the user's connections, except the whitelisted client ids."""

    async def api_refresh(
        self,
        user: str,
        *,
        client: str = "",
        session: str = "",
        expired: bool = False,
        expire_at: int = 0,
        info: bytes | None = None,
    ) -> None:
        """Extend (or, with `expired`, end) the user's connections."""

    async def api_channels(self, pattern: str = "") -> dict[str, int]:
        """Active channels matching the glob `pattern` ("" = all), with their client counts."""

    async def api_info(self) -> list[dict[str, object]]:
        """One info object per node (docs/api.md "Methods" ``info``)."""

    async def api_revoke_token(self, uid: str, *, expire_at: int = 0) -> None:
        """Refuse the token whose ``jti`` is `uid` on every node until `expire_at` (0: 30 days).

        108 when the node has no revocation store.
        """

    async def api_invalidate_user_tokens(
        self, user: str, *, issued_before: int = 0, expire_at: int = 0, channel: str = ""
    ) -> None:
        """Refuse `user`'s tokens whose ``iat`` is before `issued_before` (0: now) until
        `expire_at`; `channel` limits it to subscription tokens of that channel."""


def api_method(name: str) -> Callable[[_Method], _Method]:
    """Register an `ApiExecutor` method as API method `name`.

    The registered method checks that the request is a JSON object and translates node
    failures into `ApiError`, so every caller sees only `ApiError`.
    """

    def register(method: _Method) -> _Method:
        @functools.wraps(method)
        async def guarded(executor: ApiExecutor, request: Request) -> Result:
            with _translated_errors(name):
                return await method(executor, f.obj(request, name))

        _METHODS[name] = guarded
        return guarded

    return register


@contextlib.contextmanager
def _translated_errors(method: str) -> Iterator[None]:
    try:
        yield
    except ApiError:
        raise
    except CommandError as exc:
        raise api_error(exc.error.code, detail=exc.error.message) from None
    except UnrecoverablePosition:
        raise api_error(112) from None
    except Exception as exc:
        _log.exception("server API method %s failed", method)
        raise api_error(100) from exc


async def _bounded_gather(jobs: Iterable[Awaitable[Result]]) -> list[Result]:
    """Run `jobs` concurrently (at most _MAX_CONCURRENCY at once); results in job order."""
    gate = asyncio.Semaphore(_MAX_CONCURRENCY)

    async def run(job: Awaitable[Result]) -> Result:
        async with gate:
            return await job

    return list(await asyncio.gather(*(run(job) for job in jobs)))


class ApiExecutor:
    """Runs server API methods against a node. Safe for concurrent calls."""

    def __init__(self, node: NodeApi) -> None:
        self._node = node

    @property
    def node(self) -> NodeApi:
        """The node the methods run against (for method modules beside this one)."""
        return self._node

    @property
    def methods(self) -> frozenset[str]:
        """Names of every API method this executor serves."""
        return frozenset(_METHODS)

    async def call(self, method: str, request: Request) -> Result:
        """Run API method `method`; 104 "not found" when there is no such method."""
        handler = _METHODS.get(method)
        if handler is None:
            raise api_error(104, detail=f"unknown method {method!r}")
        return await handler(self, request)

    @api_method("publish")
    async def publish(self, request: Request) -> Result:
        """``{"offset", "epoch"}`` of the publication; both omitted without history."""
        channel = f.required_string(request, "channel")
        data = _required_data(request)
        return _position_json(await self._publish(channel, data, request))

    @api_method("broadcast")
    async def broadcast(self, request: Request) -> Result:
        """Publish to every channel of ``channels``; one response per channel, in order."""
        channels = f.string_list(request, "channels")
        if not channels:
            raise f.bad_request("channels required")
        data = _required_data(request)
        jobs = (self._broadcast_one(ch, data, request) for ch in channels)
        return {"responses": await _bounded_gather(jobs)}

    async def _broadcast_one(self, channel: str, data: bytes, request: Request) -> Result:
        try:
            if not channel:
                raise f.bad_request("empty channel in broadcast")
            with _translated_errors("broadcast"):
                return {"result": _position_json(await self._publish(channel, data, request))}
        except ApiError as exc:
            return {"error": exc.to_json()}

    async def _publish(self, channel: str, data: bytes, request: Request) -> StreamPosition:
        return await self._node.api_publish(
            channel,
            data,
            tags=f.string_map(request, "tags"),
            skip_history=f.boolean(request, "skip_history"),
            idempotency_key=f.string(request, "idempotency_key"),
            delta=f.boolean(request, "delta"),
        )

    @api_method("subscribe")
    async def subscribe(self, request: Request) -> Result:
        """Server-side subscription of a connected user's connections; ``{}``."""
        channel = f.required_string(request, "channel")
        await self._node.api_subscribe(
            f.string(request, "user"),
            channel,
            client=f.string(request, "client"),
            session=f.string(request, "session"),
            expire_at=f.integer(request, "expire_at"),
            info=f.payload(request, "info", "b64info"),
            data=f.payload(request, "data", "b64data"),
            recover_since=f.position(request, "recover_since"),
            override=f.override(request),
        )
        return {}

    @api_method("unsubscribe")
    async def unsubscribe(self, request: Request) -> Result:
        """Unsubscribe a user (or one client/session) from a channel; ``{}``."""
        await self._node.api_unsubscribe(
            f.string(request, "user"),
            f.string(request, "channel"),
            client=f.string(request, "client"),
            session=f.string(request, "session"),
        )
        return {}

    @api_method("disconnect")
    async def disconnect(self, request: Request) -> Result:
        """Disconnect a user's connections (default 3503 "force disconnect"); ``{}``."""
        await self._node.api_disconnect(
            f.string(request, "user"),
            client=f.string(request, "client"),
            session=f.string(request, "session"),
            whitelist=f.string_list(request, "whitelist"),
            disconnect=f.disconnect(request),
        )
        return {}

    @api_method("refresh")
    async def refresh(self, request: Request) -> Result:
        """Refresh (or expire) a user's connections; ``{}``."""
        await self._node.api_refresh(
            f.string(request, "user"),
            client=f.string(request, "client"),
            session=f.string(request, "session"),
            expired=f.boolean(request, "expired"),
            expire_at=f.integer(request, "expire_at"),
            info=f.raw_json(request, "info"),
        )
        return {}

    @api_method("presence")
    async def presence(self, request: Request) -> Result:
        """``{"presence": {client: {"user", "client", "conn_info"?, "chan_info"?}}}``."""
        entries = await self._node.api_presence(f.required_string(request, "channel"))
        return {"presence": {cid: _client_info_json(info) for cid, info in entries.items()}}

    @api_method("presence_stats")
    async def presence_stats(self, request: Request) -> Result:
        """``{"num_clients", "num_users"}``."""
        stats = await self._node.api_presence_stats(f.required_string(request, "channel"))
        return {"num_clients": stats.num_clients, "num_users": stats.num_users}

    @api_method("history")
    async def history(self, request: Request) -> Result:
        """``{"publications": [...], "epoch", "offset"}``; limit 0 none, -1 (any <0) all."""
        channel = f.required_string(request, "channel")
        limit = f.integer(request, "limit")
        flt = HistoryFilter(
            since=f.position(request, "since"),
            limit=-1 if limit < 0 else limit,
            reverse=f.boolean(request, "reverse"),
        )
        found = await self._node.api_history(channel, flt)
        return {
            "publications": [_publication_json(pub) for pub in found.publications],
            "epoch": found.position.epoch,
            "offset": found.position.offset,
        }

    @api_method("history_remove")
    async def history_remove(self, request: Request) -> Result:
        """Forget a channel's publications; ``{}``."""
        await self._node.api_history_remove(f.required_string(request, "channel"))
        return {}

    @api_method("channels")
    async def channels(self, request: Request) -> Result:
        """``{"channels": {name: {"num_clients": N}}}``, filtered by the glob ``pattern``."""
        found = await self._node.api_channels(f.string(request, "pattern"))
        return {"channels": {name: {"num_clients": n} for name, n in found.items()}}

    @api_method("info")
    async def info(self, request: Request) -> Result:
        """``{"nodes": [...]}``, one object per node."""
        return {"nodes": await self._node.api_info()}

    @api_method("revoke_token")
    async def revoke_token(self, request: Request) -> Result:
        """Centrifugo PRO's token revocation (docs/revocation.md): ``uid`` is the token's ``jti``;
        ``{}``."""
        await self._node.api_revoke_token(
            f.required_string(request, "uid"), expire_at=f.integer(request, "expire_at")
        )
        return {}

    @api_method("invalidate_user_tokens")
    async def invalidate_user_tokens(self, request: Request) -> Result:
        """Centrifugo PRO's user token invalidation (docs/revocation.md); ``{}``."""
        await self._node.api_invalidate_user_tokens(
            f.required_string(request, "user"),
            issued_before=f.integer(request, "issued_before"),
            expire_at=f.integer(request, "expire_at"),
            channel=f.string(request, "channel"),
        )
        return {}

    @api_method("rpc")
    async def rpc(self, request: Request) -> Result:
        """Always 104 "not found" once ``method`` is given (107 without it).

        Centrifugo answers server-API RPC only from extensions registered in its code; OSS
        Centrifugo registers none, and Rotary has no extension mechanism, so no RPC method
        exists. The method is still routed so that callers get Centrifugo's answer.
        """
        method = f.required_string(request, "method")
        f.raw_json(request, "params")
        raise api_error(104, detail=f"no server API RPC method {method!r}")

    @api_method("batch")
    async def batch(self, request: Request) -> Result:
        """``{"replies": [{"<method>": result} or {"error": …}, …]}`` in command order.

        Each command is an object with one key naming the method (``{"publish": {...}}``);
        with ``parallel`` true the commands run concurrently, otherwise one after another.
        """
        commands = request.get("commands") or []
        if not isinstance(commands, list):
            raise RequestDecodeError("commands must be a list")
        if f.boolean(request, "parallel"):
            return {"replies": await _bounded_gather(map(self._batch_one, commands))}
        return {"replies": [await self._batch_one(command) for command in commands]}

    async def _batch_one(self, command: object) -> Result:
        try:
            name, params = _batch_command(command)
            return {name: await _METHODS[name](self, params)}
        except ApiError as exc:
            return {"error": exc.to_json()}


def _batch_command(command: object) -> tuple[str, Request]:
    """The method and params of one batch command; 104 when it names no known method."""
    fields = f.obj(command, "batch command")
    for name, params in fields.items():
        if name in _METHODS and name not in _NOT_IN_BATCH and params is not None:
            return name, params
    raise api_error(104, detail="batch command names no known method")


def _required_data(request: Request) -> bytes:
    data = f.payload(request, "data", "b64data")
    if not data:
        raise f.bad_request("data required")
    return data


def _position_json(sp: StreamPosition) -> Result:
    result: Result = {}
    if sp.offset:
        result["offset"] = sp.offset
    if sp.epoch:
        result["epoch"] = sp.epoch
    return result


def _client_info_json(info: ClientInfo) -> Result:
    result: Result = {"user": info.user, "client": info.client}
    if info.conn_info is not None:
        result["conn_info"] = orjson.Fragment(info.conn_info)
    if info.chan_info is not None:
        result["chan_info"] = orjson.Fragment(info.chan_info)
    return result


def _publication_json(pub: Publication) -> Result:
    result: Result = {"data": orjson.Fragment(pub.data), "offset": pub.offset}
    if pub.info is not None:
        result["info"] = _client_info_json(pub.info)
    if pub.tags:
        result["tags"] = dict(pub.tags)
    return result
