"""Dead and silent peers go away on their timers, and take nothing with them.

Each peer is a raw socket that keeps its TCP connection open and never reads or never
finishes what it started; timers are set short through the config.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from typing import Any

import pytest

from tests.functional.conftest import default_config, make_token
from tests.functional.rawsock import RawWebSocket, open_socket

_CHANNEL = "lobby"


def _presence(server: Any) -> dict[str, Any]:
    return dict(server.api("presence", {"channel": _CHANNEL})["result"]["presence"])


def _open_fds(server: Any) -> int:
    return len(os.listdir(f"/proc/{server.process.pid}/fd"))


async def _eventually(check: Any, *, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


def _closed_by_server(sock: socket.socket) -> bool:
    """True once the server closed (or reset) `sock`; reads and drops whatever came."""
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


async def test_peer_that_never_answers_pings_leaves_presence_on_3012(
    rotary_server: Any,
) -> None:
    config = {**default_config(), "allow_subscribe_for_client": True, "presence": True}
    server = rotary_server({**config, "ping_interval": "1s", "pong_timeout": "500ms"})
    peer = RawWebSocket(server.port)
    reply = peer.request({"id": 1, "connect": {"token": make_token("mute")}})
    peer.request({"id": 2, "subscribe": {"channel": _CHANNEL}})
    client_id = reply["connect"]["client"]
    assert client_id in _presence(server)
    # ping interval + pong timeout is 1.5 s; the bound only keeps a broken server from
    # hanging the test.
    await _eventually(lambda: client_id not in _presence(server), within=10, what="presence")
    assert f"client {client_id} (user 'mute'): disconnect 3012 no pong" in server.log()
    peer.close()


async def test_upgraded_peer_that_never_connects_is_closed_3502_and_released(
    rotary_server: Any,
) -> None:
    server = rotary_server({**default_config(), "client_stale_close_delay": "500ms"})
    baseline = _open_fds(server)
    peers = [RawWebSocket(server.port) for _ in range(5)]
    assert _open_fds(server) >= baseline + 4  # the start-up health check's may be gone
    codes = await asyncio.gather(*(asyncio.to_thread(p.close_code) for p in peers))
    assert codes == [3502] * 5
    await _eventually(lambda: _open_fds(server) <= baseline, within=10, what="fds released")
    for peer in peers:
        peer.close()


@pytest.mark.parametrize(
    "start",
    [
        pytest.param(b"", id="nothing-sent"),
        pytest.param(b"GET /connection/websocket HTTP/1.1\r\nHost: x\r\n", id="half-upgrade"),
    ],
)
async def test_connection_without_a_whole_request_is_closed_after_the_idle_timeout(
    rotary_server: Any, start: bytes
) -> None:
    server = rotary_server({**default_config(), "http_idle_timeout": "1s"})
    sock = open_socket(server.port, timeout=10)
    sock.sendall(start)
    assert await asyncio.to_thread(_closed_by_server, sock)
    sock.close()


async def test_slowloris_request_is_closed_although_bytes_keep_coming(
    rotary_server: Any,
) -> None:
    server = rotary_server({**default_config(), "http_idle_timeout": "1s"})
    sock = open_socket(server.port, timeout=0.2)
    sock.sendall(b"GET /connection/websocket HTTP/1.1\r\n")
    sent = 0
    # One header byte every 0.1 s: 100 bytes would take 10 s, ten times the idle timeout.
    for byte in b"X-Slow: " + b"a" * 92:
        try:
            sock.sendall(bytes([byte]))
            if sock.recv(1024) == b"":
                break
        except TimeoutError:
            sent += 1
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
    else:
        raise AssertionError("the slow request was never dropped")
    assert sent < 100
    sock.close()


async def test_websocket_idle_longer_than_the_idle_timeout_stays_open(
    rotary_server: Any, ws_connect: Any
) -> None:
    server = rotary_server({**default_config(), "http_idle_timeout": "500ms"})
    client = await ws_connect(server)
    assert "connect" in await client.request({"id": 1, "connect": {"token": make_token("7")}})
    await asyncio.sleep(1.5)
    # Presence is off for the channel: the answer is an error, but an answer it is.
    reply = await client.request({"id": 2, "presence": {"channel": "x"}})
    assert reply["error"]["code"] == 108
    assert not client.ws.closed


async def test_api_request_trickling_its_body_gets_408_after_the_idle_timeout(
    rotary_server: Any,
) -> None:
    server = rotary_server({**default_config(), "http_idle_timeout": "1s"})
    sock = open_socket(server.port, timeout=0.2)
    head = (
        f"POST /api/info HTTP/1.1\r\nHost: x\r\nX-API-Key: {server.api_key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    sock.sendall(head.encode())
    answer = b""
    # One body byte every 0.1 s: the whole body would take 10 s, ten times the timeout.
    for _ in range(100):
        try:
            sock.sendall(b" ")
            answer += sock.recv(1024)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
        if answer:
            break
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    sock.close()
