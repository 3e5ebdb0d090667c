"""A TCP proxy in front of a test's own redis-server that can make Redis fall silent.

It runs on its own event loop in a thread, so tests may block while it forwards. Modes:

- `blackhole()`: every connection, open or new, is kept open but nothing passes either way
  (a dead link or a frozen server: no error, no answer).
- `deafen_pubsub()`: open connections that sent SUBSCRIBE stop receiving anything from
  Redis; they stay open and everything else works (a PUB/SUB connection that silently
  stopped delivering).
- `restore()`: forward everything again (connections muted before stay muted; new ones
  are fine).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["TcpProxy", "tcp_proxy"]


@dataclass(eq=False)
class _Pair:
    """One proxied connection."""

    pubsub: bool = False
    deaf: bool = False
    writers: list[asyncio.StreamWriter] = field(default_factory=list)


class TcpProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`target`."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self._blackhole = False
        self._pairs: set[_Pair] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        self._thread.start()
        self._server = self._call(self._listen())
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def blackhole(self) -> None:
        self._blackhole = True

    def deafen_pubsub(self) -> int:
        """Mute Redis → client on PUB/SUB connections; how many were muted."""
        muted = [pair for pair in self._pairs if pair.pubsub]
        for pair in muted:
            pair.deaf = True
        return len(muted)

    def restore(self) -> None:
        self._blackhole = False

    def _call(self, coro: object) -> asyncio.Server:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        for pair in list(self._pairs):
            for writer in pair.writers:
                writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            client_w.transport.abort()
            return
        pair = _Pair(writers=[client_w, server_w])
        self._pairs.add(pair)
        try:
            await asyncio.gather(
                self._pipe(client_r, server_w, pair, upstream=True),
                self._pipe(server_r, client_w, pair, upstream=False),
            )
        finally:
            self._pairs.discard(pair)
            for writer in pair.writers:
                writer.transport.abort()

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pair: _Pair,
        *,
        upstream: bool,
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if upstream and b"$9\r\nSUBSCRIBE\r\n" in data.upper():
                    pair.pubsub = True
                if self._blackhole or (pair.deaf and not upstream):
                    continue
                writer.write(data)
                await writer.drain()
        for w in pair.writers:
            w.transport.abort()


@contextlib.contextmanager
def tcp_proxy(target: int) -> Iterator[TcpProxy]:
    proxy = TcpProxy(target).start()
    try:
        yield proxy
    finally:
        proxy.stop()
