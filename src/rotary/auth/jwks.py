"""JWKS key sets: keys fetched from one configured URL, cached by ``kid`` (docs/tokens.md
"Algorithms and keys").

The URL is only ever the configured one, never built from token claims (Centrifugo's
``{{placeholder}}`` URLs led to SSRF, GHSA-j77h-rr39-c552, and are refused at config time).
Misses are fetched once however many tokens wait for them, and refetching is rate-limited
so that tokens with random ``kid`` values cannot turn every verification into an HTTP GET.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import Any, Protocol

import orjson

from rotary.auth.keys import Checker, KeyLoadError, public_key_from_jwk

__all__ = ["AiohttpJwksFetch", "JwksFetch", "JwksFetchError", "JwksKeySet"]

_MAX_BODY = 1 << 20
_ATTEMPTS = 2


class JwksFetchError(Exception):
    """The key set could not be fetched or read (internal; ends as ``jwks_unavailable``)."""


class JwksFetch(Protocol):
    """The HTTP seam of JWKS: ``await fetch(url, timeout)``.

    Contract: GET `url` once, give up after `timeout` seconds, return the body of an HTTP 200
    answer; raise any Exception for anything else (another status, network error, timeout).
    No retries: the key set retries.
    """

    # The timeout is passed on so that an implementation can set it on its own client.
    async def __call__(self, url: str, timeout: float) -> bytes: ...  # noqa: ASYNC109


class AiohttpJwksFetch:
    """The default `JwksFetch`: one aiohttp session, created on first use, no redirects."""

    def __init__(self) -> None:
        self._session: Any = None

    async def __call__(self, url: str, timeout: float) -> bytes:  # noqa: ASYNC109
        import aiohttp  # imported here so that the pure token path does not load it

        if self._session is None:
            self._session = aiohttp.ClientSession()
        client_timeout = aiohttp.ClientTimeout(total=timeout)
        async with self._session.get(url, timeout=client_timeout, allow_redirects=False) as resp:
            if resp.status != 200:
                raise JwksFetchError(f"JWKS endpoint answered HTTP {resp.status}")
            body = bytearray()
            async for chunk in resp.content.iter_chunked(65536):
                body += chunk
                if len(body) > _MAX_BODY:
                    raise JwksFetchError("JWKS document too large")
            return bytes(body)

    async def close(self) -> None:
        """Close the session; the fetcher may be used again afterwards (a new session)."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def parse_jwks(body: bytes) -> dict[str, dict[str, Checker]]:
    """kid → checkers for every usable signing key of a JWKS document.

    Keys with ``use`` other than ``sig``, without a string ``kid``, or of an unsupported or
    malformed kind are skipped; a document that is not ``{"keys": [...]}`` is an error.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise JwksFetchError("JWKS document is not JSON") from None
    keys = document.get("keys") if type(document) is dict else None
    if type(keys) is not list:
        raise JwksFetchError("JWKS document has no keys list")
    found: dict[str, dict[str, Checker]] = {}
    for jwk in keys:
        if not isinstance(jwk, Mapping) or jwk.get("use", "sig") != "sig":
            continue
        kid = jwk.get("kid")
        if type(kid) is not str or not kid:
            continue
        try:
            found[kid] = public_key_from_jwk(jwk)
        except KeyLoadError:
            continue
    return found


class JwksKeySet:
    """The cached keys of one JWKS URL.

    `lookup` is synchronous and cheap; `refresh` fetches (at most one fetch in flight, shared
    by every waiter; no new fetch within `refetch_interval` seconds of the previous one) and
    replaces the cached set, so keys removed upstream stop verifying. Each key is kept
    `ttl` seconds after the fetch that brought it. Times are the `now` callers pass in.
    """

    def __init__(
        self,
        url: str,
        fetch: JwksFetch,
        *,
        ttl: float,
        timeout: float,
        refetch_interval: float,
    ) -> None:
        self.url = url
        self._fetch = fetch
        self._ttl = ttl
        self._timeout = timeout
        self._refetch_interval = refetch_interval
        self._keys: dict[str, tuple[dict[str, Checker], float]] = {}
        self._last_attempt = -math.inf
        self._inflight: asyncio.Task[None] | None = None
        #: Whether the last fetch failed (a miss then reads as ``jwks_unavailable``).
        self.unavailable = False
        #: Fetches attempted so far (each may make up to two HTTP requests).
        self.fetches = 0

    def lookup(self, kid: str, now: float) -> dict[str, Checker] | None:
        """alg → checker of key `kid`, or None when it is not cached or its TTL passed."""
        entry = self._keys.get(kid)
        if entry is None or not now < entry[1]:
            return None
        return entry[0]

    async def refresh(self, now: float) -> None:
        """Fetch the set unless a fetch is running (then wait for it) or one ran recently.

        Never raises for fetch problems: they are recorded in `unavailable`.
        """
        if self._inflight is not None and self._inflight.done():
            self._inflight = None
        if self._inflight is None:
            if self._last_attempt <= now < self._last_attempt + self._refetch_interval:
                return
            self._last_attempt = now
            self._inflight = asyncio.create_task(self._fetch_and_store(now))
        task = self._inflight
        try:
            await asyncio.shield(task)
        finally:
            if task.done() and self._inflight is task:
                self._inflight = None

    async def _fetch_and_store(self, now: float) -> None:
        self.fetches += 1
        try:
            keys = parse_jwks(await self._get())
        except Exception:  # any failure means "unavailable", by contract
            self.unavailable = True
            return
        self.unavailable = False
        expires = now + self._ttl
        self._keys = {kid: (checkers, expires) for kid, checkers in keys.items()}

    async def _get(self) -> bytes:
        failure: BaseException | None = None
        for _ in range(_ATTEMPTS):
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._fetch(self.url, self._timeout)
            except Exception as exc:  # retried, then reported as unavailable
                failure = exc
        raise JwksFetchError("JWKS endpoint unavailable") from failure

    async def close(self) -> None:
        """Cancel a fetch in flight."""
        task, self._inflight = self._inflight, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
