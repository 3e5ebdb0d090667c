"""Frames a socket takes only in part still arrive whole and in order.

The server sends a publication's frame straight to each subscriber's socket while nothing is
queued before it, and hands what the socket did not take to the transport. With a small send
buffer on the server and a small receive buffer on a client that reads slowly, publications
in bursts fill the socket over and over: frames go out in pieces, their rests queued, later
frames behind them. The client must still get every publication once, in order, byte for
byte.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from tests.functional.conftest import default_config, make_token
from tests.functional.rawsock import RawWebSocket

_COUNT = 300
_PAYLOAD = "y" * 3000


def _read_publications(peer: RawWebSocket, count: int, out: list[dict[str, Any]]) -> None:
    """Read frames, a little at a time, until `count` publications have come."""
    while len(out) < count:
        opcode, payload = peer.frame()
        assert opcode == 1, (opcode, payload[:100])
        for line in payload.split(b"\n"):
            message = json.loads(line)
            if "push" in message:
                out.append(message["push"]["pub"]["data"])
        time.sleep(0.001)


def test_frames_sent_in_pieces_reach_a_slow_reader_whole_and_in_order(rotary_server: Any) -> None:
    config = {
        **default_config(),
        "allow_subscribe_for_client": True,
        "websocket_send_buffer_size": 4096,
        "client_queue_max_size": 50 << 20,
        "websocket_write_timeout": "30s",
    }
    server = rotary_server(config)
    peer = RawWebSocket(server.port, rcvbuf=4096)
    received: list[dict[str, Any]] = []
    try:
        peer.request({"id": 1, "connect": {"token": make_token("slow-reader")}})
        peer.request({"id": 2, "subscribe": {"channel": "pieces"}})
        reader = threading.Thread(target=_read_publications, args=(peer, _COUNT, received))
        reader.start()
        for n in range(_COUNT):
            server.api("publish", {"channel": "pieces", "data": {"n": n, "blob": _PAYLOAD}})
            if n % 10 == 9:
                time.sleep(0.05)  # the reader catches up: the next frame finds the socket idle
        reader.join(60)
        assert not reader.is_alive(), f"{len(received)} of {_COUNT} publications came"
    finally:
        peer.close()
    assert [pub["n"] for pub in received] == list(range(_COUNT))
    assert all(pub["blob"] == _PAYLOAD for pub in received)
