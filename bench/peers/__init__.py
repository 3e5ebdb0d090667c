"""Peer servers measured beside Rotary; each runs as `python -m bench.peers.<name> --port P`.

- `picows_broadcast`: bare WebSocket broadcast on picows (no protocol, no auth).
- `aiohttp_broadcast`: the same on aiohttp, the library Rotary is built on.
- `socketio_server`: python-socketio (AsyncServer on aiohttp) with PyJWT checks and rooms.

The broadcast peers send every publication's bytes unchanged to every connection, on the
same event loop as Rotary (`same_loop`).
"""

from __future__ import annotations

import asyncio

__all__ = ["same_loop"]


def same_loop() -> asyncio.AbstractEventLoop | None:
    """A new uvloop loop when uvloop is installed (Rotary's default loop), else None.

    The bare broadcast peers run on it so that they are measured on the same loop as Rotary.
    """
    try:
        import uvloop
    except ImportError:
        return None
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop
