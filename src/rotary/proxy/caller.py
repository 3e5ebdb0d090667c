"""The one HTTP seam of the proxy: POST a JSON body, get the answer's bytes (aiohttp).

A call that cannot complete (refused connection, timeout, an HTTP status other than 200, an
answer larger than `MAX_ANSWER`) raises `ProxyFailure` with a loggable reason; nothing else
escapes. Redirects are not followed: a proxy endpoint is configured, never discovered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol

import aiohttp

from rotary.proxy.answers import ProxyFailure

__all__ = ["MAX_ANSWER", "AiohttpCaller", "Caller"]

#: Largest answer read, in bytes: a backend gone wrong must not fill the server's memory.
MAX_ANSWER = 1 << 20


class Caller(Protocol):
    """POSTs `body` to `url` with `headers`, waiting at most `timeout` seconds."""

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: float,  # noqa: ASYNC109 - a per-call bound handed to the HTTP client
    ) -> bytes: ...

    async def close(self) -> None: ...


class AiohttpCaller:
    """`Caller` over one aiohttp session (connection pooling), created on first use."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: float,  # noqa: ASYNC109
    ) -> bytes:
        if self._session is None:
            # No cap on connections: aiohttp's default of 100 makes a burst of connects wait
            # for a free connection, and that wait counts against each call's timeout (a
            # reconnect storm then fails on the server's side, not the backend's).
            connector = aiohttp.TCPConnector(limit=0)
            self._session = aiohttp.ClientSession(connector=connector)
        try:
            return await self._post(self._session, url, body, headers, timeout)
        except TimeoutError:
            raise ProxyFailure(f"no answer within {timeout:g}s") from None
        except aiohttp.ClientError as exc:
            raise ProxyFailure(f"HTTP request failed: {type(exc).__name__}") from None

    @staticmethod
    async def _post(
        session: aiohttp.ClientSession,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: float,  # noqa: ASYNC109
    ) -> bytes:
        bound = aiohttp.ClientTimeout(total=timeout)
        async with session.post(
            url, data=body, headers=headers, timeout=bound, allow_redirects=False
        ) as resp:
            if resp.status != 200:
                raise ProxyFailure(f"unexpected HTTP status {resp.status}")
            answer = bytearray()
            async for chunk in resp.content.iter_chunked(65536):
                answer += chunk
                if len(answer) > MAX_ANSWER:
                    raise ProxyFailure("answer too large")
            return bytes(answer)

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
            # Let aiohttp's connectors finish closing before the loop goes on.
            await asyncio.sleep(0)
