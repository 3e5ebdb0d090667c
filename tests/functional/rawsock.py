"""Misbehaving peers on raw TCP sockets: a WebSocket client that stops reading, a handshake
left half-finished, a request sent one byte at a time.

Blocking sockets on purpose: a peer that "stops reading" must leave the bytes in the kernel,
which an asyncio stream reader would not (it reads eagerly into its own buffer).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
from typing import Any

__all__ = ["RawWebSocket", "open_socket"]


def open_socket(port: int, *, rcvbuf: int = 0, timeout: float = 10.0) -> socket.socket:
    """A TCP connection to 127.0.0.1:`port`; `rcvbuf` > 0 shrinks the receive buffer first
    (before connecting, so the advertised window is small from the start)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    return sock


def _masked_text_frame(payload: bytes) -> bytes:
    """One final, masked text frame (clients must mask, RFC 6455 §5.3)."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, 0x80 | size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, size)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + body


class RawWebSocket:
    """A WebSocket client on a blocking socket that reads only when asked to."""

    def __init__(self, port: int, *, rcvbuf: int = 0, path: str = "/connection/websocket"):
        self.sock = open_socket(port, rcvbuf=rcvbuf)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        self._buffer = b""
        head = self._read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head[:200]

    def send(self, *commands: dict[str, Any]) -> None:
        self.sock.sendall(_masked_text_frame("\n".join(map(json.dumps, commands)).encode()))

    def request(self, command: dict[str, Any]) -> dict[str, Any]:
        """Send `command`; read frames until its reply (pushes on the way are dropped)."""
        self.send(command)
        while True:
            opcode, payload = self.frame()
            assert opcode == 1, (opcode, payload[:100])
            for line in payload.split(b"\n"):
                message = json.loads(line)
                if message.get("id") == command["id"]:
                    return dict(message)

    def frame(self) -> tuple[int, bytes]:
        """The next frame's opcode and payload (the server never masks nor fragments)."""
        first, second = self._read_exactly(2)
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", self._read_exactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", self._read_exactly(8))
        return first & 0x0F, self._read_exactly(size)

    def close_code(self) -> int | None:
        """Read everything left; the code of the close frame, or None if the connection
        ended (or was reset) without one."""
        try:
            while True:
                opcode, payload = self.frame()
                if opcode == 8:
                    return int(struct.unpack("!H", payload[:2])[0])
        except (ConnectionError, EOFError):
            return None

    def close(self) -> None:
        self.sock.close()

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self._buffer:
            self._fill()
        head, _, self._buffer = self._buffer.partition(marker)
        return head

    def _read_exactly(self, count: int) -> bytes:
        while len(self._buffer) < count:
            self._fill()
        chunk, self._buffer = self._buffer[:count], self._buffer[count:]
        return chunk

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self._buffer += data
