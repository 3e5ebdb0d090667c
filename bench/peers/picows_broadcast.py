"""Bare broadcast on picows: whatever arrives on `/publish` goes to every other connection.

No protocol, no auth, no queues: one `send` per connection per message, the floor a Python
fan-out server can reach on asyncio. Ready when the port accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server

__all__ = ["main"]

_subscribers: set[WSTransport] = set()


class _Subscriber(WSListener):  # type: ignore[misc]
    def on_ws_connected(self, transport: WSTransport) -> None:
        _subscribers.add(transport)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        _subscribers.discard(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.CLOSE:
            transport.disconnect()


class _Publisher(WSListener):  # type: ignore[misc]
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.TEXT:
            payload = frame.get_payload_as_bytes()
            for sub in _subscribers:
                sub.send(WSMsgType.TEXT, payload)
        elif frame.msg_type is WSMsgType.CLOSE:
            transport.disconnect()


def _route(request: WSUpgradeRequest) -> WSListener:
    return _Publisher() if request.path.startswith(b"/publish") else _Subscriber()


async def _serve(port: int) -> None:
    server = await ws_create_server(_route, "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(_serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
