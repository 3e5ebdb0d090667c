"""The socket beneath a connection's asyncio transport, for the outbox's batched sends.

At a steady publication rate almost every delivery is one frame to a socket with nothing
queued. The outbox (`rotary.node.outbox`) frames those deliveries first and then sends them
in one tight loop, straight to each socket, as ``transport.write`` itself does when its
buffer is empty; whatever a socket does not take is handed to ``transport.write``, which
queues it or reports the error as usual. A send in that loop costs the server less of its
own CPU than the same send reached through ``transport.write`` between one outbox's
bookkeeping and the next (docs/benchmarks.md, "Soak, delivery latency and faults").
"""

from __future__ import annotations

import asyncio
import socket
from asyncio import selector_events
from collections.abc import Callable

__all__ = ["SocketSend", "socket_send"]

#: A socket's ``send``: writes what it can of the bytes now, returns how many it wrote.
SocketSend = Callable[[bytes], int]

#: asyncio's transport for plain sockets on its selector loop: its ``_sock`` is the socket.
_PLAIN = getattr(selector_events, "_SelectorSocketTransport", None)


def socket_send(raw: asyncio.BaseTransport | None) -> SocketSend | None:
    """The ``send`` of the plain TCP socket under `raw`, or None when there is none to use.

    Only asyncio's own transport for plain sockets qualifies: under TLS, or on another event
    loop, bytes must go through ``raw.write``. A caller may use it only while the transport
    is open and ``raw.get_write_buffer_size()`` is 0, so that nothing it sends overtakes
    bytes the transport still holds.
    """
    if raw is None or _PLAIN is None or type(raw) is not _PLAIN:
        return None
    sock = getattr(raw, "_sock", None)
    return sock.send if isinstance(sock, socket.socket) else None
